/* kafka_ceiling.c - the Kafka ceiling of the ingress benchmark (docs/benchmarks.md).
 *
 * A librdkafka producer with duro-bridge's producer settings (enable.idempotence=true,
 * acks=all, linger.ms=0.1, socket.nagle.disable=true, partitioner murmur2_random,
 * message.timeout.ms = the bridge's default ack timeout minus 1 s) that produces the
 * records duro-bridge would produce for the same pool of webhooks (same key, value and
 * headers, value not copied) for a fixed time, and counts the delivery reports.
 *
 *   kafka_ceiling --bootstrap H:P --topic T --pool FILE [--seconds S] [--inflight N]
 *
 * --inflight 0 (default): as fast as it can, the producer queue kept full.
 * --inflight N: at most N records outstanding (a closed loop, like N HTTP clients
 * each waiting for its answer): what the bridge could reach at N connections if HTTP
 * cost nothing.
 *
 * The pool file has one record per line, tab-separated:
 *   key, event, event id, webhook id, signature header, body
 * (tests/bench/gen_pool.py writes it). Prints one JSON line on stdout. */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

struct rec {
        char *key, *event, *id, *webhook_id, *sig, *body;
        size_t body_len;
};

#define LAT_FINE   100000 /* 1 us buckets up to 100 ms */
#define LAT_COARSE 6000   /* then 10 ms buckets up to 60 s */
static uint32_t lat_fine[LAT_FINE], lat_coarse[LAT_COARSE + 1];

static long long delivered, failed, outstanding, delivered_in_window;
static int64_t window_end_us;
static rd_kafka_resp_err_t first_error;

static int64_t mono_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void lat_add(int64_t us)
{
        if (us < 0)
                us = 0;
        if (us < LAT_FINE)
                lat_fine[us]++;
        else {
                int64_t i = (us - LAT_FINE) / 10000;
                lat_coarse[i > LAT_COARSE ? LAT_COARSE : i]++;
        }
}

/* The latency (us) below which a fraction q of the samples lie. */
static long long lat_quantile(double q, long long n)
{
        long long want = (long long)(q * (double)n), seen = 0;

        if (n <= 0)
                return -1;
        for (int i = 0; i < LAT_FINE; i++)
                if ((seen += lat_fine[i]) > want)
                        return i;
        for (int i = 0; i <= LAT_COARSE; i++)
                if ((seen += lat_coarse[i]) > want)
                        return LAT_FINE + (long long)i * 10000;
        return -1;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        int64_t now = mono_us();
        (void)rk, (void)opaque;

        outstanding--;
        if (m->err) {
                if (!first_error)
                        first_error = m->err;
                failed++;
                return;
        }
        delivered++;
        if (now <= window_end_us) {
                delivered_in_window++;
                lat_add(now - (int64_t)(intptr_t)m->_private);
        }
}

static char *field(char **p)
{
        char *s = *p, *t = strchr(s, '\t');
        if (!t)
                return NULL;
        *t = '\0';
        *p = t + 1;
        return s;
}

static struct rec *load_pool(const char *path, size_t *n)
{
        FILE *f       = fopen(path, "r");
        struct rec *v = NULL;
        size_t cap    = 0;
        char *line    = NULL;
        size_t lcap   = 0;
        ssize_t len;

