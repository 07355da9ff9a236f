/* cli_reconcile.c - `duro-enricher reconcile`: the events Duro gave up on, written to
 * the raw topic after all. Duro retries a failed delivery for about 7h43m; an outage
 * longer than that loses events unless something looks. This reads the delivery logs
 * (`webhooks { getLogs }`, newest first, pages followed back to --since) of this
 * deployment's webhooks (DURO_RECONCILE_URL; unset: every webhook the key sees;
 * --webhook names others), takes the events none of whose deliveries was acknowledged
 * or answered 2xx on that webhook, reads the raw topic's duro-event-id headers from
 * since minus Duro's retry span (an event whose retries reach into the window may have
 * been published before it) minus DURO_CLOCK_SKEW_S, and writes only the events that
 * are absent, with their original event id, keyed and stamped as the bridge would (the
 * payload goes through the same dpayload rules), with duro-origin: reconcile. Where an
 * event and its resource sit in a log entry is the log table's business (dlogtable.h).
 * An event whose log names no resource (and holds no payload) cannot be written: it is
 * counted, with the advice to snapshot its kind.
 *
 * It keeps no progress of its own: its scan of the raw topic makes a rerun harmless,
 * and the enricher's dedupe set catches the one race left (a webhook that arrives
 * between the scan and the write). Its writes go in transactions
 * (transactional.id <group>-reconcile, transaction.timeout.ms 10 s), so a killed run
 * leaves nothing half-written for long, and a second run fences the first. */
#include "cli.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dadmin.h"
#include "devtable.h"
#include "dce.h"
#include "dkafka.h"
#include "dlog.h"
#include "dlogtable.h"
#include "dmetrics.h"
#include "dpayload.h"
#include "dschema.h"
#include "dtime.h"
#include "dtopics.h"
#include "dwire.h"

static const char rec_usage[] =
    "duro-enricher reconcile [--since T] [--webhook ID]... [--json]\n"
    "  reads the delivery logs of this deployment's webhooks back to T (RFC 3339, or "
    "an\n"
    "  age: 90m, 8h, 2d; default: the raw topic's retention) and writes to the raw\n"
    "  topic the events Duro gave up on that it does not hold\n"
    "settings: the enricher's Kafka and Duro API settings, DURO_RECONCILE_*,\n"
    "DURO_CLOCK_SKEW_S, DURO_LOG_TABLE, or their flags (--help lists them)";

#define REC_TXN_TIMEOUT_MS 10000 /* transaction.timeout.ms */
#define REC_CALL_MS        30000 /* init, commit, abort, reads, describe */
#define REC_TXN_RECORDS    500   /* records per transaction */
#define REC_TXN_ATTEMPTS   5     /* a transaction, before giving up */
#define REC_PAGE           100   /* log entries per page */
#define REC_BACKOFF_MAX_MS 30000 /* GraphQL retries */
/* Duro's retry span (5 s + 30 s + 2 m + 10 m + 30 m + 1 h + 2 h + 4 h = 7 h 42 m 35 s),
 * rounded up: an event retried inside the window may have been published before it */
#define REC_RETRY_SPAN_MS (8LL * 3600 * 1000)

struct rec_config {
        char *bootstrap, *raw_topic, *group, *event_table, *queries_dir;
        char *url, *log_table, *admin_listen;
        long long skew_s, graphql_rate, max_attempts, linger_s;
        struct cli_api api;
        int log_level;
};

#define REC_OPT(env, flag, type, def, min, max, field, help)                           \
        {                                                                              \
                env, flag, type, def, min, max, offsetof(struct rec_config, field), 0, \
                    help                                                               \
        }

static const struct dconf_opt rec_settings[] = {
    REC_OPT("KAFKA_BOOTSTRAP_SERVERS", "bootstrap-servers", DCONF_STRING,
            "127.0.0.1:9092", 0, 0, bootstrap, "Kafka bootstrap servers"),
    REC_OPT("DURO_RAW_TOPIC", "raw-topic", DCONF_STRING, "duro.webhooks.raw", 0, 0,
            raw_topic, "raw topic (read, and the events go there)"),
    REC_OPT("DURO_ENRICHER_GROUP", "group", DCONF_STRING, "duro-enricher", 0, 0, group,
            "names the transactional.id <group>-reconcile"),
    REC_OPT("DURO_EVENT_TABLE", "event-table", DCONF_STRING, NULL, 0, 0, event_table,
            "event table (keys and stamps each event; default: installed)"),
    REC_OPT("DURO_LOG_TABLE", "log-table", DCONF_STRING, NULL, 0, 0, log_table,
            "log table (where a log entry holds the event; default: installed)"),
    REC_OPT("DURO_QUERIES_DIR", "queries-dir", DCONF_STRING, NULL, 0, 0, queries_dir,
            "folder of the GraphQL documents (default: installed)"),
    REC_OPT("DURO_RECONCILE_URL", "reconcile-url", DCONF_STRING, NULL, 0, 0, url,
            "this deployment's webhook URL (unset: every webhook the key sees)"),
    REC_OPT("DURO_CLOCK_SKEW_S", "clock-skew-s", DCONF_INT, "600", 0, 86400, skew_s,
            "the raw topic is read from --since minus this"),
    REC_OPT("DURO_RECONCILE_ADMIN_LISTEN", "admin-listen", DCONF_LISTEN, NULL, 0, 0,
            admin_listen, "/metrics and /healthz while it runs (default: none)"),
    REC_OPT("DURO_RECONCILE_METRICS_LINGER_S", "metrics-linger-s", DCONF_INT, "0", 0,
            3600, linger_s,
            "keep /metrics up this long after the run (a scrape sees its counts)"),
    REC_OPT("DURO_GRAPHQL_RATE", "graphql-rate", DCONF_INT, "20", 0, 100000,
            graphql_rate, "requests per second at most (0: no limit)"),
    REC_OPT("DURO_GRAPHQL_MAX_ATTEMPTS", "graphql-max-attempts", DCONF_INT, "5", 1, 100,
            max_attempts, "attempts at a request, before the run fails"),
    CLI_API_OPTS(struct rec_config, api),
    REC_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "warn", 0, 0, log_level,
            "log level"),
};

