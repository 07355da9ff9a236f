/* enricher_dlq.c - `duro-enricher dlq list|redrive`: what is in the dead-letter topic
 * and why, and copying chosen records back to the raw topic in ONE transaction, each
 * with a new `duro-redrive-id` header, so that the enricher processes each once more,
 * exactly once per redrive (its dedupe key becomes <event id>#<redrive id>).
 * Selection: --event-id (repeatable), --since (RFC 3339, or an age such as 30m, 2h,
 * 7d),
 * --class. Reads with read_committed up to the end offsets seen at start. */
#include "../enricher/enricher.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbuf.h"
#include "dconf.h"
#include "dkafka.h"
#include "dlog.h"
#include "dtime.h"
#include "dwire.h"

extern char **environ;

#define DLQ_TIMEOUT_MS 10000

struct dlq_config {
        char *bootstrap;
        char *raw_topic;
        char *dlq_topic;
        char *group;
        int log_level;
};

#define DLQ_OPT(env, flag, type, def, field, help)                                     \
        {                                                                              \
                env, flag, type, def, 0, 0, offsetof(struct dlq_config, field), 0,     \
                    help                                                               \
        }

static const struct dconf_opt dlq_opts[] = {
    DLQ_OPT("KAFKA_BOOTSTRAP_SERVERS", "bootstrap-servers", DCONF_STRING,
            "127.0.0.1:9092", bootstrap, "Kafka bootstrap servers"),
    DLQ_OPT("DURO_RAW_TOPIC", "raw-topic", DCONF_STRING, "duro.webhooks.raw", raw_topic,
            "raw topic (redrive target)"),
    DLQ_OPT("DURO_DLQ_TOPIC", "dlq-topic", DCONF_STRING, "duro.webhooks.dlq", dlq_topic,
            "dead-letter topic"),
    DLQ_OPT("DURO_ENRICHER_GROUP", "group", DCONF_STRING, "duro-enricher", group,
            "names the redrive's transactional.id"),
    DLQ_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "warn", log_level,
            "log level"),
};
#define DLQ_NOPTS (sizeof(dlq_opts) / sizeof(dlq_opts[0]))

static const char dlq_usage[] =
    "usage: duro-enricher dlq list [--since T] [--class C] [--event-id ID]... "
    "[--limit N] [--json]\n"
    "       duro-enricher dlq redrive [--since T] [--class C] [--event-id ID]... "
    "[--dry-run] [--json]\n"
    "  T: RFC 3339 (2024-12-20T10:30:00Z) or an age (90s, 30m, 2h, 7d)\n"
    "  C: invalid-payload | no-topic | produce-rejected | resource-error\n"
    "environment: KAFKA_BOOTSTRAP_SERVERS, DURO_RAW_TOPIC, DURO_DLQ_TOPIC, "
    "DURO_ENRICHER_GROUP, DURO_RDKAFKA_*\n";

/* Headers the DLQ adds, dropped on the way back to the raw topic. */
static const char *const dlq_own_headers[] = {
    DWIRE_H_ERROR_CLASS,      DWIRE_H_ERROR_MESSAGE,
    DWIRE_H_ATTEMPTS,         DWIRE_H_SOURCE_TOPIC,
    DWIRE_H_SOURCE_PARTITION, DWIRE_H_SOURCE_OFFSET,
    DWIRE_H_REDRIVE_ID,       NULL};

struct dlq_args {
        int64_t since_ms; /* -1: from the beginning */
        const char *cls;
        const char **ids;
        size_t nids;
        long limit;
        int json, dry_run;
};

static int dlq_fail(const char *what, const char *detail)
{
        fprintf(stderr, "duro-enricher dlq: %s%s\n", what, detail);
        return 1;
}

/* "2024-12-20T10:30:00Z" or an age "90s", "30m", "2h", "7d". */
static int dlq_parse_since(const char *s, int64_t *out)
{
        char *end;
        long long n;

        if (!dtime_parse_rfc3339(s, strlen(s), out))
                return 0;
        n = strtoll(s, &end, 10);
        if (end == s || n < 0 || end[0] == '\0' || end[1] != '\0')
                return -1;
        switch (*end) {
        case 's':
                break;
        case 'm':
                n *= 60;
                break;
        case 'h':
                n *= 3600;
                break;
        case 'd':
                n *= 86400;
                break;
        default:
                return -1;
        }
        *out = dtime_now_ms() - n * 1000;
        return 0;
}

