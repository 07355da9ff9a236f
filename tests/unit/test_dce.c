/* Unit tests for dce: the CloudEvents source (configured, derived from the API URL,
 * percent-encoded ids), the ce_* headers dce_add writes and dce_remove takes away, and
 * the trace headers read from and written to Kafka records. Records with headers come
 * from a producer without brokers: purged messages reach the delivery report callback
 * with their headers, which is where dce_trace_get and dce_trace_continue read them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "dce.h"
#include "tutil.h"

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID  "00f067aa0ba902b7"
#define TP00 "00-" TID "-" SID "-01"
#define BASE "https://api.durohub.com"

/* The source for these arguments, or NULL when dce_source returns -1. */
static char *source(char *buf, size_t size, const char *configured, const char *base,
                    const char *webhook_id, const char *run)
{
        memset(buf, '#', size);
        if (dce_source(buf, size, configured, base, webhook_id, run) != 0)
                return NULL;
        assert_true(strlen(buf) < size);
        return buf;
}

static void test_source(void **state)
{
        char buf[256];
        (void)state;
        /* configured wins over the derived one */
        assert_string_equal(
            source(buf, sizeof(buf), "urn:duro:plm", BASE, "wh_1", NULL),
            "urn:duro:plm");
        assert_string_equal(source(buf, sizeof(buf), "urn:duro:plm", NULL, NULL, NULL),
                            "urn:duro:plm");
        /* base + /webhooks/<id>; /webhooks without one */
        assert_string_equal(source(buf, sizeof(buf), NULL, BASE, "wh_1", NULL),
                            BASE "/webhooks/wh_1");
        assert_string_equal(source(buf, sizeof(buf), NULL, BASE, NULL, NULL),
                            BASE "/webhooks");
        assert_string_equal(
            source(buf, sizeof(buf), NULL, "http://127.0.0.1:8080", "wh-2", NULL),
            "http://127.0.0.1:8080/webhooks/wh-2");
        /* URI unreserved characters stay as they are */
        assert_string_equal(source(buf, sizeof(buf), NULL, BASE, "AZaz09-._~", NULL),
                            BASE "/webhooks/AZaz09-._~");
}

/* A snapshot's record (SPEC.md): <origin>/snapshot/<run>, or
 * <DURO_CE_SOURCE>/snapshot/<run>. */
static void test_source_snapshot(void **state)
{
        char buf[256];
        (void)state;
        assert_string_equal(
            source(buf, sizeof(buf), "urn:duro:plm", BASE, NULL, "run-7"),
            "urn:duro:plm/snapshot/run-7");
        assert_string_equal(source(buf, sizeof(buf), NULL, BASE, NULL, "run-7"),
                            BASE "/snapshot/run-7");
}

/* Ids are percent-encoded outside [A-Za-z0-9-._~] (either case of hex digit). */
static void test_source_encoded(void **state)
{
        char buf[256];
        const char *s;
        (void)state;
        s = source(buf, sizeof(buf), NULL, BASE, "a b/c", NULL);
        assert_non_null(s);
        if (strcasecmp(s, BASE "/webhooks/a%20b%2Fc") != 0)
                fail_msg("got \"%s\"", s);
        s = source(buf, sizeof(buf), NULL, BASE, "%?#\xc3\xa9", NULL);
        assert_non_null(s);
        if (strcasecmp(s, BASE "/webhooks/%25%3F%23%C3%A9") != 0)
                fail_msg("got \"%s\"", s);
        s = source(buf, sizeof(buf), "urn:x", BASE, NULL, "a b/c");
        assert_non_null(s);
        if (strcasecmp(s, "urn:x/snapshot/a%20b%2Fc") != 0)
                fail_msg("got \"%s\"", s);
}