struct rec_args {
        const char *since;
        struct cli_texts webhooks;
        int json;
};

static const struct cli_opt rec_opts[] = {
    {"--since", CLI_TEXT, offsetof(struct rec_args, since), 0, 0},
    {"--webhook", CLI_REPEAT, offsetof(struct rec_args, webhooks), 0, 0},
    {"--json", CLI_SWITCH, offsetof(struct rec_args, json), 0, 0},
};

static const char *const rec_subs[] = {NULL};

static const struct cli_cmd rec_cmd = {
    .name          = "duro-enricher reconcile",
    .usage         = rec_usage,
    .log_level_off = offsetof(struct rec_config, log_level),
    CLI_TABLES(rec_subs, rec_settings, rec_opts),
    .kafka = 1,
};

/* One event of one webhook, with what its log says about it. Strings owned. */
struct rec_event {
        char *id, *event, *webhook_id, *resource, *created_at;
        json_t *payload; /* owned: the delivered payload, when a log holds it */
        json_t *data;    /* owned: its data, when a log holds that */
        int delivered; /* a delivery to this webhook was acknowledged or answered 2xx */
        int present;   /* the raw topic holds it */
        int again;     /* another webhook's copy of an event already counted */
        int refused;   /* Kafka refused its record for good (too large) */
};

enum rec_result { REC_RECOVERED, REC_ALREADY, REC_LOST, REC_NRESULTS };

struct rec {
        struct cli *cli;
        struct rec_config *cfg;
        const struct rec_args *args;
        struct devtable events;
        struct dlogtable logs;
        char *q_list, *op_list, *q_logs, *op_logs;
        char txid[600];
        rd_kafka_t *p, *c, *w; /* producer, reader, watermarks (high) */
        int64_t since_ms, t0_ms;
        struct rec_event *ev;
        size_t nev, cap;
        json_t *index; /* "<webhook id> <event id>" -> its index in ev */
        json_t *want;  /* event id -> the index of its first undelivered copy */
        long long webhooks, entries, unnamed;
        long long result[REC_NRESULTS];
        long long lost_by_kind[DWIRE_NKINDS];
        atomic_ullong m_entries, m_scanned, m_requests;
        atomic_ullong m_result[REC_NRESULTS];
};

/* ------------------------------------------------------------------ metrics */

static int rec_metrics(void *opaque, struct dbuf *out)
{
        static const char *const labels[REC_NRESULTS] = {"result=\"recovered\"",
                                                         "result=\"already_there\"",
                                                         "result=\"not_recoverable\""};
        struct rec *s                                 = opaque;
        struct dmetrics_row rows[3 + REC_NRESULTS];
        size_t n = 0;

        rows[n++] = (struct dmetrics_row)DMETRICS_COUNTER_ROW(
            "duro_reconcile_log_entries_total", "Delivery log entries read.",
            atomic_load(&s->m_entries));
        for (int r = 0; r < REC_NRESULTS; r++)
                rows[n++] = (struct dmetrics_row)DMETRICS_SAMPLE_ROW(
                    "counter", "duro_reconcile_events_total",
                    r == 0 ? "Events no delivery of which succeeded, by what became "
                             "of them."
                           : NULL,
                    labels[r], (double)atomic_load(&s->m_result[r]));
        rows[n++] = (struct dmetrics_row)DMETRICS_COUNTER_ROW(
            "duro_reconcile_raw_records_scanned_total", "Raw records read.",
            atomic_load(&s->m_scanned));
        rows[n++] = (struct dmetrics_row)DMETRICS_COUNTER_ROW(
            "duro_reconcile_graphql_requests_total", "GraphQL requests sent.",
            atomic_load(&s->m_requests));
        return dmetrics_rows(out, rows, n);
}

/* ------------------------------------------------------------------ set-up */

/* Loads the tables and the two GraphQL documents. Returns -1 to go on, or the exit
 * status. */
