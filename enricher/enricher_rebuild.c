/* enricher_rebuild.c - making each assigned partition's dedupe set complete before
 * its records are processed, in slices, so that the main thread keeps polling the
 * consumer (and its group membership) however large the window is:
 *   1. check: the committed offsets of the partitions just (re)assigned, read in one
 *      call with their metadata. A set held before the rebalance stays when its
 *      partition's committed offset did not move (nobody processed it meanwhile);
 *      otherwise the set starts empty and is read from the committed metadata's
 *      timestamp minus the window (the whole retained partition when the offset has
 *      no such metadata) up to the committed offset;
 *   2. read: one partition at a time with the reader consumer (assign-only,
 *      read_committed), the key taken from the record's headers (the body parsed only
 *      for records without an event id header);
 *   3. ready: the partition is resumed on the consumer.
 * The partitions not ready stay paused, and enricher_consume.c puts back any record
 * of theirs that arrives anyway. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "dpayload.h"
#include "dtime.h"
#include "dwire.h"

#define REBUILD_CALL_TIMEOUT_MS 10000 /* committed offsets, watermarks, times */
#define REBUILD_RETRY_MS        1000  /* after a failed check */
#define REBUILD_STALL_MS        10000 /* warn when the reader gets nothing this long */
#define REBUILD_BURST           32    /* records taken from the reader at once */

/* The id of m's key (from its headers, else from its parsed body). Returns 0 or -1
 * (out of memory). */
static int rebuild_id(const rd_kafka_message_t *m, struct enricher_dedupe_id *id)
{
        struct dpayload p;
        int rc;

        if (enricher_dedupe_key_in_headers(m))
                return enricher_dedupe_record_id(m, NULL, id);
        dpayload_parse(&p, NULL, m->payload ? m->payload : "", m->len);
        rc = enricher_dedupe_record_id(m, p.id, id);
        dpayload_free(&p);
        return rc;
}

/* part's set is complete: resume its partition (unless every partition is paused for
 * an outage, whose end resumes it). how: "kept", "empty" or "read". */
static void rebuild_ready(struct enricher *e, struct enricher_part *part,
                          const char *how)
{
        part->state   = ENRICHER_PART_READY;
        part->checked = 1;
        if (!e->paused)
                enricher_parts_pause(e, part->partition, 0);
        enricher_parts_count(e);
        if (how[0] == 'k') {
                atomic_fetch_add(&e->m.rebuild_kept, 1);
                dlog_info(
                    "dedupe set of %s [%d] kept: committed offset %lld unchanged, "
                    "%zu keys",
                    e->cfg.raw_topic, (int)part->partition,
                    (long long)part->next_offset, part->dd.n);
        } else if (how[0] == 'e') {
                atomic_fetch_add(&e->m.rebuild_empty, 1);
                dlog_info(
                    "dedupe set of %s [%d] empty: nothing committed before offset "
                    "%lld",
                    e->cfg.raw_topic, (int)part->partition,
                    (long long)part->next_offset);
        } else {
                int64_t ms = dtime_mono_ms() - part->rb_began_ms;
                atomic_fetch_add(&e->m.rebuild_read, 1);
                atomic_fetch_add(&e->m.rebuild_records, part->rb_records);
                atomic_fetch_add(&e->m.rebuild_ms, (unsigned long long)ms);
                dlog_info("dedupe set of %s [%d] rebuilt from offsets %lld..%lld: %zu "
                          "keys, %llu records read in %lld ms (%.0f records/s)",
                          e->cfg.raw_topic, (int)part->partition,
                          (long long)part->rb_start, (long long)part->rb_end,
                          part->dd.n, (unsigned long long)part->rb_records,
                          (long long)ms,
                          ms > 0 ? (double)part->rb_records * 1000.0 / (double)ms
                                 : (double)part->rb_records);
        }
}

/* The first offset to read for part, committed at committed with metadata meta (len
 * bytes): the first record within the window before the last processed record's
 * timestamp (*timed set), or the partition's first retained record when that is not
 * known. -1 when the broker does not answer (try again later). */
