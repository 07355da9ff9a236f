/* Unit tests for dlogtable (the log table of `duro-enricher reconcile`): the shipped
 * table on the three shapes of a delivery log entry's metadata (the payload as an
 * object, as a string holding JSON, delivery details only), errors naming file and
 * line, and path following. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dlogtable.h"

static void load_default(struct dlogtable *t)
{
        char err[700];

        if (dlogtable_load(t, DURO_SOURCE_LOG_TABLE, err, sizeof(err)))
                fail_msg("default table: %s", err);
}

static json_t *parse(const char *text)
{
        json_t *v = json_loads(text, 0, NULL);

        if (!v)
                fail_msg("bad test JSON: %s", text);
        return v;
}

/* Expects field f of entry to be the string want (NULL: absent). */
static void expect_field(const struct dlogtable *t, enum dlogtable_field f,
                         json_t *entry, const char *want)
{
        char *got = dlogtable_string(t, f, entry);

        if (!want)
                assert_null(got);
        else if (!got)
                fail_msg("%s: absent, want %s", dlogtable_field_name(f), want);
        else
                assert_string_equal(got, want);
        free(got);
}

static const char payload[] =
    "{\"id\":\"evt_1\",\"webhook_id\":\"wh_1\",\"event\":\"ITEM_UPDATE\","
    "\"created_at\":\"2026-12-07T10:00:00Z\",\"data\":{\"item_id\":\"comp_9\"}}";

static void test_metadata_object(void **state)
{
        struct dlogtable t;
        char text[1024];
        json_t *entry, *p, *d;

        (void)state;
        load_default(&t);
        snprintf(text, sizeof(text),
                 "{\"id\":\"log_1\",\"event\":\"ITEM_UPDATE\",\"responseCode\":null,"
                 "\"isAcknowledged\":false,\"createdAt\":\"2026-12-07T10:00:05Z\","
                 "\"metadata\":{\"attempt\":3,\"payload\":%s}}",
                 payload);
        entry = parse(text);
        expect_field(&t, DLOGTABLE_EVENT_ID, entry, "evt_1");
        expect_field(&t, DLOGTABLE_EVENT, entry, "ITEM_UPDATE");
        expect_field(&t, DLOGTABLE_CREATED_AT, entry, "2026-12-07T10:00:00Z");
        expect_field(&t, DLOGTABLE_RESOURCE, entry, NULL);
        p = dlogtable_get(&t, DLOGTABLE_PAYLOAD, entry);
        assert_true(json_is_object(p));
        assert_string_equal(json_string_value(json_object_get(p, "webhook_id")),
                            "wh_1");
        d = dlogtable_get(&t, DLOGTABLE_DATA, entry);
        assert_string_equal(json_string_value(json_object_get(d, "item_id")), "comp_9");
        json_decref(p);
        json_decref(d);
        json_decref(entry);
        dlogtable_free(&t);
}

/* The same entry with metadata a string holding the object: the same answers. */
static void test_metadata_string(void **state)
{
        struct dlogtable t;
        json_t *meta, *entry, *p;
        char *metatext;

        (void)state;
        load_default(&t);
        meta = json_pack("{s:i, s:o}", "attempt", 3, "payload", parse(payload));
        assert_non_null(meta);
        metatext = json_dumps(meta, JSON_COMPACT);
        entry    = json_pack("{s:s, s:s, s:n, s:b, s:s, s:s}", "id", "log_2", "event",
                             "ITEM_UPDATE", "responseCode", "isAcknowledged", 0,
                             "createdAt", "2026-12-07T10:00:05Z", "metadata", metatext);
        assert_non_null(entry);
        expect_field(&t, DLOGTABLE_EVENT_ID, entry, "evt_1");
        expect_field(&t, DLOGTABLE_CREATED_AT, entry, "2026-12-07T10:00:00Z");
        p = dlogtable_get(&t, DLOGTABLE_PAYLOAD, entry);
        assert_true(json_is_object(p));
        assert_string_equal(json_string_value(json_object_get(p, "event")),
                            "ITEM_UPDATE");
        json_decref(p);
        free(metatext);
        json_decref(meta);
        json_decref(entry);
        dlogtable_free(&t);
}

/* The payload itself a string holding JSON inside an object: still the object. */
static void test_payload_as_a_string(void **state)
{
        struct dlogtable t;
        json_t *entry, *p;

        (void)state;
        load_default(&t);
        entry = json_pack("{s:s, s:s, s:{s:s}}", "id", "log_4", "event", "ITEM_UPDATE",
                          "metadata", "payload", payload);
        assert_non_null(entry);
        p = dlogtable_get(&t, DLOGTABLE_PAYLOAD, entry);
        assert_true(json_is_object(p));
        assert_string_equal(json_string_value(json_object_get(p, "id")), "evt_1");
        json_decref(p);
        json_decref(entry);
        dlogtable_free(&t);
}

