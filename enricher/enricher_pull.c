/* enricher_pull.c - resolves the resource ids of a batch through GraphQL.
 *
 * All distinct ids of a kind go in one request (split past DURO_GRAPHQL_MAX_IDS);
 * pages are followed; several requests run at once (dgql). A missing id of a create/
 * update/CO event is asked for again alone after the grace period, twice, before it is
 * not_found. Rate limiting waits as told. A failure is acted on only with evidence
 * that lookups of its kind work: a request of the same kind naming other ids
 * succeeded since this one last failed (the other kind's success is none, and no
 * request without ids is made). Then a failing request is split, and a single id is
 * blamed (resource-error) after DURO_GRAPHQL_MAX_ATTEMPTS such failures. Without that
 * evidence the job waits for a probe of its kind: the same query for one id that
 * Duro answered before (or, before any, an id that names nothing). When the probe
 * keeps failing, the pull reports an outage (pause, not ready, no DLQ) and keeps
 * probing with capped backoff. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlog.h"
#include "dtime.h"

#define PULL_BACKOFF_BASE_MS 100
#define PULL_BACKOFF_MAX_MS  30000

enum pull_job_state {
        JOB_READY    = 0,
        JOB_INFLIGHT = 1,
        JOB_PARKED   = 2, /* waiting for a probe */
        JOB_DONE     = 3,
};

struct pull_job {
        struct pull_job *next;
        struct enricher_pull *p;
        enum dwire_kind kind;
        size_t *idx; /* item indexes */
        size_t n;
        char *after;
        int probe;            /* asks for e->probe_ids[kind], for evidence only */
        int attempts;         /* failures counted with evidence of a working API */
        int64_t last_fail_ms; /* monotonic; start of the job before the first failure */
        int64_t not_before_ms;
        enum pull_job_state state;
};

struct enricher_pull {
        struct enricher *e;
        struct enricher_item *items;
        size_t n;
        struct pull_job *jobs;
        /* per kind: the last success of a request of that kind (monotonic, 0 never;
         * every request names ids) and the failures of its probes since */
        int64_t ok_ms[DWIRE_NKINDS];
        int probe_failures[DWIRE_NKINDS];
        int auth_failed;
        char error[256];
};

static long pull_backoff_ms(int failures)
{
        long ms = PULL_BACKOFF_BASE_MS;

        for (int i = 1; i < failures && ms < PULL_BACKOFF_MAX_MS; i++)
                ms *= 2;
        if (ms > PULL_BACKOFF_MAX_MS)
                ms = PULL_BACKOFF_MAX_MS;
        /* jitter: between half and all of it */
        return ms / 2 + (long)((unsigned long)rand() % (unsigned long)(ms / 2 + 1));
}

static struct pull_job *pull_job_new(struct enricher_pull *p, enum dwire_kind kind,
                                     const size_t *idx, size_t n)
{
        struct pull_job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        j->idx = n ? malloc(n * sizeof(*idx)) : NULL;
        if (n && !j->idx) {
                free(j);
                return NULL;
        }
        if (n)
                memcpy(j->idx, idx, n * sizeof(*idx));
        j->n            = n;
        j->kind         = kind;
        j->p            = p;
        j->state        = JOB_READY;
        j->last_fail_ms = dtime_mono_ms();
        j->next         = p->jobs;
        p->jobs         = j;
        return j;
}

int enricher_pull_parse(json_t *data, enum dwire_kind kind,
                        void (*found)(void *opaque, const char *id, json_t *node),
                        void *opaque, int *has_next, char **cursor)
{
        const char *root = kind == DWIRE_KIND_ITEM ? "components" : "changeOrders";
        json_t *conn, *edges, *edge, *pi;
        size_t i;

        *has_next = 0;
        *cursor   = NULL;
        conn      = json_object_get(
                 json_object_get(json_object_get(json_object_get(data, root), "get"),
                                 "connection"),
                 "edges");
        edges = conn;
        if (!json_is_array(edges))
                return -1;
        json_array_foreach(edges, i, edge)
        {
                json_t *node   = json_object_get(edge, "node");
                const char *id = json_string_value(json_object_get(node, "id"));
                if (!json_is_object(node) || !id)
                        return -1;
                found(opaque, id, node);
        }
        pi = json_object_get(
            json_object_get(json_object_get(json_object_get(data, root), "get"),
                            "connection"),
            "pageInfo");
        if (json_is_object(pi) && json_is_true(json_object_get(pi, "hasNextPage"))) {
                const char *c = json_string_value(json_object_get(pi, "endCursor"));
                if (!c)
                        return -1;
                *cursor = strdup(c);
                if (!*cursor)
                        return -1;
                *has_next = 1;
        }
        return 0;
}