static int64_t rebuild_start(struct enricher *e, const struct enricher_part *part,
                             int64_t committed, const void *meta, size_t len,
                             int *timed)
{
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_resp_err_t err;
        int64_t last_ts, lo = -1, hi = -1, start;

        *timed = !dwire_offset_meta_parse(meta, len, &last_ts);
        if (!*timed) {
                err = rd_kafka_query_watermark_offsets(e->reader, e->cfg.raw_topic,
                                                       part->partition, &lo, &hi,
                                                       REBUILD_CALL_TIMEOUT_MS);
                if (err) {
                        dlog_warn("dedupe rebuild: watermarks of %s [%d]: %s",
                                  e->cfg.raw_topic, (int)part->partition,
                                  rd_kafka_err2str(err));
                        return -1;
                }
                dlog_info("dedupe set of %s [%d]: its committed offset %lld carries no "
                          "timestamp (committed by an older version?): reading all "
                          "that is retained before it",
                          e->cfg.raw_topic, (int)part->partition, (long long)committed);
                return lo;
        }
        l = rd_kafka_topic_partition_list_new(1);
        /* (a negative time would mean "the end" to the broker) */
        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, part->partition)
            ->offset = last_ts > e->window_ms ? last_ts - e->window_ms : 0;
        err   = rd_kafka_offsets_for_times(e->reader, l, REBUILD_CALL_TIMEOUT_MS);
        start = err ? -1 : l->elems[0].offset;
        if (!err && l->elems[0].err)
                err = l->elems[0].err;
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
                dlog_warn("dedupe rebuild: offset for time in %s [%d]: %s",
                          e->cfg.raw_topic, (int)part->partition,
                          rd_kafka_err2str(err));
                return -1;
        }
        /* -1: no record that recent (deleted): nothing of the window is left */
        return start < 0 || start > committed ? committed : start;
}

/* part was (re)assigned and its committed offset is committed (metadata meta, len
 * bytes): keep its set, start it empty, or plan its reading. Returns 0, or -1 to try
 * again later. */
static int rebuild_plan(struct enricher *e, struct enricher_part *part,
                        int64_t committed, const void *meta, size_t len)
{
        int64_t start = 0;
        int timed     = 0;

        if (part->state != ENRICHER_PART_NEW && committed >= 0 &&
            committed == part->next_offset) {
                /* Nobody committed this partition since we held it: its set (complete,
                 * or its reading) carries on. */
                part->checked = 1;
                if (part->state == ENRICHER_PART_READY)
                        rebuild_ready(e, part, "kept");
                return 0;
        }
        if (committed > 0 &&
            (start = rebuild_start(e, part, committed, meta, len, &timed)) < 0)
                return -1;
        enricher_dedupe_clear(&part->dd);
        part->dd.window_ms = e->window_ms;
        part->next_offset  = committed < 0 ? -1 : committed;
        if (committed <= 0 || start >= committed) {
                /* Nothing processed yet, or nothing of it left (retention deleted it
                 * all): the set starts empty. */
                rebuild_ready(e, part, "empty");
                return 0;
        }
        part->rb_start = part->rb_pos = start;
        part->rb_end                  = committed;
        part->rb_records              = 0;
        part->rb_began_ms             = dtime_mono_ms();
        part->state                   = ENRICHER_PART_READING;
        part->checked                 = 1;
        /* Room for every record of the window up front, not a table rebuilt at every
         * doubling (at most 2 million keys: 96 MiB). Not for a whole partition read
         * for an offset without its timestamp: most of that is pruned. */
        if (timed)
                enricher_dedupe_reserve(&part->dd, (size_t)(committed - start < 2000000
                                                                ? committed - start
                                                                : 2000000));
        if (e->reading == part->partition)
                e->reading = -1; /* the reader is somewhere else in it: assign again */
        return 0;
}

/* Marks an entry of a committed-offsets list that is to wait for the next check. */
#define REBUILD_NOT_YET (-2000)

