/* Unit tests for dpayload: payload validation (the bridge's contract) and raw record
 * keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dpayload.h"
#include "tutil.h"

#define SPEC_EXAMPLE                                                                   \
        "{\n"                                                                          \
        "  \"id\": \"evt_abc123\",\n"                                                  \
        "  \"webhook_id\": \"webhook_xyz789\",\n"                                      \
        "  \"event\": \"ITEM_UPDATE\",\n"                                              \
        "  \"created_at\": \"2024-12-20T10:30:00Z\",\n"                                \
        "  \"data\": {\n"                                                              \
        "    \"item_id\": \"comp_123456\"\n"                                           \
        "  }\n"                                                                        \
        "}\n"

/* A body with the given event and data (JSON text), otherwise valid. */
static char *body_with(const char *event_json, const char *data_json)
{
        static char buf[4096];

        snprintf(buf, sizeof(buf),
                 "{\"id\":\"evt_1\",\"webhook_id\":\"wh_1\",\"event\":%s,"
                 "\"created_at\":\"2024-12-20T10:30:00Z\",\"data\":%s}",
                 event_json, data_json);
        return buf;
}

static int parse(struct dpayload *p, const char *body)
{
        return dpayload_parse(p, NULL, body, strlen(body));
}

/* Parses body (len bytes), expects it invalid with a reason containing each needle. */
static void expect_invalid_n(const char *body, size_t len, const char *needle1,
                             const char *needle2)
{
        struct dpayload p;
        int rc = dpayload_parse(&p, NULL, body, len);

        if (rc != -1 || p.valid)
                fail_msg("expected invalid: %.*s", (int)len, body);
        assert_true(p.reason[0] != '\0');
        if (needle1 && !strstr(p.reason, needle1))
                fail_msg("reason \"%s\" lacks \"%s\"", p.reason, needle1);
        if (needle2 && !strstr(p.reason, needle2))
                fail_msg("reason \"%s\" lacks \"%s\"", p.reason, needle2);
        dpayload_free(&p);
}

static void expect_invalid(const char *body, const char *needle1, const char *needle2)
{
        expect_invalid_n(body, strlen(body), needle1, needle2);
}

static void expect_valid(const char *body)
{
        struct dpayload p;
        int rc = parse(&p, body);

        if (rc != 0 || !p.valid)
                fail_msg("expected valid (%s): %s", p.reason, body);
        assert_string_equal(p.reason, "");
        dpayload_free(&p);
}

/* ---- valid payloads ---- */

static void test_spec_example_valid(void **state)
{
        struct dpayload p;
        char buf[DPAYLOAD_HASHKEY_SIZE];

        (void)state;
        assert_int_equal(parse(&p, SPEC_EXAMPLE), 0);
        assert_int_equal(p.valid, 1);
        assert_string_equal(p.reason, "");
        assert_non_null(p.root);
        assert_string_equal(p.id, "evt_abc123");
        assert_string_equal(p.webhook_id, "webhook_xyz789");
        assert_string_equal(p.event, "ITEM_UPDATE");
        assert_string_equal(p.created_at, "2024-12-20T10:30:00Z");
        assert_string_equal(p.item_id, "comp_123456");
        assert_null(p.change_order_id);
        assert_int_equal(p.kind, DWIRE_KIND_ITEM);
        assert_int_equal(p.created_at_ms, 1734690600000LL);
        assert_string_equal(dpayload_key(&p, SPEC_EXAMPLE, strlen(SPEC_EXAMPLE), buf),
                            "comp_123456");
        dpayload_free(&p);
        assert_null(p.root);
        dpayload_free(&p); /* idempotent */
}

