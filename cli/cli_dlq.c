/* cli_dlq.c - `duro-enricher dlq list|redrive`: what is in the dead-letter topic and
 * why, and copying chosen records back to the raw topic in ONE transaction, each with
 * a new `duro-redrive-id` header, so that the enricher processes each once more,
 * exactly once per redrive (its dedupe key becomes <event id>#<redrive id>).
 * Selection: --event-id (repeatable), --since (RFC 3339, or an age such as 30m, 2h,
 * 7d), --class. Reads with read_committed up to the end offsets seen at start. The
 * Kafka settings come from the environment or their flags (--bootstrap-servers,
 * --raw-topic, ..., -X prop=value: see --help). */
#include "cli.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "devtable.h"
#include "dce.h"
#include "dkafka.h"
#include "dpayload.h"
#include "dlog.h"
#include "dtime.h"
#include "dwire.h"

static const char dlq_usage[] =
    "duro-enricher dlq list [--since T] [--class C] [--event-id ID]... "
    "[--limit N] [--json]\n"
    "       duro-enricher dlq redrive [--since T] [--class C] [--event-id ID]... "
    "[--dry-run] [--json]\n"
    "  T: RFC 3339 (2024-12-20T10:30:00Z) or an age (90s, 30m, 2h, 7d)\n"
    "  C: invalid-payload | no-topic | produce-rejected | resource-error\n"
    "settings: KAFKA_BOOTSTRAP_SERVERS, DURO_RAW_TOPIC, DURO_DLQ_TOPIC, "
    "DURO_ENRICHER_GROUP, DURO_RDKAFKA_*, or their flags (--help lists them)";

#define DLQ_TIMEOUT_MS 10000

struct dlq_config {
        char *bootstrap;
        char *raw_topic;
        char *dlq_topic;
        char *group;
        char *event_table;
        int log_level;
        struct devtable events; /* redrive: keys and kinds of the records it writes */
};

#define DLQ_OPT(env, flag, type, def, field, help)                                     \
        {                                                                              \
                env, flag, type, def, 0, 0, offsetof(struct dlq_config, field), 0,     \
                    help                                                               \
        }

static const struct dconf_opt dlq_settings[] = {
    DLQ_OPT("KAFKA_BOOTSTRAP_SERVERS", "bootstrap-servers", DCONF_STRING,
            "127.0.0.1:9092", bootstrap, "Kafka bootstrap servers"),
    DLQ_OPT("DURO_RAW_TOPIC", "raw-topic", DCONF_STRING, "duro.webhooks.raw", raw_topic,
            "raw topic (redrive target)"),
    DLQ_OPT("DURO_DLQ_TOPIC", "dlq-topic", DCONF_STRING, "duro.webhooks.dlq", dlq_topic,
            "dead-letter topic"),
    DLQ_OPT("DURO_ENRICHER_GROUP", "group", DCONF_STRING, "duro-enricher", group,
            "names the redrive's transactional.id"),
    DLQ_OPT("DURO_EVENT_TABLE", "event-table", DCONF_STRING, NULL, event_table,
            "event table (redrive keys and stamps each record by it; default: "
            "installed)"),
    DLQ_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "warn", log_level,
            "log level"),
};

struct dlq_args {
        const char *since; /* as given */
        const char *cls;
        struct cli_texts ids;
        long limit;
        int json, dry_run;
        int64_t since_ms; /* from since; -1: from the beginning */
};

#define DLQ_ARG(name, type, field, min, max)                                           \
        {                                                                              \
                name, type, offsetof(struct dlq_args, field), min, max                 \
        }

static const struct cli_opt dlq_opts[] = {
    DLQ_ARG("--json", CLI_SWITCH, json, 0, 0),
    DLQ_ARG("--dry-run", CLI_SWITCH, dry_run, 0, 0),
    DLQ_ARG("--since", CLI_TEXT, since, 0, 0),
    DLQ_ARG("--class", CLI_TEXT, cls, 0, 0),
    DLQ_ARG("--event-id", CLI_REPEAT, ids, 0, 0),
    DLQ_ARG("--limit", CLI_NUMBER, limit, 1, LONG_MAX),
};

