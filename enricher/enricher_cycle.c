/* enricher_cycle.c - one cycle per batch:
 *   1. take up to DURO_BATCH_MAX records (or DURO_BATCH_WAIT_MS) and classify them
 *      (enricher_batch.c: parse, drop duplicates, route invalid ones to the DLQ, group
 *      the ids to pull);
 *   2. pull from GraphQL with no transaction open (pausing the partitions, but staying
 *      in the group, while the API is down);
 *   3. one short transaction (enricher_txn.c): outputs and DLQ records in offset order,
 *      the state records (enricher_state.c) and the progress records, the offsets,
 *      commit (while a state or the progress topic is missing, the batch waits here,
 *      paused);
 *   4. only after the commit, add the batch's keys to the dedupe sets.
 * Before step 1, the dedupe rebuilds of partitions just assigned move on for a slice
 * (enricher_rebuild.c); those partitions stay paused until their sets are complete.
 * With DURO_PULL_AHEAD the next batch is taken, and its pull started on the pull-ahead
 * thread, before step 3, so that GraphQL works while the transaction commits. An
 * aborted transaction rewinds to the committed positions and redoes the batch. */
#include "enricher.h"

#include <stdio.h>

#include "dlog.h"
#include "dtime.h"

/* How long a pull runs before the cycle serves the consumer (and, pulling ahead,
 * before the pull-ahead thread gives up and leaves the rest to the main thread). */
#define CYCLE_PULL_PATIENCE_MS 5000
/* How long the dedupe rebuilds read before the cycle polls the consumer again. */
#define CYCLE_REBUILD_SLICE_MS 200
#define CYCLE_IDLE_COMMIT_MS   1000 /* idle this long before committing past markers */

/* Stops a pull running ahead and waits for its thread. */
static void cycle_join(struct enricher_batch *b)
{
        if (!b->threaded)
                return;
        atomic_store(&b->stop, 1);
        pthread_join(b->thread, NULL);
        b->threaded = 0;
}

static void cycle_free(struct enricher_batch *b)
{
        if (!b)
                return;
        cycle_join(b);
        enricher_batch_free(b);
}

/* Step 2 begins: the pull's state (none when the batch has nothing to pull). */
static int cycle_pull_begin(struct enricher *e, struct enricher_batch *b)
{
        b->pull_start_ms = dtime_mono_ms();
        if (!b->nitems)
                return 0;
        b->pull = enricher_pull_new(e, b->items, b->nitems);
        return b->pull ? 0 : -1;
}

/* The pull-ahead thread, while the previous batch's transaction runs: only GraphQL,
 * never the consumer. Gives up after CYCLE_PULL_PATIENCE_MS, on an outage, or when
 * stopped; the main thread then carries on (cycle_pull_finish). */
static void *cycle_pull_thread(void *arg)
{
        struct enricher_batch *b = arg;

        while (b->pull && !atomic_load(&b->stop)) {
                enum enricher_pull_result r = enricher_pull_step(b->pull, 200);
                if (r != ENRICHER_PULL_AGAIN ||
                    dtime_mono_ms() - b->pull_start_ms > CYCLE_PULL_PATIENCE_MS)
                        break;
        }
        return NULL;
}

/* While the pull cannot finish: not ready on an outage or a refused key; the
 * partitions paused, the group's callbacks served, the lag kept fresh, a reloaded key
 * tried at once. Returns 0, or -1 on a rebalance. */
static int cycle_pull_wait(struct enricher *e, struct enricher_pull *p,
                           enum enricher_pull_result r)
{
        if (r == ENRICHER_PULL_OUTAGE || r == ENRICHER_PULL_AUTH) {
                char why[300];
                snprintf(why, sizeof(why), "%s: %s",
                         r == ENRICHER_PULL_AUTH ? "Duro API refuses the key"
                                                 : "Duro API unavailable",
                         enricher_pull_error(p));
                enricher_ready_api_down(e, why);
        }
        enricher_consume_pause(e);
        enricher_consume_serve_paused(e, 0);
        if (e->rebalanced)
                return -1;
        enricher_parts_update_lag(e);
        if (dsecrets_reload(e->api_key, atomic_exchange(&e->reload_key, 0), NULL, 0) >
            0) {
                dlog_info("Duro API key reloaded");
                enricher_pull_retry(p);
        }
        return 0;
}

/* Step 2 ends. Returns 0 when every item is resolved, -1 when the batch must be
 * dropped (shutdown or rebalance while waiting). */
