/* enricher_batch.c - one cycle per batch (DESIGN §4):
 *   1. take up to DURO_BATCH_MAX records (or DURO_BATCH_WAIT_MS); parse each; drop
 *      duplicates (keys already committed, or seen earlier in the batch); route
 *      invalid ones to the DLQ; group the ids to pull by kind;
 *   2. pull from GraphQL with no transaction open (pausing the partitions, but staying
 *      in the group, while the API is down);
 *   3. one short transaction: outputs and DLQ records in offset order, the offsets
 *      (first unprocessed offset per partition, tracked here), commit;
 *   4. only after the commit, add the batch's keys to the dedupe set.
 * An abortable error aborts, rewinds to the committed positions and redoes the batch;
 * a record that a topic rejects for good is sent to the DLQ on the redo. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkafka.h"
#include "dlog.h"
#include "dpayload.h"
#include "dtime.h"
#include "dwire.h"

#define BATCH_TOPIC_RECHECK_MS 5000

struct batch {
        struct enricher_rec *recs;
        size_t n, cap;
        struct enricher_item *items;
        size_t nitems, items_cap;
        size_t *slots;               /* hash index of items: index + 1, 0 when free */
        size_t nslots;               /* a power of two, at least twice nitems */
        struct enricher_dedupe seen; /* keys first seen in this batch */
        /* to commit: first unprocessed offset per partition, fixed before the next
         * batch is taken */
        rd_kafka_topic_partition_list_t *offsets;
        struct enricher_pull *pull; /* while the pull runs */
        int64_t pull_start_ms;
        pthread_t thread; /* pulling ahead, while the previous batch commits */
        int threaded;
        atomic_int stop;
        enum enricher_pull_result pulled; /* the thread's last result */
        int64_t t_produced, t_offsets;    /* monotonic ms, for the debug timing line */
        int64_t first_ms; /* monotonic ms when its first record was taken */
        int sorted;       /* classified and its pull begun (else still being taken) */
};

struct enricher_part *enricher_part_find(struct enricher *e, int32_t partition)
{
        for (size_t i = 0; i < e->nparts; i++)
                if (e->parts[i].partition == partition)
                        return &e->parts[i];
        return NULL;
}

struct enricher_part *enricher_part_get(struct enricher *e, int32_t partition)
{
        struct enricher_part *np;

        for (size_t i = 0; i < e->nparts; i++)
                if (e->parts[i].partition == partition)
                        return &e->parts[i];
        np = realloc(e->parts, (e->nparts + 1) * sizeof(*np));
        if (!np)
                return NULL;
        e->parts = np;
        memset(&e->parts[e->nparts], 0, sizeof(*np));
        e->parts[e->nparts].partition   = partition;
        e->parts[e->nparts].next_offset = -1;
        enricher_dedupe_clear(&e->parts[e->nparts].dd);
        e->parts[e->nparts].dd.window_ms = e->window_ms;
        return &e->parts[e->nparts++];
}

static void batch_clear_parts(struct enricher *e)
{
        for (size_t i = 0; i < e->nparts; i++)
                enricher_dedupe_clear(&e->parts[i].dd);
        free(e->parts);
        e->parts  = NULL;
        e->nparts = 0;
}

void enricher_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        struct enricher *e = opaque;

        e->rebalanced = 1;
        e->paused     = 0;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                batch_clear_parts(e);
                for (int i = 0; i < parts->cnt; i++)
                        enricher_part_get(e, parts->elems[i].partition);
                dlog_info("assigned %d partition(s) of %s", parts->cnt,
                          e->cfg.raw_topic);
                rd_kafka_assign(rk, parts);
        } else {
                dlog_info("revoked %d partition(s)", parts->cnt);
                batch_clear_parts(e);
                rd_kafka_assign(rk, NULL);
        }
}

static struct batch *batch_new(void)
{
        struct batch *b = calloc(1, sizeof(*b));

        if (!b)
                return NULL;
        enricher_dedupe_clear(&b->seen);
        b->seen.window_ms = INT64_MAX / 4;
        atomic_init(&b->stop, 0);
        return b;
}

/* Stops a pull running ahead and waits for its thread. */
static void batch_join(struct batch *b)
{
        if (!b->threaded)
                return;
        atomic_store(&b->stop, 1);
        pthread_join(b->thread, NULL);
        b->threaded = 0;
}

/* Releases the records taken so far (the batch stays usable, empty). */
static void batch_drop_recs(struct batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                if (r->msg)
                        rd_kafka_message_destroy(r->msg);
                if (r->payload)
                        json_decref(r->payload);
                free(r->dedupe_key);
                free(r->topic);
        }
        b->n = 0;
}

