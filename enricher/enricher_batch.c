/* enricher_batch.c - the batch itself: its records and their fate (classification:
 * parse, dedupe, route to the DLQ or to an output topic), and the index of the ids it
 * pulls, one item per distinct kind and id, whose outcome is copied back to every
 * record naming it. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dce.h"
#include "dkafka.h"
#include "dpayload.h"
#include "dwire.h"

struct enricher_batch *enricher_batch_new(void)
{
        struct enricher_batch *b = calloc(1, sizeof(*b));

        if (!b)
                return NULL;
        enricher_dedupe_clear(&b->seen);
        b->seen.window_ms = INT64_MAX / 4;
        atomic_init(&b->stop, 0);
        return b;
}

void enricher_batch_drop_recs(struct enricher_batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                if (r->msg)
                        rd_kafka_message_destroy(r->msg);
                if (r->payload)
                        json_decref(r->payload);
                free(r->dedupe_key);
                free(r->key_id);
                free(r->topic);
        }
        b->n      = 0;
        b->nstate = 0;
}

void enricher_batch_free(struct enricher_batch *b)
{
        if (!b)
                return;
        enricher_pull_free(b->pull);
        enricher_batch_drop_recs(b);
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
        free(b->state_recs);
        free(b);
}

int enricher_batch_add(struct enricher_batch *b, rd_kafka_message_t *m)
{
        if (b->n == b->cap) {
                size_t ncap             = b->cap ? b->cap * 2 : 64;
                struct enricher_rec *nr = realloc(b->recs, ncap * sizeof(*nr));
                if (!nr)
                        return -1;
                b->recs = nr;
                b->cap  = ncap;
        }
        memset(&b->recs[b->n], 0, sizeof(b->recs[0]));
        b->recs[b->n++].msg = m;
        return 0;
}

static size_t batch_item_hash(enum dwire_kind kind, const char *id)
{
        size_t h = 1469598103934665603ULL ^ (size_t)kind; /* FNV-1a */

        for (; *id; id++)
                h = (h ^ (unsigned char)*id) * 1099511628211ULL;
        return h;
}

/* Doubles the hash index and puts every item back in it. Returns 0 or -1. */
static int batch_item_rehash(struct enricher_batch *b)
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
static size_t batch_item(struct enricher_batch *b, enum dwire_kind kind, const char *id)
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

static int batch_ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && !strcmp(s + n - k, suffix);
}

/* The event r stands for: the one whose topic it shares by the table (a renamed
 * event, once its resource is known), else its own name. */
static const char *batch_topic_event(const struct enricher_rec *r)
{
        const char *ev = r->event ? r->event : "unknown";

        return r->kind != DWIRE_KIND_UNKNOWN ? devtable_topic_event(r->entry, ev) : ev;
}

/* 1 when a resource missing from Duro's answer is asked for again after the grace: an
 * event that follows a write (a create, an update, a change order's step), whose
 * read may lag behind it. A snapshot's ping follows no write; its sweep asks for ids
 * that are gone on purpose. */
static int batch_grace(const struct enricher_rec *r)
{
        const char *ev = batch_topic_event(r);

        if (batch_ends_with(ev, "_SNAPSHOT"))
                return 0;
        return r->kind == DWIRE_KIND_CHANGE_ORDER || !strcmp(ev, "ITEM_CREATE") ||
               !strcmp(ev, "ITEM_UPDATE");
}

/* A valid record to output: its resource, and the item to pull for it (the item
 * pointer is set after the pull: items may move). Deletes are the table's say for a
 * stamped record, the _DELETE suffix (as before the table) for an older one. Returns
 * 0 or -1. */
static int batch_resource(struct enricher_batch *b, struct enricher_rec *r)
{
        size_t item_index;

        r->action = ENRICHER_ACT_OUTPUT;
        if (r->kind == DWIRE_KIND_UNKNOWN || !r->resource_id) {
                r->kind   = DWIRE_KIND_UNKNOWN;
                r->status = ENRICHER_ST_UNSUPPORTED;
                return 0;
        }
        if (r->entry ? r->entry->deletes : batch_ends_with(r->event, "_DELETE")) {
                r->status = ENRICHER_ST_DELETED;
                return 0;
        }
        item_index = batch_item(b, r->kind, r->resource_id);
        if (item_index == SIZE_MAX)
                return -1;
        r->item_index = item_index;
        if (batch_grace(r))
                b->items[item_index].grace = 1;
        r->status = ENRICHER_ST_PENDING;
        return 0;
}

/* Reads r's payload and its resource: from the duro-resource-kind header and the
 * record's key when its writer stamped them (the writer's event table decided the
 * partition; this one never decides again), else, for a record written before the
 * header existed, by the event name's prefix as then. Returns 0 when r is valid, -1
 * when not (p->reason says why), -2 when out of memory. */