static void test_source_too_small(void **state)
{
        static const char want[] = BASE "/webhooks/wh_1";
        static const char enc[]  = BASE "/webhooks/a%20b";
        char buf[256];
        (void)state;
        assert_non_null(source(buf, sizeof(want), NULL, BASE, "wh_1", NULL));
        assert_string_equal(buf, want);
        assert_null(source(buf, sizeof(want) - 1, NULL, BASE, "wh_1", NULL));
        assert_null(source(buf, 8, NULL, BASE, "wh_1", NULL));
        assert_null(source(buf, 1, NULL, BASE, "wh_1", NULL));
        assert_null(source(buf, 3, "urn:x", BASE, NULL, NULL));
        assert_non_null(source(buf, 6, "urn:x", BASE, NULL, NULL));
        /* the encoding counts: three bytes for the blank */
        assert_non_null(source(buf, sizeof(enc), NULL, BASE, "a b", NULL));
        assert_null(source(buf, sizeof(enc) - 1, NULL, BASE, "a b", NULL));
        assert_null(source(buf, sizeof(enc) - 2, NULL, BASE, "a b", NULL));
        /* and the snapshot's part */
        assert_null(
            source(buf, sizeof("urn:x/snapshot/r") - 1, "urn:x", NULL, NULL, "r"));
        assert_non_null(
            source(buf, sizeof("urn:x/snapshot/r"), "urn:x", NULL, NULL, "r"));
}

static void test_source_base(void **state)
{
        static const struct {
                const char *url, *want;
        } cases[] = {
            {"https://api.durohub.com/graphql", "https://api.durohub.com"},
            {"http://127.0.0.1:8080/x/y", "http://127.0.0.1:8080"},
            {"https://api.durohub.com", "https://api.durohub.com"},
            {"https://api.durohub.com/", "https://api.durohub.com"},
            {"http://[::1]:9000/graphql", "http://[::1]:9000"},
            {"api.durohub.com/graphql", NULL},
            {"", NULL},
        };
        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                char *got = dce_source_base(cases[i].url);

                print_message("case %zu: %s\n", i, cases[i].url);
                if (cases[i].want) {
                        assert_non_null(got);
                        assert_string_equal(got, cases[i].want);
                } else {
                        assert_null(got);
                }
                free(got);
        }
}

/* The value of h's last header name as a string, or NULL when there is none. A value
 * with a NUL in it fails the test. */
static char *hval(const rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
        const void *v = NULL;
        size_t n      = 0;

        if (rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return NULL;
        assert_non_null(v);
        assert_true(n < size);
        assert_null(memchr(v, '\0', n));
        memcpy(buf, v, n);
        buf[n] = '\0';
        return buf;
}

/* How many headers named name h has. */
static size_t hcount(const rd_kafka_headers_t *h, const char *name)
{
        const void *v;
        size_t n, count = 0;

        while (rd_kafka_header_get(h, count, name, &v, &n) ==
               RD_KAFKA_RESP_ERR_NO_ERROR)
                count++;
        return count;
}

/* How many of h's headers start with "ce_". */
static size_t ce_count(const rd_kafka_headers_t *h)
{
        const char *name;
        const void *v;
        size_t n, count = 0;

        for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &v, &n); i++)
                if (!strncmp(name, "ce_", 3))
                        count++;
        return count;
}