static void test_spec_co_examples_valid(void **state)
{
        struct dpayload p;
        char buf[DPAYLOAD_HASHKEY_SIZE];
        const char *b = body_with("\"CO_STAGE_TRANSITION\"",
                                  "{\"change_order_id\":\"co_345678\",\"stage_id\":"
                                  "\"stage_901234\",\"decision\":\"approved\"}");

        (void)state;
        assert_int_equal(parse(&p, b), 0);
        assert_int_equal(p.kind, DWIRE_KIND_CHANGE_ORDER);
        assert_string_equal(p.change_order_id, "co_345678");
        assert_null(p.item_id);
        assert_string_equal(dpayload_key(&p, b, strlen(b), buf), "co_345678");
        dpayload_free(&p);

        expect_valid(body_with("\"CO_RESOLUTION\"",
                               "{\"change_order_id\":\"co_345678\",\"resolution\":"
                               "\"approved\"}"));
        expect_valid(body_with("\"ITEM_DELETE\"", "{\"item_id\":\"comp_1\"}"));
}

static void test_valid_variants(void **state)
{
        struct dpayload p;
        const char *b;

        (void)state;
        /* webhook_id is optional */
        expect_valid("{\"id\":\"e\",\"event\":\"ITEM_CREATE\",\"created_at\":"
                     "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"c\"}}");
        /* extra fields, key order, unicode and escapes are fine */
        expect_valid("{\"data\":{\"item_id\":\"c\\u00e9\",\"x\":[1,{\"y\":null}]},"
                     "\"extra\":true,\"created_at\":\"2024-12-20T10:30:00.123+02:00\","
                     "\"event\":\"ITEM_UPDATE\",\"id\":\"\xc3\xa9v\xe2\x82\xac\"}");
        /* created_at with offset gives the UTC instant */
        b = body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\"}");
        assert_int_equal(parse(&p, b), 0);
        assert_int_equal(p.created_at_ms, 1734690600000LL);
        dpayload_free(&p);
        b = "{\"id\":\"e\",\"event\":\"ITEM_UPDATE\",\"created_at\":"
            "\"2024-12-20T12:30:00.250+02:00\",\"data\":{\"item_id\":\"c\"}}";
        assert_int_equal(parse(&p, b), 0);
        assert_int_equal(p.created_at_ms, 1734690600250LL);
        dpayload_free(&p);
}

static void test_body_not_nul_terminated(void **state)
{
        struct dpayload p;
        char *buf;
        size_t n = strlen(SPEC_EXAMPLE);

        (void)state;
        buf = malloc(n + 8);
        assert_non_null(buf);
        memcpy(buf, SPEC_EXAMPLE, n);
        memcpy(buf + n, "garbage!", 8); /* no NUL: ASan catches an over-read */
        assert_int_equal(dpayload_parse(&p, NULL, buf, n), 0);
        assert_string_equal(p.item_id, "comp_123456");
        dpayload_free(&p);
        /* and the garbage does count when it is part of len */
        assert_int_equal(dpayload_parse(&p, NULL, buf, n + 8), -1);
        dpayload_free(&p);
        free(buf);
}

static void test_unknown_event_accepted(void **state)
{
        struct dpayload p;
        const char *b = body_with("\"PROJECT_ARCHIVED\"", "{\"project_id\":\"p1\"}");

        (void)state;
        assert_int_equal(parse(&p, b), 0);
        assert_int_equal(p.valid, 1);
        assert_int_equal(p.kind, DWIRE_KIND_UNKNOWN);
        assert_string_equal(p.event, "PROJECT_ARCHIVED");
        dpayload_free(&p);
        /* an unknown event may have an empty data object */
        expect_valid(body_with("\"SOMETHING_NEW\"", "{}"));
        /* lower-case item_ is not ITEM_*: no item_id needed */
        expect_valid(body_with("\"item_update\"", "{}"));
        expect_valid(body_with("\"ITEM\"", "{}"));
        expect_valid(body_with("\"COMMENT_ADDED\"", "{}"));
}

/* ---- invalid payloads (the bridge's contract) ---- */

