/* enricher_dedupe.c - the dedupe set: per input partition, the dedupe keys processed
 * within the window, measured in stream time (raw record timestamps), never the wall
 * clock. Keys are stored as 128-bit SHA-256 prefixes. On assignment the set is rebuilt
 * from the raw partition itself, so no other state is kept anywhere. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "dpayload.h"
#include "dsig.h"
#include "dwire.h"

#define DEDUPE_EMPTY           INT64_MIN
#define DEDUPE_MIN_CAP         64
#define DEDUPE_READ_TIMEOUT_MS 10000

struct enricher_dedupe_slot {
        uint64_t d[2];
        int64_t ts; /* DEDUPE_EMPTY when free */
};

void enricher_dedupe_id_of(const char *key, struct enricher_dedupe_id *id)
{
        unsigned char md[DSIG_LEN];

        dsig_sha256(key, strlen(key), md);
        memcpy(id->d, md, sizeof(id->d));
}

static struct enricher_dedupe_slot *dedupe_find(const struct enricher_dedupe *dd,
                                                const uint64_t d[2])
{
        size_t mask = dd->cap - 1, i = (size_t)d[0] & mask;

        for (;;) {
                struct enricher_dedupe_slot *s = &dd->slots[i];
                if (s->ts == DEDUPE_EMPTY || (s->d[0] == d[0] && s->d[1] == d[1]))
                        return s;
                i = (i + 1) & mask;
        }
}

/* Rebuilds the table into newcap slots, keeping entries inside the window. */
static int dedupe_rehash(struct enricher_dedupe *dd, size_t newcap)
{
        struct enricher_dedupe_slot *old = dd->slots;
        size_t oldcap = dd->cap, n = 0;
        int64_t horizon = dd->stream_ms - dd->window_ms;

        dd->slots = malloc(newcap * sizeof(*dd->slots));
        if (!dd->slots) {
                dd->slots = old;
                return -1;
        }
        for (size_t i = 0; i < newcap; i++)
                dd->slots[i].ts = DEDUPE_EMPTY;
        dd->cap = newcap;
        for (size_t i = 0; i < oldcap; i++) {
                if (old[i].ts == DEDUPE_EMPTY || old[i].ts < horizon)
                        continue;
                *dedupe_find(dd, old[i].d) = old[i];
                n++;
        }
        dd->n = n;
        free(old);
        return 0;
}

int enricher_dedupe_has_id(const struct enricher_dedupe *dd,
                           const struct enricher_dedupe_id *id)
{
        const struct enricher_dedupe_slot *s;

        if (!dd->cap)
                return 0;
        s = dedupe_find(dd, id->d);
        return s->ts != DEDUPE_EMPTY && s->ts >= dd->stream_ms - dd->window_ms;
}

int enricher_dedupe_add_id(struct enricher_dedupe *dd,
                           const struct enricher_dedupe_id *id, int64_t ts_ms)
{
        struct enricher_dedupe_slot *s;

        if (ts_ms > dd->stream_ms)
                dd->stream_ms = ts_ms;
        if (!dd->cap || (dd->n + 1) * 2 > dd->cap) {
                /* Prune first; grow only if what stays is still dense. */
                size_t live = 0, cap = DEDUPE_MIN_CAP;
                int64_t horizon = dd->stream_ms - dd->window_ms;
                for (size_t i = 0; i < dd->cap; i++)
                        live += dd->slots[i].ts != DEDUPE_EMPTY &&
                                dd->slots[i].ts >= horizon;
                while (cap < (live + 1) * 4)
                        cap *= 2;
                if (dedupe_rehash(dd, cap))
                        return -1;
        }
        s = dedupe_find(dd, id->d);
        if (s->ts == DEDUPE_EMPTY)
                dd->n++;
        else if (s->ts > ts_ms)
                return 0;
        s->d[0] = id->d[0];
        s->d[1] = id->d[1];
        s->ts   = ts_ms;
        return 0;
}

int enricher_dedupe_has(const struct enricher_dedupe *dd, const char *key)
{
        struct enricher_dedupe_id id;

        enricher_dedupe_id_of(key, &id);
        return enricher_dedupe_has_id(dd, &id);
}

int enricher_dedupe_add(struct enricher_dedupe *dd, const char *key, int64_t ts_ms)
{
        struct enricher_dedupe_id id;

        enricher_dedupe_id_of(key, &id);
        return enricher_dedupe_add_id(dd, &id, ts_ms);
}

void enricher_dedupe_clear(struct enricher_dedupe *dd)
{
        free(dd->slots);
        dd->slots     = NULL;
        dd->cap       = 0;
        dd->n         = 0;
        dd->stream_ms = INT64_MIN / 2;
}