static void batch_free(struct batch *b)
{
        if (!b)
                return;
        batch_join(b);
        enricher_pull_free(b->pull);
        batch_drop_recs(b);
        for (size_t i = 0; i < b->nitems; i++) {
                free(b->items[i].id);
                free(b->items[i].doc_text);
                if (b->items[i].doc)
                        json_decref(b->items[i].doc);
        }
        enricher_dedupe_clear(&b->seen);
        free(b->slots);
        if (b->offsets)
                rd_kafka_topic_partition_list_destroy(b->offsets);
        free(b->recs);
        free(b->items);
        free(b);
}

/* Seeks every partition of the batch that is still assigned back to the first offset
 * the batch holds for it, so that nothing taken but not committed is skipped. */
static void batch_rewind(struct enricher *e, const struct batch *b)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
        rd_kafka_error_t *error;

        for (size_t i = 0; i < b->n; i++) {
                const rd_kafka_message_t *m = b->recs[i].msg;
                int found                   = 0;
                for (int k = 0; k < l->cnt; k++)
                        found |= l->elems[k].partition == m->partition;
                if (!found && enricher_part_find(e, m->partition))
                        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic,
                                                          m->partition)
                            ->offset = m->offset;
        }
        if (l->cnt) {
                error = rd_kafka_seek_partitions(e->consumer, l, -1);
                if (error) {
                        dlog_warn("seek back failed: %s", rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                }
        }
        rd_kafka_topic_partition_list_destroy(l);
}

static int batch_rebuild_all(struct enricher *e)
{
        for (size_t i = 0; i < e->nparts; i++)
                if (!e->parts[i].rebuilt && enricher_dedupe_rebuild(e, &e->parts[i]))
                        return -1;
        return 0;
}

/* Takes the batch: waits up to DURO_BATCH_WAIT_MS to fill it, or, with nowait, takes
 * only what the consumer already holds. Returns the number of records, 0 when none (or
 * the records taken were dropped by a rebalance). */
static size_t batch_collect(struct enricher *e, struct batch *b, int nowait)
{
        e->rebalanced = 0;
        while (b->n < (size_t)e->cfg.batch_max && atomic_load(&e->run)) {
                long wait = nowait ? 0 : 100;
                rd_kafka_message_t *m;
                if (b->n && !nowait) {
                        wait = (long)(b->first_ms + e->cfg.batch_wait_ms -
                                      dtime_mono_ms());
                        if (wait <= 0)
                                break;
                }
                m = rd_kafka_consumer_poll(e->consumer, (int)wait);
                if (e->rebalanced) {
                        /* Whatever was taken before belongs to the old assignment. */
                        batch_drop_recs(b);
                        if (m && !m->err) {
                                rd_kafka_topic_partition_list_t *l =
                                    rd_kafka_topic_partition_list_new(1);
                                rd_kafka_error_t *error;
                                rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic,
                                                                  m->partition)
                                    ->offset = m->offset;
                                error = rd_kafka_seek_partitions(e->consumer, l, -1);
                                if (error)
                                        rd_kafka_error_destroy(error);
                                rd_kafka_topic_partition_list_destroy(l);
                        }
                        if (m)
                                rd_kafka_message_destroy(m);
                        return 0;
                }
                if (!m) {
                        if (!b->n || nowait)
                                return b->n;
                        continue;
                }
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                dlog_warn("consumer: %s", rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        if (!b->n || nowait)
                                return b->n;
                        continue;
                }
                if (b->n == b->cap) {
                        size_t ncap             = b->cap ? b->cap * 2 : 64;
                        struct enricher_rec *nr = realloc(b->recs, ncap * sizeof(*nr));
                        if (!nr) {
                                /* m is the next record of its partition: read it again
                                 */
                                struct enricher_rec r1 = {.msg = m};
                                struct batch one       = {.recs = &r1, .n = 1};
                                batch_rewind(e, b);
                                batch_rewind(e, &one);
                                rd_kafka_message_destroy(m);
                                batch_drop_recs(b);
                                return 0;
                        }
                        b->recs = nr;
                        b->cap  = ncap;
                }
                memset(&b->recs[b->n], 0, sizeof(b->recs[0]));
                b->recs[b->n++].msg = m;
                if (b->n == 1)
                        b->first_ms = dtime_mono_ms();
        }
        return b->n;
}

static size_t batch_item_hash(enum dwire_kind kind, const char *id)
{
        size_t h = 1469598103934665603ULL ^ (size_t)kind; /* FNV-1a */

        for (; *id; id++)
                h = (h ^ (unsigned char)*id) * 1099511628211ULL;
        return h;
}

/* Doubles the hash index and puts every item back in it. Returns 0 or -1. */
static int batch_item_rehash(struct batch *b)
{
        size_t n     = b->nslots ? b->nslots * 2 : 64;
        size_t *news = calloc(n, sizeof(*news));

        if (!news)
                return -1;
        for (size_t i = 0; i < b->nitems; i++) {
                size_t k = batch_item_hash(b->items[i].kind, b->items[i].id) & (n - 1);
                while (news[k])
                        k = (k + 1) & (n - 1);
                news[k] = i + 1;
        }
        free(b->slots);
        b->slots  = news;
        b->nslots = n;
        return 0;
}

