/* Unit tests for the enricher dedupe set (stream-time window) and enricher_dedupe_key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/sha.h>

#include "enricher.h"

#define WINDOW_MS 1000

static void dd_init(struct enricher_dedupe *d, int64_t window_ms)
{
        memset(d, 0, sizeof(*d));
        enricher_dedupe_clear(d);
        d->window_ms = window_ms;
}

static void key_of(char *buf, size_t size, const char *prefix, long i)
{
        snprintf(buf, size, "%s%ld", prefix, i);
}

/* ---- enricher_dedupe_add / has / clear ---- */

static void test_empty_set_has_nothing(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_false(enricher_dedupe_has(&d, "evt_1"));
        assert_false(enricher_dedupe_has(&d, ""));
        assert_int_equal(d.n, 0);
        enricher_dedupe_clear(&d);
}

static void test_added_found_others_not(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "evt_abc123", 100), 0);
        assert_int_equal(enricher_dedupe_add(&d, "evt_def456", 200), 0);
        assert_int_equal(enricher_dedupe_add(&d, "sha256:00ff", 300), 0);
        assert_true(enricher_dedupe_has(&d, "evt_abc123"));
        assert_true(enricher_dedupe_has(&d, "evt_def456"));
        assert_true(enricher_dedupe_has(&d, "sha256:00ff"));
        assert_false(enricher_dedupe_has(&d, "evt_abc124"));
        assert_false(enricher_dedupe_has(&d, "evt_abc12"));
        assert_false(enricher_dedupe_has(&d, "EVT_ABC123"));
        assert_false(enricher_dedupe_has(&d, ""));
        /* A redriven record's key differs from the plain event id. */
        assert_false(enricher_dedupe_has(&d, "evt_abc123#r1"));
        assert_int_equal(d.n, 3);
        enricher_dedupe_clear(&d);
}

static void test_same_key_twice_counted_once(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "evt_1", 10), 0);
        assert_int_equal(enricher_dedupe_add(&d, "evt_1", 20), 0);
        assert_int_equal(enricher_dedupe_add(&d, "evt_1", 15), 0);
        assert_int_equal(d.n, 1);
        assert_true(enricher_dedupe_has(&d, "evt_1"));
        enricher_dedupe_clear(&d);
}

static void test_clear_forgets_everything(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "evt_1", 10), 0);
        assert_int_equal(enricher_dedupe_add(&d, "evt_2", 5000), 0);
        enricher_dedupe_clear(&d);
        assert_int_equal(d.n, 0);
        assert_int_equal(d.cap, 0);
        assert_null(d.slots);
        assert_false(enricher_dedupe_has(&d, "evt_1"));
        assert_false(enricher_dedupe_has(&d, "evt_2"));
        /* Usable again; stream time starts over (a key at t=0 is live again). */
        d.window_ms = WINDOW_MS;
        assert_int_equal(enricher_dedupe_add(&d, "evt_1", 0), 0);
        assert_true(enricher_dedupe_has(&d, "evt_1"));
        assert_false(enricher_dedupe_has(&d, "evt_2"));
        enricher_dedupe_clear(&d);
        enricher_dedupe_clear(&d); /* twice is harmless */
}

static void test_stream_time_pruning(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "first", 0), 0);
        assert_true(enricher_dedupe_has(&d, "first"));

        /* Exactly one window later the first key is still inside it. */
        assert_int_equal(enricher_dedupe_add(&d, "second", WINDOW_MS), 0);
        assert_true(enricher_dedupe_has(&d, "first"));

        /* One millisecond more and it has left the window. */
        assert_int_equal(enricher_dedupe_add(&d, "third", WINDOW_MS + 1), 0);
        assert_false(enricher_dedupe_has(&d, "first"));
        assert_true(enricher_dedupe_has(&d, "second"));
        assert_true(enricher_dedupe_has(&d, "third"));

        /* The expired key can be added again and is found again. */
        assert_int_equal(enricher_dedupe_add(&d, "first", WINDOW_MS + 2), 0);
        assert_true(enricher_dedupe_has(&d, "first"));
        enricher_dedupe_clear(&d);
}

