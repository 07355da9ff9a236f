/* cli_snapshot.c - `duro-enricher snapshot`: the whole library into Kafka, exactly once
 * and resumable. It lists every id of each kind through Duro's GraphQL API (the
 * queries snapshot_components.graphql and snapshot_change_orders.graphql, pages
 * followed) and writes one synthetic ping per id to the raw topic, as a webhook would
 * arrive (ITEM_SNAPSHOT / CO_SNAPSHOT, keyed by the resource id and stamped from the
 * event table, duro-origin: snapshot, duro-snapshot-id: <run>); the enricher then pulls
 * each resource and updates the state topics. Then it sweeps: every live key of the
 * kind's state topic that the listing did not return gets a ping too, so that Duro's
 * not_found answer tombstones it (a delete whose webhook was lost).
 *
 * Exactly once: its own transactional producer (transactional.id
 * <group>-snapshot-<run>, never the enricher's; transaction.timeout.ms 10 s),
 * initialised before the run's progress is read; one page per transaction, fetched
 * before the transaction begins, with the page's progress (phase, cursor, counts)
 * written in the same transaction to the progress topic under the key
 * snapshot:<run>:<kind>. A rerun with the same id aborts what a killed run left open
 * (init_transactions fences it), reads the progress, recovers the ids already written
 * from the raw topic (records since the run started that carry its id) and goes on; a
 * finished run says so and exits 0.
 *
 * Paced at DURO_SNAPSHOT_RATE ids/s so that live webhooks queue behind seconds of
 * pings; listing requests obey DURO_GRAPHQL_RATE and are retried as the enricher
 * retries (network errors, timeouts, 429, 5xx and RATE_LIMITED without limit, with
 * backoff; other GraphQL errors DURO_GRAPHQL_MAX_ATTEMPTS times). A cursor Duro
 * refuses on resume asks for a new run. */
#include "cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dadmin.h"
#include "devtable.h"
#include "dce.h"
#include "dkafka.h"
#include "dlog.h"
#include "dmetrics.h"
#include "dschema.h"
#include "dtime.h"
#include "dwire.h"

static const char snap_usage[] =
    "duro-enricher snapshot [--kinds item,change_order] [--id RUN] [--json]\n"
    "  lists every item and change order through Duro's API, writes one ping per id\n"
    "  to the raw topic (the enricher pulls and publishes them), then pings the state\n"
    "  topic's keys that the listing lacked; a rerun with the same --id continues\n"
    "settings: the enricher's Kafka and Duro API settings, DURO_SNAPSHOT_*, or their\n"
    "flags (--help lists them)";

#define SNAP_TXN_TIMEOUT_MS 10000  /* transaction.timeout.ms */
#define SNAP_CALL_MS        30000  /* init, commit, abort, reads */
#define SNAP_WAIT_MS        120000 /* a resume read held back by an open transaction */
#define SNAP_TXN_ATTEMPTS   5      /* a page's transaction, before giving up */
#define SNAP_BACKOFF_MAX_MS 30000  /* listing retries */
#define SNAP_ID_MAX         512    /* longest resource id taken from a listing */
#define SNAP_RUN_MAX        64     /* longest run id */

struct snap_config {
        char *bootstrap, *raw_topic, *group, *event_table;
        int state_topics;
        char *state_template, *progress_topic, *queries_dir;
        char *run, *kinds, *admin_listen;
        long long rate, page_size, graphql_rate, max_attempts;
        struct cli_api api;
        int log_level;
};

#define SNAP_OPT(env, flag, type, def, min, max, field, help)                          \
        {                                                                              \
                env, flag, type, def, min, max, offsetof(struct snap_config, field),   \
                    0, help                                                            \
        }

static const struct dconf_opt snap_settings[] = {
    SNAP_OPT("KAFKA_BOOTSTRAP_SERVERS", "bootstrap-servers", DCONF_STRING,
             "127.0.0.1:9092", 0, 0, bootstrap, "Kafka bootstrap servers"),
    SNAP_OPT("DURO_RAW_TOPIC", "raw-topic", DCONF_STRING, "duro.webhooks.raw", 0, 0,
             raw_topic, "raw topic (the pings go there)"),
    SNAP_OPT("DURO_ENRICHER_GROUP", "group", DCONF_STRING, "duro-enricher", 0, 0, group,
             "names the transactional.id <group>-snapshot-<run>"),
    SNAP_OPT("DURO_EVENT_TABLE", "event-table", DCONF_STRING, NULL, 0, 0, event_table,
             "event table (keys and stamps each ping; default: installed)"),
    SNAP_OPT("DURO_STATE_TOPICS", "state-topics", DCONF_BOOL, "true", 0, 0,
             state_topics, "sweep the state topics (false: list only)"),
    SNAP_OPT("DURO_STATE_TOPIC_TEMPLATE", "state-topic-template", DCONF_STRING,
             "duro.state.{kind}", 0, 0, state_template, "state topic per kind"),
    SNAP_OPT("DURO_PROGRESS_TOPIC", "progress-topic", DCONF_STRING,
             "duro.enricher.progress", 0, 0, progress_topic,
             "progress topic (key snapshot:<run>:<kind>)"),
    SNAP_OPT("DURO_QUERIES_DIR", "queries-dir", DCONF_STRING, NULL, 0, 0, queries_dir,
             "folder of the GraphQL documents (default: installed)"),
    SNAP_OPT("DURO_SNAPSHOT_ID", "id", DCONF_STRING, NULL, 0, 0, run,
             "run id ([A-Za-z0-9._-], at most 64; default: the time now)"),
    SNAP_OPT("DURO_SNAPSHOT_KINDS", "kinds", DCONF_STRING, "item,change_order", 0, 0,
             kinds, "kinds to snapshot, comma-separated"),
    SNAP_OPT("DURO_SNAPSHOT_RATE", "snapshot-rate", DCONF_INT, "200", 0, 1000000, rate,
             "ids written per second at most (0: no limit)"),
    SNAP_OPT("DURO_SNAPSHOT_PAGE_SIZE", "snapshot-page-size", DCONF_INT, "100", 1,
             10000, page_size, "ids per listing page, and per transaction"),
    SNAP_OPT("DURO_SNAPSHOT_ADMIN_LISTEN", "admin-listen", DCONF_LISTEN, NULL, 0, 0,
             admin_listen, "/metrics and /healthz while it runs (default: none)"),
    SNAP_OPT("DURO_GRAPHQL_RATE", "graphql-rate", DCONF_INT, "20", 0, 100000,
             graphql_rate, "listing requests per second at most (0: no limit)"),
    SNAP_OPT("DURO_GRAPHQL_MAX_ATTEMPTS", "graphql-max-attempts", DCONF_INT, "5", 1,
             100, max_attempts, "attempts at a page Duro answers with an error"),
    CLI_API_OPTS(struct snap_config, api),
    SNAP_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "warn", 0, 0, log_level,
             "log level"),
};