static void test_not_json(void **state)
{
        (void)state;
        expect_invalid("not json", "JSON", NULL);
        expect_invalid("{", "JSON", NULL);
        expect_invalid("{\"id\":\"evt_1\",}", "JSON", NULL);
        expect_invalid("{\"id\":\"evt_1\"} trailing", "JSON", NULL);
        expect_invalid_n("", 0, "JSON", NULL);
        expect_invalid("\"just a string\"", NULL, NULL);
        expect_invalid("42", NULL, NULL);
        expect_invalid("null", NULL, NULL);
}

static void test_top_level_array(void **state)
{
        struct dpayload p;

        (void)state;
        expect_invalid("[1,2,3]", "object", NULL);
        expect_invalid("[" SPEC_EXAMPLE "]", "object", NULL);
        assert_int_equal(parse(&p, "[1,2,3]"), -1);
        assert_null(p.id);
        dpayload_free(&p);
}

static void test_duplicate_keys(void **state)
{
        (void)state;
        expect_invalid("{\"id\":\"evt_1\",\"id\":\"evt_2\",\"event\":\"ITEM_UPDATE\","
                       "\"created_at\":\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":"
                       "\"c\"}}",
                       "duplicate", "id");
        /* a duplicate inside data counts too */
        expect_invalid(
            body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"a\",\"item_id\":\"b\"}"),
            "duplicate", "item_id");
        /* ... and deeper still */
        expect_invalid(
            body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"a\",\"x\":{\"k\":1,\"k\":2}}"),
            "duplicate", NULL);
}

static void test_id_missing_or_mistyped(void **state)
{
        (void)state;
        expect_invalid("{\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"c\"}}",
                       "id", "missing");
        expect_invalid("{\"id\":42,\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"c\"}}",
                       "id", "string");
        expect_invalid("{\"id\":null,\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"c\"}}",
                       "id", "string");
        expect_invalid("{\"id\":\"\",\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"c\"}}",
                       "id", NULL);
        expect_invalid("{\"id\":[\"e\"],\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"c\"}}",
                       "id", NULL);
}

static void test_event_missing_or_mistyped(void **state)
{
        (void)state;
        expect_invalid("{\"id\":\"e\",\"created_at\":\"2024-12-20T10:30:00Z\","
                       "\"data\":{\"item_id\":\"c\"}}",
                       "event", "missing");
        expect_invalid(body_with("7", "{\"item_id\":\"c\"}"), "event", "string");
        expect_invalid(body_with("null", "{\"item_id\":\"c\"}"), "event", NULL);
        expect_invalid(body_with("{\"name\":\"ITEM_UPDATE\"}", "{\"item_id\":\"c\"}"),
                       "event", NULL);
        expect_invalid(body_with("\"\"", "{\"item_id\":\"c\"}"), "event", NULL);
}

static void test_created_at_missing_or_mistyped(void **state)
{
        (void)state;
        expect_invalid("{\"id\":\"e\",\"event\":\"ITEM_UPDATE\","
                       "\"data\":{\"item_id\":\"c\"}}",
                       "created_at", "missing");
        expect_invalid("{\"id\":\"e\",\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "1734690600,\"data\":{\"item_id\":\"c\"}}",
                       "created_at", "string");
        expect_invalid("{\"id\":\"e\",\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "null,\"data\":{\"item_id\":\"c\"}}",
                       "created_at", NULL);
}

/* created_at values that are not RFC 3339 date-times (or not real dates) */
static const char *const not_rfc3339[] = {
    "2024-12-20 10:30:00Z",
    "2024-12-20T10:30:00",
    "2024-12-20",
    "yesterday",
    "",
    "2024-13-20T10:30:00Z",
    "2024-02-30T10:30:00Z",
    "2023-02-29T10:30:00Z",
    "2024-12-20T25:30:00Z",
    "2024-12-20T10:30:00Z ",
    "1734690600",
    "2024-12-20T10:30:00+0200",
};