/* Moves the group's consumer on partition to offset. Returns 0, or -1 when that
 * partition's seek failed (e.g. its fetcher is not started yet). */
static int rebuild_seek(struct enricher *e, int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_error_t *error;
        int rc = 0;

        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, partition)->offset =
            offset;
        error = rd_kafka_seek_partitions(e->consumer, l, REBUILD_CALL_TIMEOUT_MS);
        if (error || l->elems[0].err) {
                dlog_warn("%s [%d]: cannot move to %lld yet: %s", e->cfg.raw_topic,
                          (int)partition, (long long)offset,
                          error ? rd_kafka_error_string(error)
                                : rd_kafka_err2str(l->elems[0].err));
                rc = -1;
        }
        if (error)
                rd_kafka_error_destroy(error);
        rd_kafka_topic_partition_list_destroy(l);
        return rc;
}

/* The partitions of l without a committed offset (they expired, or the group is new):
 * unless DURO_PROGRESS_IGNORE, each resumes where the progress topic says, its offset
 * and metadata in l set as if committed, the consumer moved there. Returns 1 when it
 * read the topic, 0 when there was no need, -1 when it could not be read (those
 * partitions wait, marked REBUILD_NOT_YET, for the next check). */
static int rebuild_progress(struct enricher *e, rd_kafka_topic_partition_list_t *l)
{
        int32_t parts[ENRICHER_MAX_LAG];
        int64_t next[ENRICHER_MAX_LAG], ts[ENRICHER_MAX_LAG];
        size_t n = 0;
        int rc;

        if (e->cfg.progress_ignore)
                return 0;
        for (int k = 0; k < l->cnt && n < ENRICHER_MAX_LAG; k++)
                if (!l->elems[k].err && l->elems[k].offset < 0)
                        parts[n++] = l->elems[k].partition;
        if (!n)
                return 0;
        rc = enricher_progress_read(e, parts, n, next, ts) ? -1 : 1;
        for (size_t i = 0; i < n; i++)
                for (int k = 0; k < l->cnt; k++) {
                        rd_kafka_topic_partition_t *tp = &l->elems[k];
                        char meta[DWIRE_OFFSET_META_SIZE];
                        int mlen;
                        if (tp->partition != parts[i])
                                continue;
                        if (rc < 0) {
                                tp->offset = REBUILD_NOT_YET;
                                continue;
                        }
                        if (next[i] < 0)
                                continue; /* nothing known: from the start */
                        dlog_info(
                            "%s [%d] has no committed offset: resuming at %lld, where "
                            "the progress topic %s says this group got to",
                            e->cfg.raw_topic, (int)tp->partition, (long long)next[i],
                            e->cfg.progress_topic);
                        tp->offset = next[i];
                        free(tp->metadata);
                        tp->metadata      = NULL;
                        tp->metadata_size = 0;
                        if (ts[i] >= 0 &&
                            (mlen = dwire_offset_meta_format(meta, ts[i])) > 0 &&
                            (tp->metadata = malloc((size_t)mlen))) {
                                memcpy(tp->metadata, meta, (size_t)mlen);
                                tp->metadata_size = (size_t)mlen;
                        }
                        if (rebuild_seek(e, tp->partition, next[i])) {
                                /* (from the start otherwise: wait, try again) */
                                tp->offset = REBUILD_NOT_YET;
                                rc         = -1;
                        }
                }
        return rc;
}

/* Step 1 for the partitions not checked since their assignment, until deadline
 * (monotonic ms; those left wait for the next step). */