struct pull_found_ctx {
        struct pull_job *job;
        int matched;
};

static void pull_found(void *opaque, const char *id, json_t *node)
{
        struct pull_found_ctx *fc   = opaque;
        struct pull_job *j          = fc->job;
        struct enricher_item *items = j->p->items;

        for (size_t k = 0; k < j->n; k++) {
                struct enricher_item *it = &items[j->idx[k]];
                if (strcmp(it->id, id) != 0)
                        continue;
                if (strlen(id) < sizeof(j->p->e->probe_ids[0]))
                        strcpy(j->p->e->probe_ids[j->kind], id);
                if (it->status != ENRICHER_ST_FOUND) {
                        it->status   = ENRICHER_ST_FOUND;
                        it->doc_text = json_dumps(node, JSON_COMPACT | JSON_ENCODE_ANY);
                        if (it->doc_text)
                                it->doc_len = strlen(it->doc_text);
                        else /* out of memory: enricher_out_value tries again */
                                it->doc = json_incref(node);
                }
                fc->matched++;
                return;
        }
}

/* A request of kind succeeded: the jobs of that kind waiting for evidence go again. */
static void pull_unpark(struct enricher_pull *p, enum dwire_kind kind)
{
        for (struct pull_job *j = p->jobs; j; j = j->next) {
                if (j->state == JOB_PARKED && j->kind == kind) {
                        j->state         = JOB_READY;
                        j->not_before_ms = 0;
                }
        }
}

/* After the last page of j: what is still pending was not in the answer. */
static void pull_missing(struct enricher_pull *p, struct pull_job *j)
{
        for (size_t k = 0; k < j->n; k++) {
                struct enricher_item *it = &p->items[j->idx[k]];
                struct pull_job *again;
                if (it->status != ENRICHER_ST_PENDING)
                        continue;
                if (it->grace && it->grace_done < 2) {
                        it->grace_done++;
                        again = pull_job_new(p, j->kind, &j->idx[k], 1);
                        if (again) {
                                again->not_before_ms =
                                    dtime_mono_ms() + p->e->cfg.not_found_grace_ms;
                                continue;
                        }
                }
                it->status = ENRICHER_ST_NOT_FOUND;
        }
}

static void pull_ok(struct enricher_pull *p, struct pull_job *j,
                    struct dgql_result *res)
{
        struct pull_found_ctx fc = {j, 0};
        char *cursor             = NULL;
        int has_next             = 0;

        if (j->probe) {
                j->state = JOB_DONE;
                return;
        }
        if (enricher_pull_parse(res->data, j->kind, pull_found, &fc, &has_next,
                                &cursor)) {
                /* An answer of the wrong shape counts as a failed request. */
                snprintf(res->error, sizeof(res->error),
                         "GraphQL answer without the expected connection");
                res->outcome = DGQL_FAILED;
                free(cursor);
                return;
        }
        j->state = JOB_DONE;
        if (has_next) {
                struct pull_job *next = pull_job_new(p, j->kind, j->idx, j->n);
                if (next)
                        next->after = cursor;
                else
                        free(cursor);
                return;
        }
        pull_missing(p, j);
}

