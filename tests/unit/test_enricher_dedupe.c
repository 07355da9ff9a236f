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

/* A scenario of the set as steps: add a key at a timestamp, check that it is there or
 * not, check the count, clear (which must leave the set empty and usable). */
enum step_op { END = 0, ADD, HAS, LACKS, COUNT, CLEAR };

struct step {
        enum step_op op;
        const char *key;
        int64_t n; /* ADD: the timestamp; COUNT: the count */
};

struct script {
        const char *name;
        int64_t window_ms;
        struct step steps[20];
};

/* 2000-01-01T00:00:00Z: decades behind the wall clock. */
#define T2000 INT64_C(946684800000)

static struct script scripts[] = {
    {"empty set has nothing",
     WINDOW_MS,
     {{LACKS, "evt_1", 0}, {LACKS, "", 0}, {COUNT, NULL, 0}}},
    {"added found, others not",
     WINDOW_MS,
     {{ADD, "evt_abc123", 100},
      {ADD, "evt_def456", 200},
      {ADD, "sha256:00ff", 300},
      {HAS, "evt_abc123", 0},
      {HAS, "evt_def456", 0},
      {HAS, "sha256:00ff", 0},
      {LACKS, "evt_abc124", 0},
      {LACKS, "evt_abc12", 0},
      {LACKS, "EVT_ABC123", 0},
      {LACKS, "", 0},
      /* A redriven record's key differs from the plain event id. */
      {LACKS, "evt_abc123#r1", 0},
      {COUNT, NULL, 3}}},
    {"same key twice counted once",
     WINDOW_MS,
     {{ADD, "evt_1", 10},
      {ADD, "evt_1", 20},
      {ADD, "evt_1", 15},
      {COUNT, NULL, 1},
      {HAS, "evt_1", 0}}},
    {"clear forgets everything",
     WINDOW_MS,
     {{ADD, "evt_1", 10},
      {ADD, "evt_2", 5000},
      {CLEAR, NULL, 0},
      {LACKS, "evt_1", 0},
      {LACKS, "evt_2", 0},
      /* Usable again; stream time starts over (a key at t=0 is live again). */
      {ADD, "evt_1", 0},
      {HAS, "evt_1", 0},
      {LACKS, "evt_2", 0},
      {CLEAR, NULL, 0},
      {CLEAR, NULL, 0}}}, /* twice is harmless */
    {"stream time pruning",
     WINDOW_MS,
     {{ADD, "first", 0},
      {HAS, "first", 0},
      /* Exactly one window later the first key is still inside it. */
      {ADD, "second", WINDOW_MS},
      {HAS, "first", 0},
      /* One millisecond more and it has left the window. */
      {ADD, "third", WINDOW_MS + 1},
      {LACKS, "first", 0},
      {HAS, "second", 0},
      {HAS, "third", 0},
      /* The expired key can be added again and is found again. */
      {ADD, "first", WINDOW_MS + 2},
      {HAS, "first", 0}}},
    {"wall clock plays no part",
     WINDOW_MS,
     {{ADD, "old", T2000},
      {HAS, "old", 0},
      /* Stream time moves only with records: no record, no expiry. */
      {ADD, "older", T2000 - 500},
      {HAS, "old", 0},
      {HAS, "older", 0},
      {ADD, "next", T2000 + WINDOW_MS},
      {HAS, "old", 0},
      {LACKS, "older", 0}}},
    /* Timestamp 0 (1970) with a tiny window is found as long as nothing newer came. */
    {"epoch timestamp, tiny window", 1, {{ADD, "epoch", 0}, {HAS, "epoch", 0}}},
    /* A key lives one window from its newest timestamp: a newer one extends its
     * life, an older one (a redelivery read late) does not shorten it. */
    {"newest timestamp counts",
     WINDOW_MS,
     {{ADD, "k", 0},
      {ADD, "k", 500},
      {ADD, "k", 10},
      /* Stream time 500 + window: the horizon is 500, so k (500) lives on. */
      {ADD, "x", 500 + WINDOW_MS},
      {HAS, "k", 0},
      {ADD, "y", 501 + WINDOW_MS},
      {LACKS, "k", 0}}},
};