static void test_add_all(void **state)
{
        struct dce_event ev = {
            .id               = "evt_1",
            .source           = BASE "/webhooks/wh_1",
            .type_prefix      = DCE_TYPE_WEBHOOK,
            .type_name        = "ITEM_UPDATE",
            .time             = "2024-05-01T12:00:00.123Z",
            .subject          = "cmp_1",
            .partitionkey     = "cmp_1",
            .partitionkey_len = 5,
        };
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        char b[256];
        (void)state;

        rd_kafka_header_add(h, "duro-event", -1, "ITEM_UPDATE", -1);
        assert_int_equal(dce_add(h, &ev), 0);
        assert_string_equal(hval(h, "ce_specversion", b, sizeof(b)), "1.0");
        assert_string_equal(hval(h, "ce_id", b, sizeof(b)), "evt_1");
        assert_string_equal(hval(h, "ce_source", b, sizeof(b)), BASE "/webhooks/wh_1");
        assert_string_equal(hval(h, "ce_type", b, sizeof(b)),
                            "com.durohub.webhook.item_update");
        assert_string_equal(hval(h, "ce_time", b, sizeof(b)),
                            "2024-05-01T12:00:00.123Z");
        assert_string_equal(hval(h, "ce_subject", b, sizeof(b)), "cmp_1");
        assert_string_equal(hval(h, "ce_partitionkey", b, sizeof(b)), "cmp_1");
        assert_int_equal(ce_count(h), 7);
        assert_string_equal(hval(h, "duro-event", b, sizeof(b)), "ITEM_UPDATE");
        assert_int_equal(rd_kafka_header_cnt(h), 8);
        rd_kafka_headers_destroy(h);
}

/* Only the four required ones when the event gives nothing else. */
static void test_add_minimal(void **state)
{
        struct dce_event ev = {
            .id          = "sha256:00ff",
            .source      = BASE "/webhooks",
            .type_prefix = DCE_TYPE_WEBHOOK,
            .type_name   = "co_update",
        };
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        char b[256];
        (void)state;

        assert_int_equal(dce_add(h, &ev), 0);
        assert_string_equal(hval(h, "ce_specversion", b, sizeof(b)), "1.0");
        assert_string_equal(hval(h, "ce_id", b, sizeof(b)), "sha256:00ff");
        assert_string_equal(hval(h, "ce_source", b, sizeof(b)), BASE "/webhooks");
        assert_string_equal(hval(h, "ce_type", b, sizeof(b)),
                            "com.durohub.webhook.co_update");
        assert_null(hval(h, "ce_time", b, sizeof(b)));
        assert_null(hval(h, "ce_subject", b, sizeof(b)));
        assert_null(hval(h, "ce_partitionkey", b, sizeof(b)));
        assert_int_equal(ce_count(h), 4);
        assert_int_equal(rd_kafka_header_cnt(h), 4);
        rd_kafka_headers_destroy(h);
}

/* ce_id takes the suffix; ce_type lower-cases the name after the prefix only. */
static void test_add_suffix_and_type(void **state)
{
        static const struct {
                const char *suffix, *prefix, *name, *want_id, *want_type;
        } cases[] = {
            {"/state", DCE_TYPE_STATE, "item", "evt_1#r-9/state",
             "com.durohub.state.item"},
            {"/state", DCE_TYPE_STATE, "Change_Order", "evt_1#r-9/state",
             "com.durohub.state.change_order"},
            {"/dlq", DCE_TYPE_DLQ, "Invalid-Payload", "evt_1#r-9/dlq",
             "com.durohub.dlq.invalid-payload"},
            {"/dlq", DCE_TYPE_DLQ, "resource-error", "evt_1#r-9/dlq",
             "com.durohub.dlq.resource-error"},
            {NULL, DCE_TYPE_WEBHOOK, "CO_STAGE_REVIEWER_DECISION", "evt_1#r-9",
             "com.durohub.webhook.co_stage_reviewer_decision"},
        };
        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                struct dce_event ev = {
                    .id          = "evt_1#r-9",
                    .id_suffix   = cases[i].suffix,
                    .source      = "urn:x",
                    .type_prefix = cases[i].prefix,
                    .type_name   = cases[i].name,
                };
                rd_kafka_headers_t *h = rd_kafka_headers_new(8);
                char b[256];

                print_message("case %zu\n", i);
                assert_int_equal(dce_add(h, &ev), 0);
                assert_string_equal(hval(h, "ce_id", b, sizeof(b)), cases[i].want_id);
                assert_string_equal(hval(h, "ce_type", b, sizeof(b)),
                                    cases[i].want_type);
                assert_int_equal(hcount(h, "ce_id"), 1);
                assert_int_equal(hcount(h, "ce_type"), 1);
                rd_kafka_headers_destroy(h);
        }
}