/* The index of the batch's item for (kind, id), added when new; SIZE_MAX when out of
 * memory. */
static size_t batch_item(struct batch *b, enum dwire_kind kind, const char *id)
{
        struct enricher_item *it;
        size_t k;

        if (2 * (b->nitems + 1) > b->nslots && batch_item_rehash(b))
                return SIZE_MAX;
        k = batch_item_hash(kind, id) & (b->nslots - 1);
        for (; b->slots[k]; k = (k + 1) & (b->nslots - 1)) {
                it = &b->items[b->slots[k] - 1];
                if (it->kind == kind && !strcmp(it->id, id))
                        return b->slots[k] - 1;
        }
        if (b->nitems == b->items_cap) {
                size_t ncap = b->items_cap ? b->items_cap * 2 : 64;
                it          = realloc(b->items, ncap * sizeof(*it));
                if (!it)
                        return SIZE_MAX;
                b->items     = it;
                b->items_cap = ncap;
        }
        it = &b->items[b->nitems];
        memset(it, 0, sizeof(*it));
        it->kind = kind;
        it->id   = strdup(id);
        if (!it->id)
                return SIZE_MAX;
        b->slots[k] = ++b->nitems;
        return b->nitems - 1;
}

static void batch_dlq(struct enricher_rec *r, enum dwire_dlq_class cls,
                      const char *message, int attempts)
{
        r->action    = ENRICHER_ACT_DLQ;
        r->dlq_class = cls;
        r->attempts  = attempts;
        snprintf(r->dlq_message, sizeof(r->dlq_message), "%s", message);
}

static int batch_forced(struct enricher *e, const rd_kafka_message_t *m, char *msg,
                        size_t size)
{
        for (size_t i = 0; i < e->nforce; i++)
                if (e->force[i].partition == m->partition &&
                    e->force[i].offset == m->offset) {
                        snprintf(msg, size, "%s", e->force[i].message);
                        return 1;
                }
        return 0;
}

static int batch_ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && !strcmp(s + n - k, suffix);
}

/* Step 1: parse, dedupe, route. prev, when not NULL, is the batch before this one,
 * whose transaction has not committed yet: its keys count as seen (if it aborts, this
 * batch is dropped too). Item pointers are fixed up after all items exist. */
static int batch_classify(struct enricher *e, struct batch *b, const struct batch *prev)
{
        struct enricher_dedupe *seen = &b->seen;
        int rc                       = 0;

        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r     = &b->recs[i];
                struct enricher_part *part = enricher_part_find(e, r->msg->partition);
                char hbuf[256], forced[200];
                const char *invalid =
                    dkafka_header(r->msg, DWIRE_H_INVALID, hbuf, sizeof(hbuf));
                struct dpayload p;
                size_t item_index;

                dpayload_parse(&p, r->msg->payload ? r->msg->payload : "", r->msg->len);
                r->payload    = p.root;
                p.root        = NULL;
                r->event_id   = p.id;
                r->event      = p.event;
                r->webhook_id = p.webhook_id;
                r->created_at = p.created_at;
                r->dedupe_key = enricher_dedupe_key(r->msg, p.id);
                if (!r->dedupe_key || !part) {
                        rc = -1;
                        break;
                }
                enricher_dedupe_id_of(r->dedupe_key, &r->dedupe_id);
                atomic_fetch_add(&e->m.consumed, 1);
                if (enricher_dedupe_has_id(&part->dd, &r->dedupe_id) ||
                    enricher_dedupe_has_id(seen, &r->dedupe_id) ||
                    (prev && enricher_dedupe_has_id(&prev->seen, &r->dedupe_id))) {
                        r->action = ENRICHER_ACT_DUPLICATE;
                        continue;
                }
                enricher_dedupe_add_id(seen, &r->dedupe_id, 0);
                if (batch_forced(e, r->msg, forced, sizeof(forced))) {
                        batch_dlq(r, DWIRE_DLQ_PRODUCE_REJECTED, forced, 1);
                        continue;
                }
                if (invalid || !p.valid) {
                        batch_dlq(r, DWIRE_DLQ_INVALID_PAYLOAD,
                                  invalid ? invalid : p.reason, 1);
                        continue;
                }
                r->action = ENRICHER_ACT_OUTPUT;
                r->kind   = p.kind;
                if (r->kind == DWIRE_KIND_UNKNOWN) {
                        r->status      = ENRICHER_ST_UNSUPPORTED;
                        r->resource_id = p.item_id ? p.item_id : p.change_order_id;
                        continue;
                }
                r->resource_id =
                    r->kind == DWIRE_KIND_ITEM ? p.item_id : p.change_order_id;
                if (batch_ends_with(r->event, "_DELETE")) {
                        r->status = ENRICHER_ST_DELETED;
                        continue;
                }
                item_index = batch_item(b, r->kind, r->resource_id);
                if (item_index == SIZE_MAX) {
                        rc = -1;
                        break;
                }
                r->item_index = item_index;
                if (r->kind == DWIRE_KIND_CHANGE_ORDER ||
                    !strcmp(r->event, "ITEM_CREATE") ||
                    !strcmp(r->event, "ITEM_UPDATE"))
                        b->items[item_index].grace = 1;
                r->status = ENRICHER_ST_PENDING;
                /* the item pointer is set after the pull (items may move) */
        }
        return rc;
}