static int batch_read(const struct enricher *e, struct enricher_rec *r,
                      struct dpayload *p)
{
        const rd_kafka_message_t *m = r->msg;
        char kbuf[32];
        const char *kh = dkafka_header(m, DWIRE_H_RESOURCE_KIND, kbuf, sizeof(kbuf));
        enum dwire_kind kind;
        int stamped = kh && !dwire_kind_parse(kh, strlen(kh), &kind);

        dpayload_parse(p, stamped ? &e->events : NULL, m->payload ? m->payload : "",
                       m->len);
        if (!stamped) { /* no entry: nothing of the table applies */
                r->kind        = p->kind;
                r->resource_id = p->kind      ? p->resource_id
                                 : p->item_id ? p->item_id
                                              : p->change_order_id;
                return p->valid ? 0 : -1;
        }
        /* The writer judged the id: a table that differs here cannot overrule it. */
        if (!p->valid && !p->invalid_id_only)
                return -1;
        r->kind  = kind;
        r->entry = p->entry;            /* its deletes and shared topic */
        if (kind == DWIRE_KIND_UNKNOWN) /* said in the output, not pulled */
                r->resource_id = p->resource_id ? p->resource_id
                                 : p->item_id   ? p->item_id
                                                : p->change_order_id;
        else if (m->key_len) {
                /* (a record's key is not NUL-terminated: no strndup, which may look
                 * for the NUL past its end) */
                r->key_id = malloc(m->key_len + 1);
                if (!r->key_id)
                        return -2;
                memcpy(r->key_id, m->key, m->key_len);
                r->key_id[m->key_len] = '\0';
                r->resource_id        = r->key_id;
        }
        return 0;
}

/* 1 when r's key was committed already, or seen in this batch or in prev. */
static int batch_seen(const struct enricher_part *part, const struct enricher_batch *b,
                      const struct enricher_batch *prev, const struct enricher_rec *r)
{
        return enricher_dedupe_has_id(&part->dd, &r->dedupe_id) ||
               enricher_dedupe_has_id(&b->seen, &r->dedupe_id) ||
               (prev && enricher_dedupe_has_id(&prev->seen, &r->dedupe_id));
}

int enricher_batch_classify(struct enricher *e, struct enricher_batch *b,
                            const struct enricher_batch *prev)
{
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r     = &b->recs[i];
                struct enricher_part *part = enricher_part_find(e, r->msg->partition);
                char hbuf[256], forced[200];
                const char *invalid =
                    dkafka_header(r->msg, DWIRE_H_INVALID, hbuf, sizeof(hbuf));
                struct dpayload p;
                int rc = batch_read(e, r, &p);

                if (rc == -2) {
                        dpayload_free(&p);
                        return -1;
                }
                r->payload    = p.root;
                p.root        = NULL;
                r->event_id   = p.id;
                r->event      = p.event;
                r->webhook_id = p.webhook_id;
                r->created_at = p.created_at;
                r->dedupe_key = enricher_dedupe_key(r->msg, p.id);
                if (!r->dedupe_key || !part)
                        return -1;
                if (dce_trace_get(r->msg, &r->trace, NULL, 0) && dtrace_new(&r->trace))
                        return -1;
                enricher_dedupe_id_of(r->dedupe_key, &r->dedupe_id);
                atomic_fetch_add(&e->m.consumed, 1);
                r->exempt = enricher_dedupe_exempt(r->msg);
                if (!r->exempt && batch_seen(part, b, prev, r)) {
                        r->action = ENRICHER_ACT_DUPLICATE;
                        continue;
                }
                if (!r->exempt)
                        enricher_dedupe_add_id(&b->seen, &r->dedupe_id, 0);
                if (enricher_txn_forced(e, r->msg, forced, sizeof(forced)))
                        batch_dlq(r, DWIRE_DLQ_PRODUCE_REJECTED, forced, 1);
                else if (invalid || rc)
                        batch_dlq(r, DWIRE_DLQ_INVALID_PAYLOAD,
                                  invalid ? invalid : p.reason, 1);
                else if (batch_resource(b, r))
                        return -1;
        }
        return 0;
}

void enricher_batch_apply_items(struct enricher_batch *b)
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

void enricher_batch_route_topics(struct enricher *e, struct enricher_batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                char why[300];
                if (r->action != ENRICHER_ACT_OUTPUT)
                        continue;
                free(r->topic);
                r->topic =
                    enricher_out_topic(e->cfg.topic_template, batch_topic_event(r));
                if (r->topic && enricher_topics_exists(e, r->topic))
                        continue;
                snprintf(why, sizeof(why), "output topic %s does not exist",
                         r->topic ? r->topic : "?");
                batch_dlq(r, DWIRE_DLQ_NO_TOPIC, why, 1);
        }
}

rd_kafka_topic_partition_list_t *
enricher_batch_next_offsets(const struct enricher *e, const struct enricher_batch *b)
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