static int cycle_pull_finish(struct enricher *e, struct enricher_batch *b)
{
        struct enricher_pull *p = b->pull;
        int rc                  = 0;

        cycle_join(b);
        if (!p)
                return 0;
        e->rebalanced = 0;
        for (;;) {
                enum enricher_pull_result r = enricher_pull_step(p, 200);
                if (r == ENRICHER_PULL_DONE)
                        break;
                if (!atomic_load(&e->run) || atomic_load(&e->fatal)) {
                        rc = -1;
                        break;
                }
                if ((r != ENRICHER_PULL_AGAIN ||
                     dtime_mono_ms() - b->pull_start_ms > CYCLE_PULL_PATIENCE_MS) &&
                    cycle_pull_wait(e, p, r)) {
                        rc = -1;
                        break;
                }
        }
        enricher_pull_free(p);
        b->pull = NULL;
        if (e->paused && !e->rebalanced)
                enricher_consume_resume(e, b);
        if (rc == 0)
                enricher_ready_api_up(e);
        return rc;
}

/* Before b's transaction, while a state or the progress topic is missing or refused
 * (an earlier transaction found out): b held, the partitions paused, the group served,
 * the topics looked for again. Returns 0 once they are back, -1 when b must be dropped
 * (shutdown or rebalance). */
static int cycle_state_wait(struct enricher *e, struct enricher_batch *b)
{
        e->rebalanced = 0;
        while (enricher_state_still_down(e)) {
                if (!atomic_load(&e->run) || atomic_load(&e->fatal))
                        return -1;
                enricher_consume_pause(e);
                enricher_consume_serve_paused(e, 100);
                if (e->rebalanced)
                        return -1;
                enricher_parts_update_lag(e);
        }
        if (e->paused)
                enricher_consume_resume(e, b);
        return 0;
}

/* Classifies b and begins its pull (prev: as enricher_batch_classify's). Returns 0,
 * or -1 after putting b's records back and freeing it. */
static int cycle_sort(struct enricher *e, struct enricher_batch *b,
                      const struct enricher_batch *prev)
{
        if (enricher_batch_classify(e, b, prev) || cycle_pull_begin(e, b)) {
                enricher_consume_rewind(e, b);
                cycle_free(b);
                return -1;
        }
        b->sorted = 1;
        return 0;
}

/* Takes a batch the plain way: waits to fill the batch (up to DURO_BATCH_MAX records,
 * or DURO_BATCH_WAIT_MS from its first record; without waiting when reading, i.e. a
 * rebuild has reading to do), classifies it and begins its pull. b, when not NULL, is a
 * batch begun by cycle_take_ahead, filled further here. NULL when there is none or it
 * was dropped. */
static struct enricher_batch *cycle_take(struct enricher *e, struct enricher_batch *b,
                                         int reading)
{
        if (!b && !(b = enricher_batch_new()))
                return NULL;
        if (!enricher_consume_take(e, b, reading)) {
                cycle_free(b);
                return NULL;
        }
        return cycle_sort(e, b, NULL) ? NULL : b;
}

/* Takes the next batch from what the consumer already holds (no wait), while cur's
 * transaction is still to run. When that fills it, or its first record has waited
 * DURO_BATCH_WAIT_MS already, it is classified and its pull starts on the pull-ahead
 * thread, to run while cur's transaction commits; otherwise it is returned unsorted,
 * and the next cycle goes on filling it (so a light load still gathers its batches,
 * and its GraphQL requests, as without pulling ahead). NULL when there is nothing to
 * take; on a rebalance, e->rebalanced is set. */
static struct enricher_batch *cycle_take_ahead(struct enricher *e,
                                               const struct enricher_batch *cur)
{
        struct enricher_batch *b = enricher_batch_new();

        if (!b)
                return NULL;
        if (!enricher_consume_take(e, b, 1)) {
                cycle_free(b);
                return NULL;
        }
        if (b->n < (size_t)e->cfg.batch_max &&
            dtime_mono_ms() - b->first_ms < e->cfg.batch_wait_ms)
                return b;
        if (cycle_sort(e, b, cur))
                return NULL;
        /* Without a thread the pull simply runs later, in cycle_pull_finish. */
        if (b->pull && !pthread_create(&b->thread, NULL, cycle_pull_thread, b))
                b->threaded = 1;
        atomic_fetch_add(&e->m.pulled_ahead, 1);
        return b;
}

void enricher_cycle_drop_ahead(struct enricher *e)
{
        cycle_free(e->ahead);
        e->ahead = NULL;
}