struct snap_args {
        int json;
};

static const struct cli_opt snap_opts[] = {
    {"--json", CLI_SWITCH, offsetof(struct snap_args, json), 0, 0},
};

static const char *const snap_subs[] = {NULL};

static const struct cli_cmd snap_cmd = {
    .name          = "duro-enricher snapshot",
    .usage         = snap_usage,
    .log_level_off = offsetof(struct snap_config, log_level),
    CLI_TABLES(snap_subs, snap_settings, snap_opts),
    .kafka = 1,
};

/* ------------------------------------------------------------------ a string set */

/* A set of strings (the ids a run wrote; a state topic's live keys): open addressing,
 * linear probing, deleted slots marked with snap_gone. Owns its strings. */
struct snap_set {
        char **slot;
        size_t cap, n, used; /* used: n plus deleted slots */
};

static char snap_gone[1];

static uint64_t snap_hash(const char *s, size_t len)
{
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
        return h;
}

/* The slot of s (len bytes), or of the first free one on its probe. */
static size_t snap_set_slot(const struct snap_set *set, const char *s, size_t len)
{
        size_t i = (size_t)snap_hash(s, len) & (set->cap - 1), gone = SIZE_MAX;

        for (;; i = (i + 1) & (set->cap - 1)) {
                char *v = set->slot[i];
                if (!v)
                        return gone != SIZE_MAX ? gone : i;
                if (v == snap_gone) {
                        if (gone == SIZE_MAX)
                                gone = i;
                } else if (!strncmp(v, s, len) && v[len] == '\0') {
                        return i;
                }
        }
}

static int snap_set_has(const struct snap_set *set, const char *s, size_t len)
{
        char *v;

        if (!set->cap)
                return 0;
        v = set->slot[snap_set_slot(set, s, len)];
        return v && v != snap_gone;
}

static int snap_set_grow(struct snap_set *set)
{
        struct snap_set big = {0};

        big.cap  = set->cap ? set->cap * 2 : 1024;
        big.slot = calloc(big.cap, sizeof(*big.slot));
        if (!big.slot)
                return -1;
        for (size_t i = 0; i < set->cap; i++) {
                char *v = set->slot[i];
                if (v && v != snap_gone) {
                        big.slot[snap_set_slot(&big, v, strlen(v))] = v;
                        big.n++;
                }
        }
        big.used = big.n;
        free(set->slot);
        *set = big;
        return 0;
}

/* Adds s (len bytes, copied). Returns 1 when added, 0 when it was there, -1 when out
 * of memory. */
static int snap_set_add(struct snap_set *set, const char *s, size_t len)
{
        size_t i;
        char *v;

        if ((set->used + 1) * 2 > set->cap && snap_set_grow(set))
                return -1;
        i = snap_set_slot(set, s, len);
        if (set->slot[i] && set->slot[i] != snap_gone)
                return 0;
        if (!(v = malloc(len + 1)))
                return -1;
        memcpy(v, s, len);
        v[len] = '\0';
        if (!set->slot[i])
                set->used++;
        set->slot[i] = v;
        set->n++;
        return 1;
}

static void snap_set_del(struct snap_set *set, const char *s, size_t len)
{
        size_t i;

        if (!set->cap)
                return;
        i = snap_set_slot(set, s, len);
        if (set->slot[i] && set->slot[i] != snap_gone) {
                free(set->slot[i]);
                set->slot[i] = snap_gone;
                set->n--;
        }
}

static void snap_set_free(struct snap_set *set)
{
        for (size_t i = 0; i < set->cap; i++)
                if (set->slot[i] != snap_gone)
                        free(set->slot[i]);
        free(set->slot);
        memset(set, 0, sizeof(*set));
}

/* ------------------------------------------------------------------ the run */

enum snap_phase { SNAP_LIST = 0, SNAP_SWEEP = 1, SNAP_DONE = 2 };
static const char *const snap_phase_names[] = {"list", "sweep", "done"};

/* One kind of resource in the run, and its progress as last committed. */
struct snap_kind {
        enum dwire_kind kind;
        const char *event;      /* the ping's event: ITEM_SNAPSHOT, CO_SNAPSHOT */
        const char *query_file; /* its listing query in DURO_QUERIES_DIR */
        int wanted;             /* named by DURO_SNAPSHOT_KINDS */
        const struct devtable_entry *entry; /* the event's, in the table */
        char *query, *op, *state_topic;
        enum snap_phase phase;
        char *cursor; /* the last committed page's endCursor; NULL: the start */
        long long listed, written, swept;
        int64_t started_ms;   /* when the run first wrote this kind */
        int resumed;          /* progress was found */
        int erased;           /* its progress record was deleted (a tombstone) */
        struct snap_set done; /* the ids the run wrote (pings are never repeated) */
};

struct snap_metrics {
        atomic_ullong listed[DWIRE_NKINDS], written[DWIRE_NKINDS], swept[DWIRE_NKINDS];
        atomic_ullong requests, retries, txns, aborts;
        atomic_int phase[DWIRE_NKINDS];
};

struct snap {
        struct cli *cli;
        struct snap_config *cfg;
        const struct snap_args *args;
        struct devtable events;
        struct snap_kind k[DWIRE_NKINDS]; /* indexed by kind; [0] unused */
        char run[SNAP_RUN_MAX + 1];
        char txid[600];
        rd_kafka_t *p, *c, *w; /* producer, reader, watermarks (high) */
        int64_t t0_ms;         /* this process's start (mono) */
        int64_t pace_t0;       /* when this process began writing (mono), 0: not yet */
        long long paced;       /* ids this process wrote, for the pace */
        int tty;               /* stderr is a terminal: draw the progress line */
        atomic_int cancel;     /* the prefetch is not wanted any more */
        struct snap_metrics m;
};

/* Says (once, from whichever thread) that the run was interrupted; returns 1. */
static int snap_stopped(const struct snap *s)
{
        static atomic_int said;

        if (atomic_exchange(&said, 1))
                return CLI_FAIL;
        return cli_fail(CLI_FAIL,
                        "interrupted: what was committed stays; rerun with --id %s to "
                        "continue",
                        s->run);
}

/* ------------------------------------------------------------------ metrics */

