/* dgql.c - GraphQL client on libcurl multi (see dgql.h). */
#include "dgql.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dbuf.h"
#include "dtime.h"

#define DGQL_MAX_RESPONSE (32 * 1024 * 1024)

struct dgql_req {
        struct dgql_req *next, *prev; /* queue (next only) or active list */
        struct dgql *c;
        CURL *easy;
        struct curl_slist *headers;
        char *body;
        struct dbuf resp;
        char retry_after[32];
        char curl_err[CURL_ERROR_SIZE];
        int64_t started_us;
        dgql_done_fn *done;
        void *opaque;
};

struct dgql {
        struct dgql_config cfg;
        char *url, *org, *lib;
        CURLM *multi;
        struct dgql_req *queue_head, *queue_tail; /* not yet started */
        struct dgql_req *active;                  /* started, not completed */
        int running;                              /* started, not completed */
        double tokens;                            /* rate limiter bucket */
        int64_t tokens_at_us;
        struct dgql_stats stats;
};

const char *dgql_outcome_name(enum dgql_outcome o)
{
        static const char *const names[] = {"ok", "rate_limited", "auth", "failed"};
        return (unsigned)o < 4 ? names[o] : "?";
}

void dgql_result_clear(struct dgql_result *res)
{
        if (res->data)
                json_decref(res->data);
        if (res->errors)
                json_decref(res->errors);
        res->data   = NULL;
        res->errors = NULL;
}

/* Seconds (integer or HTTP date are both allowed by HTTP; Duro sends seconds). */
static long dgql_parse_retry_after(const char *v)
{
        char *end;
        long s;

        if (!v || !*v)
                return -1;
        s = strtol(v, &end, 10);
        if (end == v || s < 0)
                return -1;
        if (s > 3600)
                s = 3600;
        return s * 1000;
}

/* A failed answer (not 200) may still be GraphQL's JSON: servers answer a document that
 * fails validation with 400 and {"errors":[...]}. Keeps those errors in res and the
 * first message in res->error, so that the caller can tell why. */
static void dgql_keep_errors(struct dgql_result *res, const char *body, size_t len)
{
        json_t *root = json_loadb(body ? body : "", len, 0, NULL);
        json_t *e    = json_object_get(root, "errors");
        json_t *first;
        const char *msg, *code;

        if (json_is_array(e) && json_array_size(e) > 0) {
                res->errors = json_incref(e);
                first       = json_array_get(e, 0);
                msg         = json_string_value(json_object_get(first, "message"));
                code        = json_string_value(
                           json_object_get(json_object_get(first, "extensions"), "code"));
                snprintf(res->error, sizeof(res->error),
                         "HTTP %ld: GraphQL error%s%s%s%s", res->http_status,
                         code ? " " : "", code ? code : "", msg ? ": " : "",
                         msg ? msg : "");
        }
        json_decref(root);
}