static int dlq_parse_args(int argc, char **argv, struct dlq_args *a)
{
        memset(a, 0, sizeof(*a));
        a->since_ms = -1;
        a->limit    = 1000000;
        a->ids      = calloc((size_t)argc + 1, sizeof(*a->ids));
        if (!a->ids)
                return dlq_fail("out of memory", "");
        for (int i = 0; i < argc; i++) {
                const char *o = argv[i];
                int has       = i + 1 < argc;
                if (!strcmp(o, "--json"))
                        a->json = 1;
                else if (!strcmp(o, "--dry-run"))
                        a->dry_run = 1;
                else if (!strcmp(o, "--since") && has) {
                        if (dlq_parse_since(argv[++i], &a->since_ms))
                                return dlq_fail("--since: not RFC 3339 nor an age like "
                                                "30m: ",
                                                argv[i]);
                } else if (!strcmp(o, "--class") && has) {
                        a->cls = argv[++i];
                        if (dwire_dlq_class_parse(a->cls) < 0)
                                return dlq_fail("--class: unknown class ", a->cls);
                } else if (!strcmp(o, "--event-id") && has) {
                        a->ids[a->nids++] = argv[++i];
                } else if (!strcmp(o, "--limit") && has) {
                        char *end;
                        a->limit = strtol(argv[++i], &end, 10);
                        if (*end || a->limit < 1)
                                return dlq_fail("--limit: not a positive number: ",
                                                argv[i]);
                } else {
                        return dlq_fail("unknown option or missing value: ", o);
                }
        }
        return 0;
}

static int dlq_selected(const struct dlq_args *a, const rd_kafka_message_t *m)
{
        char cls[64], id[256];

        if (a->since_ms >= 0 && rd_kafka_message_timestamp(m, NULL) < a->since_ms)
                return 0;
        if (a->cls && (!dkafka_header(m, DWIRE_H_ERROR_CLASS, cls, sizeof(cls)) ||
                       strcmp(cls, a->cls)))
                return 0;
        if (a->nids) {
                int hit = 0;
                if (!dkafka_header(m, DWIRE_H_EVENT_ID, id, sizeof(id)))
                        return 0;
                for (size_t i = 0; i < a->nids && !hit; i++)
                        hit = !strcmp(a->ids[i], id);
                return hit;
        }
        return 1;
}

/* Reads the DLQ (read_committed) from --since (or the start) to the end offsets seen
 * now, keeping the selected records in *out (owned). Returns 0 or -1. */