static int snap_metrics(void *opaque, struct dbuf *out)
{
        struct snap *s                                = opaque;
        static const char *const labels[DWIRE_NKINDS] = {
            "kind=\"unknown\"", "kind=\"item\"", "kind=\"change_order\""};
        struct dmetrics_row rows[4 + 4 * 2];
        size_t n = 0;

        for (int f = 0; f < 4; f++)
                for (int k = DWIRE_KIND_ITEM; k < DWIRE_NKINDS; k++) {
                        static const char *const names[] = {
                            "duro_snapshot_ids_listed_total",
                            "duro_snapshot_ids_written_total",
                            "duro_snapshot_ids_swept_total", "duro_snapshot_phase"};
                        static const char *const helps[] = {
                            "Ids the listing returned, by kind (this process).",
                            "Pings written to the raw topic for listed ids, by kind.",
                            "Pings written for state-topic keys the listing lacked.",
                            "Where each kind stands: 0 list, 1 sweep, 2 done."};
                        double v  = f == 0   ? (double)atomic_load(&s->m.listed[k])
                                    : f == 1 ? (double)atomic_load(&s->m.written[k])
                                    : f == 2 ? (double)atomic_load(&s->m.swept[k])
                                             : (double)atomic_load(&s->m.phase[k]);
                        rows[n++] = (struct dmetrics_row)DMETRICS_SAMPLE_ROW(
                            f == 3 ? "gauge" : "counter", names[f],
                            k == DWIRE_KIND_ITEM ? helps[f] : NULL, labels[k], v);
                }
        rows[n++] = (struct dmetrics_row)DMETRICS_COUNTER_ROW(
            "duro_snapshot_graphql_requests_total", "Listing requests sent.",
            atomic_load(&s->m.requests));
        rows[n++] = (struct dmetrics_row)DMETRICS_COUNTER_ROW(
            "duro_snapshot_graphql_retries_total",
            "Listing requests retried (outage, rate limit, error).",
            atomic_load(&s->m.retries));
        rows[n++] = (struct dmetrics_row)DMETRICS_COUNTER_ROW(
            "duro_snapshot_transactions_total", "Transactions committed.",
            atomic_load(&s->m.txns));
        rows[n++] = (struct dmetrics_row)DMETRICS_COUNTER_ROW(
            "duro_snapshot_transaction_aborts_total",
            "Transactions aborted and retried.", atomic_load(&s->m.aborts));
        return dmetrics_rows(out, rows, n);
}

/* ------------------------------------------------------------------ set-up */

/* Checks the run id (or makes one from the time now) and the kinds. Returns -1 to go
 * on, or the exit status. */
static int snap_check(struct snap *s)
{
        const char *r = s->cfg->run;
        const char *p = s->cfg->kinds;

        if (r) {
                size_t n = strlen(r);
                if (!n || n > SNAP_RUN_MAX ||
                    strspn(r, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789._-") != n)
                        return cli_fail(
                            CLI_USAGE,
                            "bad setting: DURO_SNAPSHOT_ID: want 1 to %d of "
                            "A-Z a-z 0-9 . _ -",
                            SNAP_RUN_MAX);
                memcpy(s->run, r, n + 1);
        } else {
                time_t now = time(NULL);
                struct tm tm;
                gmtime_r(&now, &tm);
                strftime(s->run, sizeof(s->run), "%Y%m%dT%H%M%SZ", &tm);
        }
        while (*p) {
                size_t n = strcspn(p, ",");
                enum dwire_kind k;
                if (dwire_kind_parse(p, n, &k) || k == DWIRE_KIND_UNKNOWN)
                        return cli_fail(
                            CLI_USAGE,
                            "bad setting: DURO_SNAPSHOT_KINDS: unknown kind "
                            "'%.*s' (item, change_order)",
                            (int)n, p);
                s->k[k].wanted = 1;
                p += n + (p[n] == ',');
        }
        if (!s->k[DWIRE_KIND_ITEM].wanted && !s->k[DWIRE_KIND_CHANGE_ORDER].wanted)
                return cli_fail(CLI_USAGE, "bad setting: DURO_SNAPSHOT_KINDS: empty");
        return -1;
}

/* Loads the event table and each wanted kind's listing query and state topic name.
 * Returns -1 to go on, or the exit status. */
static int snap_load(struct snap *s)
{
        static const char *const vars[]   = {"first", "after", NULL};
        static const char *const events[] = {NULL, "ITEM_SNAPSHOT", "CO_SNAPSHOT"};
        static const char *const files[]  = {NULL, "snapshot_components.graphql",
                                             "snapshot_change_orders.graphql"};
        const char *dir =
            s->cfg->queries_dir ? s->cfg->queries_dir : dschema_queries_dir();
        char err[5000];

        if (devtable_load(&s->events, s->cfg->event_table, err, sizeof(err)))
                return cli_fail(CLI_USAGE, "bad setting: %s", err);
        if (s->cfg->state_topics && !strstr(s->cfg->state_template, "{kind}"))
                return cli_fail(
                    CLI_USAGE,
                    "bad setting: DURO_STATE_TOPIC_TEMPLATE=%s: must contain "
                    "{kind}",
                    s->cfg->state_template);
        if (!dir)
                return cli_fail(CLI_USAGE, "bad setting: DURO_QUERIES_DIR: not set and "
                                           "no installed GraphQL documents found");
        for (int i = DWIRE_KIND_ITEM; i < DWIRE_NKINDS; i++) {
                struct snap_kind *k = &s->k[i];
                k->kind             = (enum dwire_kind)i;
                k->event            = events[i];
                k->query_file       = files[i];
                if (!k->wanted)
                        continue;
                /* the snapshot events are built into every table: their kind and id
                 * field are fixed, only their topic may differ */
                k->entry = devtable_find(&s->events, k->event);
                if (!k->entry || k->entry->kind != k->kind || !k->entry->nids)
                        return cli_fail(CLI_USAGE,
                                        "bad setting: the event table has no "
                                        "usable entry for %s",
                                        k->event);
                k->query = dschema_read_query(dir, k->query_file, vars, &k->op, err,
                                              sizeof(err));
                if (!k->query)
                        return cli_fail(CLI_USAGE, "bad setting: %s", err);
                k->state_topic = dwire_state_topic(s->cfg->state_template, k->kind);
                if (!k->state_topic)
                        return cli_fail(CLI_FAIL, "out of memory");
        }
        return -1;
}

/* ------------------------------------------------------------------ progress */

/* The progress key of kind k: snapshot:<run>:<kind>. */
static void snap_key(const struct snap *s, const struct snap_kind *k, char *buf,
                     size_t size)
{
        snprintf(buf, size, "snapshot:%s:%s", s->run, dwire_kind_name(k->kind));
}

/* The progress record's value after a page, as JSON text (malloc'd). */
static char *snap_progress_value(const struct snap *s, const struct snap_kind *k,
                                 enum snap_phase phase, const char *cursor,
                                 long long listed, long long written, long long swept)
{
        char started[40], now[40];
        json_t *v;
        char *text;

        dtime_format_ms(started, sizeof(started), k->started_ms);
        dtime_format_ms(now, sizeof(now), dtime_now_ms());
        v    = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:s, s:I, s:s}",
                         "schema", "duro.snapshot-progress.v1", "run", s->run, "kind",
                         dwire_kind_name(k->kind), "phase", snap_phase_names[phase],
                         "cursor", cursor ? json_string(cursor) : json_null(), "listed",
                         (json_int_t)listed, "written", (json_int_t)written, "swept",
                         (json_int_t)swept, "started_at", started, "started_ms",
                         (json_int_t)k->started_ms, "updated_at", now);
        text = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        return text;
}