static void rebuild_check(struct enricher *e, int64_t deadline)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
        rd_kafka_resp_err_t err;
        int failed = 0, progress = 0;

        for (size_t i = 0; i < e->nparts; i++)
                if (!e->parts[i].checked)
                        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic,
                                                          e->parts[i].partition);
        if (!l->cnt || dtime_mono_ms() < e->check_after_ms) {
                rd_kafka_topic_partition_list_destroy(l);
                return;
        }
        err = rd_kafka_committed(e->consumer, l, REBUILD_CALL_TIMEOUT_MS);
        if (err)
                dlog_warn("dedupe rebuild: committed offsets of %s: %s",
                          e->cfg.raw_topic, rd_kafka_err2str(err));
        /* (once the progress topic was read, every partition is planned now, slice or
         * not: the next check would read it again) */
        if (!err && (progress = rebuild_progress(e, l)) < 0)
                failed = 1;
        for (int k = 0; !err && k < l->cnt && (progress || dtime_mono_ms() < deadline);
             k++) {
                const rd_kafka_topic_partition_t *tp = &l->elems[k];
                struct enricher_part *part = enricher_part_find(e, tp->partition);
                if (!part || tp->offset == REBUILD_NOT_YET)
                        continue;
                if (tp->err) {
                        dlog_warn("dedupe rebuild: committed offset of %s [%d]: %s",
                                  e->cfg.raw_topic, (int)tp->partition,
                                  rd_kafka_err2str(tp->err));
                        failed = 1;
                        continue;
                }
                failed |= rebuild_plan(e, part, tp->offset, tp->metadata,
                                       tp->metadata_size) != 0;
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (err || failed)
                e->check_after_ms = dtime_mono_ms() + REBUILD_RETRY_MS;
}

/* Assigns the reader to part at its reading position. Returns 0 or -1. */
static int rebuild_assign(struct enricher *e, struct enricher_part *part)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t err;

        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, part->partition)
            ->offset = part->rb_pos;
        err          = rd_kafka_assign(e->reader, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
                dlog_warn("dedupe rebuild: cannot read %s [%d]: %s", e->cfg.raw_topic,
                          (int)part->partition, rd_kafka_err2str(err));
                return -1;
        }
        e->reading = part->partition;
        return 0;
}

/* What one record (or event) of the reader means for part's reading. */
enum rebuild_got {
        REBUILD_SKIP = 0, /* nothing: left over from before, or not a record */
        REBUILD_ADD  = 1, /* its key's id is to be added */
        REBUILD_DONE = 2, /* the committed offset reached */
        REBUILD_FAIL = 3, /* out of memory */
        REBUILD_PASS = 4, /* a snapshot's ping: read past, not added */
};

static enum rebuild_got rebuild_sort(struct enricher *e,
                                     const struct enricher_part *part,
                                     const rd_kafka_message_t *m,
                                     struct enricher_dedupe_id *id)
{
        if (m->partition != part->partition)
                return REBUILD_SKIP; /* left over from a reading before */
        if (m->err) {
                /* The end of the partition before the committed offset: transaction
                 * markers and aborted records fill the gap. */
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return m->offset >= part->rb_pos ? REBUILD_DONE : REBUILD_SKIP;
                dlog_warn("dedupe rebuild: %s [%d]: %s", e->cfg.raw_topic,
                          (int)part->partition, rd_kafka_message_errstr(m));
                return REBUILD_SKIP;
        }
        if (m->offset < part->rb_pos)
                return REBUILD_SKIP;
        if (m->offset >= part->rb_end)
                return REBUILD_DONE;
        if (enricher_dedupe_exempt(m))
                return REBUILD_PASS;
        return rebuild_id(m, id) ? REBUILD_FAIL : REBUILD_ADD;
}

/* Adds the records ms[0..n) to part's set (and destroys them): their ids first, each
 * slot prefetched, then the adds, so that the set's cache misses overlap. Returns
 * REBUILD_DONE when the reading is complete, REBUILD_FAIL, or REBUILD_SKIP. */