static int rec_load(struct rec *s)
{
        static const char *const no_vars[]   = {NULL};
        static const char *const logs_vars[] = {"id", "first", "after", NULL};
        const char *dir =
            s->cfg->queries_dir ? s->cfg->queries_dir : dschema_queries_dir();
        char err[5000];

        if (devtable_load(&s->events, s->cfg->event_table, err, sizeof(err)) ||
            dlogtable_load(&s->logs, s->cfg->log_table, err, sizeof(err)))
                return cli_fail(CLI_USAGE, "bad setting: %s", err);
        if (!dir)
                return cli_fail(CLI_USAGE, "bad setting: DURO_QUERIES_DIR: not set and "
                                           "no installed GraphQL documents found");
        if (!(s->q_list = dschema_read_query(dir, "webhooks_list.graphql", no_vars,
                                             &s->op_list, err, sizeof(err))) ||
            !(s->q_logs = dschema_read_query(dir, "webhooks_logs.graphql", logs_vars,
                                             &s->op_logs, err, sizeof(err))))
                return cli_fail(CLI_USAGE, "bad setting: %s", err);
        if (!(s->index = json_object()))
                return cli_fail(CLI_FAIL, "out of memory");
        return -1;
}

/* --since, parsed (RFC 3339 or an age). Returns -1 to go on, or the exit status. */
static int rec_since(struct rec *s)
{
        if (s->args->since && cli_parse_time(s->args->since, &s->since_ms))
                return cli_fail(
                    CLI_USAGE,
                    "--since %s: want RFC 3339 (2024-12-20T10:30:00Z) or an "
                    "age (90s, 30m, 8h, 2d)",
                    s->args->since);
        return -1;
}

/* The window: --since, or now minus the raw topic's retention, and never before it.
 * Returns -1 to go on, or the exit status. */
static int rec_window(struct rec *s)
{
        long long retention;
        int64_t oldest;
        char err[600];

        if (dtopics_retention_ms(s->p, s->cfg->raw_topic, &retention, err, sizeof(err)))
                return cli_fail(CLI_FAIL, "%s", err);
        oldest = retention >= 0 ? dtime_now_ms() - retention : 0;
        if (!s->args->since) {
                s->since_ms = oldest;
                return -1;
        }
        if (s->since_ms < oldest)
                return cli_fail(
                    CLI_USAGE,
                    "--since %s: before the raw topic's retention (%lld h): "
                    "it no longer holds what was written then, so nothing "
                    "could be checked",
                    s->args->since, retention / 3600000);
        return -1;
}

/* ------------------------------------------------------------------ Duro */

/* Runs one request, retried (an outage, a rate limit, an error) up to
 * DURO_GRAPHQL_MAX_ATTEMPTS times with backoff. Returns its data (the caller's), or
 * NULL after saying why (*rc the exit status). */
static json_t *rec_ask(struct rec *s, const char *query, const char *op, json_t *vars,
                       int *rc)
{
        long backoff = 500;

        for (int attempt = 1;; attempt++) {
                struct dgql_result res;
                long wait;
                json_t *data;
                atomic_fetch_add(&s->m_requests, 1);
                if ((*rc = cli_api_request(s->cli, query, op, vars, &res)))
                        return NULL;
                if (res.outcome == DGQL_OK) {
                        data     = res.data;
                        res.data = NULL;
                        dgql_result_clear(&res);
                        return data;
                }
                if (res.outcome == DGQL_AUTH || attempt >= s->cfg->max_attempts) {
                        *rc = cli_api_report(&res);
                        dgql_result_clear(&res);
                        return NULL;
                }
                wait = res.outcome == DGQL_RATE_LIMITED && res.retry_after_ms >= 0
                           ? res.retry_after_ms
                           : backoff;
                dlog_warn("reconcile: %s: %s: retried in %ld ms", op, res.error, wait);
                dgql_result_clear(&res);
                if (backoff < REC_BACKOFF_MAX_MS)
                        backoff *= 2;
                if (cli_sleep(wait, NULL)) {
                        *rc = CLI_FAIL;
                        return NULL;
                }
        }
}

/* The first array in v: the webhooks (where the query put it is its business). */
static json_t *rec_hooks(json_t *v)
{
        const char *name;
        json_t *c;

        if (json_is_array(v))
                return v;
        json_object_foreach(v, name, c)
        {
                json_t *found =
                    json_is_object(c) || json_is_array(c) ? rec_hooks(c) : NULL;
                if (found)
                        return found;
        }
        return NULL;
}

/* 1 when the webhook with this id and url is one to read. */
static int rec_wanted(const struct rec *s, const char *id, const char *url)
{
        for (size_t i = 0; i < s->args->webhooks.n; i++)
                if (!strcmp(id, s->args->webhooks.v[i]))
                        return 1;
        if (s->cfg->url)
                return url && !strcmp(url, s->cfg->url);
        return s->args->webhooks.n == 0;
}