/* Takes the progress record of one of the run's kinds (the last one wins). */
static int snap_progress_take(void *opaque, rd_kafka_message_t *m)
{
        struct snap *s = opaque;
        char key[256];

        for (int i = DWIRE_KIND_ITEM; i < DWIRE_NKINDS; i++) {
                struct snap_kind *k = &s->k[i];
                json_t *v, *cur;
                const char *phase = NULL;
                json_int_t listed = 0, written = 0, swept = 0, started = 0;
                snap_key(s, k, key, sizeof(key));
                if (!m->key || m->key_len != strlen(key) ||
                    memcmp(m->key, key, m->key_len))
                        continue;
                free(k->cursor);
                k->cursor  = NULL;
                k->resumed = 0;
                k->phase   = SNAP_LIST;
                k->listed = k->written = k->swept = 0;
                k->erased                         = !m->payload;
                if (k->erased) /* someone deleted it: nothing says what is written */
                        break;
                v = json_loadb(m->payload, m->len, 0, NULL);
                if (!v ||
                    json_unpack(v, "{s:s, s:o, s:I, s:I, s:I, s:I}", "phase", &phase,
                                "cursor", &cur, "listed", &listed, "written", &written,
                                "swept", &swept, "started_ms", &started)) {
                        json_decref(v);
                        rd_kafka_message_destroy(m);
                        return cli_fail(CLI_FAIL,
                                        "the progress record %s in %s is not one of "
                                        "ours: start a new run (--id)",
                                        key, s->cfg->progress_topic);
                }
                k->phase = !strcmp(phase, "done")    ? SNAP_DONE
                           : !strcmp(phase, "sweep") ? SNAP_SWEEP
                                                     : SNAP_LIST;
                if (json_is_string(cur))
                        k->cursor = strdup(json_string_value(cur));
                k->listed     = listed;
                k->written    = written;
                k->swept      = swept;
                k->started_ms = started;
                k->resumed    = 1;
                json_decref(v);
                break;
        }
        rd_kafka_message_destroy(m);
        return 0;
}

/* What recovering the written ids looks at. */
struct snap_recover {
        struct snap *s;
        size_t run_len;
};

/* Takes a raw record the run wrote (its duro-snapshot-id) into its kind's set. */
static int snap_recover_take(void *opaque, rd_kafka_message_t *m)
{
        struct snap_recover *r = opaque;
        struct snap *s         = r->s;
        rd_kafka_headers_t *h  = NULL;
        const void *run = NULL, *kind = NULL;
        size_t rlen = 0, klen = 0;
        enum dwire_kind k;
        int rc = 0;

        if (!rd_kafka_message_headers(m, &h) && m->key && m->key_len &&
            !memchr(m->key, '\0', m->key_len) &&
            !rd_kafka_header_get_last(h, DWIRE_H_SNAPSHOT_ID, &run, &rlen) && run &&
            rlen == r->run_len && !memcmp(run, s->run, rlen) &&
            !rd_kafka_header_get_last(h, DWIRE_H_RESOURCE_KIND, &kind, &klen) && kind &&
            !dwire_kind_parse(kind, klen, &k) && s->k[k].wanted &&
            snap_set_add(&s->k[k].done, m->key, m->key_len) < 0)
                rc = cli_fail(CLI_FAIL, "out of memory");
        rd_kafka_message_destroy(m);
        return rc;
}

/* Reads the run's progress, and when it was under way, the ids it wrote. Returns 0
 * or the exit status. */
static int snap_resume(struct snap *s)
{
        struct snap_recover r = {s, strlen(s->run)};
        int64_t since         = INT64_MAX;
        /* Both reads go to the high watermarks: a transaction still open on the
         * topic (a killed enricher's, another run's) holds back what was committed
         * after it, and this must see all of it. */
        int rc = cli_read_topic(s->c, s->w, s->cfg->progress_topic, -1, SNAP_WAIT_MS,
                                snap_progress_take, s);

        for (int i = DWIRE_KIND_ITEM; !rc && i < DWIRE_NKINDS; i++) {
                struct snap_kind *k = &s->k[i];
                if (k->wanted && k->erased)
                        return cli_fail(CLI_FAIL,
                                        "the progress of run %s (%s) was deleted from "
                                        "%s: start a new run with another --id",
                                        s->run, dwire_kind_name(k->kind),
                                        s->cfg->progress_topic);
                if (k->wanted && k->resumed && k->phase != SNAP_DONE &&
                    k->started_ms < since)
                        since = k->started_ms;
        }
        if (rc || since == INT64_MAX)
                return rc;
        /* The pings carry the time they were written; a minute's margin for the
         * clocks of the machines a run moved between. */
        rc = cli_read_topic(s->c, s->w, s->cfg->raw_topic, since - 60000, SNAP_WAIT_MS,
                            snap_recover_take, &r);
        for (int i = DWIRE_KIND_ITEM; !rc && i < DWIRE_NKINDS; i++) {
                struct snap_kind *k = &s->k[i];
                if (!k->wanted || !k->resumed || k->phase == SNAP_DONE)
                        continue;
                /* Every id the run wrote must be found, or some would be written
                 * twice (retention may have removed the run's first pings). */
                if ((long long)k->done.n != k->written + k->swept)
                        return cli_fail(CLI_FAIL,
                                        "run %s: %zu ids of %s found in %s, its "
                                        "progress says %lld were written: start a new "
                                        "run with another --id",
                                        s->run, k->done.n, dwire_kind_name(k->kind),
                                        s->cfg->raw_topic, k->written + k->swept);
                fprintf(stderr,
                        "duro-enricher snapshot: run %s: %s resumes (%s phase, %lld "
                        "listed, %lld written, %lld swept)\n",
                        s->run, dwire_kind_name(k->kind), snap_phase_names[k->phase],
                        k->listed, k->written, k->swept);
        }
        return rc;
}

/* ------------------------------------------------------------------ writing */