enum { DLQ_LIST, DLQ_REDRIVE };
static const char *const dlq_subs[] = {"list", "redrive", NULL};

static const struct cli_cmd dlq_cmd = {
    .name          = "duro-enricher dlq",
    .usage         = dlq_usage,
    .log_level_off = offsetof(struct dlq_config, log_level),
    CLI_TABLES(dlq_subs, dlq_settings, dlq_opts),
    .kafka = 1,
};

/* Headers the DLQ adds, dropped on the way back to the raw topic. */
static const char *const dlq_own_headers[] = {
    DWIRE_H_ERROR_CLASS,      DWIRE_H_ERROR_MESSAGE,
    DWIRE_H_ATTEMPTS,         DWIRE_H_SOURCE_TOPIC,
    DWIRE_H_SOURCE_PARTITION, DWIRE_H_SOURCE_OFFSET,
    DWIRE_H_REDRIVE_ID,       NULL};

/* Checks the selection options; sets since_ms. Returns -1 to go on or the status. */
static int dlq_check_args(struct dlq_args *a)
{
        a->since_ms = -1;
        if (a->since && cli_parse_time(a->since, &a->since_ms))
                return cli_fail(CLI_USAGE,
                                "--since: not RFC 3339 nor an age like 30m: %s",
                                a->since);
        if (a->cls && dwire_dlq_class_parse(a->cls) < 0)
                return cli_fail(CLI_USAGE, "--class: unknown class %s", a->cls);
        return -1;
}

static int dlq_selected(const struct dlq_args *a, const rd_kafka_message_t *m)
{
        char cls[64], id[256];

        if (a->since_ms >= 0 && rd_kafka_message_timestamp(m, NULL) < a->since_ms)
                return 0;
        if (a->cls && (!dkafka_header(m, DWIRE_H_ERROR_CLASS, cls, sizeof(cls)) ||
                       strcmp(cls, a->cls)))
                return 0;
        if (a->ids.n) {
                int hit = 0;
                if (!dkafka_header(m, DWIRE_H_EVENT_ID, id, sizeof(id)))
                        return 0;
                for (size_t i = 0; i < a->ids.n && !hit; i++)
                        hit = !strcmp(a->ids.v[i], id);
                return hit;
        }
        return 1;
}