static void test_created_at_not_rfc3339(void **state)
{
        (void)state;
        for (size_t i = 0; i < TU_NELEM(not_rfc3339); i++) {
                char b[512];
                snprintf(b, sizeof(b),
                         "{\"id\":\"e\",\"event\":\"ITEM_UPDATE\",\"created_at\":"
                         "\"%s\",\"data\":{\"item_id\":\"c\"}}",
                         not_rfc3339[i]);
                expect_invalid(b, "created_at", "RFC 3339");
        }
}

static void test_data_missing_or_mistyped(void **state)
{
        (void)state;
        expect_invalid("{\"id\":\"e\",\"event\":\"ITEM_UPDATE\",\"created_at\":"
                       "\"2024-12-20T10:30:00Z\"}",
                       "data", "missing");
        /* also for unknown events, which need no id inside data */
        expect_invalid("{\"id\":\"e\",\"event\":\"NEW_THING\",\"created_at\":"
                       "\"2024-12-20T10:30:00Z\"}",
                       "data", "missing");
        expect_invalid(body_with("\"NEW_THING\"", "\"comp_1\""), "data", "object");
        expect_invalid(body_with("\"NEW_THING\"", "[]"), "data", "object");
        expect_invalid(body_with("\"NEW_THING\"", "null"), "data", NULL);
        expect_invalid(body_with("\"ITEM_UPDATE\"", "[{\"item_id\":\"c\"}]"), "data",
                       NULL);
}

/* Events whose data lacks a usable resource id: body_with(event, data) is invalid
 * with a reason that names field. */
static const struct {
        const char *field, *event, *data;
} id_missing[] = {
    {"data.item_id", "\"ITEM_UPDATE\"", "{}"},
    {"data.item_id", "\"ITEM_CREATE\"", "{\"item_id\":\"\"}"},
    {"data.item_id", "\"ITEM_CREATE\"", "{\"item_id\":123}"},
    {"data.item_id", "\"ITEM_DELETE\"", "{\"item_id\":null}"},
    {"data.item_id", "\"ITEM_UPDATE\"", "{\"item_id\":[\"c\"]}"},
    /* a change order id does not stand in for an item id */
    {"data.item_id", "\"ITEM_UPDATE\"", "{\"change_order_id\":\"co_1\"}"},
    {"data.change_order_id", "\"CO_OPEN\"", "{}"},
    {"data.change_order_id", "\"CO_UPDATE\"", "{\"change_order_id\":\"\"}"},
    {"data.change_order_id", "\"CO_DELETE\"", "{\"change_order_id\":5}"},
    {"data.change_order_id", "\"CO_RESOLUTION\"", "{\"item_id\":\"comp_1\"}"},
};

/* Checks the id_missing cases of one field (there is at least one). */
static void expect_id_missing(const char *field)
{
        size_t n = 0;

        for (size_t i = 0; i < TU_NELEM(id_missing); i++) {
                if (strcmp(id_missing[i].field, field) != 0)
                        continue;
                expect_invalid(body_with(id_missing[i].event, id_missing[i].data),
                               field, NULL);
                n++;
        }
        assert_true(n > 0);
}

static void test_item_event_without_item_id(void **state)
{
        (void)state;
        expect_id_missing("data.item_id");
}

static void test_co_event_without_change_order_id(void **state)
{
        (void)state;
        expect_id_missing("data.change_order_id");
}

/* Builds an ITEM_UPDATE body whose maximum nesting is depth (>= 2). */
static char *nested_body(int depth)
{
        size_t cap = 256 + 2 * (size_t)depth;
        char *b    = malloc(cap);
        size_t o;

        assert_non_null(b);
        o = (size_t)snprintf(b, cap,
                             "{\"id\":\"e\",\"event\":\"ITEM_UPDATE\",\"created_at\":"
                             "\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"c\","
                             "\"n\":");
        /* the object is level 1, data is level 2, then depth-2 arrays */
        for (int i = 0; i < depth - 2; i++)
                b[o++] = '[';
        b[o++] = '1';
        for (int i = 0; i < depth - 2; i++)
                b[o++] = ']';
        b[o++] = '}';
        b[o++] = '}';
        b[o]   = '\0';
        return b;
}