static enum rebuild_got rebuild_burst(struct enricher *e, struct enricher_part *part,
                                      rd_kafka_message_t **ms, size_t n)
{
        struct enricher_dedupe_id ids[REBUILD_BURST];
        enum rebuild_got got[REBUILD_BURST], r = REBUILD_SKIP;

        for (size_t i = 0; i < n; i++)
                if ((got[i] = rebuild_sort(e, part, ms[i], &ids[i])) == REBUILD_ADD)
                        enricher_dedupe_prefetch(&part->dd, &ids[i]);
        for (size_t i = 0; i < n; i++) {
                if (r == REBUILD_SKIP && got[i] == REBUILD_ADD) {
                        if (enricher_dedupe_add_id(
                                &part->dd, &ids[i],
                                rd_kafka_message_timestamp(ms[i], NULL))) {
                                r = REBUILD_FAIL;
                        } else {
                                part->rb_records++;
                                part->rb_pos = ms[i]->offset + 1;
                                if (part->rb_pos >= part->rb_end)
                                        r = REBUILD_DONE;
                        }
                } else if (r == REBUILD_SKIP && got[i] == REBUILD_PASS) {
                        part->rb_pos = ms[i]->offset + 1;
                        if (part->rb_pos >= part->rb_end)
                                r = REBUILD_DONE;
                } else if (r == REBUILD_SKIP && got[i] != REBUILD_SKIP) {
                        r = got[i];
                }
                rd_kafka_message_destroy(ms[i]);
        }
        return r;
}

/* Nothing came from the reader: a warning when that has lasted REBUILD_STALL_MS. */
static void rebuild_idle(struct enricher *e, struct enricher_part *part, int64_t now)
{
        if (now - part->rb_heard_ms < REBUILD_STALL_MS)
                return;
        dlog_warn("dedupe rebuild: nothing from %s [%d] at offset %lld for %d ms",
                  e->cfg.raw_topic, (int)part->partition, (long long)part->rb_pos,
                  REBUILD_STALL_MS);
        part->rb_heard_ms = now;
}

/* Step 2 for part until deadline (monotonic ms), in bursts of what the reader holds
 * already (the clock read once a burst). Returns 0, or -1 when the reader cannot be
 * assigned (the next step tries again) or is out of memory (the reading starts again
 * later). */
static int rebuild_read(struct enricher *e, struct enricher_part *part,
                        int64_t deadline)
{
        rd_kafka_message_t *ms[REBUILD_BURST];
        int64_t now = dtime_mono_ms();

        if (e->reading != part->partition) {
                if (rebuild_assign(e, part))
                        return -1;
                part->rb_heard_ms = now;
        }
        while (now < deadline) {
                size_t n = 0;
                enum rebuild_got r;
                while (n < REBUILD_BURST &&
                       (ms[n] = rd_kafka_consumer_poll(e->reader, 0)) != NULL)
                        n++;
                now = dtime_mono_ms();
                if (!n && now < deadline &&
                    (ms[0] = rd_kafka_consumer_poll(e->reader, (int)(deadline - now))))
                        n = 1;
                if (!n) {
                        rebuild_idle(e, part, now = dtime_mono_ms());
                        continue;
                }
                part->rb_heard_ms = now;
                r                 = rebuild_burst(e, part, ms, n);
                if (r == REBUILD_FAIL) {
                        dlog_error("dedupe rebuild of %s [%d]: out of memory",
                                   e->cfg.raw_topic, (int)part->partition);
                        part->state   = ENRICHER_PART_NEW;
                        part->checked = 0;
                        return -1;
                }
                if (r == REBUILD_DONE) {
                        rebuild_ready(e, part, "read");
                        break;
                }
        }
        return 0;
}

int enricher_rebuild_step(struct enricher *e, long budget_ms)
{
        int64_t deadline = dtime_mono_ms() + budget_ms;
        struct enricher_part *part;

        rebuild_check(e, deadline);
        for (;;) {
                part = NULL;
                for (size_t i = 0; i < e->nparts && !part; i++)
                        if (e->parts[i].checked &&
                            e->parts[i].state == ENRICHER_PART_READING)
                                part = &e->parts[i];
                if (!part) {
                        enricher_rebuild_stop(e);
                        return 0;
                }
                if (dtime_mono_ms() >= deadline)
                        return 1;
                if (rebuild_read(e, part, deadline))
                        return 0;
        }
}

void enricher_rebuild_stop(struct enricher *e)
{
        if (e->reading < 0)
                return;
        rd_kafka_assign(e->reader, NULL);
        e->reading = -1;
}
