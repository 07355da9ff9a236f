/* enricher_parts.c - the assigned input partitions: the table the rebalance callback
 * replaces, each partition's dedupe set (rebuilt once after assignment) and committed
 * position, and the consumer lag measured against that position. */
#include "enricher.h"

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

/* Adds partition to the table. Returns 0 or -1. */
static int parts_add(struct enricher *e, int32_t partition)
{
        struct enricher_part *np;

        if (enricher_part_find(e, partition))
                return 0;
        np = realloc(e->parts, (e->nparts + 1) * sizeof(*np));
        if (!np)
                return -1;
        e->parts = np;
        memset(&e->parts[e->nparts], 0, sizeof(*np));
        e->parts[e->nparts].partition   = partition;
        e->parts[e->nparts].next_offset = -1;
        enricher_dedupe_clear(&e->parts[e->nparts].dd);
        e->parts[e->nparts].dd.window_ms = e->window_ms;
        e->nparts++;
        return 0;
}

void enricher_parts_clear(struct enricher *e)
{
        for (size_t i = 0; i < e->nparts; i++)
                enricher_dedupe_clear(&e->parts[i].dd);
        free(e->parts);
        e->parts  = NULL;
        e->nparts = 0;
}

void enricher_parts_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct enricher *e = opaque;

        e->rebalanced = 1;
        e->paused     = 0;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                enricher_parts_clear(e);
                for (int i = 0; i < parts->cnt; i++)
                        parts_add(e, parts->elems[i].partition);
                dlog_info("assigned %d partition(s) of %s", parts->cnt,
                          e->cfg.raw_topic);
                rd_kafka_assign(rk, parts);
        } else {
                dlog_info("revoked %d partition(s)", parts->cnt);
                enricher_parts_clear(e);
                rd_kafka_assign(rk, NULL);
        }
}

int enricher_parts_rebuild(struct enricher *e)
{
        for (size_t i = 0; i < e->nparts; i++)
                if (!e->parts[i].rebuilt && enricher_dedupe_rebuild(e, &e->parts[i]))
                        return -1;
        return 0;
}

size_t enricher_parts_dedupe_size(const struct enricher *e)
{
        size_t size = 0;

        for (size_t i = 0; i < e->nparts; i++)
                size += e->parts[i].dd.n;
        return size;
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