/* After the pull: copy each item's outcome to its records. */
static void batch_apply_items(struct batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                if (r->action != ENRICHER_ACT_OUTPUT ||
                    r->status != ENRICHER_ST_PENDING)
                        continue;
                r->item = &b->items[r->item_index];
                if (r->item->status == ENRICHER_ST_ERROR)
                        batch_dlq(r, DWIRE_DLQ_RESOURCE_ERROR, r->item->error,
                                  r->item->attempts);
                else
                        r->status = r->item->status;
        }
}

static void batch_pause(struct enricher *e, int pause)
{
        rd_kafka_topic_partition_list_t *l = NULL;

        if (rd_kafka_assignment(e->consumer, &l) || !l)
                return;
        if (pause)
                rd_kafka_pause_partitions(e->consumer, l);
        else
                rd_kafka_resume_partitions(e->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
        e->paused = pause;
}

/* For each partition of the batch, the offset just after its last record (a new
 * list, the caller destroys it). */
static rd_kafka_topic_partition_list_t *batch_next_offsets(const struct enricher *e,
                                                           const struct batch *b)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);

        for (size_t i = 0; i < b->n; i++) {
                const rd_kafka_message_t *m    = b->recs[i].msg;
                rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                    l, e->cfg.raw_topic, m->partition);
                if (!tp)
                        tp = rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic,
                                                               m->partition);
                if (m->offset + 1 > tp->offset)
                        tp->offset = m->offset + 1;
        }
        return l;
}

/* Seeks each partition of the batch to just after its last record (after a pause,
 * which discards prefetched records). */
