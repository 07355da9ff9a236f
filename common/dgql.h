/* dgql.h - a GraphQL-over-HTTP client on libcurl's multi interface: several requests
 * at once over reused connections, a request-rate limit, and each answer classified
 * (ok, rate limited, auth failure, failed). Shared by duro-enricher and the
 * `duro-bridge webhooks` commands.
 *
 * Single-threaded: submit and run from one thread. Completion callbacks run inside
 * dgql_run(). The API key is read from a dsecrets holder (its first secret) for every
 * request, so a reloaded key file takes effect at once. */
#ifndef DGQL_H
#define DGQL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dmetrics.h"
#include "dsecrets.h"

struct dgql_config {
        const char *url;
        struct dsecrets *api_key; /* borrowed; first secret is the key */
        const char *organization; /* x-organization, may be NULL */
        const char *library;      /* x-library, may be NULL */
        long timeout_ms;          /* whole request */
        int concurrency;          /* requests in flight at most */
        double rate_per_s; /* requests started per second at most (0 = no limit) */
};

enum dgql_outcome {
        DGQL_OK = 0, /* HTTP 200, JSON, no errors */
        DGQL_RATE_LIMITED =
            1,           /* HTTP 429 or a RATE_LIMITED error; see retry_after_ms */
        DGQL_AUTH   = 2, /* HTTP 401/403 or UNAUTHENTICATED */
        DGQL_FAILED = 3, /* network, timeout, 5xx, bad JSON, GraphQL errors */
};

struct dgql_result {
        enum dgql_outcome outcome;
        long http_status;    /* 0 when there was no HTTP answer */
        char error[256];     /* why, when not DGQL_OK (never holds the API key) */
        json_t *data;        /* the "data" member, owned by the result; may be NULL */
        json_t *errors;      /* the "errors" array, owned; NULL when none */
        long retry_after_ms; /* for DGQL_RATE_LIMITED; -1 when not said */
        int64_t latency_us;
};

/* Counters, readable from any thread for /metrics. */
struct dgql_stats {
        atomic_ullong requests;
        atomic_ullong by_outcome[4];
        struct dmetrics_hist latency;
};

/* Called from dgql_run() when a request completes. res is freed after it returns;
 * take ownership of res->data by setting it to NULL. */
typedef void(dgql_done_fn)(void *opaque, struct dgql_result *res);

struct dgql;

struct dgql *dgql_new(const struct dgql_config *cfg, char *err, size_t errsize);
void dgql_destroy(struct dgql *c);

/* Queues {"query":query,"operationName":opname,"variables":variables}. variables is
 * borrowed (serialised now). Returns 0, or -1 when out of memory. */
int dgql_submit(struct dgql *c, const char *query, const char *opname,
                json_t *variables, dgql_done_fn *done, void *opaque);

/* Drives the transfers for up to timeout_ms (returns earlier once nothing is queued
 * or in flight), starting queued requests as concurrency and the rate allow. Returns
 * the number of requests still queued or in flight. */
int dgql_run(struct dgql *c, long timeout_ms);
int dgql_pending(const struct dgql *c);

/* Runs one request to completion (for command-line tools). On return *res holds the
 * answer (the caller clears it with dgql_result_clear()). Returns 0, or -1 when the
 * request could not even be queued. */
int dgql_call(struct dgql *c, const char *query, const char *opname, json_t *variables,
              struct dgql_result *res);

const struct dgql_stats *dgql_stats(const struct dgql *c);
const char *dgql_outcome_name(enum dgql_outcome o);

/* Classifies an HTTP answer (exposed for tests and fuzzing). Fills res from the status,
 * the body (len bytes) and the Retry-After header value (may be NULL). */
void dgql_classify(struct dgql_result *res, long http_status, const char *body,
                   size_t len, const char *retry_after);
void dgql_result_clear(struct dgql_result *res);

#endif