/* ce_time only for an RFC 3339 time. */
static void test_add_time(void **state)
{
        static const struct {
                const char *time;
                int kept;
        } cases[] = {
            {"2024-05-01T12:00:00Z", 1},
            {"2024-05-01T12:00:00.5+02:00", 1},
            {"2024-05-01T12:00:00-07:30", 1},
            {"2024-05-01 12:00:00", 0},
            {"2024-05-01", 0},
            {"yesterday", 0},
            {"1714564800", 0},
            {"2024-13-01T12:00:00Z", 0},
            {"2024-05-01T12:00:00", 0}, /* no offset */
            {"", 0},
        };
        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                struct dce_event ev = {
                    .id          = "evt_1",
                    .source      = "urn:x",
                    .type_prefix = DCE_TYPE_WEBHOOK,
                    .type_name   = "item_update",
                    .time        = cases[i].time,
                };
                rd_kafka_headers_t *h = rd_kafka_headers_new(8);
                char b[256];

                print_message("case %zu: \"%s\"\n", i, cases[i].time);
                assert_int_equal(dce_add(h, &ev), 0);
                if (cases[i].kept)
                        assert_string_equal(hval(h, "ce_time", b, sizeof(b)),
                                            cases[i].time);
                else
                        assert_null(hval(h, "ce_time", b, sizeof(b)));
                assert_non_null(hval(h, "ce_type", b, sizeof(b)));
                rd_kafka_headers_destroy(h);
        }
}

/* ce_partitionkey only for a printable UTF-8 key. */
static void test_add_partitionkey(void **state)
{
        static const struct {
                const char *key;
                size_t len;
                int kept;
        } cases[] = {
            {"cmp_1", 5, 1},
            {"caf\xc3\xa9 1", 7, 1}, /* UTF-8 and a blank */
            {"a\x01"
             "b",
             3, 0}, /* a control byte */
            {"a\nb", 3, 0},
            {"a\x7f", 2, 0},                        /* DEL */
            {"a\0b", 3, 0},                         /* NUL */
            {"\xff\xfe", 2, 0},                     /* not UTF-8 */
            {"caf\xc3", 4, 0},                      /* cut short */
            {"\xc0\xaf", 2, 0},                     /* overlong */
            {"\xe0\x80\xaf", 3, 0},                 /* overlong, 3 bytes */
            {"\xf0\x80\x80\xaf", 4, 0},             /* overlong, 4 bytes */
            {"\xed\xa0\x80", 3, 0},                 /* a UTF-16 surrogate */
            {"\xf4\x90\x80\x80", 4, 0},             /* above U+10FFFF */
            {"a\xc2\x85", 3, 0},                    /* U+0085, a C1 control */
            {"\xe2\x82\xac\xf0\x9f\x98\x80", 7, 1}, /* U+20AC U+1F600 */
            {"cmp_1 and more", 5, 1},               /* the length counts */
        };
        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                struct dce_event ev = {
                    .id               = "evt_1",
                    .source           = "urn:x",
                    .type_prefix      = DCE_TYPE_WEBHOOK,
                    .type_name        = "item_update",
                    .partitionkey     = cases[i].key,
                    .partitionkey_len = cases[i].len,
                };
                rd_kafka_headers_t *h = rd_kafka_headers_new(8);
                const void *v         = NULL;
                size_t n              = 0;

                print_message("case %zu\n", i);
                assert_int_equal(dce_add(h, &ev), 0);
                if (cases[i].kept) {
                        assert_int_equal(
                            rd_kafka_header_get_last(h, "ce_partitionkey", &v, &n),
                            RD_KAFKA_RESP_ERR_NO_ERROR);
                        assert_int_equal(n, cases[i].len);
                        assert_memory_equal(v, cases[i].key, n);
                } else {
                        assert_int_not_equal(
                            rd_kafka_header_get_last(h, "ce_partitionkey", &v, &n),
                            RD_KAFKA_RESP_ERR_NO_ERROR);
                }
                rd_kafka_headers_destroy(h);
        }
}