static void batch_seek_after(struct enricher *e, const struct batch *b)
{
        rd_kafka_topic_partition_list_t *l = batch_next_offsets(e, b);
        rd_kafka_error_t *error;

        if (l->cnt && (error = rd_kafka_seek_partitions(e->consumer, l, -1))) {
                dlog_warn("seek after pause failed: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(l);
}

/* Step 2 begins: the pull's state (none when the batch has nothing to pull). */
static int batch_pull_begin(struct enricher *e, struct batch *b)
{
        b->pull_start_ms = dtime_mono_ms();
        if (!b->nitems)
                return 0;
        b->pull = enricher_pull_new(e, b->items, b->nitems);
        return b->pull ? 0 : -1;
}

/* Pulling ahead, on its own thread while the previous batch's transaction runs: only
 * GraphQL, never the consumer. Gives up after 5 s, on an outage, or when stopped; the
 * main thread then carries on (batch_pull_finish). */
static void *batch_pull_thread(void *arg)
{
        struct batch *b             = arg;
        enum enricher_pull_result r = ENRICHER_PULL_DONE;

        while (b->pull && !atomic_load(&b->stop)) {
                r = enricher_pull_step(b->pull, 200);
                if (r != ENRICHER_PULL_AGAIN ||
                    dtime_mono_ms() - b->pull_start_ms > 5000)
                        break;
        }
        b->pulled = r;
        return NULL;
}

/* Step 2 ends. Returns 0 when every item is resolved, -1 when the batch must be
 * dropped (shutdown or rebalance while waiting). */
static int batch_pull_finish(struct enricher *e, struct batch *b)
{
        struct enricher_pull *p = b->pull;
        int rc                  = 0;

        batch_join(b);
        if (!p)
                return 0;
        e->rebalanced = 0;
        for (;;) {
                enum enricher_pull_result r = enricher_pull_step(p, 200);
                if (r == ENRICHER_PULL_DONE)
                        break;
                if (!atomic_load(&e->run)) {
                        rc = -1;
                        break;
                }
                if (r == ENRICHER_PULL_OUTAGE || r == ENRICHER_PULL_AUTH) {
                        char why[300];
                        snprintf(why, sizeof(why), "%s: %s",
                                 r == ENRICHER_PULL_AUTH ? "Duro API refuses the key"
                                                         : "Duro API unavailable",
                                 enricher_pull_error(p));
                        enricher_set_not_ready(e, why);
                }
                if (r != ENRICHER_PULL_AGAIN ||
                    dtime_mono_ms() - b->pull_start_ms > 5000) {
                        rd_kafka_message_t *m;
                        if (!e->paused)
                                batch_pause(e, 1);
                        /* Stay in the group: serve its callbacks. */
                        m = rd_kafka_consumer_poll(e->consumer, 0);
                        if (m)
                                rd_kafka_message_destroy(m);
                        if (e->rebalanced) {
                                rc = -1;
                                break;
                        }
                        enricher_update_lag(e);
                        if (dsecrets_reload(e->api_key,
                                            atomic_exchange(&e->reload_key, 0), NULL,
                                            0) > 0) {
                                dlog_info("Duro API key reloaded");
                                enricher_pull_retry(p);
                        }
                }
        }
        enricher_pull_free(p);
        b->pull = NULL;
        if (e->paused && !e->rebalanced) {
                batch_pause(e, 0);
                batch_seek_after(e, b);
        }
        if (rc == 0)
                enricher_set_ready(e);
        return rc;
}

/* 1 when the output topic exists (cached: found ones for good, missing ones for a few
 * seconds). */
static int batch_topic_exists(struct enricher *e, const char *topic)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        size_t i;
        int exists;

        for (i = 0; i < e->ntopics; i++)
                if (!strcmp(e->topics[i].topic, topic))
                        break;
        if (i < e->ntopics &&
            (e->topics[i].exists ||
             dtime_mono_ms() - e->topics[i].checked_ms < BATCH_TOPIC_RECHECK_MS))
                return e->topics[i].exists;
        rkt    = rd_kafka_topic_new(e->producer, topic, NULL);
        exists = 0;
        if (rkt && !rd_kafka_metadata(e->producer, 0, rkt, &md, 5000)) {
                exists = md->topic_cnt == 1 && !md->topics[0].err &&
                         md->topics[0].partition_cnt > 0;
                rd_kafka_metadata_destroy(md);
        } else {
                /* Kafka did not answer: let the transaction find out. */
                exists = 1;
        }
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (!exists && e->cfg.topics.create) {
                char err[300];
                if (enricher_create_topic(e, topic, 0, err, sizeof(err)))
                        dlog_error("%s", err);
                else
                        exists = 1;
        }
        if (i == e->ntopics && i < sizeof(e->topics) / sizeof(e->topics[0])) {
                e->topics[i].topic = strdup(topic);
                if (!e->topics[i].topic)
                        return exists;
                e->ntopics++;
        }
        if (i < e->ntopics) {
                e->topics[i].exists     = exists;
                e->topics[i].checked_ms = dtime_mono_ms();
        }
        if (!exists)
                dlog_warn("output topic %s does not exist", topic);
        return exists;
}

static void batch_route_topics(struct enricher *e, struct batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                char why[300];
                if (r->action != ENRICHER_ACT_OUTPUT)
                        continue;
                free(r->topic);
                r->topic = enricher_out_topic(e->cfg.topic_template,
                                              r->event ? r->event : "unknown");
                if (r->topic && batch_topic_exists(e, r->topic))
                        continue;
                snprintf(why, sizeof(why), "output topic %s does not exist",
                         r->topic ? r->topic : "?");
                batch_dlq(r, DWIRE_DLQ_NO_TOPIC, why, 1);
        }
}

static int batch_is_permanent(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
                return 1;
        default:
                return 0;
        }
}

static int batch_force_add(struct enricher *e, const struct enricher_rec *r,
                           rd_kafka_resp_err_t err)
{
        struct enricher_force *nf;

        if (r->action == ENRICHER_ACT_DLQ) {
                dlog_error("the DLQ topic %s rejects records: %s", e->cfg.dlq_topic,
                           rd_kafka_err2str(err));
                return -1;
        }
        nf = realloc(e->force, (e->nforce + 1) * sizeof(*nf));
        if (!nf)
                return -1;
        e->force                = nf;
        nf[e->nforce].partition = r->msg->partition;
        nf[e->nforce].offset    = r->msg->offset;
        snprintf(nf[e->nforce].message, sizeof(nf[0].message), "%s: %s",
                 r->topic ? r->topic : "?", rd_kafka_err2str(err));
        e->nforce++;
        dlog_warn("%s [%d] at %lld: %s rejects it (%s); it goes to the DLQ",
                  e->cfg.raw_topic, (int)r->msg->partition, (long long)r->msg->offset,
                  r->topic ? r->topic : "?", rd_kafka_err2str(err));
        return 0;
}

static void batch_hdr(rd_kafka_headers_t *h, const char *name, const char *value)
{
        if (value)
                rd_kafka_header_add(h, name, -1, value, -1);
}