static int dlq_read(rd_kafka_t *c, const struct dlq_config *cfg,
                    const struct dlq_args *a, rd_kafka_message_t ***out, size_t *nout)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, cfg->dlq_topic, NULL);
        int64_t *end;
        int open   = 0, np;
        size_t cap = 0;

        *out  = NULL;
        *nout = 0;
        if (rd_kafka_metadata(c, 0, rkt, &md, DLQ_TIMEOUT_MS) || md->topic_cnt != 1 ||
            md->topics[0].err) {
                if (md)
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
                return dlq_fail("cannot read the DLQ topic ", cfg->dlq_topic);
        }
        np  = md->topics[0].partition_cnt;
        l   = rd_kafka_topic_partition_list_new(np);
        end = calloc((size_t)np + 1, sizeof(*end));
        for (int i = 0; i < np; i++) {
                int32_t p = md->topics[0].partitions[i].id;
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(c, cfg->dlq_topic, p, &lo, &hi,
                                                     DLQ_TIMEOUT_MS))
                        hi = 0;
                rd_kafka_topic_partition_list_add(l, cfg->dlq_topic, p)->offset =
                    a->since_ms >= 0 ? a->since_ms : RD_KAFKA_OFFSET_BEGINNING;
                if (p <= np)
                        end[p] = hi;
                open++;
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (a->since_ms >= 0 && rd_kafka_offsets_for_times(c, l, DLQ_TIMEOUT_MS)) {
                free(end);
                rd_kafka_topic_partition_list_destroy(l);
                return dlq_fail("cannot look up offsets for --since", "");
        }
        rd_kafka_assign(c, l);
        rd_kafka_topic_partition_list_destroy(l);
        while (open > 0) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, DLQ_TIMEOUT_MS);
                if (!m) {
                        free(end);
                        return dlq_fail("timed out reading ", cfg->dlq_topic);
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* once per partition: its end is marked by -1 */
                        if (m->partition <= np && end[m->partition] >= 0) {
                                end[m->partition] = -1;
                                open--;
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (m->err) {
                        dlq_fail("reading the DLQ: ", rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        free(end);
                        return -1;
                }
                if (m->partition <= np &&
                    (end[m->partition] < 0 || m->offset >= end[m->partition])) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (!dlq_selected(a, m) || (long)*nout >= a->limit) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (*nout == cap) {
                        rd_kafka_message_t **nm;
                        cap = cap ? cap * 2 : 64;
                        nm  = realloc(*out, cap * sizeof(*nm));
                        if (!nm) {
                                rd_kafka_message_destroy(m);
                                free(end);
                                return dlq_fail("out of memory", "");
                        }
                        *out = nm;
                }
                (*out)[(*nout)++] = m;
        }
        free(end);
        return 0;
}

static void dlq_print(rd_kafka_message_t **ms, size_t n, int json,
                      const char *redrive_ids)
{
        char ts[40], cls[64], msg[256], att[16], eid[128], ev[64], sp[16], so[24];
        json_t *arr = json ? json_array() : NULL;

        if (!json)
                printf("%-3s %-8s %-24s %-16s %-8s %-30s %-24s %s\n", "P", "OFFSET",
                       "TIME", "CLASS", "ATTEMPTS", "EVENT ID", "EVENT", "REASON");
        for (size_t i = 0; i < n; i++) {
                const rd_kafka_message_t *m = ms[i];
                dtime_format_ms(ts, sizeof(ts), rd_kafka_message_timestamp(m, NULL));
                dkafka_header(m, DWIRE_H_ERROR_CLASS, cls, sizeof(cls));
                dkafka_header(m, DWIRE_H_ERROR_MESSAGE, msg, sizeof(msg));
                dkafka_header(m, DWIRE_H_ATTEMPTS, att, sizeof(att));
                dkafka_header(m, DWIRE_H_EVENT_ID, eid, sizeof(eid));
                dkafka_header(m, DWIRE_H_EVENT, ev, sizeof(ev));
                dkafka_header(m, DWIRE_H_SOURCE_PARTITION, sp, sizeof(sp));
                dkafka_header(m, DWIRE_H_SOURCE_OFFSET, so, sizeof(so));
                if (json) {
                        json_t *o = json_pack(
                            "{s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s%}",
                            "partition", (int)m->partition, "offset",
                            (json_int_t)m->offset, "time", ts, "error_class", cls,
                            "error_message", msg, "attempts", att, "event_id", eid,
                            "event", ev, "source_partition", sp, "source_offset", so,
                            "value", m->payload ? (const char *)m->payload : "",
                            (size_t)m->len);
                        if (o && redrive_ids)
                                json_object_set_new(
                                    o, "redrive_id",
                                    json_stringn(redrive_ids + i * 33, 32));
                        if (o)
                                json_array_append_new(arr, o);
                } else {
                        printf("%-3d %-8lld %-24s %-16s %-8s %-30s %-24s %s%s%.32s\n",
                               (int)m->partition, (long long)m->offset, ts, cls, att,
                               eid, ev, msg, redrive_ids ? " -> redrive " : "",
                               redrive_ids ? redrive_ids + i * 33 : "");
                }
        }
        if (json) {
                char *s = json_dumps(arr, JSON_INDENT(2));
                if (s)
                        printf("%s\n", s);
                free(s);
                json_decref(arr);
        }
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

static int dlq_redrive(const struct dlq_config *cfg, const struct dconf_props *props,
                       rd_kafka_message_t **ms, size_t n, char *ids)
{
        char err[512], txid[512], host[128];
        rd_kafka_conf_t *conf;
        rd_kafka_t *p;
        rd_kafka_error_t *error;
        int rc = 0;

        if (gethostname(host, sizeof(host)))
                snprintf(host, sizeof(host), "host");
        host[sizeof(host) - 1] = '\0';
        snprintf(txid, sizeof(txid), "%s-redrive-%s-%d", cfg->group, host,
                 (int)getpid());
        conf = dkafka_conf_new(cfg->bootstrap, "duro-enricher-redrive", props,
                               DCONF_SCOPE_PRODUCER, err, sizeof(err));
        if (!conf || dkafka_conf_transactional(conf, txid, err, sizeof(err))) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                return dlq_fail("bad setting: ", err);
        }
        p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!p) {
                rd_kafka_conf_destroy(conf);
                return dlq_fail("cannot create the producer: ", err);
        }
        error = rd_kafka_init_transactions(p, DLQ_TIMEOUT_MS * 3);
        if (!error)
                error = rd_kafka_begin_transaction(p);
        for (size_t i = 0; i < n && !error; i++) {
                rd_kafka_message_t *m   = ms[i];
                rd_kafka_headers_t *src = NULL, *h;
                struct dkafka_rec rec   = {0};
                rd_kafka_resp_err_t perr;
                dlq_new_id(ids + i * 33);
                if (i + 1 < n)
                        ids[i * 33 + 32] = ' ';
                h = rd_kafka_message_headers(m, &src) ? rd_kafka_headers_new(8)
                                                      : rd_kafka_headers_copy(src);
                for (const char *const *d = dlq_own_headers; *d; d++)
                        rd_kafka_header_remove(h, *d);
                rd_kafka_header_add(h, DWIRE_H_REDRIVE_ID, -1, ids + i * 33, 32);
                rec.topic     = cfg->raw_topic;
                rec.key       = m->key;
                rec.key_len   = m->key_len;
                rec.value     = m->payload;
                rec.value_len = m->len;
                rec.headers   = h;
                rec.msgflags  = RD_KAFKA_MSG_F_COPY;
                perr          = dkafka_produce(p, &rec, 0);
                if (perr) {
                        rd_kafka_headers_destroy(h);
                        error = rd_kafka_error_new(perr, "%s", rd_kafka_err2str(perr));
                }
        }
        for (size_t i = 0; i + 1 < n; i++)
                ids[i * 33 + 32] = '\0';
        if (!error)
                error = rd_kafka_commit_transaction(p, -1);
        if (error) {
                rc = dlq_fail("redrive failed, nothing was redriven: ",
                              rd_kafka_error_string(error));
                if (rd_kafka_error_txn_requires_abort(error)) {
                        rd_kafka_error_t *ae = rd_kafka_abort_transaction(p, -1);
                        if (ae)
                                rd_kafka_error_destroy(ae);
                }
                rd_kafka_error_destroy(error);
        }
        rd_kafka_destroy(p);
        return rc;
}