static void test_nesting_limit(void **state)
{
        char *b;

        (void)state;
        b = nested_body(DPAYLOAD_MAX_DEPTH);
        assert_int_equal(dpayload_depth(b, strlen(b), DPAYLOAD_MAX_DEPTH),
                         DPAYLOAD_MAX_DEPTH);
        expect_valid(b);
        free(b);
        b = nested_body(DPAYLOAD_MAX_DEPTH + 1);
        expect_invalid(b, "64", NULL);
        free(b);
        b = nested_body(10000);
        expect_invalid(b, NULL, NULL);
        free(b);
}

static void test_depth_function(void **state)
{
        (void)state;
        assert_int_equal(dpayload_depth("", 0, 64), 0);
        assert_int_equal(dpayload_depth("1", 1, 64), 0);
        assert_int_equal(dpayload_depth("{}", 2, 64), 1);
        assert_int_equal(dpayload_depth("[[],[[]]]", 9, 64), 3);
        assert_int_equal(dpayload_depth("{\"a\":[{}]}", 10, 64), 3);
        /* brackets inside strings do not count, escaped quotes do not end them */
        assert_int_equal(dpayload_depth("[\"[[[{{{\"]", 10, 64), 1);
        assert_int_equal(dpayload_depth("[\"\\\"[[[\"]", 10, 64), 1);
        assert_int_equal(dpayload_depth("[\"\\\\\",[[]]]", 12, 64), 3);
        /* past the limit: limit + 1 */
        assert_int_equal(dpayload_depth("[[[[[]]]]]", 10, 3), 4);
        /* len bounds the scan */
        assert_int_equal(dpayload_depth("[[[[", 2, 64), 2);
}

static void test_deep_brackets_in_string_ok(void **state)
{
        char data[400];
        char *p = data;

        (void)state;
        p += sprintf(p, "{\"item_id\":\"c\",\"s\":\"");
        for (int i = 0; i < 100; i++)
                *p++ = '[';
        sprintf(p, "\"}");
        expect_valid(body_with("\"ITEM_UPDATE\"", data));
}

static void test_invalid_utf8(void **state)
{
        (void)state;
        /* a lone continuation byte, a truncated sequence, an overlong form, a
         * surrogate, and 0xff */
        expect_invalid(body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\x80\"}"), NULL,
                       NULL);
        expect_invalid(body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\xc3\"}"), NULL,
                       NULL);
        expect_invalid(body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"\xc0\xaf\"}"), NULL,
                       NULL);
        expect_invalid(
            body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\",\"n\":\"\xed\xa0\x80\"}"),
            NULL, NULL);
        expect_invalid(body_with("\"NEW\xff\"", "{}"), NULL, NULL);
        /* valid multi-byte is fine */
        expect_valid(
            body_with("\"ITEM_UPDATE\"",
                      "{\"item_id\":\"c\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}"));
}

static void test_nul_escape_in_string(void **state)
{
        struct dpayload p;

        (void)state;
        expect_invalid(
            body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\",\"note\":\"a\\u0000b\"}"),
            NULL, NULL);
        /* in the item id it would truncate the key: must be refused */
        expect_invalid(body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\\u0000d\"}"),
                       NULL, NULL);
        /* in a key, too */
        expect_invalid(
            body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\",\"a\\u0000\":1}"), NULL,
            NULL);
        /* a raw NUL byte in the body is not JSON either */
        expect_invalid_n("{\"id\":\"e\0\"}", 10, NULL, NULL);
        /* \u0001 is fine */
        assert_int_equal(
            parse(&p, body_with("\"ITEM_UPDATE\"", "{\"item_id\":\"c\\u0001\"}")), 0);
        assert_string_equal(p.item_id, "c\x01");
        dpayload_free(&p);
}

