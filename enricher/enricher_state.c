/* enricher_state.c - the state topics (duro.state.item, duro.state.change_order): for
 * every resource a batch names, one record in the batch's transaction after its
 * outputs, keyed by the resource id, holding the document Duro returned at the
 * resource's last event in the batch, or a tombstone for a delete (and for a snapshot
 * ping answered not_found); a live not_found writes nothing, so a document is never
 * erased by a lagging read. Here: the topics' names and their start-up check, the
 * choice of records, and waiting out a state or progress topic that went missing.
 * The records themselves are built by enricher_out.c and produced by enricher_txn.c. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbuf.h"
#include "dlog.h"
#include "dtime.h"
#include "dtopics.h"

#define STATE_RECHECK_MS 1000 /* a missing topic is looked for again this often */

void enricher_state_free(struct enricher *e)
{
        for (int k = 0; k < DWIRE_NKINDS; k++) {
                free(e->state_topic[k]);
                e->state_topic[k] = NULL;
        }
}

/* Ensures topic (when provisioning is on) and checks it is compacted; *partitions
 * gets its partition count, *max_bytes (when not NULL) its max.message.bytes. */
static int state_check(struct enricher *e, const char *topic, int partitions_wanted,
                       int *partitions, long long *max_bytes, char *err, size_t errsize)
{
        /* (only at start-up: a topic deleted later is an outage, never a new, empty
         * table made behind its readers' backs) */
        int create               = e->cfg.topics.create && !e->state_started;
        struct dtopics_spec spec = {.compact = 1, .partitions = partitions_wanted};
        int created;

        if (partitions_wanted == 1)
                spec.segment_ms = 3600000; /* the progress topic: compacted hourly */
        if (create && dtopics_ensure_spec(e->producer, topic, &e->cfg.topics, &spec,
                                          &created, err, errsize))
                return -1;
        return dtopics_check_compacted(e->producer, topic, partitions, max_bytes, err,
                                       errsize);
}

/* The output topics' partition count (of the first event with a topic of its own that
 * exists), or -1 when none answers. */
static int state_output_partitions(struct enricher *e)
{
        for (size_t i = 0; i < e->events.n; i++) {
                const struct devtable_entry *en = &e->events.e[i];
                char why[300];
                char *t;
                int n;
                if (en->pattern || en->topic_of)
                        continue;
                t = enricher_out_topic(e->cfg.topic_template, en->name);
                if (!t)
                        return -1;
                n = dtopics_partitions(e->producer, t, why, sizeof(why));
                free(t);
                if (n > 0)
                        return n;
        }
        return -1;
}

int enricher_state_start(struct enricher *e, char *err, size_t errsize)
{
        int np, out_np = -1;

        if (e->cfg.state_topics) {
                for (int k = DWIRE_KIND_ITEM; k < DWIRE_NKINDS; k++) {
                        e->state_topic[k] = dwire_state_topic(e->cfg.state_template, k);
                        if (!e->state_topic[k]) {
                                snprintf(err, errsize, "out of memory");
                                return -1;
                        }
                        if (state_check(e, e->state_topic[k], 0, &np,
                                        &e->state_max_bytes[k], err, errsize))
                                return -1;
                        if (out_np < 0)
                                out_np = state_output_partitions(e);
                        if (out_np > 0 && np != out_np)
                                dlog_warn(
                                    "state topic %s has %d partitions, the output "
                                    "topics %d: Kafka Streams joins need them "
                                    "co-partitioned",
                                    e->state_topic[k], np, out_np);
                }
        }
        if (state_check(e, e->cfg.progress_topic, 1, &np, NULL, err, errsize))
                return -1;
        if (np != 1) {
                snprintf(err, errsize,
                         "topic %s: %d partitions, want 1 (its records are read from "
                         "partition 0)",
                         e->cfg.progress_topic, np);
                return -1;
        }
        e->state_started = 1;
        return 0;
}

