/* enricher_metrics.c - what /metrics reports for duro-enricher: the counters and
 * histograms the cycle keeps, the dedupe rebuilds', the GraphQL client's, how long the
 * Kafka call running has taken, and readiness. */
#include "enricher.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void enricher_metrics_destroy(struct enricher_metrics *m)
{
        for (size_t i = 0; i < m->nproduced; i++)
                free(m->produced[i].topic);
        m->nproduced = 0;
        pthread_mutex_destroy(&m->lock);
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

void enricher_metrics_set_lag(struct enricher_metrics *m,
                              const struct enricher_lag *lag, size_t n)
{
        if (n > ENRICHER_MAX_LAG)
                n = ENRICHER_MAX_LAG;
        pthread_mutex_lock(&m->lock);
        memcpy(m->lag, lag, n * sizeof(*lag));
        m->nlag = n;
        pthread_mutex_unlock(&m->lock);
}

/* A counter of struct enricher_metrics, by its offset. */
struct metrics_counter {
        const char *name, *help;
        size_t off;
};

#define METRICS_COUNTER(name, help, field)                                             \
        {                                                                              \
                name, help, offsetof(struct enricher_metrics, field)                   \
        }

#define METRICS_N(a) (sizeof(a) / sizeof((a)[0]))

/* Rendered first: the records taken. */
static const struct metrics_counter metrics_taken[] = {
    METRICS_COUNTER("duro_enricher_consumed_total",
                    "Raw records taken from the raw topic.", consumed),
    METRICS_COUNTER("duro_enricher_deduplicated_total",
                    "Raw records dropped as duplicates.", deduplicated),
};

/* Rendered after the gauges: the transactions. */
static const struct metrics_counter metrics_txns[] = {
    METRICS_COUNTER("duro_enricher_transactions_committed_total",
                    "Kafka transactions committed.", txn_committed),
    METRICS_COUNTER("duro_enricher_transactions_aborted_total",
                    "Kafka transactions aborted (the batch is redone).", txn_aborted),
    METRICS_COUNTER("duro_enricher_batches_pulled_ahead_total",
                    "Batches taken and pulled while the previous batch's "
                    "transaction was committing (DURO_PULL_AHEAD).",
                    pulled_ahead),
};

static int metrics_render_counters(struct dbuf *b, const struct enricher_metrics *m,
                                   const struct metrics_counter *t, size_t n)
{
        int rc = 0;

        for (size_t i = 0; i < n; i++) {
                const struct metrics_counter *c = &t[i];
                const atomic_ullong *v =
                    (const atomic_ullong *)((const char *)m + c->off);
                rc |= dmetrics_counter(b, c->name, c->help, atomic_load(v));
        }
        return rc;
}

/* The samples kept under the lock: produced per topic, lag per partition. */
static int metrics_render_locked(struct dbuf *b, struct enricher_metrics *m)
{
        char labels[300];
        int rc = 0;

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
        return rc;
}

/* The dedupe rebuilds: how each assigned partition's set was made, and the rate of
 * the reading (records over seconds). */
static int metrics_render_rebuilds(struct dbuf *b, const struct enricher_metrics *m)
{
        static const char *const how[] = {"kept", "empty", "read"};
        const atomic_ullong *n[]       = {&m->rebuild_kept, &m->rebuild_empty,
                                          &m->rebuild_read};
        char labels[64];
        int rc = 0;

        rc |= dmetrics_gauge(b, "duro_enricher_dedupe_partitions_rebuilding",
                             "Assigned partitions whose dedupe set is not complete "
                             "yet (paused until it is).",
                             (double)atomic_load(&m->rebuilding));
        rc |=
            dmetrics_head(b, "duro_enricher_dedupe_rebuilds_total",
                          "Dedupe sets made ready after an assignment: kept over a "
                          "rebalance, empty (nothing committed), or read from the raw "
                          "partition.",
                          "counter");
        for (size_t k = 0; k < METRICS_N(how); k++) {
                snprintf(labels, sizeof(labels), "how=\"%s\"", how[k]);
                rc |= dmetrics_sample(b, "duro_enricher_dedupe_rebuilds_total", labels,
                                      (double)atomic_load(n[k]));
        }
        rc |= dmetrics_head(b, "duro_enricher_state_records_total",
                            "Records written to the state topics, by type.", "counter");
        rc |=
            dmetrics_sample(b, "duro_enricher_state_records_total", "type=\"document\"",
                            (double)atomic_load(&m->state_documents));
        rc |= dmetrics_sample(b, "duro_enricher_state_records_total",
                              "type=\"tombstone\"",
                              (double)atomic_load(&m->state_tombstones));
        rc |= dmetrics_head(b, "duro_enricher_state_skipped_total",
                            "Resources whose state was left as it was, by reason "
                            "(not_found: a live event's resource was not found).",
                            "counter");
        rc |= dmetrics_sample(b, "duro_enricher_state_skipped_total",
                              "reason=\"not_found\"",
                              (double)atomic_load(&m->state_skipped_not_found));
        rc |= dmetrics_counter(b, "duro_enricher_dedupe_rebuild_records_total",
                               "Raw records read to rebuild dedupe sets.",
                               atomic_load(&m->rebuild_records));
        rc |= dmetrics_head(b, "duro_enricher_dedupe_rebuild_seconds_total",
                            "Time spent reading to rebuild dedupe sets.", "counter");
        rc |= dmetrics_sample(b, "duro_enricher_dedupe_rebuild_seconds_total", "",
                              (double)atomic_load(&m->rebuild_ms) / 1000.0);
        return rc;
}

static int metrics_render_graphql(struct dbuf *b, const struct dgql_stats *g)
{
        char labels[300];
        int rc = 0;

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
        return rc;
}

int enricher_metrics_render(void *opaque, struct dbuf *b)
{
        struct enricher *e         = opaque;
        struct enricher_metrics *m = &e->m;
        char labels[300], reason[200];
        long long since;
        int rc = 0;

        rc |= metrics_render_counters(b, m, metrics_taken, METRICS_N(metrics_taken));
        rc |= dmetrics_head(b, "duro_enricher_dlq_total",
                            "Records written to the DLQ, by error class.", "counter");
        for (int k = 0; k < DWIRE_NDLQ_CLASSES; k++) {
                snprintf(labels, sizeof(labels), "class=\"%s\"",
                         dwire_dlq_class_name((enum dwire_dlq_class)k));
                rc |= dmetrics_sample(b, "duro_enricher_dlq_total", labels,
                                      (double)atomic_load(&m->dlq[k]));
        }
        rc |= metrics_render_locked(b, m);
        rc |= dmetrics_gauge(b, "duro_enricher_dedupe_set_size",
                             "Dedupe keys held for the assigned partitions.",
                             (double)atomic_load(&m->dedupe_size));
        rc |= metrics_render_rebuilds(b, m);
        rc |= metrics_render_counters(b, m, metrics_txns, METRICS_N(metrics_txns));
        rc |= dmetrics_hist_render(b, "duro_enricher_batch_size",
                                   "Records per batch (in units of one record).",
                                   &m->batch_size);
        rc |= dmetrics_hist_render(b, "duro_enricher_event_latency_seconds",
                                   "From the raw record's timestamp to the commit of "
                                   "its output.",
                                   &m->event_latency);
        rc |= metrics_render_graphql(b, dgql_stats(e->gql));
        since = atomic_load(&e->kafka_call_since);
        rc |= dmetrics_gauge(b, "duro_enricher_kafka_call_seconds",
                             "How long the transactional Kafka call running (or, at "
                             "shutdown, the closing of a client) has run; 0 when none. "
                             "The watchdog exits past transaction.timeout.ms + 30 s.",
                             since ? (double)(dtime_mono_ms() - since) / 1000.0 : 0.0);
        rc |= dmetrics_gauge(b, "duro_enricher_ready", "1 when /readyz answers ready.",
                             enricher_ready(e, reason, sizeof(reason)));
        return rc ? -1 : 0;
}