static void test_wall_clock_plays_no_part(void **state)
{
        struct enricher_dedupe d;
        /* 2000-01-01T00:00:00Z: decades behind the wall clock. */
        const int64_t t0 = INT64_C(946684800000);

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "old", t0), 0);
        assert_true(enricher_dedupe_has(&d, "old"));
        /* Stream time moves only with records: no record, no expiry. */
        assert_int_equal(enricher_dedupe_add(&d, "older", t0 - 500), 0);
        assert_true(enricher_dedupe_has(&d, "old"));
        assert_true(enricher_dedupe_has(&d, "older"));
        assert_int_equal(enricher_dedupe_add(&d, "next", t0 + WINDOW_MS), 0);
        assert_true(enricher_dedupe_has(&d, "old"));
        assert_false(enricher_dedupe_has(&d, "older"));
        enricher_dedupe_clear(&d);

        /* Timestamp 0 (1970) with a tiny window is found as long as nothing newer came.
         */
        dd_init(&d, 1);
        assert_int_equal(enricher_dedupe_add(&d, "epoch", 0), 0);
        assert_true(enricher_dedupe_has(&d, "epoch"));
        enricher_dedupe_clear(&d);
}

static void test_growth_keeps_all_within_window(void **state)
{
        struct enricher_dedupe d;
        char k[32];
        const long n = 20000;

        (void)state;
        dd_init(&d, INT64_C(90000) * 1000); /* the default 25h */
        for (long i = 0; i < n; i++) {
                key_of(k, sizeof(k), "evt_", i);
                assert_int_equal(enricher_dedupe_add(&d, k, 1000 + i), 0);
        }
        assert_int_equal(d.n, n);
        assert_true(d.cap >= 2 * (size_t)n);
        assert_int_equal(d.cap & (d.cap - 1), 0); /* a power of two */
        for (long i = 0; i < n; i++) {
                key_of(k, sizeof(k), "evt_", i);
                assert_true(enricher_dedupe_has(&d, k));
        }
        for (long i = n; i < 2 * n; i++) {
                key_of(k, sizeof(k), "evt_", i);
                assert_false(enricher_dedupe_has(&d, k));
        }
        enricher_dedupe_clear(&d);
}

static void test_growth_with_pruning_stays_bounded(void **state)
{
        struct enricher_dedupe d;
        char k[32];
        const long n = 30000;

        (void)state;
        dd_init(&d, WINDOW_MS);
        /* One key per millisecond: at most WINDOW_MS + 1 live at any time. */
        for (long i = 0; i < n; i++) {
                key_of(k, sizeof(k), "evt_", i);
                assert_int_equal(enricher_dedupe_add(&d, k, i), 0);
        }
        for (long i = 0; i < n; i++) {
                key_of(k, sizeof(k), "evt_", i);
                if (i >= n - 1 - WINDOW_MS)
                        assert_true(enricher_dedupe_has(&d, k));
                else
                        assert_false(enricher_dedupe_has(&d, k));
        }
        /* Expired keys were dropped when the table was rebuilt, not kept forever. */
        assert_true(d.cap <= 16384);
        assert_true(d.n <= d.cap / 2);
        enricher_dedupe_clear(&d);
}

static void test_older_timestamp_does_not_shorten_life(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "k", 1000), 0);
        /* The same key again with an older timestamp (a redelivery read late). */
        assert_int_equal(enricher_dedupe_add(&d, "k", 10), 0);
        /* Stream time 1000 + window: the horizon is 1000, so k (1000) lives on. */
        assert_int_equal(enricher_dedupe_add(&d, "x", 1000 + WINDOW_MS), 0);
        assert_true(enricher_dedupe_has(&d, "k"));
        assert_int_equal(enricher_dedupe_add(&d, "y", 1001 + WINDOW_MS), 0);
        assert_false(enricher_dedupe_has(&d, "k"));
        enricher_dedupe_clear(&d);
}

static void test_newer_timestamp_extends_life(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "k", 0), 0);
        assert_int_equal(enricher_dedupe_add(&d, "k", 500), 0);
        assert_int_equal(enricher_dedupe_add(&d, "x", 500 + WINDOW_MS), 0);
        assert_true(enricher_dedupe_has(&d, "k"));
        assert_int_equal(enricher_dedupe_add(&d, "y", 501 + WINDOW_MS), 0);
        assert_false(enricher_dedupe_has(&d, "k"));
        enricher_dedupe_clear(&d);
}

static void test_older_timestamp_survives_rehash(void **state)
{
        struct enricher_dedupe d;
        char k[32];

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "k", 900), 0);
        assert_int_equal(enricher_dedupe_add(&d, "k", 1), 0);
        /* Force several rebuilds of the table inside the window. */
        for (long i = 0; i < 500; i++) {
                key_of(k, sizeof(k), "evt_", i);
                assert_int_equal(enricher_dedupe_add(&d, k, 900 + i % 100), 0);
        }
        assert_int_equal(enricher_dedupe_add(&d, "z", 900 + WINDOW_MS), 0);
        assert_true(enricher_dedupe_has(&d, "k"));
        enricher_dedupe_clear(&d);
}