int cli_dlq_ends(rd_kafka_t *c, const rd_kafka_topic_partition_list_t *l, int64_t *end,
                 int np)
{
        /* One ListOffsets request per leader for all of l: offsets_for_times with the
         * timestamp -1 asks for the latest offset, under c's isolation level (the
         * last stable offset for a read_committed consumer), where
         * query_watermark_offsets would ask partition after partition. */
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(l);
        rd_kafka_resp_err_t err;

        for (int i = 0; i < q->cnt; i++)
                q->elems[i].offset = -1; /* "latest" */
        err = rd_kafka_offsets_for_times(c, q, DLQ_TIMEOUT_MS);
        if (err && q->cnt > 0) { /* which partition, librdkafka does not say */
                cli_fail(CLI_FAIL, "cannot read the end of %s: %s", q->elems[0].topic,
                         rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(q);
                return -1;
        }
        for (int i = 0; i < q->cnt; i++) {
                rd_kafka_resp_err_t perr = q->elems[i].err;
                if (!perr && q->elems[i].offset < 0)
                        perr = RD_KAFKA_RESP_ERR__NO_OFFSET;
                if (perr) {
                        cli_fail(CLI_FAIL, "cannot read the end of %s [%d]: %s",
                                 q->elems[i].topic, (int)q->elems[i].partition,
                                 rd_kafka_err2str(perr));
                        rd_kafka_topic_partition_list_destroy(q);
                        return -1;
                }
                if (q->elems[i].partition >= 0 && q->elems[i].partition <= np)
                        end[q->elems[i].partition] = q->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(q);
        return 0;
}

/* Appends m to *out (grown as needed). Returns 0 or the exit status (m is destroyed
 * then). */
static int dlq_keep(rd_kafka_message_t *m, rd_kafka_message_t ***out, size_t *nout,
                    size_t *cap)
{
        if (*nout == *cap) {
                rd_kafka_message_t **nm;
                size_t ncap = *cap ? *cap * 2 : 64;
                nm          = realloc(*out, ncap * sizeof(*nm));
                if (!nm) {
                        rd_kafka_message_destroy(m);
                        return cli_fail(CLI_FAIL, "out of memory");
                }
                *out = nm;
                *cap = ncap;
        }
        (*out)[(*nout)++] = m;
        return 0;
}

/* What dlq_read() collects. */
struct dlq_sel {
        const struct dlq_args *a;
        rd_kafka_message_t **ms; /* owned */
        size_t n, cap;
};

static int dlq_take(void *opaque, rd_kafka_message_t *m)
{
        struct dlq_sel *sel = opaque;

        if (!dlq_selected(sel->a, m) || (long)sel->n >= sel->a->limit) {
                rd_kafka_message_destroy(m);
                return 0;
        }
        return dlq_keep(m, &sel->ms, &sel->n, &sel->cap);
}

/* Reads the DLQ (read_committed) from --since (or the start) to the end offsets seen
 * now, keeping the selected records in *out (owned, also on failure). Returns 0 or
 * the exit status. */
static int dlq_read(rd_kafka_t *c, const struct dlq_config *cfg,
                    const struct dlq_args *a, rd_kafka_message_t ***out, size_t *nout)
{
        struct dlq_sel sel = {.a = a};
        int rc = cli_read_topic(c, NULL, cfg->dlq_topic, a->since_ms, DLQ_TIMEOUT_MS,
                                dlq_take, &sel);

        *out  = sel.ms;
        *nout = sel.n;
        return rc;
}

/* A JSON string of the len bytes at s, any byte that is not UTF-8 shown as U+FFFD
 * (a header is text to show). NULL when out of memory. */
static json_t *dlq_json_text(const char *s, size_t len)
{
        char buf[1024], quoted[1030];
        json_t *v = json_stringn(s, len);

        if (v)
                return v;
        dlog_json_escape(buf, sizeof(buf), s, len);
        snprintf(quoted, sizeof(quoted), "\"%s\"", buf);
        return json_loads(quoted, JSON_DECODE_ANY, NULL);
}

/* m as a JSON object for --json: its place, the DLQ's headers, and its value as
 * "value" when it is UTF-8 text, else byte for byte as "value_base64". NULL when out
 * of memory. */
static json_t *dlq_json(const rd_kafka_message_t *m, const char *redrive_id)
{
        static const char *const fields[][2] = {
            {"error_class", DWIRE_H_ERROR_CLASS},
            {"error_message", DWIRE_H_ERROR_MESSAGE},
            {"attempts", DWIRE_H_ATTEMPTS},
            {"event_id", DWIRE_H_EVENT_ID},
            {"event", DWIRE_H_EVENT},
            {"source_partition", DWIRE_H_SOURCE_PARTITION},
            {"source_offset", DWIRE_H_SOURCE_OFFSET},
        };
        const char *value = m->payload ? (const char *)m->payload : "";
        char ts[40], h[1024];
        json_t *o, *v;
        int bad = 0;

        dtime_format_ms(ts, sizeof(ts), rd_kafka_message_timestamp(m, NULL));
        o = json_pack("{s:i, s:I, s:s}", "partition", (int)m->partition, "offset",
                      (json_int_t)m->offset, "time", ts);
        for (size_t i = 0; o && i < sizeof(fields) / sizeof(fields[0]); i++) {
                dkafka_header(m, fields[i][1], h, sizeof(h));
                bad |= json_object_set_new(o, fields[i][0],
                                           dlq_json_text(h, strlen(h))) != 0;
        }
        if ((v = json_stringn(value, m->len)) != NULL) {
                bad |= json_object_set_new(o, "value", v) != 0;
        } else {
                size_t n           = 4 * ((m->len + 2) / 3) + 1;
                unsigned char *b64 = malloc(n);
                if (b64)
                        EVP_EncodeBlock(b64, (const unsigned char *)value, (int)m->len);
                bad |= !b64 || json_object_set_new(o, "value_base64",
                                                   json_string((char *)b64)) != 0;
                free(b64);
        }
        if (redrive_id)
                bad |= json_object_set_new(o, "redrive_id",
                                           json_stringn(redrive_id, 32)) != 0;
        if (o && bad) {
                json_decref(o);
                o = NULL;
        }
        return o;
}

/* Prints the records ms as a table, or as a JSON array (--json). Returns 0, or the
 * exit status when one could not be made (nothing is left out silently). */
static int dlq_print(rd_kafka_message_t **ms, size_t n, int json,
                     const char *redrive_ids)
{
        char ts[40], cls[64], msg[256], att[16], eid[128], ev[64];
        json_t *arr = json ? json_array() : NULL;

        if (json && !arr)
                return cli_fail(CLI_FAIL, "out of memory");
        if (!json)
                printf("%-3s %-8s %-24s %-16s %-8s %-30s %-24s %s\n", "P", "OFFSET",
                       "TIME", "CLASS", "ATTEMPTS", "EVENT ID", "EVENT", "REASON");
        for (size_t i = 0; i < n; i++) {
                const rd_kafka_message_t *m = ms[i];
                if (json) {
                        json_t *o =
                            dlq_json(m, redrive_ids ? redrive_ids + i * 33 : NULL);
                        if (!o || json_array_append_new(arr, o)) {
                                json_decref(arr);
                                return cli_fail(CLI_FAIL, "out of memory");
                        }
                        continue;
                }
                dtime_format_ms(ts, sizeof(ts), rd_kafka_message_timestamp(m, NULL));
                dkafka_header(m, DWIRE_H_ERROR_CLASS, cls, sizeof(cls));
                dkafka_header(m, DWIRE_H_ERROR_MESSAGE, msg, sizeof(msg));
                dkafka_header(m, DWIRE_H_ATTEMPTS, att, sizeof(att));
                dkafka_header(m, DWIRE_H_EVENT_ID, eid, sizeof(eid));
                dkafka_header(m, DWIRE_H_EVENT, ev, sizeof(ev));
                printf("%-3d %-8lld %-24s %-16s %-8s %-30s %-24s %s%s%.32s\n",
                       (int)m->partition, (long long)m->offset, ts, cls, att, eid, ev,
                       msg, redrive_ids ? " -> redrive " : "",
                       redrive_ids ? redrive_ids + i * 33 : "");
        }
        if (json) {
                cli_print_json(arr);
                json_decref(arr);
        }
        return 0;
}

static void dlq_new_id(char out[33])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char b[16];
        FILE *f = fopen("/dev/urandom", "rb");

        if (!f || fread(b, 1, sizeof(b), f) != sizeof(b)) {
                int64_t t = dtime_now_ms() ^ (int64_t)getpid() << 40;
                memcpy(b, &t, 8);
                memcpy(b + 8, &t, 8);
        }
        if (f)
                fclose(f);
        for (int i = 0; i < 16; i++) {
                out[2 * i]     = hex[b[i] >> 4];
                out[2 * i + 1] = hex[b[i] & 15];
        }
        out[32] = '\0';
}

/* Produces a copy of m to the raw topic, without the DLQ's own headers and with
 * redrive id id, keyed and stamped with its resource by the event table as the bridge
 * does, and marked duro-origin: redrive. Returns NULL or the error (the caller's). */
static rd_kafka_error_t *dlq_copy(rd_kafka_t *p, const struct dlq_config *cfg,
                                  const rd_kafka_message_t *m, const char *id)
{
        rd_kafka_headers_t *src = NULL, *h;
        struct dkafka_rec rec   = {0};
        char hashkey[DPAYLOAD_HASHKEY_SIZE], tstate[DTRACE_STATE_MAX + 1];
        rd_kafka_resp_err_t err;
        struct dtrace trace;
        struct dpayload pl;
        const char *key;
        const void *hv;
        size_t hn;

        h = rd_kafka_message_headers(m, &src) ? rd_kafka_headers_new(8)
                                              : rd_kafka_headers_copy(src);
        for (const char *const *d = dlq_own_headers; *d; d++)
                rd_kafka_header_remove(h, *d);
        rd_kafka_header_remove(h, DWIRE_H_RESOURCE_KIND);
        rd_kafka_header_remove(h, DWIRE_H_ORIGIN);
        /* the DLQ record's CloudEvent and content type are not the raw record's; its
         * trace goes on, one span further */
        dce_remove(h);
        rd_kafka_header_remove(h, DWIRE_H_CONTENT_TYPE);
        rd_kafka_header_add(h, DWIRE_H_CONTENT_TYPE, -1, DWIRE_CONTENT_JSON, -1);
        if (dce_trace_continue(m, &trace, tstate, sizeof(tstate))) {
                rd_kafka_headers_destroy(h);
                return rd_kafka_error_new(RD_KAFKA_RESP_ERR__FAIL,
                                          "no randomness for a trace span");
        }
        dce_trace_put(h, &trace, tstate);
        rd_kafka_header_add(h, DWIRE_H_REDRIVE_ID, -1, id, 32);
        dpayload_parse(&pl, &cfg->events, m->payload ? m->payload : "", m->len);
        key = dpayload_key(&pl, m->payload ? m->payload : "", m->len, hashkey);
        rd_kafka_header_add(h, DWIRE_H_RESOURCE_KIND, -1, dwire_kind_name(pl.kind), -1);
        rd_kafka_header_add(h, DWIRE_H_ORIGIN, -1, "redrive", -1);
        /* The enricher trusts a stamped record's id: say so when this table finds it
         * invalid (the bridge, for all it knew, may not have). */
        if (!pl.valid && rd_kafka_header_get_last(h, DWIRE_H_INVALID, &hv, &hn) ==
                             RD_KAFKA_RESP_ERR__NOENT)
                rd_kafka_header_add(h, DWIRE_H_INVALID, -1, pl.reason, -1);
        rec.topic     = cfg->raw_topic;
        rec.key       = key;
        rec.key_len   = strlen(key);
        rec.value     = m->payload;
        rec.value_len = m->len;
        rec.headers   = h;
        rec.msgflags  = RD_KAFKA_MSG_F_COPY;
        /* a redrive larger than the producer's queue waits for room */
        err = dkafka_produce(p, &rec, -1);
        dpayload_free(&pl); /* the key was copied (RD_KAFKA_MSG_F_COPY copies both) */
        if (!err)
                return NULL;
        rd_kafka_headers_destroy(h);
        return rd_kafka_error_new(err, "%s", rd_kafka_err2str(err));
}

/* Aborts p's transaction, saying so when that fails too. */
static void dlq_abort(rd_kafka_t *p)
{
        rd_kafka_error_t *ae = rd_kafka_abort_transaction(p, DLQ_TIMEOUT_MS * 3);

        if (ae) {
                fprintf(stderr,
                        "duro-enricher dlq: aborting the transaction failed too (%s): "
                        "it ends at transaction.timeout.ms, or at the next redrive\n",
                        rd_kafka_error_string(ae));
                rd_kafka_error_destroy(ae);
        }
}

/* Copies the n records ms to the raw topic in one transaction; ids gets their redrive
 * ids (n * 33 bytes: 32 hex digits and a NUL each). Returns 0 or the exit status. */
static int dlq_redrive(const struct cli *cli, const struct dlq_config *cfg,
                       rd_kafka_message_t **ms, size_t n, char *ids)
{
        char txid[512], host[128];
        rd_kafka_error_t *error;
        rd_kafka_t *p;
        int rc, began = 0;

        /* The same id on every run from this host: a run that died with its
         * transaction open is fenced, and its transaction aborted, by the next. */
        if (gethostname(host, sizeof(host)))
                snprintf(host, sizeof(host), "host");
        host[sizeof(host) - 1] = '\0';
        snprintf(txid, sizeof(txid), "%s-redrive-%s", cfg->group, host);
        rc = cli_producer(cli, cfg->bootstrap, "duro-enricher-redrive", txid, &p);
        if (rc)
                return rc;
        error = rd_kafka_init_transactions(p, DLQ_TIMEOUT_MS * 3);
        if (!error && !(error = rd_kafka_begin_transaction(p))) {
                began = 1;
                for (size_t i = 0; i < n && !error; i++) {
                        dlq_new_id(ids + i * 33);
                        error = dlq_copy(p, cfg, ms[i], ids + i * 33);
                }
        }
        if (!error)
                error = rd_kafka_commit_transaction(p, -1);
        if (error) {
                rc = cli_fail(CLI_FAIL, "redrive failed, nothing was redriven: %s",
                              rd_kafka_error_string(error));
                /* Whatever the error, an open transaction is aborted: left open, it
                 * would hold the read_committed enricher back on the raw partitions
                 * it wrote to until transaction.timeout.ms. */
                if (began && !rd_kafka_error_is_fatal(error))
                        dlq_abort(p);
                rd_kafka_error_destroy(error);
        }
        rd_kafka_destroy(p);
        return rc;
}

/* Reads the selection, redrives it (unless it is a list or a dry run), prints it. */
static int dlq_run(const struct cli *cli, const struct dlq_config *cfg,
                   const struct dlq_args *a)
{
        int redrive             = cli->sub == DLQ_REDRIVE;
        rd_kafka_message_t **ms = NULL;
        size_t n                = 0;
        char *ids               = NULL;
        rd_kafka_t *c;
        int rc = cli_consumer(cli, cfg->bootstrap, "duro-enricher-dlq", cfg->group, &c);

        if (rc)
                return rc;
        rc = dlq_read(c, cfg, a, &ms, &n);
        if (!rc && redrive && !a->dry_run && n > 0) {
                ids = calloc(n, 33);
                rc  = ids ? dlq_redrive(cli, cfg, ms, n, ids)
                          : cli_fail(CLI_FAIL, "out of memory");
        }
        if (!rc)
                rc = dlq_print(ms, n, a->json, ids);
        if (!rc) {
                if (!a->json)
                        fprintf(stderr, "%zu record(s)%s\n", n,
                                redrive
                                    ? (a->dry_run ? " would be redriven (dry run)"
                                                  : (n ? " redriven in one transaction"
                                                       : ": nothing to redrive"))
                                    : "");
        }
        /* The messages hold references to the consumer: destroy them first. */
        for (size_t i = 0; i < n; i++)
                rd_kafka_message_destroy(ms[i]);
        free(ms);
        free(ids);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        return rc;
}

int cli_dlq_main(int argc, char **argv)
{
        struct dlq_config cfg = {0};
        struct dlq_args a     = {.limit = 1000000};
        struct cli cli;
        int rc = cli_start(&cli, &dlq_cmd, argc, argv, &cfg, &a);

        if (rc < 0)
                rc = dlq_check_args(&a);
        if (rc < 0 && cli.sub == DLQ_REDRIVE) {
                char err[900];
                if (devtable_load(&cfg.events, cfg.event_table, err, sizeof(err)))
                        rc = cli_fail(CLI_USAGE, "bad setting: %s", err);
        }
        if (rc < 0)
                rc = dlq_run(&cli, &cfg, &a);
        devtable_free(&cfg.events);
        cli_end(&cli);
        return rc;
}