/* Produces one record of the transaction. Returns 0, or the immediate error. */
static rd_kafka_resp_err_t batch_produce(struct enricher *e, struct enricher_rec *r)
{
        rd_kafka_headers_t *src = NULL;
        struct dkafka_rec out   = {.opaque = r};
        rd_kafka_resp_err_t err;
        char num[32];

        if (r->action == ENRICHER_ACT_DLQ) {
                rd_kafka_headers_t *h = rd_kafka_message_headers(r->msg, &src)
                                            ? rd_kafka_headers_new(8)
                                            : rd_kafka_headers_copy(src);
                batch_hdr(h, DWIRE_H_ERROR_CLASS, dwire_dlq_class_name(r->dlq_class));
                batch_hdr(h, DWIRE_H_ERROR_MESSAGE, r->dlq_message);
                snprintf(num, sizeof(num), "%d", r->attempts);
                batch_hdr(h, DWIRE_H_ATTEMPTS, num);
                batch_hdr(h, DWIRE_H_SOURCE_TOPIC, e->cfg.raw_topic);
                snprintf(num, sizeof(num), "%d", (int)r->msg->partition);
                batch_hdr(h, DWIRE_H_SOURCE_PARTITION, num);
                snprintf(num, sizeof(num), "%lld", (long long)r->msg->offset);
                batch_hdr(h, DWIRE_H_SOURCE_OFFSET, num);
                /* the DLQ's value is the raw record's, copied */
                out.topic     = e->cfg.dlq_topic;
                out.value     = r->msg->payload;
                out.value_len = r->msg->len;
                out.key       = r->msg->key;
                out.key_len   = r->msg->key_len;
                out.headers   = h;
                out.msgflags  = RD_KAFKA_MSG_F_COPY;
        } else {
                out.value = enricher_out_value(e, r, &out.value_len);
                if (!out.value) {
                        dlog_error("out of memory building the output of %s [%d] at "
                                   "offset %lld",
                                   e->cfg.raw_topic, (int)r->msg->partition,
                                   (long long)r->msg->offset);
                        return RD_KAFKA_RESP_ERR__FAIL;
                }
                out.headers = rd_kafka_headers_new(4);
                batch_hdr(out.headers, DWIRE_H_IDEMPOTENCY_KEY,
                          r->event_id ? r->event_id : r->dedupe_key);
                batch_hdr(out.headers, DWIRE_H_EVENT, r->event);
                batch_hdr(out.headers, DWIRE_H_EVENT_ID, r->event_id);
                batch_hdr(out.headers, DWIRE_H_CONTENT_TYPE, DWIRE_CONTENT_JSON);
                out.topic = r->topic;
                if (r->kind != DWIRE_KIND_UNKNOWN && r->resource_id) {
                        out.key     = r->resource_id;
                        out.key_len = strlen(r->resource_id);
                } else {
                        out.key     = r->msg->key;
                        out.key_len = r->msg->key_len;
                }
                /* librdkafka takes the value built here (frees it once delivered) */
                out.msgflags = RD_KAFKA_MSG_F_FREE;
        }
        err = dkafka_produce(e->producer, &out, -1);
        if (err) {
                rd_kafka_headers_destroy(out.headers);
                if (out.msgflags == RD_KAFKA_MSG_F_FREE)
                        free(out.value);
        }
        return err;
}

void enricher_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        struct enricher_rec *r = msg->_private;
        (void)rk;
        (void)opaque;

        if (!r || !msg->err)
                return;
        if (msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
            msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
                return;
        r->failed     = 1;
        r->failed_err = msg->err;
}

/* Runs a transactional call with the watchdog armed. */
#define TXN_CALL(e, call) (atomic_store(&(e)->txn_call_since, dtime_mono_ms()), (call))

static rd_kafka_error_t *batch_txn_done(struct enricher *e, rd_kafka_error_t *error)
{
        atomic_store(&e->txn_call_since, 0);
        return error;
}

enum txn_result { TXN_COMMITTED = 0, TXN_REDO = 1, TXN_FATAL = -1 };

static enum txn_result batch_abort(struct enricher *e, const char *why)
{
        rd_kafka_error_t *error;

        dlog_warn("aborting the transaction: %s", why);
        for (;;) {
                error = batch_txn_done(
                    e, TXN_CALL(e, rd_kafka_abort_transaction(e->producer, -1)));
                if (!error)
                        break;
                if (rd_kafka_error_is_retriable(error)) {
                        rd_kafka_error_destroy(error);
                        continue;
                }
                dlog_error("abort_transaction: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return TXN_FATAL;
        }
        atomic_fetch_add(&e->m.txn_aborted, 1);
        return TXN_REDO;
}

/* Classifies an error of a transactional call. */
static enum txn_result batch_txn_error(struct enricher *e, rd_kafka_error_t *error,
                                       const char *call)
{
        char why[400];
        enum txn_result r;

        snprintf(why, sizeof(why), "%s: %s", call, rd_kafka_error_string(error));
        if (rd_kafka_error_txn_requires_abort(error)) {
                rd_kafka_error_destroy(error);
                return batch_abort(e, why);
        }
        r = TXN_FATAL;
        dlog_error("fatal transactional error: %s", why);
        rd_kafka_error_destroy(error);
        return r;
}

/* The offsets the batch's transaction commits: the first unprocessed offset per
 * partition. Called before the next batch is taken: every record delivered so far is
 * then in this batch (or committed), so the consumer's position can only be ahead of
 * the last one by control records (transaction markers, e.g. from a redrive), and
 * committing past them keeps the lag honest. */
static void batch_offsets(struct enricher *e, struct batch *b)
{
        rd_kafka_topic_partition_list_t *offsets = batch_next_offsets(e, b);
        rd_kafka_topic_partition_list_t *pos;

        pos = rd_kafka_topic_partition_list_copy(offsets);
        if (!rd_kafka_position(e->consumer, pos))
                for (int k = 0; k < pos->cnt; k++)
                        if (pos->elems[k].offset > offsets->elems[k].offset)
                                offsets->elems[k].offset = pos->elems[k].offset;
        rd_kafka_topic_partition_list_destroy(pos);
        b->offsets = offsets;
}

/* Step 3. */
static enum txn_result batch_transaction(struct enricher *e, struct batch *b)
{
        rd_kafka_topic_partition_list_t *offsets;
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *error;