/* The event id of webhook webhook_id (created when new). NULL when out of memory. */
static struct rec_event *rec_event(struct rec *s, const char *webhook_id,
                                   const char *id)
{
        size_t wl = strlen(webhook_id), il = strlen(id);
        char *key = malloc(wl + il + 2);
        json_t *at;
        struct rec_event *e;

        if (!key)
                return NULL;
        memcpy(key, webhook_id, wl);
        key[wl] = ' ';
        memcpy(key + wl + 1, id, il + 1);
        if ((at = json_object_getn(s->index, key, wl + il + 1))) {
                free(key);
                return &s->ev[json_integer_value(at)];
        }
        if (s->nev == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 256;
                void *p    = realloc(s->ev, cap * sizeof(*s->ev));
                if (!p) {
                        free(key);
                        return NULL;
                }
                s->ev  = p;
                s->cap = cap;
        }
        e = &s->ev[s->nev];
        memset(e, 0, sizeof(*e));
        if (!(e->id = strdup(id)) ||
            json_object_setn_new_nocheck(s->index, key, wl + il + 1,
                                         json_integer((json_int_t)s->nev))) {
                free(e->id);
                free(key);
                return NULL;
        }
        free(key);
        s->nev++;
        return e;
}

/* Keeps what a log entry says of e that e does not know yet. Returns 0 or -1 (out of
 * memory). */
static int rec_learn(struct rec *s, struct rec_event *e, json_t *node,
                     const char *webhook_id)
{
        char *t;

        if (!e->event)
                e->event = dlogtable_string(&s->logs, DLOGTABLE_EVENT, node);
        if (!e->webhook_id && !(e->webhook_id = strdup(webhook_id)))
                return -1;
        if (!e->resource)
                e->resource = dlogtable_string(&s->logs, DLOGTABLE_RESOURCE, node);
        /* pages are newest first: the oldest entry's time is the closest to the
         * event's (when the log gives no created_at of its own); a table without a
         * created_at row means the entry's createdAt */
        if (s->logs.npaths[DLOGTABLE_CREATED_AT])
                t = dlogtable_string(&s->logs, DLOGTABLE_CREATED_AT, node);
        else if (json_is_string(json_object_get(node, "createdAt")))
                t = strdup(json_string_value(json_object_get(node, "createdAt")));
        else
                t = NULL;
        if (t) {
                free(e->created_at);
                e->created_at = t;
        }
        if (!e->payload)
                e->payload = dlogtable_get(&s->logs, DLOGTABLE_PAYLOAD, node);
        if (!e->data)
                e->data = dlogtable_get(&s->logs, DLOGTABLE_DATA, node);
        return 0;
}

/* One log entry. *older: it is from before since (the rest of the log is older).
 * Returns 0 or the exit status. */
static int rec_entry(struct rec *s, json_t *node, const char *webhook_id, int *older)
{
        json_t *code  = json_object_get(node, "responseCode");
        const char *t = json_string_value(json_object_get(node, "createdAt"));
        int64_t at;
        int ok = json_is_true(json_object_get(node, "isAcknowledged")) ||
                 (json_is_integer(code) && json_integer_value(code) >= 200 &&
                  json_integer_value(code) < 300);
        char *id;
        struct rec_event *e;

        if (t && !dtime_parse_rfc3339(t, strlen(t), &at) && at < s->since_ms) {
                *older = 1;
                return 0;
        }
        s->entries++;
        atomic_fetch_add(&s->m_entries, 1);
        if (!(id = dlogtable_string(&s->logs, DLOGTABLE_EVENT_ID, node))) {
                const char *lid = json_string_value(json_object_get(node, "id"));
                if (s->unnamed++ < 5)
                        dlog_warn("reconcile: webhook %s: log entry %s names no event "
                                  "id (see DURO_LOG_TABLE)",
                                  webhook_id, lid ? lid : "?");
                return 0;
        }
        e = rec_event(s, webhook_id, id);
        free(id);
        if (!e || rec_learn(s, e, node, webhook_id))
                return cli_fail(CLI_FAIL, "out of memory");
        e->delivered |= ok;
        return 0;
}