        *n = 0;
        if (!f)
                return NULL;
        while ((len = getline(&line, &lcap, f)) > 0) {
                char *p = line;
                struct rec r;
                if (line[len - 1] == '\n')
                        line[--len] = '\0';
                r.key        = field(&p);
                r.event      = field(&p);
                r.id         = field(&p);
                r.webhook_id = field(&p);
                r.sig        = field(&p);
                if (!r.sig)
                        continue;
                r.key = strdup(r.key), r.event = strdup(r.event), r.id = strdup(r.id);
                r.webhook_id = strdup(r.webhook_id), r.sig = strdup(r.sig);
                r.body     = strdup(p);
                r.body_len = strlen(p);
                if (*n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        v   = realloc(v, cap * sizeof(*v));
                        if (!v)
                                exit(1);
                }
                v[(*n)++] = r;
        }
        free(line);
        fclose(f);
        return v;
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v)
{
        char err[256];
        if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "kafka_ceiling: %s=%s: %s\n", k, v, err);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        const char *bootstrap = NULL, *topic = NULL, *pool = NULL;
        double seconds     = 15;
        long long inflight = 0, produced = 0, queue_full = 0;
        struct rec *recs;
        size_t nrec, next = 0;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        char err[512];
        int64_t start, end;

        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--bootstrap"))
                        bootstrap = argv[i + 1];
                else if (!strcmp(argv[i], "--topic"))
                        topic = argv[i + 1];
                else if (!strcmp(argv[i], "--pool"))
                        pool = argv[i + 1];
                else if (!strcmp(argv[i], "--seconds"))
                        seconds = atof(argv[i + 1]);
                else if (!strcmp(argv[i], "--inflight"))
                        inflight = atoll(argv[i + 1]);
        }
        if (!bootstrap || !topic || !pool || seconds <= 0 || seconds > 3600) {
                fprintf(stderr, "usage: kafka_ceiling --bootstrap H:P --topic T --pool "
                                "FILE [--seconds S (<= 3600)] [--inflight N]\n");
                return 2;
        }
        recs = load_pool(pool, &nrec);
        if (!recs || !nrec) {
                fprintf(stderr, "kafka_ceiling: no records in %s\n", pool);
                return 2;
        }

        conf = rd_kafka_conf_new();
        if (set(conf, "bootstrap.servers", bootstrap) ||
            set(conf, "client.id", "duro-bench-kafka-ceiling") ||
            set(conf, "enable.idempotence", "true") || set(conf, "acks", "all") ||
            set(conf, "linger.ms", "0.1") ||
            set(conf, "socket.nagle.disable", "true") ||
            set(conf, "partitioner", "murmur2_random") ||
            set(conf, "message.timeout.ms", "9000"))
                return 2;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "kafka_ceiling: %s\n", err);
                return 1;
        }
        rkt = rd_kafka_topic_new(rk, topic, NULL);

        /* Warm up: one record delivered (connection, producer id, metadata). */
        {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    rk, RD_KAFKA_V_RKT(rkt),
                    RD_KAFKA_V_KEY(recs[0].key, strlen(recs[0].key)),
                    RD_KAFKA_V_VALUE(recs[0].body, recs[0].body_len),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)mono_us()), RD_KAFKA_V_END);
                if (e) {
                        fprintf(stderr, "kafka_ceiling: warm-up: %s\n",
                                rd_kafka_err2str(e));
                        return 1;
                }
                outstanding++;
                window_end_us = INT64_MAX;
                rd_kafka_flush(rk, 30000);
                if (delivered != 1) {
                        fprintf(stderr,
                                "kafka_ceiling: warm-up record not delivered: %s\n",
                                rd_kafka_err2str(first_error));
                        return 1;
                }
                memset(lat_fine, 0, sizeof(lat_fine));
                memset(lat_coarse, 0, sizeof(lat_coarse));
                delivered = delivered_in_window = 0;
        }

        start         = mono_us();
        end           = start + (int64_t)(seconds * 1e6);
        window_end_us = end;
        while (mono_us() < end) {
                struct rec *r = &recs[next];
                rd_kafka_headers_t *h;
                rd_kafka_resp_err_t e;
                char received[40];
                time_t t;
                struct timespec ts;
                struct tm tm;

                if (inflight > 0 && outstanding >= inflight) {
                        rd_kafka_poll(rk, 1);
                        continue;
                }
                clock_gettime(CLOCK_REALTIME, &ts);
                t = ts.tv_sec;
                gmtime_r(&t, &tm);
                snprintf(received, sizeof(received),
                         "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         ts.tv_nsec / 1000000);
                h = rd_kafka_headers_new(8);
                rd_kafka_header_add(h, "duro-event", -1, r->event, -1);
                rd_kafka_header_add(h, "duro-event-id", -1, r->id, -1);
                rd_kafka_header_add(h, "duro-webhook-id", -1, r->webhook_id, -1);
                rd_kafka_header_add(h, "duro-signature", -1, r->sig, -1);
                rd_kafka_header_add(h, "received-at", -1, received, -1);
                rd_kafka_header_add(h, "content-type", -1, "application/json", -1);
                e = rd_kafka_producev(
                    rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(r->key, strlen(r->key)),
                    RD_KAFKA_V_VALUE(r->body, r->body_len),
                    RD_KAFKA_V_TIMESTAMP((int64_t)ts.tv_sec * 1000 +
                                         ts.tv_nsec / 1000000),
                    RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)mono_us()), RD_KAFKA_V_END);
                if (e) {
                        rd_kafka_headers_destroy(h);
                        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                fprintf(stderr, "kafka_ceiling: produce: %s\n",
                                        rd_kafka_err2str(e));
                                return 1;
                        }
                        queue_full++;
                        rd_kafka_poll(rk, 1);
                        continue;
                }
                produced++;
                outstanding++;
                next = (next + 1) % nrec;
                if ((produced & 63) == 0)
                        rd_kafka_poll(rk, 0);
        }
        rd_kafka_poll(rk, 0);
        {
                double wall         = (double)(mono_us() - start) / 1e6;
                long long in_window = delivered_in_window;
                rd_kafka_flush(rk, 15000);
                printf(
                    "{\"program\":\"kafka_ceiling\",\"inflight_limit\":%lld,"
                    "\"seconds\":%.3f,\"produced\":%lld,\"delivered_in_window\":%lld,"
                    "\"records_per_s\":%.1f,\"delivered_total\":%lld,\"failed\":%lld,"
                    "\"queue_full\":%lld,\"first_error\":\"%s\",\"lat_p50_us\":%lld,"
                    "\"lat_p99_us\":%lld,\"vm_hwm_kib\":%ld,\"librdkafka\":\"%s\"}\n",
                    inflight, wall, produced, in_window, (double)in_window / wall,
                    delivered, failed, queue_full,
                    first_error ? rd_kafka_err2name(first_error) : "",
                    lat_quantile(0.50, in_window), lat_quantile(0.99, in_window),
                    bench_vm_hwm_kib(), rd_kafka_version_str());
        }
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return failed ? 1 : 0;
}