/* dce_remove takes every ce_* header and nothing else. */
static void test_remove(void **state)
{
        struct dce_event ev = {
            .id               = "evt_1",
            .source           = "urn:x",
            .type_prefix      = DCE_TYPE_DLQ,
            .type_name        = "resource-error",
            .time             = "2024-05-01T12:00:00Z",
            .subject          = "cmp_1",
            .partitionkey     = "cmp_1",
            .partitionkey_len = 5,
        };
        rd_kafka_headers_t *h = rd_kafka_headers_new(16);
        const char *name;
        const void *v;
        size_t n;
        char b[256];
        (void)state;

        rd_kafka_header_add(h, "duro-event", -1, "ITEM_UPDATE", -1);
        rd_kafka_header_add(h, "ce_extra", -1, "from elsewhere", -1);
        rd_kafka_header_add(h, "traceparent", -1, TP00, -1);
        rd_kafka_header_add(h, "tracestate", -1, "a=1", -1);
        rd_kafka_header_add(h, "content-type", -1, "application/json", -1);
        assert_int_equal(dce_add(h, &ev), 0);
        rd_kafka_header_add(h, "error-class", -1, "resource-error", -1);
        rd_kafka_header_add(h, "cex", -1, "not ours", -1);
        rd_kafka_header_add(h, "ce_id", -1, "a second one", -1);
        assert_int_equal(ce_count(h), 9);
        dce_remove(h);
        assert_int_equal(ce_count(h), 0);
        assert_int_equal(rd_kafka_header_cnt(h), 6);
        assert_string_equal(hval(h, "duro-event", b, sizeof(b)), "ITEM_UPDATE");
        assert_string_equal(hval(h, "traceparent", b, sizeof(b)), TP00);
        assert_string_equal(hval(h, "tracestate", b, sizeof(b)), "a=1");
        assert_string_equal(hval(h, "content-type", b, sizeof(b)), "application/json");
        assert_string_equal(hval(h, "error-class", b, sizeof(b)), "resource-error");
        assert_string_equal(hval(h, "cex", b, sizeof(b)), "not ours");
        /* in their order */
        assert_int_equal(rd_kafka_header_get_all(h, 0, &name, &v, &n), 0);
        assert_string_equal(name, "duro-event");
        assert_int_equal(rd_kafka_header_get_all(h, 5, &name, &v, &n), 0);
        assert_string_equal(name, "cex");
        /* a long name is removed too */
        {
                char longname[300];
                memset(longname, 'x', sizeof(longname) - 1);
                memcpy(longname, "ce_", 3);
                longname[sizeof(longname) - 1] = '\0';
                rd_kafka_header_add(h, longname, -1, "v", -1);
                assert_int_equal(ce_count(h), 1);
                dce_remove(h);
                assert_int_equal(ce_count(h), 0);
        }
        /* and again on headers without any */
        dce_remove(h);
        assert_int_equal(rd_kafka_header_cnt(h), 6);
        rd_kafka_headers_destroy(h);
}

/* dce_trace_put replaces both trace headers, and writes no tracestate for NULL or "".
 */