int enricher_state_is_ours(const struct enricher *e, const char *topic)
{
        if (!topic)
                return 0;
        for (int k = 0; k < DWIRE_NKINDS; k++)
                if (e->state_topic[k] && !strcmp(e->state_topic[k], topic))
                        return 1;
        return !strcmp(e->cfg.progress_topic, topic);
}

static int state_ends_with(const char *s, const char *suffix)
{
        size_t n = s ? strlen(s) : 0, k = strlen(suffix);

        return n >= k && !strcmp(s + n - k, suffix);
}

int enricher_state_tombstone(const struct enricher_rec *r)
{
        return r->status == ENRICHER_ST_DELETED ||
               (r->status == ENRICHER_ST_NOT_FOUND &&
                state_ends_with(r->event, "_SNAPSHOT"));
}

/* A record whose resource has a state: an output about an item or a change order. */
static int state_named(const struct enricher_rec *r)
{
        return r->action == ENRICHER_ACT_OUTPUT && r->kind != DWIRE_KIND_UNKNOWN &&
               r->resource_id &&
               (r->status == ENRICHER_ST_FOUND || r->status == ENRICHER_ST_NOT_FOUND ||
                r->status == ENRICHER_ST_DELETED);
}

static uint64_t state_hash(enum dwire_kind kind, const char *id)
{
        uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;

        for (const unsigned char *c = (const unsigned char *)id; *c; c++)
                h = (h ^ *c) * 1099511628211ULL;
        return h;
}

/* The slot of (r's kind, id) in the open-addressing table slots (cap a power of two;
 * rec index + 1, 0 when free): the one holding it, or the free one where it goes. */
static size_t state_slot(const struct enricher_batch *b, const size_t *slots,
                         size_t cap, const struct enricher_rec *r)
{
        size_t k = state_hash(r->kind, r->resource_id) & (cap - 1);

        for (; slots[k]; k = (k + 1) & (cap - 1)) {
                const struct enricher_rec *o = &b->recs[slots[k] - 1];
                if (o->kind == r->kind && !strcmp(o->resource_id, r->resource_id))
                        break;
        }
        return k;
}

/* A live event answered not_found: it says nothing about the resource's state. */
static int state_live_not_found(const struct enricher_rec *r)
{
        return r->status == ENRICHER_ST_NOT_FOUND && !enricher_state_tombstone(r);
}

/* Room a state record needs besides its document: the other fields of the value, the
 * key, headers, and the record batch's framing (generous). */
#define STATE_OVERHEAD 1024

/* The size r's state record comes to, about (never less). */
static size_t state_size(const struct enricher *e, const struct enricher_rec *r)
{
        size_t n = STATE_OVERHEAD + 2 * strlen(r->resource_id);

        n += r->event_id ? strlen(r->event_id) : 0;
        n += r->event ? 2 * strlen(r->event) : 0;
        n += r->created_at ? strlen(r->created_at) : 0;
        n += strlen(e->cfg.raw_topic);
        if (r->item && r->status == ENRICHER_ST_FOUND)
                n += r->item->doc_text ? r->item->doc_len : 4096;
        return n;
}

/* A state record its topic would refuse (larger than its max.message.bytes): every
 * event of that resource in b goes to the DLQ instead, with no output and no state,
 * decided before the transaction so that nothing has to be aborted. */
static void state_too_large(const struct enricher *e, struct enricher_batch *b,
                            const struct enricher_rec *last, size_t size)
{
        long long max = e->state_max_bytes[last->kind];
        char msg[256];

        snprintf(msg, sizeof(msg),
                 "state topic %s takes records of at most %lld bytes; the state of %s "
                 "needs about %zu",
                 e->state_topic[last->kind], max, last->resource_id, size);
        dlog_warn("%s: its events in this batch go to the DLQ", msg);
        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                if (r->action != ENRICHER_ACT_OUTPUT || r->kind != last->kind ||
                    !r->resource_id || strcmp(r->resource_id, last->resource_id))
                        continue;
                r->action    = ENRICHER_ACT_DLQ;
                r->dlq_class = DWIRE_DLQ_PRODUCE_REJECTED;
                r->attempts  = 1;
                snprintf(r->dlq_message, sizeof(r->dlq_message), "%s", msg);
        }
}