/* Reads webhook id's log back to since. Returns 0 or the exit status. */
static int rec_read_log(struct rec *s, const char *id)
{
        char *cursor = NULL;
        int older = 0, rc = 0;

        do {
                json_t *vars, *data, *conn, *edges, *info, *next, *edge;
                char *prev = cursor;
                size_t i;
                if (atomic_load(&cli_stop)) {
                        rc = CLI_FAIL;
                        break;
                }
                vars = json_pack("{s:s, s:i, s:o}", "id", id, "first", REC_PAGE,
                                 "after", cursor ? json_string(cursor) : json_null());
                if (!vars) {
                        rc = cli_fail(CLI_FAIL, "out of memory");
                        break;
                }
                data = rec_ask(s, s->q_logs, s->op_logs, vars, &rc);
                json_decref(vars);
                if (!data)
                        break;
                conn  = cli_connection(data);
                edges = json_object_get(conn, "edges");
                info  = json_object_get(conn, "pageInfo");
                next  = json_object_get(info, "endCursor");
                if (!conn) {
                        json_decref(data);
                        rc =
                            cli_fail(CLI_FAIL,
                                     "webhook %s: the log's answer holds no connection "
                                     "(edges, pageInfo)",
                                     id);
                        break;
                }
                json_array_foreach(edges, i, edge)
                {
                        json_t *node = json_object_get(edge, "node");
                        if (json_is_object(node) &&
                            (rc = rec_entry(s, node, id, &older)))
                                break;
                        if (older)
                                break;
                }
                cursor = NULL;
                if (!rc && !older &&
                    json_is_true(json_object_get(info, "hasNextPage"))) {
                        if (!json_is_string(next) || !json_array_size(edges))
                                rc = cli_fail(CLI_FAIL,
                                              "webhook %s: hasNextPage without an "
                                              "endCursor or entries",
                                              id);
                        else if (prev && !strcmp(prev, json_string_value(next)))
                                rc = cli_fail(CLI_FAIL,
                                              "webhook %s: the log's cursor does not "
                                              "move (%s)",
                                              id, prev);
                        else if (!(cursor = strdup(json_string_value(next))))
                                rc = cli_fail(CLI_FAIL, "out of memory");
                }
                free(prev);
                json_decref(data);
        } while (!rc && cursor);
        free(cursor);
        return rc;
}

/* 1 when hooks holds a webhook with this id. */
static int rec_listed(json_t *hooks, const char *id)
{
        json_t *h;
        size_t i;

        json_array_foreach(hooks, i, h)
        {
                const char *v = json_string_value(json_object_get(h, "id"));
                if (v && !strcmp(v, id))
                        return 1;
        }
        return 0;
}

/* Lists the webhooks and reads the logs of those wanted. Returns 0 or the status. */
static int rec_read_logs(struct rec *s)
{
        int rc        = 0;
        json_t *data  = rec_ask(s, s->q_list, s->op_list, NULL, &rc);
        json_t *hooks = data ? rec_hooks(data) : NULL, *h;
        size_t i;

        if (!data)
                return rc;
        json_array_foreach(hooks, i, h)
        {
                const char *id  = json_string_value(json_object_get(h, "id"));
                const char *url = json_string_value(json_object_get(h, "url"));
                if (!id || !rec_wanted(s, id, url))
                        continue;
                s->webhooks++;
                if ((rc = rec_read_log(s, id)))
                        break;
        }
        for (size_t k = 0; !rc && k < s->args->webhooks.n; k++)
                if (!rec_listed(hooks, s->args->webhooks.v[k]))
                        dlog_warn("reconcile: --webhook %s: the API key sees no such "
                                  "webhook",
                                  s->args->webhooks.v[k]);
        json_decref(data);
        if (!rc && s->webhooks == 0 && s->cfg->url)
                return cli_fail(CLI_FAIL,
                                "no webhook the API key sees has the URL "
                                "DURO_RECONCILE_URL=%s",
                                s->cfg->url);
        if (!rc && s->webhooks == 0)
                fprintf(stderr, "duro-enricher reconcile: no webhook to read\n");
        return rc;
}

/* Picks, per event id, the first copy no delivery of which succeeded (s->want); the
 * others of that id (the same event sent to another webhook) are not counted again.
 * Returns 0 or the exit status. */
static int rec_pick(struct rec *s)
{
        if (!(s->want = json_object()))
                return cli_fail(CLI_FAIL, "out of memory");
        for (size_t i = 0; i < s->nev; i++) {
                struct rec_event *e = &s->ev[i];
                if (e->delivered)
                        continue;
                if (json_object_getn(s->want, e->id, strlen(e->id))) {
                        e->again = 1;
                        continue;
                }
                if (json_object_setn_new_nocheck(s->want, e->id, strlen(e->id),
                                                 json_integer((json_int_t)i)))
                        return cli_fail(CLI_FAIL, "out of memory");
        }
        return 0;
}

/* ------------------------------------------------------------------ the raw topic */

static int rec_scan_take(void *opaque, rd_kafka_message_t *m)
{
        struct rec *s = opaque;
        rd_kafka_headers_t *h;
        const void *v;
        size_t len;
        json_t *at;

        atomic_fetch_add(&s->m_scanned, 1);
        if (!rd_kafka_message_headers(m, &h) &&
            !rd_kafka_header_get_last(h, DWIRE_H_EVENT_ID, &v, &len) && v &&
            (at = json_object_getn(s->want, v, len)))
                s->ev[json_integer_value(at)].present = 1;
        rd_kafka_message_destroy(m);
        return 0;
}

/* ------------------------------------------------------------------ writing */

/* The raw record of e: its value (malloc'd) and the payload's parse in *p (the
 * caller's: dpayload_free()). NULL when the log says too little to write it. */
