/* rawpart.c - fills one partition of a raw topic with many records shaped as
 * duro-bridge writes them, or reads a range of one as plainly as librdkafka can: the
 * dedupe rebuild's test input and its benchmark's baseline (docs/benchmarks.md).
 *
 *   rawpart fill --bootstrap H:P --topic T --partition P --count N [--prefix S]
 *                [--ts-start MS] [--ts-step-us US] [--bare-every K]
 *                [-X property=value]...
 *   rawpart read --bootstrap H:P --topic T --partition P [--from O] [--to O]
 *                [-X property=value]...
 *
 * fill: N records ITEM_UPDATE with event ids <prefix>-<i>, the bridge's headers, record
 * timestamps ts-start + i * ts-step-us / 1000 (default: now, 0); every K-th record
 * without the duro-event-id header (its id only in the body); -X sets any producer
 * property (e.g. batch.num.messages, to write small batches). Prints one JSON line:
 * {"count":N,"first_offset":..,"last_offset":..,"last_ts":..,"seconds":..}.
 * read: read_committed, from offset O (default: the first) up to offset O (exclusive;
 * default: the end), counting records; -X sets any consumer property. Prints
 * {"records":N,"seconds":..,"rate":..}. Exits 1 with a message on any failure. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct args {
        const char *cmd, *bootstrap, *topic, *prefix;
        int32_t partition;
        long long count, from, to, ts_start, ts_step_us, bare_every;
        const char *props[32];
        int nprops;
};

static int64_t mono_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(const char *what, const char *why)
{
        fprintf(stderr, "rawpart: %s: %s\n", what, why);
        return 1;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
        char err[256];

        if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
                return fail(k, err);
        return 0;
}

/* The -X properties. */
static int conf_props(rd_kafka_conf_t *conf, const struct args *a)
{
        for (int i = 0; i < a->nprops; i++) {
                char kv[512], *eq;
                snprintf(kv, sizeof(kv), "%s", a->props[i]);
                if (!(eq = strchr(kv, '=')))
                        return fail(a->props[i], "-X wants property=value");
                *eq = '\0';
                if (conf_set(conf, kv, eq + 1))
                        return 1;
        }
        return 0;
}

static long long delivered, failed_n;
static int64_t first_offset = -1, last_offset = -1;

static void fill_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->err) {
                if (!failed_n++)
                        fprintf(stderr, "rawpart: delivery: %s\n",
                                rd_kafka_err2str(m->err));
                return;
        }
        delivered++;
        if (first_offset < 0 || m->offset < first_offset)
                first_offset = m->offset;
        if (m->offset > last_offset)
                last_offset = m->offset;
}

static int fill(const struct args *a)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[256], body[512], id[128], item[64], ts[32];
        int64_t t0 = mono_us(), last_ts = 0;
        rd_kafka_t *rk;

        if (conf_set(conf, "bootstrap.servers", a->bootstrap) ||
            conf_set(conf, "enable.idempotence", "true") ||
            conf_set(conf, "linger.ms", "20") ||
            conf_set(conf, "batch.size", "1000000") ||
            conf_set(conf, "queue.buffering.max.messages", "500000"))
                return 1;
        if (conf_props(conf, a))
                return 1;
        rd_kafka_conf_set_dr_msg_cb(conf, fill_dr);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
                return fail("producer", err);
        for (long long i = 0; i < a->count && !failed_n; i++) {
                int64_t t = a->ts_start + i * a->ts_step_us / 1000;
                /* a bare record has its id in the body only */
                const char *id_header = a->bare_every > 0 && i % a->bare_every == 0
                                            ? "x-no-event-id"
                                            : "duro-event-id";
                rd_kafka_resp_err_t e;
                int n;
                snprintf(id, sizeof(id), "%s-%lld", a->prefix, i);
                snprintf(item, sizeof(item), "comp_fill_%lld", i % 1000);
                snprintf(ts, sizeof(ts), "%" PRId64, t);
                n       = snprintf(body, sizeof(body),
                                   "{\"id\":\"%s\",\"webhook_id\":\"webhook_fill\","
                                         "\"event\":\"ITEM_UPDATE\",\"created_at\":"
                                         "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"%s\"}}",
                                   id, item);
                last_ts = t;
                do {
                        e = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(a->topic),
                            RD_KAFKA_V_PARTITION(a->partition),
                            RD_KAFKA_V_KEY(item, strlen(item)),
                            RD_KAFKA_V_VALUE(body, (size_t)n),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_TIMESTAMP(t),
                            RD_KAFKA_V_HEADER("duro-event", "ITEM_UPDATE", -1),
                            RD_KAFKA_V_HEADER(id_header, id, -1),
                            RD_KAFKA_V_HEADER("duro-webhook-id", "webhook_fill", -1),
                            RD_KAFKA_V_HEADER("duro-signature", "sha256=00", -1),
                            RD_KAFKA_V_HEADER("received-at", ts, -1),
                            RD_KAFKA_V_HEADER("content-type", "application/json", -1),
                            RD_KAFKA_V_END);
                        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(rk, 50);
                } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
                if (e) {
                        rd_kafka_destroy(rk);
                        return fail("produce", rd_kafka_err2str(e));
                }
                rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 120000);
        rd_kafka_destroy(rk);
        if (failed_n || delivered != a->count)
                return fail("fill", "not every record was delivered");
        printf("{\"count\":%lld,\"first_offset\":%" PRId64 ",\"last_offset\":%" PRId64
               ",\"last_ts\":%" PRId64 ",\"seconds\":%.3f}\n",
               delivered, first_offset, last_offset, last_ts,
               (double)(mono_us() - t0) / 1e6);
        return 0;
}