/* Delivery details only: the event id and name, no payload, no resource. */
static void test_metadata_details(void **state)
{
        struct dlogtable t;
        json_t *entry;

        (void)state;
        load_default(&t);
        entry = parse("{\"id\":\"log_3\",\"event\":\"CO_UPDATE\",\"responseCode\":502,"
                      "\"isAcknowledged\":false,\"createdAt\":\"2026-12-07T10:00:05Z\","
                      "\"metadata\":{\"event_id\":\"evt_2\",\"attempt\":1,"
                      "\"url\":\"https://bridge.example/webhooks/duro\"}}");
        expect_field(&t, DLOGTABLE_EVENT_ID, entry, "evt_2");
        expect_field(&t, DLOGTABLE_EVENT, entry, "CO_UPDATE");
        expect_field(&t, DLOGTABLE_CREATED_AT, entry, "2026-12-07T10:00:05Z");
        assert_null(dlogtable_get(&t, DLOGTABLE_PAYLOAD, entry));
        assert_null(dlogtable_get(&t, DLOGTABLE_DATA, entry));
        expect_field(&t, DLOGTABLE_RESOURCE, entry, NULL);
        json_decref(entry);
        dlogtable_free(&t);
}

/* Null, empty strings and a string that is not JSON are not values; a later path
 * then wins. */
static void test_paths_fall_through(void **state)
{
        static const char text[] = "event_id a.b c\nevent e\nresource s.x s.y\n";
        struct dlogtable t;
        char err[300];
        json_t *entry;

        (void)state;
        assert_int_equal(
            dlogtable_parse(&t, text, strlen(text), "t.txt", err, sizeof(err)), 0);
        entry =
            parse("{\"a\":{\"b\":null},\"c\":\"id_c\",\"e\":\"\",\"s\":\"not json\"}");
        expect_field(&t, DLOGTABLE_EVENT_ID, entry, "id_c");
        expect_field(&t, DLOGTABLE_EVENT, entry, NULL);
        expect_field(&t, DLOGTABLE_RESOURCE, entry, NULL);
        json_decref(entry);
        entry = parse("{\"s\":\"{\\\"y\\\":\\\"r1\\\"}\",\"e\":7}");
        expect_field(&t, DLOGTABLE_RESOURCE, entry, "r1");
        expect_field(&t, DLOGTABLE_EVENT, entry, NULL); /* not a string */
        json_decref(entry);
        /* a path that reaches a value of another type gives way to the next one */
        entry = parse("{\"a\":{\"b\":42},\"c\":\"id_c\",\"e\":\"E\"}");
        expect_field(&t, DLOGTABLE_EVENT_ID, entry, "id_c");
        json_decref(entry);
        dlogtable_free(&t);
}

static void expect_error(const char *text, const char *want)
{
        struct dlogtable t;
        char err[700] = "";

        if (dlogtable_parse(&t, text, strlen(text), "t.txt", err, sizeof(err)) == 0) {
                dlogtable_free(&t);
                fail_msg("accepted: %s", text);
        }
        if (!strstr(err, want))
                fail_msg("error '%s' lacks '%s'", err, want);
        assert_int_equal(t.npaths[DLOGTABLE_EVENT_ID], 0);
        assert_null(t.path);
}

static void test_errors_name_file_and_line(void **state)
{
        (void)state;
        expect_error("event_id a\nevent b\nwidget c\n",
                     "t.txt:3: unknown field 'widget'");
        expect_error("event_id a\nevent_id b\n", "t.txt:2: field event_id given twice");
        expect_error("event_id\n", "t.txt:1: field event_id without a path");
        expect_error("event_id a..b\nevent e\n", "t.txt:1: path 'a..b'");
        expect_error("event_id a b c d e f g h i\n",
                     "t.txt:1: field event_id: more than 8");
        expect_error("event_id a.b.c.d.e.f.g.h.i\n", "more than 8 steps");
        expect_error("event_id a\n", "no row for event (required)");
        expect_error("# nothing\n", "no row for event_id (required)");
        expect_error("event_id a$\nevent e\n", "t.txt:1: path 'a$'");
}

static void test_missing_file_names_the_setting(void **state)
{
        struct dlogtable t;
        char err[700];

        (void)state;
        assert_int_equal(
            dlogtable_load(&t, "/nonexistent/log-table.txt", err, sizeof(err)), -1);
        assert_non_null(strstr(err, "DURO_LOG_TABLE"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_metadata_object),
            cmocka_unit_test(test_metadata_string),
            cmocka_unit_test(test_metadata_details),
            cmocka_unit_test(test_payload_as_a_string),
            cmocka_unit_test(test_paths_fall_through),
            cmocka_unit_test(test_errors_name_file_and_line),
            cmocka_unit_test(test_missing_file_names_the_setting),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