static void test_trace_put(void **state)
{
        struct dtrace t;
        const char *why       = NULL;
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        char b[600];
        (void)state;

        assert_int_equal(dtrace_parse(TP00, strlen(TP00), &t, &why), 0);
        rd_kafka_header_add(h, "traceparent", -1, "00-old", -1);
        rd_kafka_header_add(h, "traceparent", -1, "00-older", -1);
        rd_kafka_header_add(h, "tracestate", -1, "old=1", -1);
        rd_kafka_header_add(h, "duro-event", -1, "ITEM_UPDATE", -1);
        dce_trace_put(h, &t, "congo=t61rcWkgMzE");
        assert_int_equal(hcount(h, "traceparent"), 1);
        assert_int_equal(hcount(h, "tracestate"), 1);
        assert_string_equal(hval(h, "traceparent", b, sizeof(b)), TP00);
        assert_string_equal(hval(h, "tracestate", b, sizeof(b)), "congo=t61rcWkgMzE");
        assert_string_equal(hval(h, "duro-event", b, sizeof(b)), "ITEM_UPDATE");

        t.flags = 0;
        dce_trace_put(h, &t, "");
        assert_int_equal(hcount(h, "traceparent"), 1);
        assert_int_equal(hcount(h, "tracestate"), 0);
        assert_string_equal(hval(h, "traceparent", b, sizeof(b)),
                            "00-" TID "-" SID "-00");

        dce_trace_put(h, &t, "x=1");
        dce_trace_put(h, &t, NULL);
        assert_int_equal(hcount(h, "tracestate"), 0);
        assert_int_equal(rd_kafka_header_cnt(h), 2);
        rd_kafka_headers_destroy(h);
}

/* What the delivery report callback read of one record. */
struct rec {
        int seen;
        int get_rc, cont_rc;
        struct dtrace got, child;
        char state[DTRACE_STATE_MAX + 1], cont_state[DTRACE_STATE_MAX + 1];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        struct rec *r = msg->_private;

        (void)rk;
        (void)opaque;
        memset(r->state, '#', sizeof(r->state));
        memset(r->cont_state, '#', sizeof(r->cont_state));
        r->get_rc = dce_trace_get(msg, &r->got, r->state, sizeof(r->state));
        r->cont_rc =
            dce_trace_continue(msg, &r->child, r->cont_state, sizeof(r->cont_state));
        r->seen++;
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

/* Produces a record with the given trace headers (NULL: none; several values of one
 * header in a NULL-terminated list). */
static void produce(rd_kafka_t *rk, struct rec *r, const char *const *parents,
                    const char *const *states)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_vu_t vu[5];
        rd_kafka_error_t *error;