/* Produces the ping for resource id rid of kind k. Returns 0 or the error. */
static rd_kafka_resp_err_t snap_ping(struct snap *s, const struct snap_kind *k,
                                     const char *rid)
{
        char now[40], eid[SNAP_ID_MAX + SNAP_RUN_MAX + 16];
        rd_kafka_resp_err_t err;
        struct dkafka_rec rec = {0};
        rd_kafka_headers_t *h;
        struct dtrace trace;
        char *value;
        json_t *v;

        dtime_format_ms(now, sizeof(now), dtime_now_ms());
        snprintf(eid, sizeof(eid), "snapshot:%s:%s", s->run, rid);
        v     = json_pack("{s:s, s:s, s:s, s:{s:s}}", "id", eid, "event", k->event,
                          "created_at", now, "data", k->entry->ids[0], rid);
        value = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        if (!value)
                return RD_KAFKA_RESP_ERR__FAIL;
        h = rd_kafka_headers_new(8);
        rd_kafka_header_add(h, DWIRE_H_EVENT, -1, k->event, -1);
        rd_kafka_header_add(h, DWIRE_H_EVENT_ID, -1, eid, -1);
        rd_kafka_header_add(h, DWIRE_H_RECEIVED_AT, -1, now, -1);
        rd_kafka_header_add(h, DWIRE_H_CONTENT_TYPE, -1, DWIRE_CONTENT_JSON, -1);
        rd_kafka_header_add(h, DWIRE_H_RESOURCE_KIND, -1, dwire_kind_name(k->kind), -1);
        rd_kafka_header_add(h, DWIRE_H_ORIGIN, -1, "snapshot", -1);
        rd_kafka_header_add(h, DWIRE_H_SNAPSHOT_ID, -1, s->run, -1);
        if (!dtrace_new(&trace)) /* each ping starts its own trace */
                dce_trace_put(h, &trace, NULL);
        rec.topic     = s->cfg->raw_topic;
        rec.key       = rid;
        rec.key_len   = strlen(rid);
        rec.value     = value;
        rec.value_len = strlen(value);
        rec.headers   = h;
        rec.msgflags  = RD_KAFKA_MSG_F_FREE;
        err           = dkafka_produce(s->p, &rec, -1);
        if (err) {
                rd_kafka_headers_destroy(h);
                free(value);
        }
        return err;
}

/* Produces the progress record of kind k. Returns 0 or the error. */
static rd_kafka_resp_err_t snap_progress(struct snap *s, const struct snap_kind *k,
                                         const char *value)
{
        struct dkafka_rec rec = {0};
        char key[256];

        rd_kafka_resp_err_t err;

        snap_key(s, k, key, sizeof(key));
        rec.topic     = s->cfg->progress_topic;
        rec.key       = key;
        rec.key_len   = strlen(key);
        rec.value     = (void *)value;
        rec.value_len = strlen(value);
        rec.headers   = rd_kafka_headers_new(1);
        rec.msgflags  = RD_KAFKA_MSG_F_COPY;
        rd_kafka_header_add(rec.headers, DWIRE_H_CONTENT_TYPE, -1, DWIRE_CONTENT_JSON,
                            -1);
        err = dkafka_produce(s->p, &rec, -1);
        if (err)
                rd_kafka_headers_destroy(rec.headers);
        return err;
}

/* Waits until the pace allows n more ids. Returns -1 when asked to stop. */
static int snap_pace(struct snap *s, size_t n)
{
        int64_t due;

        if (!s->pace_t0)
                s->pace_t0 = dtime_mono_ms();
        if (s->cfg->rate > 0) {
                due = s->pace_t0 + (int64_t)(s->paced * 1000 / s->cfg->rate);
                if (due > dtime_mono_ms())
                        cli_sleep((long)(due - dtime_mono_ms()), NULL);
        }
        s->paced += (long long)n;
        return atomic_load(&cli_stop) ? -1 : 0;
}

/* Draws the progress line (on a terminal). */
static void snap_draw(const struct snap *s, const struct snap_kind *k, int end)
{
        double secs = (double)(dtime_mono_ms() - s->t0_ms) / 1000.0;

        if (!s->tty)
                return;
        fprintf(stderr,
                "\r%-12s %-5s listed %-9lld written %-9lld swept %-7lld %7.0f ids/s%s",
                dwire_kind_name(k->kind), snap_phase_names[k->phase], k->listed,
                k->written, k->swept, secs > 0 ? (double)s->paced / secs : 0.0,
                end ? "\n" : "");
        fflush(stderr);
}

/* Writes the ids ids[0..n) of kind k and k's progress after them (phase, cursor,
 * the counts) in one transaction, retrying an aborted one. sweep: the ids come from
 * the sweep. On success the counts, the phase and the cursor move on and the ids join
 * k->done. Returns 0 or the exit status. */