/* The debug line of a committed batch: where its time went. */
static void cycle_log(const struct enricher_batch *b, const struct enricher_batch *next,
                      int64_t t0, int64_t t1)
{
        dlog_debug("batch of %zu (%zu ids): pull %lld ms (waited %lld), produce "
                   "%lld, offsets %lld, commit %lld; %zu taken ahead",
                   b->n, b->nitems, (long long)(t1 - b->pull_start_ms),
                   (long long)(t1 - t0), (long long)(b->t_produced - t1),
                   (long long)(b->t_offsets - b->t_produced),
                   (long long)(dtime_mono_ms() - b->t_offsets), next ? next->n : 0);
}

/* Idle (nothing taken, nothing ahead): commits, in a transaction of offsets alone, the
 * positions of partitions that moved past trailing transaction markers (a snapshot
 * writes the raw topic in transactions), so that the committed offsets, and the lag,
 * reach the end. Returns 0, or -1 when fatal. */
static int cycle_idle(struct enricher *e)
{
        struct enricher_batch *b;
        enum enricher_txn_result tr;
        int64_t now = dtime_mono_ms();

        if (!e->idle_since_ms)
                e->idle_since_ms = now;
        /* idle a while first: under light transactional writes a batch's marker often
         * comes just after it, and the next batch commits past it anyway */
        if (now - e->idle_since_ms < CYCLE_IDLE_COMMIT_MS || e->rebalanced ||
            e->seek_failed || atomic_load(&e->ready.state_down) ||
            !atomic_load(&e->run))
                return 0;
        e->idle_since_ms = now; /* at most one look a second */
        if (!(b = enricher_batch_new()))
                return 0;
        if (!(b->offsets = enricher_consume_idle_offsets(e))) {
                cycle_free(b);
                return 0;
        }
        tr = enricher_txn_run(e, b);
        if (tr == ENRICHER_TXN_COMMITTED) {
                enricher_txn_committed(e, b);
                dlog_debug("committed %d partition(s) past transaction markers",
                           b->offsets->cnt);
        }
        cycle_free(b);
        return tr == ENRICHER_TXN_FATAL ? -1 : 0;
}

int enricher_cycle_run(struct enricher *e)
{
        struct enricher_batch *b = e->ahead, *next = NULL;
        enum enricher_txn_result tr;
        int64_t t0 = dtime_mono_ms(), t1;
        /* every cycle, also when the batch ahead is ready: the ready partitions'
         * backlog never holds back the others' rebuilds */
        int reading = enricher_rebuild_step(e, CYCLE_REBUILD_SLICE_MS);

        e->ahead = NULL;
        if ((!b || !b->sorted) && !(b = cycle_take(e, b, reading)))
                return reading ? 0 : cycle_idle(e);
        e->idle_since_ms = 0;
        if (cycle_pull_finish(e, b)) {
                enricher_consume_dropped(e, b);
                cycle_free(b);
                return 0;
        }
        t1 = dtime_mono_ms();
        enricher_batch_apply_items(b);
        enricher_batch_route_topics(e, b);
        if (enricher_state_plan(e, b)) {
                dlog_error("out of memory choosing the state records");
                enricher_consume_rewind(e, b);
                cycle_free(b);
                return -1;
        }
        if (cycle_state_wait(e, b)) {
                enricher_consume_dropped(e, b);
                cycle_free(b);
                return 0;
        }
        enricher_consume_offsets(e, b);
        if (e->cfg.pull_ahead && atomic_load(&e->run)) {
                next = cycle_take_ahead(e, b);
                if (e->rebalanced) {
                        /* Both belong to the old assignment; nothing was committed. */
                        if (next) {
                                cycle_join(next);
                                enricher_consume_dropped(e, next);
                        }
                        enricher_consume_dropped(e, b); /* after next: b's come first */
                        cycle_free(next);
                        cycle_free(b);
                        return 0;
                }
        }
        tr = enricher_txn_run(e, b);
        if (tr == ENRICHER_TXN_COMMITTED) {
                enricher_txn_committed(e, b);
                cycle_log(b, next, t0, t1);
                e->ahead = next;
        } else if (next) {
                /* Redo from cur's first records: next comes after them. */
                cycle_join(next);
                enricher_consume_rewind(e, next);
                cycle_free(next);
        }
        if (tr != ENRICHER_TXN_COMMITTED)
                enricher_consume_rewind(e, b);
        cycle_free(b);
        return tr == ENRICHER_TXN_FATAL ? -1 : 0;
}