/* ---- enricher_dedupe_key ---- */

/* rd_kafka_message_headers() looks past the public rd_kafka_message_t into
 * librdkafka's private rd_kafka_msg_t (the public struct is its first member), so a
 * hand-built message lives at the start of a larger zeroed block: zero there means "a
 * consumed message without headers" and the call answers RD_KAFKA_RESP_ERR__NOENT. */
struct fake_msg {
        union {
                rd_kafka_message_t m;
                char pad[4096];
        } u;
};

static rd_kafka_message_t *fake_msg_new(const void *payload, size_t len)
{
        struct fake_msg *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->u.m.payload = (void *)payload;
        f->u.m.len     = len;
        return &f->u.m;
}

static void sha256_key(const void *p, size_t len, char out[7 + 64 + 1])
{
        static const char hx[] = "0123456789abcdef";
        unsigned char md[SHA256_DIGEST_LENGTH];

        SHA256(p, len, md);
        memcpy(out, "sha256:", 7);
        for (size_t i = 0; i < sizeof(md); i++) {
                out[7 + 2 * i]     = hx[md[i] >> 4];
                out[7 + 2 * i + 1] = hx[md[i] & 15];
        }
        out[7 + 64] = '\0';
}

static void test_key_event_id(void **state)
{
        static const char body[] = "{\"id\":\"evt_abc123\"}";
        rd_kafka_message_t *m    = fake_msg_new(body, sizeof(body) - 1);
        rd_kafka_headers_t *h    = NULL;
        char *k;

        (void)state;
        assert_int_not_equal(rd_kafka_message_headers(m, &h),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
        k = enricher_dedupe_key(m, "evt_abc123");
        assert_non_null(k);
        assert_string_equal(k, "evt_abc123");
        free(k);
        free(m);
}

static void test_key_no_event_id_hashes_payload(void **state)
{
        static const char body[] = "this is not JSON at all";
        rd_kafka_message_t *m    = fake_msg_new(body, sizeof(body) - 1);
        char want[72], *k;

        (void)state;
        sha256_key(body, sizeof(body) - 1, want);
        k = enricher_dedupe_key(m, NULL);
        assert_non_null(k);
        assert_int_equal(strlen(k), 7 + 64);
        assert_string_equal(k, want);
        free(k);
        /* An empty event id counts as none. */
        k = enricher_dedupe_key(m, "");
        assert_non_null(k);
        assert_string_equal(k, want);
        free(k);
        free(m);
}

static void test_key_hash_covers_all_bytes(void **state)
{
        static const unsigned char body[] = {'{', 0, 'x', 0xff, '}'};
        rd_kafka_message_t *m             = fake_msg_new(body, sizeof(body));
        char want[72], partial[72], *k;

        (void)state;
        sha256_key(body, sizeof(body), want);
        sha256_key(body, 1, partial);
        k = enricher_dedupe_key(m, NULL);
        assert_non_null(k);
        assert_string_equal(k, want);
        assert_string_not_equal(k, partial);
        free(k);
        free(m);
}

static void test_key_empty_and_null_payload(void **state)
{
        /* SHA-256 of the empty string. */
        static const char empty[] =
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b93"
            "4ca495991b7852b855";
        rd_kafka_message_t *m = fake_msg_new(NULL, 0);
        char *k;

        (void)state;
        k = enricher_dedupe_key(m, NULL);
        assert_non_null(k);
        assert_string_equal(k, empty);
        free(k);
        m->payload = (void *)"";
        k          = enricher_dedupe_key(m, NULL);
        assert_non_null(k);
        assert_string_equal(k, empty);
        free(k);
        free(m);
}

/* Real messages with headers come from a producer without brokers: purged messages
 * are handed to the delivery report callback, headers and payload intact. (The
 * redrive header cannot be put on a hand-built message through the public API.) */
struct dr_case {
        const char *event_id;
        char *key;
        int seen;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        struct dr_case *c = msg->_private;

        (void)rk;
        (void)opaque;
        c->key = enricher_dedupe_key(msg, c->event_id);
        c->seen++;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        (void)rk;
        (void)level;
        (void)fac;
        (void)buf;
}

static rd_kafka_t *offline_producer(void)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;

        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_log_cb(conf, quiet_log);
        assert_int_equal(
            rd_kafka_conf_set(conf, "message.timeout.ms", "60000", err, sizeof(err)),
            RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        assert_non_null(rk);
        return rk;
}

static void produce_case(rd_kafka_t *rk, struct dr_case *c, const char *body,
                         const char *redrive, const char *redrive2)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_vu_t vu[5];
        rd_kafka_error_t *error;

        rd_kafka_header_add(h, "duro-event", -1, "ITEM_UPDATE", -1);
        if (redrive)
                rd_kafka_header_add(h, "duro-redrive-id", -1, redrive, -1);
        if (redrive2)
                rd_kafka_header_add(h, "duro-redrive-id", -1, redrive2, -1);
        /* produceva: the RD_KAFKA_V_* macros are GNU statement expressions. */
        vu[0].vtype      = RD_KAFKA_VTYPE_TOPIC;
        vu[0].u.cstr     = "duro.webhooks.raw";
        vu[1].vtype      = RD_KAFKA_VTYPE_VALUE;
        vu[1].u.mem.ptr  = (void *)body;
        vu[1].u.mem.size = strlen(body);
        vu[2].vtype      = RD_KAFKA_VTYPE_MSGFLAGS;
        vu[2].u.i        = RD_KAFKA_MSG_F_COPY;
        vu[3].vtype      = RD_KAFKA_VTYPE_HEADERS;
        vu[3].u.headers  = h;
        vu[4].vtype      = RD_KAFKA_VTYPE_OPAQUE;
        vu[4].u.ptr      = c;
        error            = rd_kafka_produceva(rk, vu, 5);
        if (error) {
                fail_msg("produceva: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

static void test_key_real_messages_redrive_header(void **state)
{
        static const char body[] = "{\"id\":\"evt_1\",\"event\":\"ITEM_UPDATE\"}";
        struct dr_case c[5]      = {
                 {"evt_1", NULL, 0}, /* no redrive header */
                 {"evt_1", NULL, 0}, /* redrive r-1 */
                 {NULL, NULL, 0},    /* no id, redrive r-2 */
                 {"evt_1", NULL, 0}, /* two redrive headers: the last counts */
                 {"evt_1", NULL, 0}, /* an empty redrive id */
        };
        char want[128], hash[72];
        rd_kafka_t *rk = offline_producer();

        (void)state;
        produce_case(rk, &c[0], body, NULL, NULL);
        produce_case(rk, &c[1], body, "r-1", NULL);
        produce_case(rk, &c[2], body, "r-2", NULL);
        produce_case(rk, &c[3], body, "r-old", "r-new");
        produce_case(rk, &c[4], body, "", NULL);
        assert_int_equal(rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        for (int i = 0; i < 100 && rd_kafka_outq_len(rk) > 0; i++)
                rd_kafka_poll(rk, 100);
        for (size_t i = 0; i < 5; i++) {
                assert_int_equal(c[i].seen, 1);
                assert_non_null(c[i].key);
        }
        assert_string_equal(c[0].key, "evt_1");
        assert_string_equal(c[1].key, "evt_1#r-1");
        sha256_key(body, strlen(body), hash);
        snprintf(want, sizeof(want), "%s#r-2", hash);
        assert_string_equal(c[2].key, want);
        assert_string_equal(c[3].key, "evt_1#r-new");
        /* Redriven keys differ from the original and from one another. */
        assert_string_not_equal(c[1].key, c[0].key);
        assert_string_not_equal(c[4].key, c[0].key);
        for (size_t i = 0; i < 5; i++)
                free(c[i].key);
        rd_kafka_destroy(rk);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty_set_has_nothing),
            cmocka_unit_test(test_added_found_others_not),
            cmocka_unit_test(test_same_key_twice_counted_once),
            cmocka_unit_test(test_clear_forgets_everything),
            cmocka_unit_test(test_stream_time_pruning),
            cmocka_unit_test(test_wall_clock_plays_no_part),
            cmocka_unit_test(test_growth_keeps_all_within_window),
            cmocka_unit_test(test_growth_with_pruning_stays_bounded),
            cmocka_unit_test(test_older_timestamp_does_not_shorten_life),
            cmocka_unit_test(test_newer_timestamp_extends_life),
            cmocka_unit_test(test_older_timestamp_survives_rehash),
            cmocka_unit_test(test_key_event_id),
            cmocka_unit_test(test_key_no_event_id_hashes_payload),
            cmocka_unit_test(test_key_hash_covers_all_bytes),
            cmocka_unit_test(test_key_empty_and_null_payload),
            cmocka_unit_test(test_key_real_messages_redrive_header),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