static char *rec_value(struct rec *s, const struct rec_event *e, struct dpayload *p)
{
        const struct devtable_entry *en =
            e->event ? devtable_find(&s->events, e->event) : NULL;
        const char *rid = e->resource;
        char now[40];
        char *value;
        json_t *v;

        if (e->payload) {
                v = json_incref(e->payload);
        } else {
                if (!rid && en && e->data)
                        rid = devtable_resource_id(en, e->data, NULL);
                if (!e->event || !rid || !en || !en->nids)
                        return NULL;
                dtime_format_ms(now, sizeof(now), dtime_now_ms());
                v = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "id", e->id,
                              "webhook_id", e->webhook_id, "event", e->event,
                              "created_at", e->created_at ? e->created_at : now, "data",
                              en->ids[0], rid);
        }
        value = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        if (value)
                dpayload_parse(p, &s->events, value, strlen(value));
        return value;
}

/* Produces e's raw record (value owned by the record once produced). Returns 0 or
 * the error. */
static rd_kafka_resp_err_t rec_produce(struct rec *s, const struct rec_event *e,
                                       char *value, const struct dpayload *p)
{
        char now[40], hashkey[DPAYLOAD_HASHKEY_SIZE];
        const char *key       = dpayload_key(p, value, strlen(value), hashkey);
        const char *event     = p->event ? p->event : e->event;
        struct dkafka_rec rec = {0};
        rd_kafka_headers_t *h = rd_kafka_headers_new(10);
        rd_kafka_resp_err_t err;
        struct dtrace trace;

        dtime_format_ms(now, sizeof(now), dtime_now_ms());
        rd_kafka_header_add(h, DWIRE_H_CONTENT_TYPE, -1, DWIRE_CONTENT_JSON, -1);
        rd_kafka_header_add(h, DWIRE_H_RECEIVED_AT, -1, now, -1);
        if (event)
                rd_kafka_header_add(h, DWIRE_H_EVENT, -1, event, -1);
        rd_kafka_header_add(h, DWIRE_H_EVENT_ID, -1, e->id, -1);
        if (p->webhook_id || e->webhook_id)
                rd_kafka_header_add(h, DWIRE_H_WEBHOOK_ID, -1,
                                    p->webhook_id ? p->webhook_id : e->webhook_id, -1);
        rd_kafka_header_add(h, DWIRE_H_RESOURCE_KIND, -1, dwire_kind_name(p->kind), -1);
        rd_kafka_header_add(h, DWIRE_H_ORIGIN, -1, "reconcile", -1);
        if (!dtrace_new(&trace)) /* each recovered event starts its own trace */
                dce_trace_put(h, &trace, NULL);
        if (!p->valid)
                rd_kafka_header_add(h, DWIRE_H_INVALID, -1, p->reason, -1);
        rec.topic     = s->cfg->raw_topic;
        rec.key       = key;
        rec.key_len   = strlen(key);
        rec.value     = value;
        rec.value_len = strlen(value);
        rec.headers   = h;
        rec.msgflags  = RD_KAFKA_MSG_F_FREE;
        err           = dkafka_produce(s->p, &rec, -1);
        if (err)
                rd_kafka_headers_destroy(h);
        return err;
}

/* 1 for a produce error that writing the record again cannot cure. */
static int rec_permanent(rd_kafka_resp_err_t err)
{
        return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
               err == RD_KAFKA_RESP_ERR__INVALID_ARG || err == RD_KAFKA_RESP_ERR__FAIL;
}

/* Writes the events todo[0..n) in one transaction, retried when abortable. An event
 * Kafka refuses for good (too large) is marked refused and left out of the retry.
 * Returns 0 or the exit status. */