static void test_script(void **state)
{
        const struct script *sc = *state;
        struct enricher_dedupe d;

        dd_init(&d, sc->window_ms);
        for (const struct step *st = sc->steps; st->op != END; st++) {
                switch (st->op) {
                case ADD:
                        assert_int_equal(enricher_dedupe_add(&d, st->key, st->n), 0);
                        break;
                case HAS:
                        assert_true(enricher_dedupe_has(&d, st->key));
                        break;
                case LACKS:
                        assert_false(enricher_dedupe_has(&d, st->key));
                        break;
                case COUNT:
                        assert_int_equal(d.n, st->n);
                        break;
                case CLEAR:
                        enricher_dedupe_clear(&d);
                        assert_int_equal(d.n, 0);
                        assert_int_equal(d.cap, 0);
                        assert_null(d.slots);
                        break;
                case END:
                        break;
                }
        }
        enricher_dedupe_clear(&d);
}

/* Adds the keys evt_<from> .. evt_<to - 1>, evt_<i> at base + i (mod 0) or at
 * base + i % mod. */
static void add_keys(struct enricher_dedupe *d, long from, long to, int64_t base,
                     long mod)
{
        char k[32];

        for (long i = from; i < to; i++) {
                key_of(k, sizeof(k), "evt_", i);
                assert_int_equal(enricher_dedupe_add(d, k, base + (mod ? i % mod : i)),
                                 0);
        }
}

/* How many of the keys evt_<from> .. evt_<to - 1> the set holds. */
static long keys_held(const struct enricher_dedupe *d, long from, long to)
{
        char k[32];
        long held = 0;

        for (long i = from; i < to; i++) {
                key_of(k, sizeof(k), "evt_", i);
                held += enricher_dedupe_has(d, k);
        }
        return held;
}

static void test_growth_keeps_all_within_window(void **state)
{
        struct enricher_dedupe d;
        const long n = 20000;

        (void)state;
        dd_init(&d, INT64_C(90000) * 1000); /* the default 25h */
        add_keys(&d, 0, n, 1000, 0);
        assert_int_equal(d.n, n);
        assert_true(d.cap >= 2 * (size_t)n);
        assert_int_equal(d.cap & (d.cap - 1), 0); /* a power of two */
        assert_int_equal(keys_held(&d, 0, n), n);
        assert_int_equal(keys_held(&d, n, 2 * n), 0);
        enricher_dedupe_clear(&d);
}

static void test_growth_with_pruning_stays_bounded(void **state)
{
        struct enricher_dedupe d;
        const long n = 30000;

        (void)state;
        dd_init(&d, WINDOW_MS);
        /* One key per millisecond: at most WINDOW_MS + 1 live at any time. */
        add_keys(&d, 0, n, 0, 0);
        assert_int_equal(keys_held(&d, n - 1 - WINDOW_MS, n), WINDOW_MS + 1);
        assert_int_equal(keys_held(&d, 0, n - 1 - WINDOW_MS), 0);
        /* Expired keys were dropped when the table was rebuilt, not kept forever. */
        assert_true(d.cap <= 16384);
        assert_true(d.n <= d.cap / 2);
        enricher_dedupe_clear(&d);
}

static void test_older_timestamp_survives_rehash(void **state)
{
        struct enricher_dedupe d;

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_add(&d, "k", 900), 0);
        assert_int_equal(enricher_dedupe_add(&d, "k", 1), 0);
        /* Force several rebuilds of the table inside the window. */
        add_keys(&d, 0, 500, 900, 100);
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

/* SHA-256 of the empty string. */
#define SHA256_EMPTY                                                                   \
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define TEXT(s) s, sizeof(s) - 1

/* A hand-built record and its dedupe key: the event id, or, without one (NULL or
 * empty), sha256:<hex> of all the payload's bytes (want NULL: computed here). */
static const struct key_case {
        const char *payload;
        size_t len;
        const char *event_id;
        const char *want;
} key_cases[] = {
    {TEXT("{\"id\":\"evt_abc123\"}"), "evt_abc123", "evt_abc123"},
    {TEXT("this is not JSON at all"), NULL, NULL},
    {TEXT("this is not JSON at all"), "", NULL}, /* an empty id counts as none */
    {TEXT("{\0x\xff}"), NULL, NULL},             /* every byte counts, NUL ones too */
    {NULL, 0, NULL, SHA256_EMPTY},
    {"", 0, NULL, SHA256_EMPTY},
};

