/* enricher_parts.c - the assigned input partitions: the table the rebalance callback
 * replaces (keeping a revoked partition's dedupe set until the next assignment, which
 * may hand it back), pausing one of them, the dedupe gauges, and the consumer lag
 * measured against each partition's committed position. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "dtime.h"

struct enricher_part *enricher_part_find(struct enricher *e, int32_t partition)
{
        for (size_t i = 0; i < e->nparts; i++)
                if (e->parts[i].partition == partition)
                        return &e->parts[i];
        return NULL;
}

int enricher_part_ready(const struct enricher_part *part)
{
        return part && part->checked && part->state == ENRICHER_PART_READY;
}

static void parts_free(struct enricher_part *parts, size_t n)
{
        for (size_t i = 0; i < n; i++)
                enricher_dedupe_clear(&parts[i].dd);
        free(parts);
}

void enricher_parts_clear(struct enricher *e)
{
        parts_free(e->parts, e->nparts);
        parts_free(e->kept, e->nkept);
        e->parts  = NULL;
        e->nparts = 0;
        e->kept   = NULL;
        e->nkept  = 0;
}

/* The new table for the assignment l: a partition held before the rebalance comes
 * back with its set (to be checked), the others start new; the rest of the kept
 * table is freed. Returns 0, or -1 when out of memory (every set then starts new). */
static int parts_assign(struct enricher *e, const rd_kafka_topic_partition_list_t *l)
{
        struct enricher_part *np = calloc(l->cnt ? (size_t)l->cnt : 1, sizeof(*np));

        parts_free(e->parts, e->nparts);
        e->parts  = np;
        e->nparts = 0;
        if (!np) {
                parts_free(e->kept, e->nkept);
                e->kept  = NULL;
                e->nkept = 0;
                return -1;
        }
        for (int i = 0; i < l->cnt; i++) {
                struct enricher_part *p = &np[e->nparts++];
                p->partition            = l->elems[i].partition;
                for (size_t k = 0; k < e->nkept; k++)
                        if (e->kept[k].partition == p->partition) {
                                *p         = e->kept[k]; /* takes its set */
                                e->kept[k] = e->kept[--e->nkept];
                                break;
                        }
                if (p->state == ENRICHER_PART_NEW) {
                        enricher_dedupe_clear(&p->dd);
                        p->next_offset = -1;
                }
                p->dd.window_ms     = e->window_ms;
                p->checked          = 0;
                p->idle_refused_pos = -1;
        }
        parts_free(e->kept, e->nkept);
        e->kept        = NULL;
        e->nkept       = 0;
        e->seek_failed = 0; /* the new assignment's positions start afresh */
        return 0;
}

/* Incremental (cooperative, consumer): the partitions of l join the table, new, the
 * others keep their state and sets. Returns 0, or -1 when out of memory (nothing
 * added). */
static int parts_add(struct enricher *e, const rd_kafka_topic_partition_list_t *l)
{
        struct enricher_part *np =
            realloc(e->parts, (e->nparts + (size_t)l->cnt + 1) * sizeof(*np));

        if (!np)
                return -1;
        e->parts = np;
        for (int i = 0; i < l->cnt; i++) {
                struct enricher_part *p;
                if (enricher_part_find(e, l->elems[i].partition))
                        continue;
                p = &e->parts[e->nparts++];
                memset(p, 0, sizeof(*p));
                p->partition        = l->elems[i].partition;
                p->next_offset      = -1;
                p->dd.window_ms     = e->window_ms;
                p->idle_refused_pos = -1;
        }
        return 0;
}

/* Incremental: the partitions of l leave the table with their sets; the rebuild
 * reader lets go of one it was reading. */
static void parts_remove(struct enricher *e, const rd_kafka_topic_partition_list_t *l)
{
        for (int i = 0; i < l->cnt; i++) {
                struct enricher_part *p = enricher_part_find(e, l->elems[i].partition);
                if (!p)
                        continue;
                if (e->reading == p->partition)
                        enricher_rebuild_stop(e);
                enricher_dedupe_clear(&p->dd);
                *p = e->parts[--e->nparts];
        }
}

/* "2, 5, 7" for the log: the partitions of l. */
static void parts_list(const rd_kafka_topic_partition_list_t *l, char *buf, size_t size)
{
        size_t o = 0;

        buf[0] = '\0';
        for (int i = 0; i < l->cnt && o + 16 < size; i++)
                o += (size_t)snprintf(buf + o, size - o, "%s%d", i ? ", " : "",
                                      (int)l->elems[i].partition);
}

/* The incremental protocols' callback: partitions come and go one list at a time;
 * those that stay are untouched (their sets, positions and pause). */