static void test_first_failure_wins_order(void **state)
{
        (void)state;
        /* id checked before event, event before created_at, created_at before data */
        expect_invalid("{\"event\":7,\"created_at\":5}", "id", NULL);
        expect_invalid("{\"id\":\"e\",\"event\":7,\"created_at\":5}", "event", NULL);
        expect_invalid("{\"id\":\"e\",\"event\":\"X\",\"created_at\":5}", "created_at",
                       NULL);
}

/* ---- keys ---- */

static void expect_key(const char *body, const char *want)
{
        struct dpayload p;
        char buf[DPAYLOAD_HASHKEY_SIZE];
        const char *k;

        memset(buf, 0, sizeof(buf));
        dpayload_parse(&p, NULL, body, strlen(body));
        k = dpayload_key(&p, body, strlen(body), buf);
        assert_non_null(k);
        if (strcmp(k, want) != 0)
                fail_msg("key of %s: got \"%s\", want \"%s\"", body, k, want);
        dpayload_free(&p);
}

static void test_key_rules(void **state)
{
        (void)state;
        /* ITEM_*: item id, even when a change order id is there too (and first) */
        expect_key(body_with("\"ITEM_UPDATE\"",
                             "{\"change_order_id\":\"co_9\",\"item_id\":\"comp_1\"}"),
                   "comp_1");
        /* CO_*: change order id, even when an item id is there too (and first) */
        expect_key(body_with("\"CO_UPDATE\"",
                             "{\"item_id\":\"comp_1\",\"change_order_id\":\"co_9\"}"),
                   "co_9");
        /* unknown events: the first present of item id, change order id */
        expect_key(body_with("\"NEW_EVENT\"",
                             "{\"change_order_id\":\"co_9\",\"item_id\":\"comp_1\"}"),
                   "comp_1");
        expect_key(body_with("\"NEW_EVENT\"", "{\"change_order_id\":\"co_9\"}"),
                   "co_9");
        /* ... empty or non-string ids are not present */
        expect_key(body_with("\"NEW_EVENT\"",
                             "{\"item_id\":\"\",\"change_order_id\":\"co_9\"}"),
                   "co_9");
        expect_key(
            body_with("\"NEW_EVENT\"", "{\"item_id\":5,\"change_order_id\":\"co_9\"}"),
            "co_9");
        /* otherwise the event id */
        expect_key(body_with("\"NEW_EVENT\"", "{\"project_id\":\"p\"}"), "evt_1");
        /* invalid payloads still use what is there: ITEM_* without item id but with
         * a change order id -> the first present */
        expect_key(body_with("\"ITEM_UPDATE\"", "{\"change_order_id\":\"co_9\"}"),
                   "co_9");
        expect_key(body_with("\"CO_UPDATE\"", "{\"item_id\":\"comp_1\"}"), "comp_1");
        expect_key(body_with("\"ITEM_UPDATE\"", "{}"), "evt_1");
        /* an invalid created_at does not hide the item id */
        expect_key("{\"id\":\"e\",\"event\":\"ITEM_UPDATE\",\"created_at\":\"no\","
                   "\"data\":{\"item_id\":\"comp_7\"}}",
                   "comp_7");
        /* event missing: item id is still "first present" */
        expect_key("{\"id\":\"e\",\"data\":{\"item_id\":\"comp_7\"}}", "comp_7");
        /* data missing: the event id */
        expect_key("{\"id\":\"evt_x\",\"event\":\"ITEM_UPDATE\"}", "evt_x");
}