static void pull_failed(struct enricher_pull *p, struct pull_job *j,
                        const struct dgql_result *res)
{
        int64_t now = dtime_mono_ms();

        snprintf(p->error, sizeof(p->error), "%s", res->error);
        if (j->probe) {
                p->probe_failures[j->kind]++;
                j->state         = JOB_READY;
                j->not_before_ms = now + pull_backoff_ms(p->probe_failures[j->kind]);
                return;
        }
        if (p->ok_ms[j->kind] <= j->last_fail_ms) {
                /* No evidence that lookups of this kind work: wait for a probe. */
                j->state        = JOB_PARKED;
                j->last_fail_ms = now;
                return;
        }
        j->last_fail_ms = now;
        if (j->n > 1) {
                size_t half = j->n / 2;
                pull_job_new(p, j->kind, j->idx, half);
                pull_job_new(p, j->kind, j->idx + half, j->n - half);
                j->state = JOB_DONE;
                return;
        }
        j->attempts++;
        if (j->n == 1 && j->attempts >= p->e->cfg.gql_max_attempts) {
                struct enricher_item *it = &p->items[j->idx[0]];
                it->status               = ENRICHER_ST_ERROR;
                it->attempts             = j->attempts;
                snprintf(it->error, sizeof(it->error), "%s", res->error);
                j->state = JOB_DONE;
                dlog_warn("GraphQL: %s %s failed %d times while other requests "
                          "succeeded: %s",
                          dwire_kind_name(j->kind), it->id, j->attempts, res->error);
                return;
        }
        j->state         = JOB_READY;
        j->not_before_ms = now + pull_backoff_ms(j->attempts);
}

static void pull_done_cb(void *opaque, struct dgql_result *res)
{
        struct pull_job *j      = opaque;
        struct enricher_pull *p = j->p;
        int64_t now             = dtime_mono_ms();

        switch (res->outcome) {
        case DGQL_OK:
                p->auth_failed = 0;
                pull_ok(p, j, res);
                if (res->outcome == DGQL_OK) {
                        p->ok_ms[j->kind]          = now;
                        p->probe_failures[j->kind] = 0;
                        pull_unpark(p, j->kind);
                        break;
                }
                /* wrong shape */
                pull_failed(p, j, res);
                break;
        case DGQL_RATE_LIMITED:
                j->state = JOB_READY;
                j->not_before_ms =
                    now + (res->retry_after_ms >= 0 ? res->retry_after_ms
                                                    : pull_backoff_ms(3));
                break;
        case DGQL_AUTH:
                if (!p->auth_failed)
                        dlog_error("GraphQL: the Duro API refused the API key (%s); "
                                   "not ready until it is accepted",
                                   res->error);
                p->auth_failed = 1;
                snprintf(p->error, sizeof(p->error), "%s", res->error);
                j->state         = JOB_READY;
                j->not_before_ms = now + PULL_BACKOFF_MAX_MS / 6;
                if (j->probe)
                        j->state = JOB_DONE;
                break;
        case DGQL_FAILED:
                pull_failed(p, j, res);
                break;
        }
}

/* The id a probe of kind asks for: one Duro answered before, else one that names
 * nothing (an empty answer is evidence too). */
#define PULL_PROBE_NOTHING "duro-kafka-bridge-probe"

static json_t *pull_variables(const struct enricher_pull *p, const struct pull_job *j)
{
        json_t *ids          = json_array();
        const char *probe_id = p->e->probe_ids[j->kind];

        if (j->probe)
                json_array_append_new(
                    ids, json_string(*probe_id ? probe_id : PULL_PROBE_NOTHING));
        for (size_t k = 0; k < j->n; k++)
                json_array_append_new(ids, json_string(p->items[j->idx[k]].id));
        return json_pack("{s:o, s:I, s:s?}", "ids", ids, "first",
                         (json_int_t)p->e->cfg.gql_max_ids, "after", j->after);
}

static int pull_submit(struct enricher_pull *p, struct pull_job *j)
{
        const char *q =
            j->kind == DWIRE_KIND_ITEM ? p->e->q_components : p->e->q_change_orders;
        json_t *vars = pull_variables(p, j);
        int rc;

        if (!vars)
                return -1;
        rc = dgql_submit(p->e->gql, q,
                         j->kind == DWIRE_KIND_ITEM ? p->e->q_components_op
                                                    : p->e->q_change_orders_op,
                         vars, pull_done_cb, j);
        json_decref(vars);
        if (!rc)
                j->state = JOB_INFLIGHT;
        return rc;
}