static void test_key_hand_built(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
                const struct key_case *c = &key_cases[i];
                rd_kafka_message_t *m    = fake_msg_new(c->payload, c->len);
                rd_kafka_headers_t *h    = NULL;
                char want[72], partial[72], *k;

                print_message("case %zu\n", i);
                /* The fake message has no headers. */
                assert_int_not_equal(rd_kafka_message_headers(m, &h),
                                     RD_KAFKA_RESP_ERR_NO_ERROR);
                if (!c->want)
                        sha256_key(c->payload, c->len, want);
                k = enricher_dedupe_key(m, c->event_id);
                assert_non_null(k);
                assert_string_equal(k, c->want ? c->want : want);
                if (!c->want) {
                        /* sha256: and 64 hex digits, of the whole payload */
                        assert_int_equal(strlen(k), 7 + 64);
                        sha256_key(c->payload, c->len - 1, partial);
                        assert_string_not_equal(k, partial);
                }
                free(k);
                free(m);
        }
}

/* Real messages with headers come from a producer without brokers: purged messages
 * are handed to the delivery report callback, headers and payload intact. (The
 * redrive header cannot be put on a hand-built message through the public API.) */
struct dr_case {
        const char *event_id;
        char *key;
        int seen;
        /* what the rebuild makes of the same record */
        int in_headers, id_rc;
        struct enricher_dedupe_id id;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        struct dr_case *c = msg->_private;

        (void)rk;
        (void)opaque;
        c->key        = enricher_dedupe_key(msg, c->event_id);
        c->in_headers = enricher_dedupe_key_in_headers(msg);
        c->id_rc      = enricher_dedupe_record_id(msg, c->event_id, &c->id);
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

static void produce_case_with_id(rd_kafka_t *rk, struct dr_case *c, const char *body,
                                 const char *id_header, const char *redrive,
                                 const char *redrive2)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_vu_t vu[5];
        rd_kafka_error_t *error;

