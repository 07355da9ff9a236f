/* enricher_dedupe.c - the dedupe set: per input partition, the dedupe keys processed
 * within the window, measured in stream time (raw record timestamps), never the wall
 * clock. Keys are stored as 128-bit SHA-256 prefixes. The key of a raw record is made
 * here too. (On assignment the set is rebuilt from the raw partition itself:
 * enricher_rebuild.c.) */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dpayload.h"
#include "dsig.h"
#include "dwire.h"

#define DEDUPE_EMPTY   INT64_MIN
#define DEDUPE_MIN_CAP 64
#define DEDUPE_HUGE    ((size_t)2 << 20) /* a huge page */

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

/* The capacity for n keys: the smallest power of two that holds them with room to add
 * as many before the next growth (adds grow the table once it is half full). */
static size_t dedupe_cap_for(size_t n)
{
        size_t cap = DEDUPE_MIN_CAP;

        while (cap < n * 2 + 2)
                cap *= 2;
        return cap;
}

/* A table of n slots. A large one is aligned to huge pages and marked for them: its
 * look-ups land anywhere in it, and with 4 KiB pages nearly every one would miss the
 * TLB as well as the cache. */
static struct enricher_dedupe_slot *dedupe_alloc(size_t n)
{
        size_t size = n * sizeof(struct enricher_dedupe_slot);
        void *p;

        if (size < DEDUPE_HUGE)
                return malloc(size);
        size = (size + DEDUPE_HUGE - 1) & ~(size_t)(DEDUPE_HUGE - 1);
        if (!(p = aligned_alloc(DEDUPE_HUGE, size)))
                return NULL;
        madvise(p, size, MADV_HUGEPAGE); /* a hint: fine if refused */
        return p;
}

/* Rebuilds the table into newcap slots, keeping entries inside the window. */
static int dedupe_rehash(struct enricher_dedupe *dd, size_t newcap)
{
        struct enricher_dedupe_slot *old = dd->slots;
        size_t oldcap = dd->cap, n = 0;
        int64_t horizon = dd->stream_ms - dd->window_ms;

        dd->slots = dedupe_alloc(newcap);
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

void enricher_dedupe_prefetch(const struct enricher_dedupe *dd,
                              const struct enricher_dedupe_id *id)
{
        if (dd->cap)
                __builtin_prefetch(&dd->slots[(size_t)id->d[0] & (dd->cap - 1)]);
}

int enricher_dedupe_add_id(struct enricher_dedupe *dd,
                           const struct enricher_dedupe_id *id, int64_t ts_ms)
{
        struct enricher_dedupe_slot *s;

        if (ts_ms > dd->stream_ms)
                dd->stream_ms = ts_ms;
        if (!dd->cap || (dd->n + 1) * 2 > dd->cap) {
                /* Half full: prune first, then size for what stays at most half full
                 * (a quarter to a half: about 64 bytes a key). */
                size_t live     = 0;
                int64_t horizon = dd->stream_ms - dd->window_ms;
                for (size_t i = 0; i < dd->cap; i++)
                        live += dd->slots[i].ts != DEDUPE_EMPTY &&
                                dd->slots[i].ts >= horizon;
                if (dedupe_rehash(dd, dedupe_cap_for(live + 1)))
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

/* The event id header in hdrs (a record's) when it is there and not empty (*len
 * set), else NULL. */
static const char *dedupe_header_id(rd_kafka_headers_t *hdrs, size_t *len)
{
        const void *v = NULL;

        if (!hdrs || rd_kafka_header_get_last(hdrs, DWIRE_H_EVENT_ID, &v, len) || !v ||
            !strnlen(v, *len))
                return NULL; /* absent, or empty as a string */
        return v;
}

int enricher_dedupe_exempt(const rd_kafka_message_t *msg)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *v            = NULL;
        size_t len               = 0;

        return !rd_kafka_message_headers(msg, &hdrs) &&
               !rd_kafka_header_get_last(hdrs, DWIRE_H_ORIGIN, &v, &len) && v &&
               len == 8 && !memcmp(v, "snapshot", 8);
}

int enricher_dedupe_key_in_headers(const rd_kafka_message_t *msg)
{
        rd_kafka_headers_t *hdrs = NULL;
        size_t len;

        rd_kafka_message_headers(msg, &hdrs);
        return dedupe_header_id(hdrs, &len) != NULL;
}

/* Writes the dedupe key of msg (enricher_dedupe_key's) into buf when it fits in size
 * bytes with its NUL; returns its length either way (buf may be NULL when size is 0).
 */
static size_t dedupe_key_write(const rd_kafka_message_t *msg, const char *event_id,
                               char *buf, size_t size)
{
        char hashkey[DPAYLOAD_HASHKEY_SIZE];
        const char *base;
        const void *redrive      = NULL;
        size_t rlen              = 0, blen, n;
        rd_kafka_headers_t *hdrs = NULL;

        rd_kafka_message_headers(msg, &hdrs);
        if ((base = dedupe_header_id(hdrs, &blen))) {
                /* a header value may hold a NUL: the key ends there, as a string's */
                blen = strnlen(base, blen);
        } else if (event_id && *event_id) {
                base = event_id;
                blen = strlen(base);
        } else {
                dsig_sha256_key(msg->payload, msg->len, hashkey);
                base = hashkey;
                blen = strlen(base);
        }
        if (hdrs)
                rd_kafka_header_get_last(hdrs, DWIRE_H_REDRIVE_ID, &redrive, &rlen);
        n = blen + (redrive ? 1 + rlen : 0);
        if (n >= size)
                return n;
        memcpy(buf, base, blen);
        if (redrive) {
                buf[blen] = '#';
                memcpy(buf + blen + 1, redrive, rlen);
        }
        buf[n] = '\0';
        return n;
}

char *enricher_dedupe_key(const rd_kafka_message_t *msg, const char *event_id)
{
        size_t n  = dedupe_key_write(msg, event_id, NULL, 0);
        char *out = malloc(n + 1);

        if (out)
                dedupe_key_write(msg, event_id, out, n + 1);
        return out;
}

int enricher_dedupe_record_id(const rd_kafka_message_t *msg, const char *event_id,
                              struct enricher_dedupe_id *id)
{
        char buf[256], *key = buf;
        size_t n = dedupe_key_write(msg, event_id, buf, sizeof(buf));

        if (n >= sizeof(buf) && !(key = enricher_dedupe_key(msg, event_id)))
                return -1;
        enricher_dedupe_id_of(key, id);
        if (key != buf)
                free(key);
        return 0;
}

int enricher_dedupe_reserve(struct enricher_dedupe *dd, size_t n)
{
        size_t cap;

        if (n > ((size_t)1 << 40))
                return -1; /* not a count of keys */
        cap = dedupe_cap_for(n + 1);

        return cap > dd->cap ? dedupe_rehash(dd, cap) : 0;
}