        error = batch_txn_done(e, TXN_CALL(e, rd_kafka_begin_transaction(e->producer)));
        if (error)
                return batch_txn_error(e, error, "begin_transaction");
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                rd_kafka_resp_err_t err;
                if (r->action == ENRICHER_ACT_DUPLICATE)
                        continue;
                r->failed = 0;
                err       = batch_produce(e, r);
                if (err) {
                        if (batch_is_permanent(err) && batch_force_add(e, r, err))
                                return TXN_FATAL;
                        return batch_abort(e, rd_kafka_err2str(err));
                }
        }
        b->t_produced = dtime_mono_ms();
        offsets       = b->offsets;
        cgmd          = rd_kafka_consumer_group_metadata(e->consumer);
        for (;;) {
                error =
                    batch_txn_done(e, TXN_CALL(e, rd_kafka_send_offsets_to_transaction(
                                                      e->producer, offsets, cgmd, -1)));
                if (!error || !rd_kafka_error_is_retriable(error))
                        break;
                rd_kafka_error_destroy(error);
        }
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        if (error)
                return batch_txn_error(e, error, "send_offsets_to_transaction");
        b->t_offsets = dtime_mono_ms();
        for (;;) {
                error = batch_txn_done(
                    e, TXN_CALL(e, rd_kafka_commit_transaction(e->producer, -1)));
                if (!error || !rd_kafka_error_is_retriable(error))
                        break;
                rd_kafka_error_destroy(error);
        }
        if (error) {
                /* A record a topic rejected for good goes to the DLQ on the redo. */
                for (size_t i = 0; i < b->n; i++)
                        if (b->recs[i].failed &&
                            batch_is_permanent(b->recs[i].failed_err) &&
                            batch_force_add(e, &b->recs[i], b->recs[i].failed_err)) {
                                rd_kafka_error_destroy(error);
                                return TXN_FATAL;
                        }
                return batch_txn_error(e, error, "commit_transaction");
        }
        atomic_fetch_add(&e->m.txn_committed, 1);
        return TXN_COMMITTED;
}

/* Step 4, and the bookkeeping of a committed batch. */
static void batch_committed(struct enricher *e, struct batch *b)
{
        int64_t now = dtime_now_ms();
        size_t size = 0;

        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r     = &b->recs[i];
                struct enricher_part *part = enricher_part_find(e, r->msg->partition);
                int64_t ts                 = rd_kafka_message_timestamp(r->msg, NULL);
                if (!part)
                        continue;
                enricher_dedupe_add_id(&part->dd, &r->dedupe_id, ts);
                if (r->msg->offset + 1 > part->next_offset)
                        part->next_offset = r->msg->offset + 1;
                switch (r->action) {
                case ENRICHER_ACT_DUPLICATE:
                        atomic_fetch_add(&e->m.deduplicated, 1);
                        break;
                case ENRICHER_ACT_OUTPUT:
                        enricher_metrics_produced(&e->m, r->topic);
                        if (now > ts)
                                dmetrics_hist_observe_us(
                                    &e->m.event_latency,
                                    (unsigned long long)(now - ts) * 1000ULL);
                        break;
                case ENRICHER_ACT_DLQ:
                        atomic_fetch_add(&e->m.dlq[r->dlq_class], 1);
                        dlog_info("%s [%d] at %lld to the DLQ (%s): %s",
                                  e->cfg.raw_topic, (int)r->msg->partition,
                                  (long long)r->msg->offset,
                                  dwire_dlq_class_name(r->dlq_class), r->dlq_message);
                        break;
                }
                /* Forced DLQ entries are done with once committed. */
                for (size_t k = 0; k < e->nforce; k++)
                        if (e->force[k].partition == r->msg->partition &&
                            e->force[k].offset == r->msg->offset)
                                e->force[k] = e->force[--e->nforce];
        }
        for (size_t i = 0; i < e->nparts; i++)
                size += e->parts[i].dd.n;
        atomic_store(&e->m.dedupe_size, size);
        dmetrics_hist_observe_us(&e->m.batch_size,
                                 (unsigned long long)b->n * 1000000ULL);
}