void dgql_classify(struct dgql_result *res, long http_status, const char *body,
                   size_t len, const char *retry_after)
{
        json_error_t jerr;
        json_t *root;
        size_t i;
        json_t *e;

        res->http_status    = http_status;
        res->retry_after_ms = -1;
        res->data           = NULL;
        res->errors         = NULL;
        if (http_status == 401 || http_status == 403) {
                res->outcome = DGQL_AUTH;
                snprintf(res->error, sizeof(res->error),
                         "HTTP %ld: the API key was refused", http_status);
                return;
        }
        if (http_status == 429) {
                res->outcome        = DGQL_RATE_LIMITED;
                res->retry_after_ms = dgql_parse_retry_after(retry_after);
                snprintf(res->error, sizeof(res->error), "HTTP 429: rate limited");
                return;
        }
        if (http_status != 200) {
                res->outcome = DGQL_FAILED;
                snprintf(res->error, sizeof(res->error), "HTTP %ld", http_status);
                dgql_keep_errors(res, body, len);
                return;
        }
        root = json_loadb(body ? body : "", len, 0, &jerr);
        if (!json_is_object(root)) {
                res->outcome = DGQL_FAILED;
                snprintf(res->error, sizeof(res->error),
                         "answer is not a JSON object: %s",
                         root ? "wrong type" : jerr.text);
                if (root)
                        json_decref(root);
                return;
        }
        res->data = json_incref(json_object_get(root, "data"));
        if (res->data && json_is_null(res->data)) {
                json_decref(res->data);
                res->data = NULL;
        }
        e = json_object_get(root, "errors");
        if (json_is_array(e) && json_array_size(e) > 0)
                res->errors = json_incref(e);
        json_decref(root);
        if (!res->errors) {
                res->outcome = res->data ? DGQL_OK : DGQL_FAILED;
                if (!res->data)
                        snprintf(res->error, sizeof(res->error),
                                 "answer has neither data nor errors");
                return;
        }
        res->outcome = DGQL_FAILED;
        json_array_foreach(res->errors, i, e)
        {
                json_t *ext      = json_object_get(e, "extensions");
                const char *code = json_string_value(json_object_get(ext, "code"));
                const char *msg  = json_string_value(json_object_get(e, "message"));
                if (i == 0)
                        snprintf(res->error, sizeof(res->error),
                                 "GraphQL error%s%s%s%s", code ? " " : "",
                                 code ? code : "", msg ? ": " : "", msg ? msg : "");
                if (code && !strcmp(code, "RATE_LIMITED")) {
                        json_t *ra   = json_object_get(ext, "retryAfter");
                        double secs  = json_number_value(ra);
                        res->outcome = DGQL_RATE_LIMITED;
                        /* Duro's answer sets this: clamp it, as the header is. */
                        res->retry_after_ms = !json_is_number(ra) || !(secs >= 0) ? -1
                                              : secs > 3600 ? 3600 * 1000L
                                                            : (long)(secs * 1000);
                        return;
                }
                if (code && !strcmp(code, "UNAUTHENTICATED"))
                        res->outcome = DGQL_AUTH;
        }
}

static size_t dgql_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct dgql_req *r = userdata;

        if (dbuf_append(&r->resp, ptr, size * nmemb))
                return 0; /* too large: curl aborts the transfer */
        return size * nmemb;
}

static size_t dgql_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
        struct dgql_req *r = userdata;
        size_t n           = size * nitems;

        if (n > 12 && !strncasecmp(buf, "Retry-After:", 12)) {
                size_t k = 12, o = 0;
                while (k < n && (buf[k] == ' ' || buf[k] == '\t'))
                        k++;
                while (k < n && buf[k] != '\r' && buf[k] != '\n' &&
                       o < sizeof(r->retry_after) - 1)
                        r->retry_after[o++] = buf[k++];
                r->retry_after[o] = '\0';
        }
        return n;
}

static void dgql_req_free(struct dgql_req *r)
{
        if (r->easy)
                curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->body);
        dbuf_free(&r->resp);
        free(r);
}

struct dgql *dgql_new(const struct dgql_config *cfg, char *err, size_t errsize)
{
        static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1,    2.5,   5,    10};
        struct dgql *c               = calloc(1, sizeof(*c));

        if (!c) {
                snprintf(err, errsize, "out of memory");
                return NULL;
        }
        c->cfg   = *cfg;
        c->url   = strdup(cfg->url);
        c->org   = cfg->organization ? strdup(cfg->organization) : NULL;
        c->lib   = cfg->library ? strdup(cfg->library) : NULL;
        c->multi = curl_multi_init();
        if (!c->url || !c->multi) {
                snprintf(err, errsize, "cannot set up libcurl");
                dgql_destroy(c);
                return NULL;
        }
        if (c->cfg.concurrency < 1)
                c->cfg.concurrency = 1;
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                          (long)c->cfg.concurrency);
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->cfg.concurrency);
        c->tokens       = c->cfg.concurrency;
        c->tokens_at_us = dtime_mono_us();
        dmetrics_hist_init(&c->stats.latency, bounds,
                           sizeof(bounds) / sizeof(bounds[0]));
        return c;
}