int enricher_state_plan(const struct enricher *e, struct enricher_batch *b)
{
        size_t cap = 16, *slots;

        b->nstate        = 0;
        b->state_skipped = 0;
        if (!e->cfg.state_topics || !b->n)
                return 0;
        while (cap < 2 * b->n)
                cap *= 2;
        slots = calloc(cap, sizeof(*slots)); /* rec index + 1, 0 when free */
        free(b->state_recs);
        b->state_recs = malloc(b->n * sizeof(*b->state_recs));
        if (!slots || !b->state_recs) {
                free(slots);
                return -1;
        }
        /* From the last record back, a resource's state follows its last event that
         * says something: a live not_found is passed over (a delete before it in the
         * batch still leaves its tombstone, a document found before it stays). */
        for (size_t i = b->n; i-- > 0;) {
                const struct enricher_rec *r = &b->recs[i];
                size_t k;
                if (!state_named(r) || state_live_not_found(r))
                        continue;
                k = state_slot(b, slots, cap, r);
                if (slots[k])
                        continue;
                slots[k]                   = i + 1;
                b->state_recs[b->nstate++] = i;
        }
        /* A resource whose every event in the batch was a live not_found: nothing
         * written, counted once. */
        for (size_t i = 0; i < b->n; i++) {
                const struct enricher_rec *r = &b->recs[i];
                size_t k;
                if (!state_named(r) || !state_live_not_found(r))
                        continue;
                k = state_slot(b, slots, cap, r);
                if (slots[k])
                        continue;
                slots[k] = i + 1;
                b->state_skipped++;
        }
        free(slots);
        /* States their topic would refuse: those resources go to the DLQ (the other
         * entries move up). */
        for (size_t i = 0, j = 0, n = b->nstate; i < n; i++) {
                const struct enricher_rec *r = &b->recs[b->state_recs[i]];
                long long max                = e->state_max_bytes[r->kind];
                size_t size =
                    max > 0 && !enricher_state_tombstone(r) ? state_size(e, r) : 0;
                if (max > 0 && size > (size_t)max) {
                        state_too_large(e, b, r, size);
                        b->nstate--;
                        continue;
                }
                b->state_recs[j++] = b->state_recs[i];
        }
        /* In offset order, as the outputs went. */
        for (size_t i = 0, j = b->nstate; i < j / 2; i++) {
                size_t t                 = b->state_recs[i];
                b->state_recs[i]         = b->state_recs[j - 1 - i];
                b->state_recs[j - 1 - i] = t;
        }
        return 0;
}

/* Whether every state topic and the progress topic is there, compacted: 1 when one
 * is not (then not ready, saying which), 0 when all are (ready again). */
static int state_look(struct enricher *e)
{
        char why[300];
        int np;

        for (int k = 0; k < DWIRE_NKINDS; k++)
                if (e->state_topic[k] &&
                    state_check(e, e->state_topic[k], 0, &np, NULL, why, sizeof(why))) {
                        enricher_ready_state_down(e, why);
                        return 1;
                }
        if (state_check(e, e->cfg.progress_topic, 1, &np, NULL, why, sizeof(why))) {
                enricher_ready_state_down(e, why);
                return 1;
        }
        enricher_ready_state_up(e);
        return 0;
}

int enricher_state_still_down(struct enricher *e)
{
        static int64_t last_ms;
        int64_t now = dtime_mono_ms();

        if (!atomic_load(&e->ready.state_down))
                return 0;
        if (now - last_ms < STATE_RECHECK_MS)
                return 1;
        last_ms = now;
        return state_look(e);
}

int enricher_state_check_now(struct enricher *e)
{
        return state_look(e);
}