static int snap_commit(struct snap *s, struct snap_kind *k, char **ids, size_t n,
                       enum snap_phase phase, const char *cursor, size_t listed,
                       int sweep)
{
        long long written = k->written + (sweep ? 0 : (long long)n);
        long long swept   = k->swept + (sweep ? (long long)n : 0);
        char *value       = snap_progress_value(
                  s, k, phase, cursor, k->listed + (long long)listed, written, swept);
        rd_kafka_error_t *error = NULL;
        int attempt;

        if (!value)
                return cli_fail(CLI_FAIL, "out of memory");
        if (snap_pace(s, n)) {
                free(value);
                return snap_stopped(s);
        }
        for (attempt = 1; attempt <= SNAP_TXN_ATTEMPTS; attempt++) {
                rd_kafka_resp_err_t err = 0;
                if ((error = rd_kafka_begin_transaction(s->p)))
                        break;
                for (size_t i = 0; i < n && !err; i++)
                        err = snap_ping(s, k, ids[i]);
                if (!err)
                        err = snap_progress(s, k, value);
                if (!err) {
                        /* a commit that timed out is still under way: ask again */
                        error = cli_commit_txn(s->p, SNAP_CALL_MS, SNAP_TXN_ATTEMPTS);
                        if (!error)
                                break;
                        if (!rd_kafka_error_txn_requires_abort(error))
                                break; /* fatal, or a commit that never ends */
                } else {
                        error = rd_kafka_error_new(err, "producing: %s",
                                                   rd_kafka_err2str(err));
                }
                /* abortable: abort and write the page again */
                atomic_fetch_add(&s->m.aborts, 1);
                dlog_warn("snapshot %s: transaction aborted, page written again "
                          "(attempt %d): %s",
                          s->run, attempt, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                error = cli_abort_txn(s->p, SNAP_CALL_MS, SNAP_TXN_ATTEMPTS);
                if (error || cli_sleep(200L * attempt, NULL))
                        break;
        }
        free(value);
        if (error || attempt > SNAP_TXN_ATTEMPTS || atomic_load(&cli_stop)) {
                int rc;
                if (!error && atomic_load(&cli_stop))
                        return snap_stopped(s);
                rc = cli_fail(CLI_FAIL,
                              "%s%s: what was committed stays; rerun with --id %s to "
                              "continue",
                              error && rd_kafka_error_is_fatal(error)
                                  ? "fenced or fatal Kafka error: "
                                  : "the transaction failed: ",
                              error ? rd_kafka_error_string(error) : "too many aborts",
                              s->run);
                if (error)
                        rd_kafka_error_destroy(error);
                return rc;
        }
        atomic_fetch_add(&s->m.txns, 1);
        for (size_t i = 0; i < n; i++)
                if (snap_set_add(&k->done, ids[i], strlen(ids[i])) < 0)
                        return cli_fail(CLI_FAIL, "out of memory");
        k->listed += (long long)listed;
        k->written = written;
        k->swept   = swept;
        k->phase   = phase;
        if (cursor != k->cursor) {
                free(k->cursor);
                k->cursor = cursor ? strdup(cursor) : NULL;
        }
        atomic_fetch_add(&s->m.listed[k->kind], listed);
        atomic_fetch_add(&s->m.written[k->kind], sweep ? 0 : n);
        atomic_fetch_add(&s->m.swept[k->kind], sweep ? n : 0);
        atomic_store(&s->m.phase[k->kind], (int)phase);
        snap_draw(s, k, 0);
        return 0;
}

/* ------------------------------------------------------------------ listing */

/* The extensions.code of the first error of res, or "". */
static const char *snap_error_code(const struct dgql_result *res)
{
        json_t *code = json_object_get(
            json_object_get(json_array_get(res->errors, 0), "extensions"), "code");

        return json_is_string(code) ? json_string_value(code) : "";
}

/* 1 when a failed answer came from a Duro that is up: a 4xx other than 429, or GraphQL
 * errors in a 200 (the query, its cursor, or a record it reads). Those are tried
 * DURO_GRAPHQL_MAX_ATTEMPTS times; no answer, a 5xx or a rate limit is an outage,
 * waited out. */
static int snap_query_error(const struct dgql_result *res)
{
        if (res->http_status == 0 || res->http_status >= 500 || res->http_status == 429)
                return 0; /* no answer, or Duro is down: an outage */
        return res->http_status >= 400 || res->errors != NULL;
}

/* One page of the listing. */
struct snap_page {
        char **ids; /* owned, as the listing gave them */
        size_t n;
        int more;     /* hasNextPage */
        char *cursor; /* endCursor, owned; NULL when none */
};

static void snap_page_free(struct snap_page *pg)
{
        for (size_t i = 0; i < pg->n; i++)
                free(pg->ids[i]);
        free(pg->ids);
        free(pg->cursor);
        memset(pg, 0, sizeof(*pg));
}

/* Reads the page in data. Returns 0, or -1 with why in err. */
static int snap_page_read(json_t *data, struct snap_page *pg, char *err, size_t errsize)
{
        json_t *conn = cli_connection(data), *edges, *info, *cur, *edge;
        size_t i;

        if (!conn) {
                snprintf(err, errsize,
                         "the answer holds no connection (edges, pageInfo)");
                return -1;
        }
        edges    = json_object_get(conn, "edges");
        info     = json_object_get(conn, "pageInfo");
        pg->more = json_is_true(json_object_get(info, "hasNextPage"));
        cur      = json_object_get(info, "endCursor");
        if (json_is_string(cur) && !(pg->cursor = strdup(json_string_value(cur))))
                goto oom;
        if (pg->more && !pg->cursor) {
                snprintf(err, errsize, "hasNextPage without an endCursor");
                return -1;
        }
        pg->ids = calloc(json_array_size(edges) + 1, sizeof(*pg->ids));
        if (!pg->ids)
                goto oom;
        json_array_foreach(edges, i, edge)
        {
                json_t *id    = json_object_get(json_object_get(edge, "node"), "id");
                const char *v = json_string_value(id);
                if (!v || !*v || strlen(v) > SNAP_ID_MAX) {
                        snprintf(err, errsize,
                                 "edge %zu has no node with an id (a string of 1 to %d "
                                 "bytes)",
                                 i, SNAP_ID_MAX);
                        return -1;
                }
                if (!(pg->ids[pg->n] = strdup(v)))
                        goto oom;
                pg->n++;
        }
        return 0;
oom:
        snprintf(err, errsize, "out of memory");
        return -1;
}

/* Fetches k's page after cursor (NULL: the first) into *pg, retrying as the
 * enricher retries. Runs on the prefetch thread while the main thread commits the
 * page before: it touches only the API client, pg and atomics. Returns 0 or the exit
 * status. */
static int snap_fetch(struct snap *s, const struct snap_kind *k, const char *cursor,
                      struct snap_page *pg)
{
        unsigned seed = (unsigned)dtime_mono_us();
        long backoff  = 500;
        int errors    = 0;

        for (;;) {
                struct dgql_result res;
                char err[300];
                json_t *vars =
                    json_pack("{s:I, s:o}", "first", (json_int_t)s->cfg->page_size,
                              "after", cursor ? json_string(cursor) : json_null());
                long wait;
                int rc;

                if (!vars)
                        return cli_fail(CLI_FAIL, "out of memory");
                if (atomic_load(&s->cancel)) { /* the page before failed */
                        json_decref(vars);
                        return CLI_FAIL;
                }
                atomic_fetch_add(&s->m.requests, 1);
                rc = cli_api_request(s->cli, k->query, k->op, vars, &res);
                json_decref(vars);
                if (rc)
                        return rc;
                if (res.outcome == DGQL_OK) {
                        rc = snap_page_read(res.data, pg, err, sizeof(err));
                        dgql_result_clear(&res);
                        if (!rc)
                                return 0;
                        snap_page_free(pg);
                        return cli_fail(CLI_FAIL, "listing %s: %s",
                                        dwire_kind_name(k->kind), err);
                }
                if (res.outcome == DGQL_AUTH) {
                        rc = cli_api_report(&res);
                        dgql_result_clear(&res);
                        return rc;
                }
                if (res.outcome == DGQL_FAILED && res.errors &&
                    !strcmp(snap_error_code(&res), "BAD_USER_INPUT") && cursor) {
                        rc = cli_fail(CLI_FAIL,
                                      "Duro refused the saved cursor of %s (%s): start "
                                      "a new run with another --id",
                                      dwire_kind_name(k->kind), res.error);
                        dgql_result_clear(&res);
                        return rc;
                }
                /* see snap_query_error */
                if (res.outcome == DGQL_FAILED && snap_query_error(&res) &&
                    ++errors >= s->cfg->max_attempts) {
                        rc = cli_api_report(&res);
                        dgql_result_clear(&res);
                        return rc;
                }
                wait = res.outcome == DGQL_RATE_LIMITED && res.retry_after_ms >= 0
                           ? res.retry_after_ms
                           : backoff / 2 + rand_r(&seed) % (backoff / 2 + 1);
                dlog_warn("snapshot %s: listing %s: %s: retried in %ld ms", s->run,
                          dwire_kind_name(k->kind), res.error, wait);
                dgql_result_clear(&res);
                atomic_fetch_add(&s->m.retries, 1);
                if (backoff < SNAP_BACKOFF_MAX_MS)
                        backoff *= 2;
                if (cli_sleep(wait, &s->cancel))
                        return atomic_load(&cli_stop) ? snap_stopped(s) : CLI_FAIL;
        }
}

/* The prefetch of the next page. */
struct snap_prefetch {
        struct snap *s;
        const struct snap_kind *k;
        const char *cursor; /* the page before's endCursor (owned by it) */
        struct snap_page pg;
        int rc;
};

static void *snap_prefetch_run(void *arg)
{
        struct snap_prefetch *f = arg;

        f->rc = snap_fetch(f->s, f->k, f->cursor, &f->pg);
        return NULL;
}

/* Keeps the ids of pg that the run has not written (nor pg repeats), in order.
 * Returns 0 or -1 (out of memory). */
static int snap_fresh(const struct snap_kind *k, struct snap_page *pg, size_t *fresh)
{
        struct snap_set seen = {0};
        int rc               = 0;

        *fresh = 0;
        for (size_t i = 0; i < pg->n; i++) {
                size_t len = strlen(pg->ids[i]);
                int add    = 0;
                if (!rc && !snap_set_has(&k->done, pg->ids[i], len))
                        add = snap_set_add(&seen, pg->ids[i], len);
                if (add < 0)
                        rc = -1;
                if (add > 0)
                        pg->ids[(*fresh)++] = pg->ids[i];
                else
                        free(pg->ids[i]);
        }
        pg->n = *fresh;
        snap_set_free(&seen);
        return rc;
}

/* Lists kind k from where it stands, one page per transaction. Each page is fetched
 * before its transaction begins: the next one while the one before commits (its
 * cursor is known by then), so that Duro's answer time and the commit overlap. Ids
 * already written by the run (a listing that repeats one) are not written again.
 * Returns 0 or the exit status. */
/* Starts fetching the page after f->cursor on a thread of its own (SIGINT and SIGTERM
 * stay with the main thread). Returns 1 when it runs, 0 when it could not start. */
static int snap_prefetch_start(struct snap_prefetch *f, pthread_t *t)
{
        sigset_t block, old;
        int rc;

        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        rc = pthread_create(t, NULL, snap_prefetch_run, f);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc == 0;
}

static int snap_list(struct snap *s, struct snap_kind *k)
{
        struct snap_page pg     = {0};
        struct snap_set cursors = {0}; /* every cursor this process was given */
        int rc;

        if (k->phase != SNAP_LIST)
                return 0;
        if ((rc = snap_fetch(s, k, k->cursor, &pg)))
                return rc;
        if (k->cursor && snap_set_add(&cursors, k->cursor, strlen(k->cursor)) < 0)
                rc = cli_fail(CLI_FAIL, "out of memory");
        while (!rc && k->phase == SNAP_LIST) {
                struct snap_prefetch f = {.s = s, .k = k, .cursor = pg.cursor};
                size_t listed          = pg.n, fresh;
                int ahead              = 0, dup;
                pthread_t t;

                if (atomic_load(&cli_stop)) {
                        rc = snap_stopped(s);
                        break;
                }
                /* a cursor given before would list the same pages again, forever */
                if (pg.more &&
                    (dup = snap_set_add(&cursors, pg.cursor, strlen(pg.cursor))) <= 0) {
                        rc = dup < 0 ? cli_fail(CLI_FAIL, "out of memory")
                                     : cli_fail(CLI_FAIL,
                                                "listing %s: Duro gave the cursor %s "
                                                "again: the listing does not advance",
                                                dwire_kind_name(k->kind), pg.cursor);
                        break;
                }
                if (snap_fresh(k, &pg, &fresh)) {
                        rc = cli_fail(CLI_FAIL, "out of memory");
                        break;
                }
                atomic_store(&s->cancel, 0);
                if (pg.more && !(ahead = snap_prefetch_start(&f, &t)))
                        f.rc = snap_fetch(s, k, pg.cursor, &f.pg);
                rc = snap_commit(s, k, pg.ids, fresh,
                                 pg.more                ? SNAP_LIST
                                 : s->cfg->state_topics ? SNAP_SWEEP
                                                        : SNAP_DONE,
                                 pg.cursor ? pg.cursor : k->cursor, listed, 0);
                if (ahead) {
                        if (rc) /* the fetch ahead may wait out an outage: stop it */
                                atomic_store(&s->cancel, 1);
                        pthread_join(t, NULL);
                }
                snap_page_free(&pg);
                pg = f.pg;
                if (!rc && k->phase == SNAP_LIST) /* there was a next page to fetch */
                        rc = f.rc;
        }
        snap_page_free(&pg);
        snap_set_free(&cursors);
        return rc;
}

/* ------------------------------------------------------------------ sweeping */

/* Takes a state record into the set of live keys (a tombstone takes its key out). */
static int snap_state_take(void *opaque, rd_kafka_message_t *m)
{
        struct snap_set *live = opaque;
        int rc                = 0;

        if (m->key && m->key_len && !memchr(m->key, '\0', m->key_len)) {
                if (m->payload)
                        rc = snap_set_add(live, m->key, m->key_len) < 0
                                 ? cli_fail(CLI_FAIL, "out of memory")
                                 : 0;
                else
                        snap_set_del(live, m->key, m->key_len);
        }
        rd_kafka_message_destroy(m);
        return rc;
}

static int snap_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pings every live key of k's state topic that the run has not written, a page per
 * transaction, the last one marking k done. Returns 0 or the exit status. */
static int snap_sweep(struct snap *s, struct snap_kind *k)
{
        struct snap_set live = {0};
        char **todo          = NULL;
        size_t n = 0, at = 0, bad = 0;
        int rc;

        if (k->phase != SNAP_SWEEP)
                return 0;
        if (!s->cfg->state_topics) /* a run resumed with the sweep turned off */
                return snap_commit(s, k, NULL, 0, SNAP_DONE, k->cursor, 0, 1);
        rc = cli_read_topic(s->c, NULL, k->state_topic, -1, SNAP_CALL_MS,
                            snap_state_take, &live);
        if (!rc && !(todo = calloc(live.n + 1, sizeof(*todo))))
                rc = cli_fail(CLI_FAIL, "out of memory");
        for (size_t i = 0; !rc && i < live.cap; i++) {
                char *v = live.slot[i];
                json_t *utf8;
                if (!v || v == snap_gone || snap_set_has(&k->done, v, strlen(v)))
                        continue;
                /* a key no ping can carry (too long, not UTF-8) is left alone */
                utf8 = strlen(v) <= SNAP_ID_MAX ? json_string(v) : NULL;
                if (utf8)
                        todo[n++] = v;
                else if (bad++ < 5)
                        dlog_warn("snapshot %s: sweep of %s: key of %zu bytes left "
                                  "alone (too long or not UTF-8)",
                                  s->run, k->state_topic, strlen(v));
                json_decref(utf8);
        }
        if (bad)
                fprintf(stderr,
                        "duro-enricher snapshot: run %s: %zu key(s) of %s left out "
                        "of the sweep (longer than %d bytes or not UTF-8)\n",
                        s->run, bad, k->state_topic, SNAP_ID_MAX);
        if (!rc)
                qsort(todo, n, sizeof(*todo), snap_cmp); /* a rerun's order */
        while (!rc && k->phase == SNAP_SWEEP) {
                size_t page = n - at < (size_t)s->cfg->page_size
                                  ? n - at
                                  : (size_t)s->cfg->page_size;
                if (atomic_load(&cli_stop))
                        rc = snap_stopped(s);
                else
                        rc = snap_commit(s, k, todo + at, page,
                                         at + page == n ? SNAP_DONE : SNAP_SWEEP,
                                         k->cursor, 0, 1);
                at += page;
        }
        free(todo);
        snap_set_free(&live);
        return rc;
}

/* ------------------------------------------------------------------ the command */

/* Prints the summary: one line, or a JSON object with --json. */
static void snap_summary(const struct snap *s, int earlier)
{
        double secs      = (double)(dtime_mono_ms() - s->t0_ms) / 1000.0;
        long long listed = 0, written = 0, swept = 0;
        json_t *o = NULL, *kinds = NULL;

        if (s->args->json) {
                kinds = json_object();
                o     = json_pack("{s:s, s:b, s:f}", "run", s->run, "finished_earlier",
                                  earlier, "seconds", secs);
        }
        for (int i = DWIRE_KIND_ITEM; i < DWIRE_NKINDS; i++) {
                const struct snap_kind *k = &s->k[i];
                if (!k->wanted)
                        continue;
                listed += k->listed;
                written += k->written;
                swept += k->swept;
                if (kinds)
                        json_object_set_new(kinds, dwire_kind_name(k->kind),
                                            json_pack("{s:I, s:I, s:I}", "listed",
                                                      (json_int_t)k->listed, "written",
                                                      (json_int_t)k->written, "swept",
                                                      (json_int_t)k->swept));
        }
        if (o) {
                json_object_set_new(o, "listed", json_integer(listed));
                json_object_set_new(o, "written", json_integer(written));
                json_object_set_new(o, "swept", json_integer(swept));
                json_object_set(o, "kinds", kinds);
                cli_print_json(o);
        } else {
                printf("snapshot %s %s: %lld ids listed, %lld written, %lld swept, "
                       "%.1f s\n",
                       s->run, earlier ? "finished earlier, nothing to do" : "done",
                       listed, written, swept, secs);
        }
        json_decref(kinds);
        json_decref(o);
        fflush(stdout);
}

static int snap_run(struct snap *s)
{
        rd_kafka_error_t *error;
        int rc, todo = 0;

        snprintf(s->txid, sizeof(s->txid), "%s-snapshot-%s", s->cfg->group, s->run);
        if ((rc = cli_producer_timeout(s->cli, s->cfg->bootstrap,
                                       "duro-enricher-snapshot", s->txid,
                                       SNAP_TXN_TIMEOUT_MS, &s->p)))
                return rc;
        /* Fences a run with the same id that is still alive and aborts what a killed
         * one left open, before its progress is read. */
        if ((error = rd_kafka_init_transactions(s->p, SNAP_CALL_MS))) {
                rc = cli_fail(CLI_FAIL, "cannot start transactions as %s: %s", s->txid,
                              rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return rc;
        }
        if ((rc = cli_consumer(s->cli, s->cfg->bootstrap, "duro-enricher-snapshot",
                               s->cfg->group, &s->c)) ||
            (rc = cli_watermarks(s->cli, s->cfg->bootstrap, "duro-enricher-snapshot",
                                 s->cfg->group, &s->w)) ||
            (rc = snap_resume(s)))
                return rc;
        for (int i = DWIRE_KIND_ITEM; i < DWIRE_NKINDS; i++) {
                struct snap_kind *k = &s->k[i];
                if (!k->wanted)
                        continue;
                atomic_store(&s->m.phase[i], (int)k->phase);
                if (k->phase == SNAP_DONE)
                        continue;
                todo = 1;
                if (!k->resumed)
                        k->started_ms = dtime_now_ms();
                if ((rc = snap_list(s, k)) || (rc = snap_sweep(s, k)))
                        return rc;
                snap_draw(s, k, 1);
        }
        snap_summary(s, !todo);
        return 0;
}

int cli_snapshot_main(int argc, char **argv)
{
        static struct snap s; /* the signal handler's flag is static too */
        struct snap_config cfg = {0};
        struct snap_args a     = {0};
        struct dadmin *admin   = NULL;
        struct cli cli;
        char err[512];
        int rc = cli_start(&cli, &snap_cmd, argc, argv, &cfg, &a);

        memset(&s, 0, sizeof(s));
        s.cli   = &cli;
        s.cfg   = &cfg;
        s.args  = &a;
        s.t0_ms = dtime_mono_ms();
        s.tty   = isatty(STDERR_FILENO);
        if (rc < 0)
                rc = snap_check(&s);
        if (rc < 0)
                rc = snap_load(&s);
        if (rc < 0) {
                cfg.api.rate = (double)cfg.graphql_rate;
                rc           = cli_api_client(&cli, &cfg.api);
                rc           = rc ? rc : -1;
        }
        if (rc < 0 && cfg.admin_listen) {
                admin = dadmin_start(cfg.admin_listen, cli_always_ready, snap_metrics,
                                     &s, err, sizeof(err));
                if (!admin)
                        rc = cli_fail(CLI_USAGE,
                                      "bad setting: DURO_SNAPSHOT_ADMIN_LISTEN: %s",
                                      err);
        }
        if (rc < 0) {
                cli_catch_signals();
                if (!cfg.run)
                        fprintf(stderr, "duro-enricher snapshot: run %s\n", s.run);
                rc = snap_run(&s);
                if (rc && atomic_load(&cli_stop))
                        snap_stopped(&s); /* unless said already */
        }
        cli_close_kafka(s.p, s.c, s.w, SNAP_CALL_MS);
        dadmin_stop(admin);
        for (int i = 0; i < DWIRE_NKINDS; i++) {
                free(s.k[i].query);
                free(s.k[i].op);
                free(s.k[i].state_topic);
                free(s.k[i].cursor);
                snap_set_free(&s.k[i].done);
        }
        devtable_free(&s.events);
        cli_end(&cli);
        return rc;
}