void dgql_destroy(struct dgql *c)
{
        struct dgql_req *r, *next;

        if (!c)
                return;
        for (r = c->queue_head; r; r = next) {
                next = r->next;
                dgql_req_free(r);
        }
        for (r = c->active; r; r = next) {
                next = r->next;
                curl_multi_remove_handle(c->multi, r->easy);
                dgql_req_free(r);
        }
        if (c->multi)
                curl_multi_cleanup(c->multi);
        free(c->url);
        free(c->org);
        free(c->lib);
        free(c);
}

int dgql_submit(struct dgql *c, const char *query, const char *opname,
                json_t *variables, dgql_done_fn *done, void *opaque)
{
        struct dgql_req *r = calloc(1, sizeof(*r));
        json_t *body;

        if (!r)
                return -1;
        body    = json_pack("{s:s, s:s?, s:O}", "query", query, "operationName", opname,
                            "variables", variables ? variables : json_null());
        r->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
        if (body)
                json_decref(body);
        if (!r->body) {
                free(r);
                return -1;
        }
        r->c      = c;
        r->done   = done;
        r->opaque = opaque;
        dbuf_init(&r->resp, DGQL_MAX_RESPONSE);
        if (c->queue_tail)
                c->queue_tail->next = r;
        else
                c->queue_head = r;
        c->queue_tail = r;
        return 0;
}

/* Sets up the easy handle of r. Returns 0 or -1. */
static int dgql_prepare(struct dgql *c, struct dgql_req *r)
{
        struct dsecrets_set *key = dsecrets_acquire(c->cfg.api_key);
        struct dbuf h;
        int rc = 0;

        r->easy = curl_easy_init();
        if (!r->easy) {
                dsecrets_release(key);
                return -1;
        }
        dbuf_init(&h, 0);
        r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
        r->headers = curl_slist_append(r->headers, "Accept: application/json");
        if (key->n > 0) {
                rc |= dbuf_append(&h, "x-api-key: ", 11);
                rc |= dbuf_append(&h, key->secret[0].key, key->secret[0].len);
                if (!rc)
                        r->headers = curl_slist_append(r->headers, dbuf_cstr(&h));
                memset(h.data, 0, h.len);
        }
        dbuf_free(&h);
        dsecrets_release(key);
        if (c->org) {
                char line[300];
                snprintf(line, sizeof(line), "x-organization: %s", c->org);
                r->headers = curl_slist_append(r->headers, line);
        }
        if (c->lib) {
                char line[300];
                snprintf(line, sizeof(line), "x-library: %s", c->lib);
                r->headers = curl_slist_append(r->headers, line);
        }
        curl_easy_setopt(r->easy, CURLOPT_URL, c->url);
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
        curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, dgql_write_cb);
        curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, dgql_header_cb);
        curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
        curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS,
                         c->cfg.timeout_ms < 5000 ? c->cfg.timeout_ms : 5000L);
        curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->curl_err);
        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
        curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        return rc ? -1 : 0;
}

/* Refills the token bucket; returns ms until the next token (0 when one is there). */
static long dgql_tokens(struct dgql *c)
{
        int64_t now = dtime_mono_us();

        if (c->cfg.rate_per_s <= 0)
                return 0;
        c->tokens += (double)(now - c->tokens_at_us) / 1e6 * c->cfg.rate_per_s;
        c->tokens_at_us = now;
        if (c->tokens > c->cfg.concurrency)
                c->tokens = c->cfg.concurrency;
        if (c->tokens >= 1)
                return 0;
        return (long)((1 - c->tokens) / c->cfg.rate_per_s * 1000) + 1;
}

static void dgql_complete(struct dgql *c, struct dgql_req *r, CURLcode code)
{
        struct dgql_result res;
        long status = 0;

        memset(&res, 0, sizeof(res));
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (code != CURLE_OK) {
                res.outcome        = DGQL_FAILED;
                res.http_status    = 0;
                res.retry_after_ms = -1;
                snprintf(res.error, sizeof(res.error), "%s",
                         r->curl_err[0] ? r->curl_err : curl_easy_strerror(code));
        } else {
                dgql_classify(&res, status, r->resp.data, r->resp.len,
                              r->retry_after[0] ? r->retry_after : NULL);
        }
        res.latency_us = dtime_mono_us() - r->started_us;
        atomic_fetch_add(&c->stats.requests, 1);
        atomic_fetch_add(&c->stats.by_outcome[res.outcome], 1);
        dmetrics_hist_observe_us(&c->stats.latency, (unsigned long long)res.latency_us);
        r->done(r->opaque, &res);
        dgql_result_clear(&res);
}