static int rec_commit(struct rec *s, const size_t *todo, size_t n)
{
        rd_kafka_error_t *error = NULL;
        int attempt;

        for (attempt = 1; attempt <= REC_TXN_ATTEMPTS; attempt++) {
                rd_kafka_resp_err_t err = 0;
                if ((error = rd_kafka_begin_transaction(s->p)))
                        break;
                for (size_t i = 0; i < n && !err; i++) {
                        struct rec_event *e = &s->ev[todo[i]];
                        struct dpayload p;
                        char *value;
                        if (e->refused)
                                continue;
                        memset(&p, 0, sizeof(p));
                        value = rec_value(s, e, &p);
                        err   = value ? rec_produce(s, e, value, &p)
                                      : RD_KAFKA_RESP_ERR__FAIL;
                        if (err) {
                                free(value);
                                if (rec_permanent(err)) {
                                        e->refused = 1;
                                        dlog_warn("reconcile: event %s not written: %s",
                                                  e->id, rd_kafka_err2str(err));
                                }
                        }
                        dpayload_free(&p);
                }
                if (!err) {
                        error = cli_commit_txn(s->p, REC_CALL_MS, REC_TXN_ATTEMPTS);
                        if (!error || !rd_kafka_error_txn_requires_abort(error))
                                break;
                } else {
                        error = rd_kafka_error_new(err, "producing: %s",
                                                   rd_kafka_err2str(err));
                }
                dlog_warn("reconcile: transaction aborted, written again (attempt "
                          "%d): %s",
                          attempt, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                error = cli_abort_txn(s->p, REC_CALL_MS, REC_TXN_ATTEMPTS);
                if (error || cli_sleep(200L * attempt, NULL))
                        break;
        }
        if (error) {
                int rc = cli_fail(CLI_FAIL, "writing the raw topic: %s%s",
                                  rd_kafka_error_is_fatal(error)
                                      ? "fenced or fatal Kafka error: "
                                      : "",
                                  rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return rc;
        }
        if (atomic_load(&cli_stop))
                return CLI_FAIL;
        if (attempt > REC_TXN_ATTEMPTS)
                return cli_fail(CLI_FAIL,
                                "writing the raw topic: %d transactions "
                                "aborted in a row; a rerun writes the rest",
                                REC_TXN_ATTEMPTS);
        return 0;
}

/* Counts e as not recoverable, by its kind. */
static void rec_lost(struct rec *s, const struct rec_event *e)
{
        const struct devtable_entry *en =
            e->event ? devtable_find(&s->events, e->event) : NULL;

        s->result[REC_LOST]++;
        s->lost_by_kind[en ? en->kind : DWIRE_KIND_UNKNOWN]++;
}

/* Writes todo[0..n) and counts them. Returns 0 or the exit status. */
static int rec_flush(struct rec *s, const size_t *todo, size_t n)
{
        int rc = rec_commit(s, todo, n);

        for (size_t i = 0; !rc && i < n; i++) {
                if (s->ev[todo[i]].refused)
                        rec_lost(s, &s->ev[todo[i]]);
                else
                        s->result[REC_RECOVERED]++;
        }
        return rc;
}

/* Sorts each event Duro gave up on into recovered, already there or not
 * recoverable, and writes the recovered ones. Returns 0 or the exit status. */
static int rec_write(struct rec *s)
{
        size_t *todo = calloc(REC_TXN_RECORDS, sizeof(*todo)), n = 0;
        int rc = 0;

        if (!todo)
                return cli_fail(CLI_FAIL, "out of memory");
        for (size_t i = 0; i < s->nev && !rc; i++) {
                struct rec_event *e = &s->ev[i];
                struct dpayload p;
                char *value;
                if (e->delivered || e->again)
                        continue;
                if (e->present) {
                        s->result[REC_ALREADY]++;
                        continue;
                }
                memset(&p, 0, sizeof(p));
                value = rec_value(s, e, &p);
                dpayload_free(&p);
                free(value);
                if (!value) {
                        rec_lost(s, e);
                        continue;
                }
                todo[n++] = i;
                if (n == REC_TXN_RECORDS) {
                        rc = atomic_load(&cli_stop) ? CLI_FAIL : rec_flush(s, todo, n);
                        n  = 0;
                }
        }
        if (!rc && n)
                rc = atomic_load(&cli_stop) ? CLI_FAIL : rec_flush(s, todo, n);
        for (int r = 0; r < REC_NRESULTS; r++)
                atomic_store(&s->m_result[r], (unsigned long long)s->result[r]);
        free(todo);
        return rc;
}

/* ------------------------------------------------------------------ the command */

static void rec_summary(const struct rec *s)
{
        double secs = (double)(dtime_mono_ms() - s->t0_ms) / 1000.0;
        long long failed =
            s->result[REC_RECOVERED] + s->result[REC_ALREADY] + s->result[REC_LOST];
        char since[40];

        dtime_format_ms(since, sizeof(since), s->since_ms);
        if (s->args->json) {
                json_t *o = json_pack(
                    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:f}",
                    "since", since, "webhooks", (json_int_t)s->webhooks, "log_entries",
                    (json_int_t)s->entries, "unnamed_entries", (json_int_t)s->unnamed,
                    "events_failed", (json_int_t)failed, "recovered",
                    (json_int_t)s->result[REC_RECOVERED], "already_there",
                    (json_int_t)s->result[REC_ALREADY], "not_recoverable",
                    (json_int_t)s->result[REC_LOST], "not_recoverable_by_kind", "item",
                    (json_int_t)s->lost_by_kind[DWIRE_KIND_ITEM], "change_order",
                    (json_int_t)s->lost_by_kind[DWIRE_KIND_CHANGE_ORDER], "unknown",
                    (json_int_t)s->lost_by_kind[DWIRE_KIND_UNKNOWN], "seconds", secs);
                if (o)
                        cli_print_json(o);
                json_decref(o);
        } else {
                printf("reconcile: since %s: %lld webhook(s), %lld log entries, %lld "
                       "event(s) not delivered: %lld recovered, %lld already there, "
                       "%lld not recoverable (%.1f s)\n",
                       since, s->webhooks, s->entries, failed, s->result[REC_RECOVERED],
                       s->result[REC_ALREADY], s->result[REC_LOST], secs);
        }
        fflush(stdout);
        if (s->unnamed)
                fprintf(stderr,
                        "duro-enricher reconcile: %lld log entries name no event id: "
                        "check DURO_LOG_TABLE against what the log holds\n",
                        s->unnamed);
        for (int k = DWIRE_KIND_ITEM; k < DWIRE_NKINDS; k++)
                if (s->lost_by_kind[k])
                        fprintf(stderr,
                                "duro-enricher reconcile: %lld %s event(s) not "
                                "recoverable (the log names no resource): run "
                                "duro-enricher snapshot --kinds %s\n",
                                s->lost_by_kind[k], dwire_kind_name((enum dwire_kind)k),
                                dwire_kind_name((enum dwire_kind)k));
        if (s->lost_by_kind[DWIRE_KIND_UNKNOWN])
                fprintf(stderr,
                        "duro-enricher reconcile: %lld event(s) not recoverable whose "
                        "kind is unknown (the log names neither the event's resource "
                        "nor a known event): run duro-enricher snapshot\n",
                        s->lost_by_kind[DWIRE_KIND_UNKNOWN]);
}

static int rec_run(struct rec *s)
{
        rd_kafka_error_t *error;
        int64_t from;
        int rc;

        snprintf(s->txid, sizeof(s->txid), "%s-reconcile", s->cfg->group);
        if ((rc = cli_producer_timeout(s->cli, s->cfg->bootstrap,
                                       "duro-enricher-reconcile", s->txid,
                                       REC_TXN_TIMEOUT_MS, &s->p)))
                return rc;
        if ((rc = rec_since(s)) >= 0 || (rc = rec_window(s)) >= 0)
                return rc;
        /* Fences a run still alive and aborts what a killed one left open, before the
         * raw topic is read. */
        if ((error = rd_kafka_init_transactions(s->p, REC_CALL_MS))) {
                rc = cli_fail(CLI_FAIL, "cannot start transactions as %s: %s", s->txid,
                              rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return rc;
        }
        if ((rc = rec_read_logs(s)) || (rc = rec_pick(s)))
                return rc;
        if ((rc = cli_consumer(s->cli, s->cfg->bootstrap, "duro-enricher-reconcile",
                               s->cfg->group, &s->c)) ||
            (rc = cli_watermarks(s->cli, s->cfg->bootstrap, "duro-enricher-reconcile",
                                 s->cfg->group, &s->w)))
                return rc;
        /* from before the window: an event retried inside it (its answer lost, or
         * written by an earlier run) may have been published before it */
        from = s->since_ms - REC_RETRY_SPAN_MS - s->cfg->skew_s * 1000;
        if (json_object_size(s->want) &&
            (rc = cli_read_topic(s->c, s->w, s->cfg->raw_topic, from > 0 ? from : 0,
                                 REC_CALL_MS * 4, rec_scan_take, s)))
                return rc;
        if ((rc = rec_write(s)))
                return rc;
        rec_summary(s);
        return 0;
}

int cli_reconcile_main(int argc, char **argv)
{
        static struct rec s; /* the signal handler's flag is static too */
        struct rec_config cfg = {0};
        struct rec_args a     = {0};
        struct dadmin *admin  = NULL;
        struct cli cli;
        char err[512];
        int rc = cli_start(&cli, &rec_cmd, argc, argv, &cfg, &a);

        memset(&s, 0, sizeof(s));
        s.cli   = &cli;
        s.cfg   = &cfg;
        s.args  = &a;
        s.t0_ms = dtime_mono_ms();
        if (rc < 0)
                rc = rec_load(&s);
        if (rc < 0) {
                cfg.api.rate = (double)cfg.graphql_rate;
                rc           = cli_api_client(&cli, &cfg.api);
                rc           = rc ? rc : -1;
        }
        if (rc < 0 && cfg.admin_listen) {
                admin = dadmin_start(cfg.admin_listen, cli_always_ready, rec_metrics,
                                     &s, err, sizeof(err));
                if (!admin)
                        rc = cli_fail(CLI_USAGE,
                                      "bad setting: DURO_RECONCILE_ADMIN_LISTEN: %s",
                                      err);
        }
        if (rc < 0) {
                cli_catch_signals();
                rc = rec_run(&s);
                if (rc && atomic_load(&cli_stop))
                        cli_fail(CLI_FAIL, "interrupted: what was committed stays; a "
                                           "rerun finds it and writes the rest");
                /* a run of seconds ends between two scrapes: its counts stay served
                 * a while (until then, or SIGTERM) */
                if (admin && cfg.linger_s > 0)
                        cli_sleep((long)cfg.linger_s * 1000, NULL);
        }
        cli_close_kafka(s.p, s.c, s.w, REC_CALL_MS);
        dadmin_stop(admin);
        for (size_t i = 0; i < s.nev; i++) {
                struct rec_event *e = &s.ev[i];
                free(e->id);
                free(e->event);
                free(e->webhook_id);
                free(e->resource);
                free(e->created_at);
                json_decref(e->payload);
                json_decref(e->data);
        }
        free(s.ev);
        json_decref(s.index);
        json_decref(s.want);
        free(s.q_list);
        free(s.op_list);
        free(s.q_logs);
        free(s.op_logs);
        dlogtable_free(&s.logs);
        devtable_free(&s.events);
        cli_end(&cli);
        return rc;
}