        rd_kafka_header_add(h, "duro-event", -1, "ITEM_UPDATE", -1);
        if (id_header)
                rd_kafka_header_add(h, "duro-event-id", -1, id_header, -1);
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

static void produce_case(rd_kafka_t *rk, struct dr_case *c, const char *body,
                         const char *redrive, const char *redrive2)
{
        produce_case_with_id(rk, c, body, NULL, redrive, redrive2);
}

/* Purges what rk holds, so that dr_cb sees each record. */
static void deliver_all(rd_kafka_t *rk)
{
        assert_int_equal(rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        for (int i = 0; i < 100 && rd_kafka_outq_len(rk) > 0; i++)
                rd_kafka_poll(rk, 100);
}

/* The duro-event-id header (the bridge writes the body's id there) is the key when it
 * is there and not empty, so the rebuild reads no body; the body's id otherwise. And
 * the id the rebuild makes without allocating is the id of the key, long keys too. */
static void test_key_from_the_event_id_header(void **state)
{
        static const char body[] = "{\"id\":\"evt_body\",\"event\":\"ITEM_UPDATE\"}";
        char longid[600];
        struct dr_case c[6] = {
            {"evt_body", NULL, 0, 0, 0, {{0, 0}}}, /* header and body agree */
            {NULL, NULL, 0, 0, 0, {{0, 0}}},       /* header only (body not parsed) */
            {"evt_body", NULL, 0, 0, 0, {{0, 0}}}, /* an empty header: the body's */
            {"evt_body", NULL, 0, 0, 0, {{0, 0}}}, /* no header: the body's */
            {NULL, NULL, 0, 0, 0, {{0, 0}}},       /* header and a redrive */
            {NULL, NULL, 0, 0, 0, {{0, 0}}},       /* a key longer than the stack's */
        };
        rd_kafka_t *rk = offline_producer();

        (void)state;
        memset(longid, 'x', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = '\0';
        produce_case_with_id(rk, &c[0], body, "evt_body", NULL, NULL);
        produce_case_with_id(rk, &c[1], body, "evt_hdr", NULL, NULL);
        produce_case_with_id(rk, &c[2], body, "", NULL, NULL);
        produce_case_with_id(rk, &c[3], body, NULL, NULL, NULL);
        produce_case_with_id(rk, &c[4], body, "evt_hdr", "r-9", NULL);
        produce_case_with_id(rk, &c[5], body, longid, "r-long", NULL);
        deliver_all(rk);
        assert_string_equal(c[0].key, "evt_body");
        assert_string_equal(c[1].key, "evt_hdr");
        assert_string_equal(c[2].key, "evt_body");
        assert_string_equal(c[3].key, "evt_body");
        assert_string_equal(c[4].key, "evt_hdr#r-9");
        assert_int_equal(strlen(c[5].key), strlen(longid) + strlen("#r-long"));
        assert_true(c[0].in_headers && c[1].in_headers && c[4].in_headers &&
                    c[5].in_headers);
        assert_false(c[2].in_headers || c[3].in_headers);
        for (size_t i = 0; i < 6; i++) {
                struct enricher_dedupe_id want;
                assert_int_equal(c[i].seen, 1);
                assert_int_equal(c[i].id_rc, 0);
                enricher_dedupe_id_of(c[i].key, &want);
                assert_memory_equal(&c[i].id, &want, sizeof(want));
                free(c[i].key);
        }
        rd_kafka_destroy(rk);
}

/* A set made room for ahead keeps what it is given, and reserving less than it holds
 * changes nothing. */
static void test_reserve(void **state)
{
        struct enricher_dedupe d;
        char key[32];

        (void)state;
        dd_init(&d, WINDOW_MS);
        assert_int_equal(enricher_dedupe_reserve(&d, 100000), 0);
        assert_true(d.cap >= 200000 && d.cap < 400000);
        for (long i = 0; i < 1000; i++) {
                key_of(key, sizeof(key), "evt_", i);
                assert_int_equal(enricher_dedupe_add(&d, key, 10), 0);
        }
        assert_int_equal(enricher_dedupe_reserve(&d, 10), 0);
        /* a count no set could hold (a negative range cast to size_t) is refused */
        assert_int_equal(enricher_dedupe_reserve(&d, (size_t)-5), -1);
        assert_int_equal(d.n, 1000);
        for (long i = 0; i < 1000; i++) {
                key_of(key, sizeof(key), "evt_", i);
                assert_true(enricher_dedupe_has(&d, key));
        }
        enricher_dedupe_clear(&d);
}

static void test_key_real_messages_redrive_header(void **state)
{
        static const char body[] = "{\"id\":\"evt_1\",\"event\":\"ITEM_UPDATE\"}";
        struct dr_case c[5]      = {
                 {"evt_1", NULL, 0, 0, 0, {{0, 0}}}, /* no redrive header */
                 {"evt_1", NULL, 0, 0, 0, {{0, 0}}}, /* redrive r-1 */
                 {NULL, NULL, 0, 0, 0, {{0, 0}}},    /* no id, redrive r-2 */
                 {"evt_1", NULL, 0, 0, 0, {{0, 0}}}, /* two redrive headers: the last */
                 {"evt_1", NULL, 0, 0, 0, {{0, 0}}}, /* an empty redrive id */
        };
        char want[128], hash[72];
        rd_kafka_t *rk = offline_producer();

        (void)state;
        produce_case(rk, &c[0], body, NULL, NULL);
        produce_case(rk, &c[1], body, "r-1", NULL);
        produce_case(rk, &c[2], body, "r-2", NULL);
        produce_case(rk, &c[3], body, "r-old", "r-new");
        produce_case(rk, &c[4], body, "", NULL);
        deliver_all(rk);
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
        static const struct CMUnitTest plain[] = {
            cmocka_unit_test(test_growth_keeps_all_within_window),
            cmocka_unit_test(test_growth_with_pruning_stays_bounded),
            cmocka_unit_test(test_older_timestamp_survives_rehash),
            cmocka_unit_test(test_key_hand_built),
            cmocka_unit_test(test_key_real_messages_redrive_header),
            cmocka_unit_test(test_key_from_the_event_id_header),
            cmocka_unit_test(test_reserve),
        };
        enum { NSCRIPTS = sizeof(scripts) / sizeof(scripts[0]) };
        enum { NPLAIN = sizeof(plain) / sizeof(plain[0]) };
        struct CMUnitTest tests[NSCRIPTS + NPLAIN];

        for (size_t i = 0; i < NSCRIPTS; i++)
                tests[i] = (struct CMUnitTest){scripts[i].name, test_script, NULL, NULL,
                                               &scripts[i]};
        memcpy(tests + NSCRIPTS, plain, sizeof(plain));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