static void test_key_sha256_forms(void **state)
{
        (void)state;
        /* no id at all: sha256 of the body (values from sha256sum) */
        expect_key("not json",
                   "sha256:"
                   "7ccfa1fbf3940e6f0c0375d87c0f9235a50514e14cb427bdfaf5077987b26ccf");
        expect_key("{\"event\":\"ITEM_UPDATE\"}",
                   "sha256:"
                   "7fb6e0ccf8c875bde0f45d9b229c9cea1d7d239f2ef817167f0ec92fb4fdcf22");
        expect_key("[1,2,3]",
                   "sha256:"
                   "a615eeaee21de5179de080de8c3052c8da901138406ba71c38c032845f7d54f4");
        /* duplicate keys: not parsed, so hashed even though it has ids */
        expect_key("{\"id\":\"evt_1\",\"id\":\"evt_2\"}",
                   "sha256:"
                   "300f7fcef4f4a126c6c39a79f5c8014246936e2f517f6f2764e4cb888683da28");
        /* an empty id or non-string id is no id */
        {
                struct dpayload p;
                char buf[DPAYLOAD_HASHKEY_SIZE];
                const char *b = "{\"id\":\"\",\"event\":\"X\"}";
                const char *k;
                dpayload_parse(&p, NULL, b, strlen(b));
                k = dpayload_key(&p, b, strlen(b), buf);
                assert_ptr_equal(k, buf);
                assert_int_equal(strlen(k), 7 + 64);
                assert_memory_equal(k, "sha256:", 7);
                dpayload_free(&p);
        }
}

static void test_key_sha256_empty_body(void **state)
{
        struct dpayload p;
        char buf[DPAYLOAD_HASHKEY_SIZE];
        const char *k;

        (void)state;
        dpayload_parse(&p, NULL, "", 0);
        k = dpayload_key(&p, "", 0, buf);
        assert_string_equal(
            k,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        dpayload_free(&p);
}

static void test_kind_of(void **state)
{
        (void)state;
        assert_int_equal(dpayload_kind_of(NULL), DWIRE_KIND_UNKNOWN);
        assert_int_equal(dpayload_kind_of(""), DWIRE_KIND_UNKNOWN);
        assert_int_equal(dpayload_kind_of("ITEM_CREATE"), DWIRE_KIND_ITEM);
        assert_int_equal(dpayload_kind_of("ITEM_"), DWIRE_KIND_ITEM);
        assert_int_equal(dpayload_kind_of("ITEM"), DWIRE_KIND_UNKNOWN);
        assert_int_equal(dpayload_kind_of("item_create"), DWIRE_KIND_UNKNOWN);
        assert_int_equal(dpayload_kind_of("CO_OPEN"), DWIRE_KIND_CHANGE_ORDER);
        assert_int_equal(dpayload_kind_of("CO_STAGE_REVIEWER_DECISION"),
                         DWIRE_KIND_CHANGE_ORDER);
        assert_int_equal(dpayload_kind_of("COMMENT"), DWIRE_KIND_UNKNOWN);
        assert_int_equal(dpayload_kind_of("XITEM_CREATE"), DWIRE_KIND_UNKNOWN);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_spec_example_valid),
            cmocka_unit_test(test_spec_co_examples_valid),
            cmocka_unit_test(test_valid_variants),
            cmocka_unit_test(test_body_not_nul_terminated),
            cmocka_unit_test(test_unknown_event_accepted),
            cmocka_unit_test(test_not_json),
            cmocka_unit_test(test_top_level_array),
            cmocka_unit_test(test_duplicate_keys),
            cmocka_unit_test(test_id_missing_or_mistyped),
            cmocka_unit_test(test_event_missing_or_mistyped),
            cmocka_unit_test(test_created_at_missing_or_mistyped),
            cmocka_unit_test(test_created_at_not_rfc3339),
            cmocka_unit_test(test_data_missing_or_mistyped),
            cmocka_unit_test(test_item_event_without_item_id),
            cmocka_unit_test(test_co_event_without_change_order_id),
            cmocka_unit_test(test_nesting_limit),
            cmocka_unit_test(test_depth_function),
            cmocka_unit_test(test_deep_brackets_in_string_ok),
            cmocka_unit_test(test_invalid_utf8),
            cmocka_unit_test(test_nul_escape_in_string),
            cmocka_unit_test(test_first_failure_wins_order),
            cmocka_unit_test(test_key_rules),
            cmocka_unit_test(test_key_sha256_forms),
            cmocka_unit_test(test_key_sha256_empty_body),
            cmocka_unit_test(test_kind_of),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