static int read_range(const struct args *a)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *l;
        long long records = 0;
        int64_t lo, hi, from, to, t0, last = -1;
        char err[256];
        rd_kafka_t *rk;

        if (conf_set(conf, "bootstrap.servers", a->bootstrap) ||
            conf_set(conf, "group.id", "rawpart-read") ||
            conf_set(conf, "isolation.level", "read_committed") ||
            conf_set(conf, "enable.auto.commit", "false") ||
            conf_set(conf, "enable.partition.eof", "true"))
                return 1;
        if (conf_props(conf, a))
                return 1;
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))))
                return fail("consumer", err);
        if (rd_kafka_query_watermark_offsets(rk, a->topic, a->partition, &lo, &hi,
                                             10000)) {
                rd_kafka_destroy(rk);
                return fail("watermarks", "no answer");
        }
        from = a->from >= 0 ? a->from : lo;
        to   = a->to >= 0 ? a->to : hi;
        l    = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, a->topic, a->partition)->offset = from;
        t0 = mono_us();
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        while (last + 1 < to) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10000);
                if (!m) {
                        rd_kafka_destroy(rk);
                        return fail("read", "nothing for 10 s");
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_message_destroy(m);
                        break;
                }
                if (!m->err && m->offset < to) {
                        records++;
                        last = m->offset;
                } else if (!m->err) {
                        last = to;
                }
                rd_kafka_message_destroy(m);
        }
        printf("{\"records\":%lld,\"seconds\":%.3f,\"rate\":%.0f}\n", records,
               (double)(mono_us() - t0) / 1e6,
               (double)records * 1e6 / (double)(mono_us() - t0 + 1));
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return 0;
}

static int usage(void)
{
        fprintf(stderr,
                "usage: rawpart fill|read --bootstrap H:P --topic T --partition P "
                "[options] (see rawpart.c)\n");
        return 2;
}

int main(int argc, char **argv)
{
        struct args a = {0};

        a.prefix   = "evt_fill";
        a.from     = -1;
        a.to       = -1;
        a.ts_start = wall_ms();
        if (argc < 2)
                return usage();
        a.cmd = argv[1];
        for (int i = 2; i < argc; i++) {
                const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!v)
                        return usage();
                i++;
                if (!strcmp(k, "--bootstrap"))
                        a.bootstrap = v;
                else if (!strcmp(k, "--topic"))
                        a.topic = v;
                else if (!strcmp(k, "--partition"))
                        a.partition = (int32_t)atoi(v);
                else if (!strcmp(k, "--count"))
                        a.count = atoll(v);
                else if (!strcmp(k, "--prefix"))
                        a.prefix = v;
                else if (!strcmp(k, "--ts-start"))
                        a.ts_start = atoll(v);
                else if (!strcmp(k, "--ts-step-us"))
                        a.ts_step_us = atoll(v);
                else if (!strcmp(k, "--bare-every"))
                        a.bare_every = atoll(v);
                else if (!strcmp(k, "--from"))
                        a.from = atoll(v);
                else if (!strcmp(k, "--to"))
                        a.to = atoll(v);
                else if (!strcmp(k, "-X") && a.nprops < 32)
                        a.props[a.nprops++] = v;
                else
                        return usage();
        }
        if (!a.bootstrap || !a.topic)
                return usage();
        if (!strcmp(a.cmd, "fill"))
                return fill(&a);
        if (!strcmp(a.cmd, "read"))
                return read_range(&a);
        return usage();
}