static void parts_rebalance_incremental(struct enricher *e, rd_kafka_t *rk,
                                        rd_kafka_resp_err_t err,
                                        rd_kafka_topic_partition_list_t *parts)
{
        rd_kafka_error_t *error;
        char list[512];

        parts_list(parts, list, sizeof(list));
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                if (parts_add(e, parts) && !atomic_exchange(&e->fatal, 1))
                        dlog_error("out of memory for the partition table: stopping");
                dlog_info("assigned %zu partition(s) of %s, %d of them new: %s",
                          e->nparts, e->cfg.raw_topic, parts->cnt, list);
                error = rd_kafka_incremental_assign(rk, parts);
                /* Until its set is ready (enricher_rebuild.c resumes it). */
                rd_kafka_pause_partitions(rk, parts);
        } else {
                /* a batch holding their records goes back (enricher_consume_dropped);
                 * an assignment that only adds leaves the batch alone */
                e->rebalanced |= parts->cnt > 0;
                parts_remove(e, parts);
                dlog_info("revoked %d partition(s) of %s: %s; %zu left", parts->cnt,
                          e->cfg.raw_topic, list, e->nparts);
                error = rd_kafka_incremental_unassign(rk, parts);
        }
        if (error) {
                atomic_store(&e->fatal, 1); /* the table and the assignment differ */
                dlog_error("%s: %s; stopping",
                           err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS
                               ? "incremental assign"
                               : "incremental unassign",
                           rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

void enricher_parts_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct enricher *e = opaque;

        if (e->incremental) {
                parts_rebalance_incremental(e, rk, err, parts);
                enricher_parts_count(e);
                rd_kafka_yield(rk);
                return;
        }
        e->rebalanced = 1;
        e->paused     = 0;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                if (parts_assign(e, parts))
                        dlog_error("out of memory for the partition table");
                dlog_info("assigned %d partition(s) of %s", parts->cnt,
                          e->cfg.raw_topic);
                rd_kafka_assign(rk, parts);
                /* Until its set is ready (enricher_rebuild.c resumes it). */
                rd_kafka_pause_partitions(rk, parts);
        } else {
                dlog_info("revoked %d partition(s)", parts->cnt);
                /* Kept (eager rebalancing revokes everything): the next assignment
                 * may hand some back at the same committed offset. */
                parts_free(e->kept, e->nkept);
                e->kept   = e->parts;
                e->nkept  = e->nparts;
                e->parts  = NULL;
                e->nparts = 0;
                rd_kafka_assign(rk, NULL);
        }
        enricher_parts_count(e);
        /* Return from the poll now, not at its timeout: the cycle checks the new
         * partitions' sets at once (a set kept is ready again within milliseconds). */
        rd_kafka_yield(rk);
}

void enricher_parts_pause(struct enricher *e, int32_t partition, int pause)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, partition);
        if (pause)
                rd_kafka_pause_partitions(e->consumer, l);
        else
                rd_kafka_resume_partitions(e->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
}

void enricher_parts_count(struct enricher *e)
{
        size_t size = 0, waiting = 0;

        for (size_t i = 0; i < e->nparts; i++) {
                size += e->parts[i].dd.n;
                waiting += !enricher_part_ready(&e->parts[i]);
        }
        atomic_store(&e->m.dedupe_size, size);
        atomic_store(&e->m.rebuilding, waiting);
}

/* The lag of part: its end offset against the first offset not yet committed (known
 * from the committed offset read at assignment, then from each commit). Asks the
 * broker through the producer's connection (the consumer's waits behind its long-poll
 * fetches) unless past_budget; falls back to the offsets the consumer cached. Returns
 * 0 or -1 (not known). */
static int parts_lag(struct enricher *e, const struct enricher_part *part,
                     int past_budget, int64_t *lag)
{
        int64_t lo = -1, hi = -1, base;

        if ((past_budget ||
             rd_kafka_query_watermark_offsets(e->producer, e->cfg.raw_topic,
                                              part->partition, &lo, &hi, 500)) &&
            rd_kafka_get_watermark_offsets(e->consumer, e->cfg.raw_topic,
                                           part->partition, &lo, &hi))
                return -1;
        if (hi < 0)
                return -1;
        base = part->next_offset >= 0 ? part->next_offset : lo;
        if (base < 0)
                return -1;
        *lag = hi > base ? hi - base : 0;
        return 0;
}

void enricher_parts_update_lag(struct enricher *e)
{
        static int64_t last_ms;
        int64_t now = dtime_mono_ms();
        struct enricher_lag lag[ENRICHER_MAX_LAG];
        size_t n = 0;

        if (now - last_ms < 1000)
                return;
        last_ms = now;
        /* Bounded: one second for all partitions. */
        for (size_t i = 0; i < e->nparts && n < ENRICHER_MAX_LAG; i++) {
                const struct enricher_part *part = &e->parts[i];
                if (parts_lag(e, part, dtime_mono_ms() - now > 1000, &lag[n].lag))
                        continue;
                lag[n++].partition = part->partition;
        }
        enricher_metrics_set_lag(&e->m, lag, n);
}