struct enricher_pull *enricher_pull_new(struct enricher *e, struct enricher_item *items,
                                        size_t n)
{
        struct enricher_pull *p = calloc(1, sizeof(*p));
        size_t *idx;

        if (!p)
                return NULL;
        p->e     = e;
        p->items = items;
        p->n     = n;
        idx      = malloc((n ? n : 1) * sizeof(*idx));
        if (!idx) {
                free(p);
                return NULL;
        }
        for (int kind = DWIRE_KIND_ITEM; kind <= DWIRE_KIND_CHANGE_ORDER; kind++) {
                size_t cnt = 0;
                for (size_t i = 0; i < n; i++)
                        if (items[i].kind == (enum dwire_kind)kind &&
                            items[i].status == ENRICHER_ST_PENDING)
                                idx[cnt++] = i;
                for (size_t off = 0; off < cnt; off += (size_t)e->cfg.gql_max_ids) {
                        size_t len = cnt - off;
                        if (len > (size_t)e->cfg.gql_max_ids)
                                len = (size_t)e->cfg.gql_max_ids;
                        pull_job_new(p, (enum dwire_kind)kind, idx + off, len);
                }
        }
        free(idx);
        return p;
}

/* Starts a probe of each kind whose jobs wait for one, unless one is on its way. */
static void pull_maybe_probe(struct enricher_pull *p)
{
        for (int kind = DWIRE_KIND_ITEM; kind <= DWIRE_KIND_CHANGE_ORDER; kind++) {
                struct pull_job *j, *probe;
                int parked = 0, probing = 0;
                for (j = p->jobs; j; j = j->next) {
                        if (j->kind != (enum dwire_kind)kind)
                                continue;
                        parked |= j->state == JOB_PARKED;
                        probing |= j->probe && j->state != JOB_DONE;
                }
                if (parked && !probing &&
                    (probe = pull_job_new(p, (enum dwire_kind)kind, NULL, 0)))
                        probe->probe = 1;
        }
}

/* 1 when the probes of a kind failed often enough to call it an outage. */
static int pull_is_outage(const struct enricher_pull *p)
{
        for (int kind = 0; kind < DWIRE_NKINDS; kind++)
                if (p->probe_failures[kind] >= p->e->cfg.gql_max_attempts)
                        return 1;
        return 0;
}

enum enricher_pull_result enricher_pull_step(struct enricher_pull *p, long budget_ms)
{
        int64_t deadline = dtime_mono_ms() + budget_ms;

        for (;;) {
                int64_t now = dtime_mono_ms(), next = INT64_MAX;
                int active = 0, inflight = 0;

                pull_maybe_probe(p);
                for (struct pull_job *j = p->jobs; j; j = j->next) {
                        if (j->state == JOB_DONE)
                                continue;
                        active++;
                        if (j->state == JOB_READY && j->not_before_ms <= now) {
                                if (pull_submit(p, j))
                                        j->not_before_ms = now + 1000;
                        }
                        if (j->state == JOB_INFLIGHT)
                                inflight++;
                        else if (j->state == JOB_READY && j->not_before_ms < next)
                                next = j->not_before_ms;
                }
                if (!active)
                        return ENRICHER_PULL_DONE;
                if (now >= deadline) {
                        if (p->auth_failed)
                                return ENRICHER_PULL_AUTH;
                        if (pull_is_outage(p))
                                return ENRICHER_PULL_OUTAGE;
                        return ENRICHER_PULL_AGAIN;
                }
                if (next > deadline)
                        next = deadline;
                if (inflight) {
                        dgql_run(p->e->gql, (long)(next - now));
                } else if (next > now) {
                        long ms            = (long)(next - now);
                        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
                        nanosleep(&ts, NULL);
                }
        }
}

void enricher_pull_retry(struct enricher_pull *p)
{
        for (struct pull_job *j = p->jobs; j; j = j->next)
                if (j->state == JOB_READY || j->state == JOB_PARKED) {
                        if (j->state == JOB_PARKED && !j->probe)
                                continue; /* the probe decides */
                        j->not_before_ms = 0;
                }
}

const char *enricher_pull_error(const struct enricher_pull *p)
{
        return p->error[0] ? p->error : "no answer from the Duro API";
}

void enricher_pull_free(struct enricher_pull *p)
{
        struct pull_job *j, *next;

        if (!p)
                return;
        /* Requests still in flight reference their jobs: finish them first. */
        while (dgql_pending(p->e->gql))
                dgql_run(p->e->gql, 1000);
        for (j = p->jobs; j; j = next) {
                next = j->next;
                free(j->idx);
                free(j->after);
                free(j);
        }
        free(p);
}
