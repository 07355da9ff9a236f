/* enricher_metrics.c - what /metrics and /readyz report for duro-enricher. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "dtime.h"

void enricher_metrics_init(struct enricher_metrics *m)
{
        static const double batch_bounds[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000};
        static const double lat_bounds[]   = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                              1,    2.5,   5,    10,  30,   60};

        memset(m, 0, sizeof(*m));
        dmetrics_hist_init(&m->batch_size, batch_bounds,
                           sizeof(batch_bounds) / sizeof(batch_bounds[0]));
        dmetrics_hist_init(&m->event_latency, lat_bounds,
                           sizeof(lat_bounds) / sizeof(lat_bounds[0]));
        pthread_mutex_init(&m->lock, NULL);
}

void enricher_metrics_produced(struct enricher_metrics *m, const char *topic)
{
        size_t i;

        pthread_mutex_lock(&m->lock);
        for (i = 0; i < m->nproduced; i++)
                if (!strcmp(m->produced[i].topic, topic))
                        break;
        if (i == m->nproduced && i < sizeof(m->produced) / sizeof(m->produced[0])) {
                m->produced[i].topic = strdup(topic);
                m->produced[i].n     = 0;
                if (m->produced[i].topic)
                        m->nproduced++;
        }
        if (i < m->nproduced)
                m->produced[i].n++;
        pthread_mutex_unlock(&m->lock);
}

void enricher_set_not_ready(struct enricher *e, const char *reason)
{
        pthread_mutex_lock(&e->m.lock);
        if (!atomic_load(&e->not_ready) || strcmp(e->not_ready_reason, reason)) {
                snprintf(e->not_ready_reason, sizeof(e->not_ready_reason), "%s",
                         reason);
                if (!atomic_exchange(&e->not_ready, 1))
                        dlog_warn("not ready: %s; partitions paused", reason);
        }
        pthread_mutex_unlock(&e->m.lock);
}

void enricher_set_ready(struct enricher *e)
{
        if (atomic_exchange(&e->not_ready, 0))
                dlog_info("ready again: the Duro API answers");
}

int enricher_ready(void *opaque, char *reason, size_t reasonsize)
{
        struct enricher *e = opaque;

        if (!atomic_load(&e->run)) {
                snprintf(reason, reasonsize, "shutting down");
                return 0;
        }
        if (atomic_load(&e->fatal)) {
                snprintf(reason, reasonsize, "fatal Kafka error");
                return 0;
        }
        if (atomic_load(&e->not_ready)) {
                pthread_mutex_lock(&e->m.lock);
                snprintf(reason, reasonsize, "%s", e->not_ready_reason);
                pthread_mutex_unlock(&e->m.lock);
                return 0;
        }
        return 1;
}

int enricher_metrics_render(void *opaque, struct dbuf *b)
{
        struct enricher *e         = opaque;
        struct enricher_metrics *m = &e->m;
        const struct dgql_stats *g = dgql_stats(e->gql);
        char labels[300], reason[200];
        int rc = 0;

        rc |= dmetrics_counter(b, "duro_enricher_consumed_total",
                               "Raw records taken from the raw topic.",
                               atomic_load(&m->consumed));
        rc |= dmetrics_counter(b, "duro_enricher_deduplicated_total",
                               "Raw records dropped as duplicates.",
                               atomic_load(&m->deduplicated));
        rc |= dmetrics_head(b, "duro_enricher_dlq_total",
                            "Records written to the DLQ, by error class.", "counter");
        for (int k = 0; k < DWIRE_NDLQ_CLASSES; k++) {
                snprintf(labels, sizeof(labels), "class=\"%s\"",
                         dwire_dlq_class_name((enum dwire_dlq_class)k));
                rc |= dmetrics_sample(b, "duro_enricher_dlq_total", labels,
                                      (double)atomic_load(&m->dlq[k]));
        }
        rc |= dmetrics_head(b, "duro_enricher_produced_total",
                            "Enriched records committed, by output topic.", "counter");
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->nproduced; i++) {
                snprintf(labels, sizeof(labels), "topic=\"%s\"", m->produced[i].topic);
                rc |= dmetrics_sample(b, "duro_enricher_produced_total", labels,
                                      (double)m->produced[i].n);
        }
        rc |= dmetrics_head(b, "duro_enricher_consumer_lag",
                            "Records in the raw topic not yet processed, by partition.",
                            "gauge");
        for (size_t i = 0; i < m->nlag; i++) {
                snprintf(labels, sizeof(labels), "partition=\"%d\"",
                         (int)m->lag[i].partition);
                rc |= dmetrics_sample(b, "duro_enricher_consumer_lag", labels,
                                      (double)m->lag[i].lag);
        }
        pthread_mutex_unlock(&m->lock);
        rc |= dmetrics_gauge(b, "duro_enricher_dedupe_set_size",
                             "Dedupe keys held for the assigned partitions.",
                             (double)atomic_load(&m->dedupe_size));
        rc |= dmetrics_counter(b, "duro_enricher_transactions_committed_total",
                               "Kafka transactions committed.",
                               atomic_load(&m->txn_committed));
        rc |= dmetrics_counter(b, "duro_enricher_transactions_aborted_total",
                               "Kafka transactions aborted (the batch is redone).",
                               atomic_load(&m->txn_aborted));
        rc |= dmetrics_counter(b, "duro_enricher_batches_pulled_ahead_total",
                               "Batches taken and pulled while the previous batch's "
                               "transaction was committing (DURO_PULL_AHEAD).",
                               atomic_load(&m->pulled_ahead));
        rc |= dmetrics_hist_render(b, "duro_enricher_batch_size",
                                   "Records per batch (in units of one record).",
                                   &m->batch_size);
        rc |= dmetrics_hist_render(b, "duro_enricher_event_latency_seconds",
                                   "From the raw record's timestamp to the commit of "
                                   "its output.",
                                   &m->event_latency);
        rc |= dmetrics_counter(b, "duro_enricher_graphql_requests_total",
                               "GraphQL requests made.", atomic_load(&g->requests));
        rc |= dmetrics_head(b, "duro_enricher_graphql_answers_total",
                            "GraphQL answers, by outcome.", "counter");
        for (int k = 0; k < 4; k++) {
                snprintf(labels, sizeof(labels), "outcome=\"%s\"",
                         dgql_outcome_name((enum dgql_outcome)k));
                rc |= dmetrics_sample(b, "duro_enricher_graphql_answers_total", labels,
                                      (double)atomic_load(&g->by_outcome[k]));
        }
        rc |= dmetrics_hist_render(b, "duro_enricher_graphql_latency_seconds",
                                   "GraphQL request latency.",
                                   (struct dmetrics_hist *)&g->latency);
        rc |= dmetrics_gauge(b, "duro_enricher_ready", "1 when /readyz answers ready.",
                             enricher_ready(e, reason, sizeof(reason)));
        return rc ? -1 : 0;
}

void enricher_update_lag(struct enricher *e)
{
        static int64_t last_ms;
        int64_t now = dtime_mono_ms();

        /* The end offsets against the first offset not yet committed (known from the
         * committed offset read at assignment, then from each commit). */
        if (now - last_ms < 1000)
                return;
        last_ms = now;
        pthread_mutex_lock(&e->m.lock);
        e->m.nlag = 0;
        for (size_t i = 0; i < e->nparts && e->m.nlag < 256; i++) {
                const struct enricher_part *part = &e->parts[i];
                int64_t lo = -1, hi = -1, base;
                /* Ask the broker through the producer's connection (the consumer's
                 * waits behind its long-poll fetches); fall back to the offsets the
                 * consumer cached. Bounded: one second for all partitions. */
                if ((dtime_mono_ms() - now > 1000 ||
                     rd_kafka_query_watermark_offsets(e->producer, e->cfg.raw_topic,
                                                      part->partition, &lo, &hi,
                                                      500)) &&
                    rd_kafka_get_watermark_offsets(e->consumer, e->cfg.raw_topic,
                                                   part->partition, &lo, &hi))
                        continue;
                if (hi < 0)
                        continue;
                base = part->next_offset >= 0 ? part->next_offset : lo;
                if (base < 0)
                        continue;
                e->m.lag[e->m.nlag].partition = part->partition;
                e->m.lag[e->m.nlag].lag       = hi > base ? hi - base : 0;
                e->m.nlag++;
        }
        pthread_mutex_unlock(&e->m.lock);
}