int enricher_dlq_main(int argc, char **argv)
{
        static char *noargs[] = {(char *)"duro-enricher", NULL};
        struct dlq_config cfg;
        struct dlq_args a;
        struct dconf_props props;
        rd_kafka_message_t **ms = NULL;
        size_t n                = 0;
        rd_kafka_conf_t *conf;
        rd_kafka_t *c;
        char err[512], *ids = NULL;
        int rc = 0, redrive;

        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(dlq_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        redrive = !strcmp(argv[1], "redrive");
        if (!redrive && strcmp(argv[1], "list")) {
                fprintf(stderr, "duro-enricher dlq: %s: unknown command\n%s", argv[1],
                        dlq_usage);
                return 2;
        }
        memset(&cfg, 0, sizeof(cfg));
        if (dconf_load(dlq_opts, DLQ_NOPTS, &cfg, 1, noargs, environ,
                       "duro-enricher dlq", &props, err, sizeof(err)) != DCONF_OK ||
            dkafka_check_props(&props, err, sizeof(err))) {
                fprintf(stderr, "duro-enricher dlq: bad setting: %s\n", err);
                return 2;
        }
        dlog_init("duro-enricher", (enum dlog_level)cfg.log_level);
        if (dlq_parse_args(argc - 2, argv + 2, &a)) {
                rc = 2;
                goto out;
        }
        conf = dkafka_conf_new(cfg.bootstrap, "duro-enricher-dlq", &props,
                               DCONF_SCOPE_CONSUMER, err, sizeof(err));
        if (!conf || dkafka_conf_set(conf, "group.id", cfg.group, err, sizeof(err)) ||
            dkafka_conf_set(conf, "isolation.level", "read_committed", err,
                            sizeof(err)) ||
            dkafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
            dkafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err))) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                fprintf(stderr, "duro-enricher dlq: bad setting: %s\n", err);
                rc = 2;
                goto out;
        }
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        if (!c) {
                rd_kafka_conf_destroy(conf);
                rc = dlq_fail("cannot create the consumer: ", err);
                goto out;
        }
        rd_kafka_poll_set_consumer(c);
        rc = dlq_read(c, &cfg, &a, &ms, &n) ? 1 : 0;
        rd_kafka_assign(c, NULL);
        if (!rc && redrive && !a.dry_run && n > 0) {
                ids = calloc(n, 33);
                if (!ids)
                        rc = dlq_fail("out of memory", "");
                else
                        rc = dlq_redrive(&cfg, &props, ms, n, ids);
        }
        if (!rc) {
                dlq_print(ms, n, a.json, ids);
                if (!a.json)
                        fprintf(stderr, "%zu record(s)%s\n", n,
                                redrive
                                    ? (a.dry_run ? " would be redriven (dry run)"
                                                 : (n ? " redriven in one transaction"
                                                      : ": nothing to redrive"))
                                    : "");
        }
        /* The messages hold references to the consumer: destroy them first. */
        for (size_t i = 0; i < n; i++)
                rd_kafka_message_destroy(ms[i]);
        n = 0;
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
out:
        for (size_t i = 0; i < n; i++)
                rd_kafka_message_destroy(ms[i]);
        free(ms);
        free(ids);
        free(a.ids);
        dconf_props_free(&props);
        dconf_free(dlq_opts, DLQ_NOPTS, &cfg);
        return rc;
}