/* Takes a batch the plain way: waits to fill it (up to DURO_BATCH_MAX records, or
 * DURO_BATCH_WAIT_MS from its first record), classifies it and begins its pull. b, when
 * not NULL, is a batch begun by batch_take_ahead, filled further here. NULL when there
 * is none or it was dropped. */
static struct batch *batch_take(struct enricher *e, struct batch *b)
{
        if (!b && batch_rebuild_all(e)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(e->consumer, 1000);
                if (m) {
                        /* Not processed: put it back. */
                        struct enricher_rec r1 = {.msg = m};
                        struct batch one       = {.recs = &r1, .n = m->err ? 0 : 1};
                        batch_rewind(e, &one);
                        rd_kafka_message_destroy(m);
                }
                return NULL;
        }
        if (!b && !(b = batch_new()))
                return NULL;
        if (!batch_collect(e, b, 0)) {
                batch_free(b);
                return NULL;
        }
        if (batch_rebuild_all(e) || batch_classify(e, b, NULL) ||
            batch_pull_begin(e, b)) {
                batch_rewind(e, b);
                batch_free(b);
                return NULL;
        }
        b->sorted = 1;
        return b;
}

/* Takes the next batch from what the consumer already holds (no wait), while cur's
 * transaction is still to run. When that fills it, or its first record has waited
 * DURO_BATCH_WAIT_MS already, it is classified and its pull starts on a thread, to run
 * while cur's transaction commits; otherwise it is returned unsorted, and the next
 * cycle goes on filling it (so a light load still gathers its batches, and its GraphQL
 * requests, as without pulling ahead). NULL when there is nothing to take; on a
 * rebalance, e->rebalanced is set. */
static struct batch *batch_take_ahead(struct enricher *e, const struct batch *cur)
{
        struct batch *b = batch_new();

        if (!b)
                return NULL;
        if (!batch_collect(e, b, 1)) {
                batch_free(b);
                return NULL;
        }
        if (b->n < (size_t)e->cfg.batch_max &&
            dtime_mono_ms() - b->first_ms < e->cfg.batch_wait_ms)
                return b;
        if (batch_classify(e, b, cur) || batch_pull_begin(e, b)) {
                batch_rewind(e, b);
                batch_free(b);
                return NULL;
        }
        b->sorted = 1;
        /* Without a thread the pull simply runs later, in batch_pull_finish. */
        if (b->pull && !pthread_create(&b->thread, NULL, batch_pull_thread, b))
                b->threaded = 1;
        atomic_fetch_add(&e->m.pulled_ahead, 1);
        return b;
}

void enricher_batch_drop_ahead(struct enricher *e)
{
        batch_free(e->ahead);
        e->ahead = NULL;
}

int enricher_batch_cycle(struct enricher *e)
{
        struct batch *b = e->ahead, *next = NULL;
        enum txn_result tr;
        int64_t t0 = dtime_mono_ms(), t1;

        e->ahead = NULL;
        if ((!b || !b->sorted) && !(b = batch_take(e, b)))
                return 0;
        if (batch_pull_finish(e, b)) {
                if (!e->rebalanced)
                        batch_rewind(e, b);
                batch_free(b);
                return 0;
        }
        t1 = dtime_mono_ms();
        batch_apply_items(b);
        batch_route_topics(e, b);
        batch_offsets(e, b);
        if (e->cfg.pull_ahead && atomic_load(&e->run)) {
                next = batch_take_ahead(e, b);
                if (e->rebalanced) {
                        /* Both belong to the old assignment; nothing was committed. */
                        batch_free(next);
                        batch_free(b);
                        return 0;
                }
        }
        tr = batch_transaction(e, b);
        if (tr == TXN_COMMITTED) {
                batch_committed(e, b);
                dlog_debug(
                    "batch of %zu (%zu ids): pull %lld ms (waited %lld), produce "
                    "%lld, offsets %lld, commit %lld; %zu taken ahead",
                    b->n, b->nitems, (long long)(t1 - b->pull_start_ms),
                    (long long)(t1 - t0), (long long)(b->t_produced - t1),
                    (long long)(b->t_offsets - b->t_produced),
                    (long long)(dtime_mono_ms() - b->t_offsets), next ? next->n : 0);
                e->ahead = next;
        } else if (next) {
                /* Redo from cur's first records: next comes after them. */
                batch_join(next);
                batch_rewind(e, next);
                batch_free(next);
        }
        if (tr != TXN_COMMITTED)
                batch_rewind(e, b);
        batch_free(b);
        return tr == TXN_FATAL ? -1 : 0;
}