        rd_kafka_header_add(h, "duro-event", -1, "ITEM_UPDATE", -1);
        for (size_t i = 0; parents && parents[i]; i++)
                rd_kafka_header_add(h, "traceparent", -1, parents[i], -1);
        for (size_t i = 0; states && states[i]; i++)
                rd_kafka_header_add(h, "tracestate", -1, states[i], -1);
        vu[0].vtype      = RD_KAFKA_VTYPE_TOPIC;
        vu[0].u.cstr     = "duro.webhooks.raw";
        vu[1].vtype      = RD_KAFKA_VTYPE_VALUE;
        vu[1].u.mem.ptr  = (void *)"{}";
        vu[1].u.mem.size = 2;
        vu[2].vtype      = RD_KAFKA_VTYPE_MSGFLAGS;
        vu[2].u.i        = RD_KAFKA_MSG_F_COPY;
        vu[3].vtype      = RD_KAFKA_VTYPE_HEADERS;
        vu[3].u.headers  = h;
        vu[4].vtype      = RD_KAFKA_VTYPE_OPAQUE;
        vu[4].u.ptr      = r;
        error            = rd_kafka_produceva(rk, vu, 5);
        if (error) {
                fail_msg("produceva: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

static void deliver_all(rd_kafka_t *rk)
{
        assert_int_equal(rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        for (int i = 0; i < 100 && rd_kafka_outq_len(rk) > 0; i++)
                rd_kafka_poll(rk, 100);
}

static void test_trace_get_and_continue(void **state)
{
        struct rec r[7];
        rd_kafka_t *rk = offline_producer();
        (void)state;

        memset(r, 0, sizeof(r));
        /* 0: valid both */
        produce(rk, &r[0], TU_LIST(TP00), TU_LIST("congo=t61rcWkgMzE,rojo=1"));
        /* 1: valid traceparent, no tracestate */
        produce(rk, &r[1], TU_LIST("00-" TID "-" SID "-00"), NULL);
        /* 2: valid traceparent, invalid tracestate */
        produce(rk, &r[2], TU_LIST(TP00), TU_LIST("Congo=1"));
        /* 3: invalid traceparent, valid tracestate */
        produce(rk, &r[3], TU_LIST("00-" TID "-0000000000000000-01"), TU_LIST("a=1"));
        /* 4: no trace headers */
        produce(rk, &r[4], NULL, NULL);
        /* 5: a later version */
        produce(rk, &r[5], TU_LIST("cc-" TID "-" SID "-01-xyz"), TU_LIST("a=1"));
        /* 6: upper case */
        produce(rk, &r[6], TU_LIST("00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01"),
                NULL);
        deliver_all(rk);
        for (size_t i = 0; i < TU_NELEM(r); i++) {
                print_message("record %zu\n", i);
                assert_int_equal(r[i].seen, 1);
                assert_int_equal(r[i].cont_rc, 0);
                assert_int_equal(strlen(r[i].child.trace_id), DTRACE_ID_LEN);
                assert_int_equal(strlen(r[i].child.span_id), DTRACE_SPAN_LEN);
        }

        assert_int_equal(r[0].get_rc, 0);
        assert_string_equal(r[0].got.trace_id, TID);
        assert_string_equal(r[0].got.span_id, SID);
        assert_int_equal(r[0].got.flags, 1);
        assert_string_equal(r[0].state, "congo=t61rcWkgMzE,rojo=1");
        assert_string_equal(r[0].child.trace_id, TID);
        assert_string_not_equal(r[0].child.span_id, SID);
        assert_int_equal(r[0].child.flags, 1);
        assert_string_equal(r[0].cont_state, "congo=t61rcWkgMzE,rojo=1");

        assert_int_equal(r[1].get_rc, 0);
        assert_int_equal(r[1].got.flags, 0);
        assert_string_equal(r[1].state, "");
        assert_string_equal(r[1].child.trace_id, TID);
        assert_int_equal(r[1].child.flags, 0);
        assert_string_equal(r[1].cont_state, "");

        assert_int_equal(r[2].get_rc, 0);
        assert_string_equal(r[2].state, "");
        assert_string_equal(r[2].child.trace_id, TID);
        assert_string_equal(r[2].cont_state, "");

        /* no valid traceparent: -1, state "", and a new trace to continue */
        for (size_t k = 0; k < 3; k++) {
                size_t i = (size_t[]){3, 4, 6}[k];

                print_message("record %zu\n", i);
                assert_int_equal(r[i].get_rc, -1);
                assert_string_equal(r[i].state, "");
                assert_string_not_equal(r[i].child.trace_id, TID);
                assert_int_equal(r[i].child.flags, 1);
                assert_string_equal(r[i].cont_state, "");
        }
        assert_string_not_equal(r[3].child.trace_id, r[4].child.trace_id);

        assert_int_equal(r[5].get_rc, 0);
        assert_string_equal(r[5].got.trace_id, TID);
        assert_string_equal(r[5].got.span_id, SID);
        assert_string_equal(r[5].state, "a=1");
        assert_string_equal(r[5].child.trace_id, TID);
        rd_kafka_destroy(rk);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_source),
            cmocka_unit_test(test_source_snapshot),
            cmocka_unit_test(test_source_encoded),
            cmocka_unit_test(test_source_too_small),
            cmocka_unit_test(test_source_base),
            cmocka_unit_test(test_add_all),
            cmocka_unit_test(test_add_minimal),
            cmocka_unit_test(test_add_suffix_and_type),
            cmocka_unit_test(test_add_time),
            cmocka_unit_test(test_add_partitionkey),
            cmocka_unit_test(test_remove),
            cmocka_unit_test(test_trace_put),
            cmocka_unit_test(test_trace_get_and_continue),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