int dgql_run(struct dgql *c, long timeout_ms)
{
        int64_t deadline = dtime_mono_ms() + timeout_ms;

        for (;;) {
                long wait_ms, rate_wait = 0;
                int still = 0, left;
                CURLMsg *m;

                /* Start what concurrency and the rate allow. */
                while (c->queue_head && c->running < c->cfg.concurrency &&
                       (rate_wait = dgql_tokens(c)) == 0) {
                        struct dgql_req *r = c->queue_head;
                        c->queue_head      = r->next;
                        if (!c->queue_head)
                                c->queue_tail = NULL;
                        r->next = NULL;
                        if (dgql_prepare(c, r) ||
                            curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
                                struct dgql_result res;
                                memset(&res, 0, sizeof(res));
                                res.outcome        = DGQL_FAILED;
                                res.retry_after_ms = -1;
                                snprintf(res.error, sizeof(res.error),
                                         "cannot start the request");
                                r->done(r->opaque, &res);
                                dgql_req_free(r);
                                continue;
                        }
                        if (c->cfg.rate_per_s > 0)
                                c->tokens -= 1;
                        r->started_us = dtime_mono_us();
                        r->prev       = NULL;
                        r->next       = c->active;
                        if (c->active)
                                c->active->prev = r;
                        c->active = r;
                        c->running++;
                }
                curl_multi_perform(c->multi, &still);
                while ((m = curl_multi_info_read(c->multi, &left))) {
                        struct dgql_req *r = NULL;
                        if (m->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
                                          (char **)&r);
                        curl_multi_remove_handle(c->multi, m->easy_handle);
                        if (r->prev)
                                r->prev->next = r->next;
                        else
                                c->active = r->next;
                        if (r->next)
                                r->next->prev = r->prev;
                        c->running--;
                        dgql_complete(c, r, m->data.result);
                        dgql_req_free(r);
                }
                if (!c->queue_head && c->running == 0)
                        return 0;
                wait_ms = deadline - dtime_mono_ms();
                if (wait_ms <= 0)
                        return dgql_pending(c);
                if (c->queue_head && c->running < c->cfg.concurrency && rate_wait > 0 &&
                    rate_wait < wait_ms)
                        wait_ms = rate_wait;
                if (c->running > 0) {
                        if (wait_ms > 100)
                                wait_ms = 100;
                        curl_multi_poll(c->multi, NULL, 0, (int)wait_ms, NULL);
                } else if (wait_ms > 0) {
                        struct timespec ts = {wait_ms / 1000,
                                              (wait_ms % 1000) * 1000000};
                        nanosleep(&ts, NULL);
                }
        }
}

struct dgql_call_ctx {
        struct dgql_result *res;
        int done;
};

static void dgql_call_done(void *opaque, struct dgql_result *res)
{
        struct dgql_call_ctx *cc = opaque;

        *cc->res    = *res;
        res->data   = NULL; /* moved to the caller */
        res->errors = NULL;
        cc->done    = 1;
}

int dgql_call(struct dgql *c, const char *query, const char *opname, json_t *variables,
              struct dgql_result *res)
{
        struct dgql_call_ctx cc = {res, 0};

        memset(res, 0, sizeof(*res));
        if (dgql_submit(c, query, opname, variables, dgql_call_done, &cc))
                return -1;
        while (!cc.done)
                dgql_run(c, 1000);
        return 0;
}

int dgql_pending(const struct dgql *c)
{
        int n = c->running;

        for (const struct dgql_req *r = c->queue_head; r; r = r->next)
                n++;
        return n;
}

const struct dgql_stats *dgql_stats(const struct dgql *c)
{
        return &c->stats;
}