char *enricher_dedupe_key(const rd_kafka_message_t *msg, const char *event_id)
{
        char hashkey[DPAYLOAD_HASHKEY_SIZE], *out;
        const char *base         = event_id;
        const void *redrive      = NULL;
        size_t rlen              = 0, blen;
        rd_kafka_headers_t *hdrs = NULL;

        if (!base || !*base) {
                dsig_sha256_key(msg->payload, msg->len, hashkey);
                base = hashkey;
        }
        if (!rd_kafka_message_headers(msg, &hdrs))
                rd_kafka_header_get_last(hdrs, DWIRE_H_REDRIVE_ID, &redrive, &rlen);
        blen = strlen(base);
        out  = malloc(blen + rlen + 2);
        if (!out)
                return NULL;
        memcpy(out, base, blen);
        if (redrive) {
                out[blen] = '#';
                memcpy(out + blen + 1, redrive, rlen);
                out[blen + 1 + rlen] = '\0';
        } else {
                out[blen] = '\0';
        }
        return out;
}

/* Reads the raw partition from start up to (not including) end with the reader
 * consumer, calling fn for each record. Returns 0 or -1. */
static int dedupe_read(struct enricher *e, int32_t partition, int64_t start,
                       int64_t end,
                       int (*fn)(struct enricher *, const rd_kafka_message_t *, void *),
                       void *opaque)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        int rc                             = 0;

        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, partition)->offset =
            start;
        if (rd_kafka_assign(e->reader, l)) {
                rd_kafka_topic_partition_list_destroy(l);
                return -1;
        }
        rd_kafka_topic_partition_list_destroy(l);
        while (start < end) {
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(e->reader, DEDUPE_READ_TIMEOUT_MS);
                if (!m) {
                        dlog_error("dedupe rebuild: no record from %s [%d] at %lld "
                                   "within %d ms",
                                   e->cfg.raw_topic, (int)partition, (long long)start,
                                   DEDUPE_READ_TIMEOUT_MS);
                        rc = -1;
                        break;
                }
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                dlog_error("dedupe rebuild: %s",
                                           rd_kafka_message_errstr(m));
                                rd_kafka_message_destroy(m);
                                rc = -1;
                                break;
                        }
                        /* End of partition before end: control records fill the gap. */
                        rd_kafka_message_destroy(m);
                        break;
                }
                start = m->offset + 1;
                if (m->offset < end && fn(e, m, opaque)) {
                        rd_kafka_message_destroy(m);
                        rc = -1;
                        break;
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(e->reader, NULL);
        return rc;
}

static int dedupe_last_ts(struct enricher *e, const rd_kafka_message_t *m, void *opaque)
{
        (void)e;
        *(int64_t *)opaque = rd_kafka_message_timestamp(m, NULL);
        return 0;
}

static int dedupe_add_record(struct enricher *e, const rd_kafka_message_t *m,
                             void *opaque)
{
        struct enricher_part *part = opaque;
        struct dpayload p;
        char *key;
        int rc;
        (void)e;

        dpayload_parse(&p, m->payload ? m->payload : "", m->len);
        key = enricher_dedupe_key(m, p.id);
        dpayload_free(&p);
        if (!key)
                return -1;
        rc = enricher_dedupe_add(&part->dd, key, rd_kafka_message_timestamp(m, NULL));
        free(key);
        return rc;
}

int enricher_dedupe_rebuild(struct enricher *e, struct enricher_part *part)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        int64_t committed, last_ts = -1, start, lo = 0, hi = 0;
        rd_kafka_resp_err_t err;

        enricher_dedupe_clear(&part->dd);
        part->dd.window_ms = e->window_ms;
        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, part->partition);
        err       = rd_kafka_committed(e->consumer, l, DEDUPE_READ_TIMEOUT_MS);
        committed = err ? -1 : l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
                dlog_error("dedupe rebuild: committed offset of %s [%d]: %s",
                           e->cfg.raw_topic, (int)part->partition,
                           rd_kafka_err2str(err));
                return -1;
        }
        if (committed >= 0 && part->next_offset < 0)
                part->next_offset = committed; /* for the lag gauge */
        if (committed <= 0) {
                part->rebuilt = 1;
                return 0; /* nothing processed yet */
        }
        rd_kafka_query_watermark_offsets(e->consumer, e->cfg.raw_topic, part->partition,
                                         &lo, &hi, DEDUPE_READ_TIMEOUT_MS);
        /* The last processed record's timestamp: the record just before the committed
         * offset (stepping back over transaction markers). */
        for (int64_t back = 1; back <= 64 && last_ts < 0 && committed - back >= lo;
             back *= 2) {
                if (dedupe_read(e, part->partition, committed - back, committed,
                                dedupe_last_ts, &last_ts))
                        return -1;
        }
        if (last_ts < 0) {
                part->rebuilt = 1;
                return 0;
        }
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, part->partition)
            ->offset = last_ts - e->window_ms;
        err          = rd_kafka_offsets_for_times(e->reader, l, DEDUPE_READ_TIMEOUT_MS);
        start        = err ? lo : l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        if (start < lo)
                start = lo;
        if (dedupe_read(e, part->partition, start, committed, dedupe_add_record, part))
                return -1;
        part->rebuilt = 1;
        dlog_info("dedupe set of %s [%d] rebuilt from offsets %lld..%lld: %zu keys",
                  e->cfg.raw_topic, (int)part->partition, (long long)start,
                  (long long)committed, part->dd.n);
        return 0;
}
