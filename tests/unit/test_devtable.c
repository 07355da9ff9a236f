/* Unit tests for devtable (the event table: parsing, errors naming file, line and
 * entry, lookups) and for dpayload's use of it (kind, key, invalid or unsupported). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devtable.h"
#include "dpayload.h"

/* The table shipped in schemas/ (the source's copy: nothing is installed here). */
static void load_default(struct devtable *t)
{
        char err[700];

        if (devtable_load(t, DURO_SOURCE_EVENT_TABLE, err, sizeof(err)))
                fail_msg("default table: %s", err);
}

/* Parses text, expecting the error want (a substring); fails the test otherwise. */
static void expect_error(const char *text, const char *want)
{
        struct devtable t;
        char err[700] = "";

        if (devtable_parse(&t, text, strlen(text), "t.txt", err, sizeof(err)) == 0) {
                devtable_free(&t);
                fail_msg("accepted: %s", text);
        }
        if (!strstr(err, want))
                fail_msg("error %s lacks %s", err, want);
        assert_int_equal((int)t.n, 0);
        assert_null(t.e);
}

static void test_default_table(void **state)
{
        struct devtable t;
        const struct devtable_entry *en;

        (void)state;
        load_default(&t);
        en = devtable_find(&t, "ITEM_UPDATE");
        assert_non_null(en);
        assert_int_equal(en->pattern, 0);
        assert_int_equal(en->kind, DWIRE_KIND_ITEM);
        assert_string_equal(en->ids[0], "item_id");
        assert_int_equal(en->id_known, 1);
        assert_int_equal(en->deletes, 0);
        assert_string_equal(devtable_topic_event(en, "ITEM_UPDATE"), "ITEM_UPDATE");

        en = devtable_find(&t, "COMPONENT_UPDATED");
        assert_non_null(en);
        assert_int_equal(en->id_known, 0);
        assert_string_equal(devtable_topic_event(en, "COMPONENT_UPDATED"),
                            "ITEM_UPDATE");
        en = devtable_find(&t, "components.deleted");
        assert_non_null(en);
        assert_int_equal(en->deletes, 1);
        assert_string_equal(en->topic_of, "ITEM_DELETE");
        en = devtable_find(&t, "CHANGE_ORDER_OPENED");
        assert_int_equal(en->kind, DWIRE_KIND_CHANGE_ORDER);
        assert_string_equal(en->topic_of, "CO_OPEN");

        /* Patterns: ITEM_* gives other ITEM_ names the same field, assumed (only the
         * documented nine know their id). */
        en = devtable_find(&t, "ITEM_ARCHIVED");
        assert_non_null(en);
        assert_int_equal(en->pattern, 1);
        assert_string_equal(en->name, "ITEM_");
        assert_string_equal(en->ids[0], "item_id");
        assert_int_equal(en->id_known, 0);
        assert_null(devtable_find(&t, "COMMENT_ADDED"));
        assert_null(devtable_find(&t, "item_update")); /* names are case-sensitive */

        en = devtable_find(&t, "ITEM_SNAPSHOT");
        assert_non_null(en);
        assert_int_equal(en->kind, DWIRE_KIND_ITEM);
        devtable_free(&t);
}

static void test_exact_beats_pattern_longest_pattern_wins(void **state)
{
        static const char text[] = "A_*      item          x    no  -\n"
                                   "A_B_*    change_order  y    no  -\n"
                                   "A_B_C    unknown       -    no  -\n";
        struct devtable t;
        char err[300];

        (void)state;
        assert_int_equal(devtable_parse(&t, text, strlen(text), "t", err, sizeof(err)),
                         0);
        assert_int_equal(devtable_find(&t, "A_B_C")->kind, DWIRE_KIND_UNKNOWN);
        assert_int_equal(devtable_find(&t, "A_B_CD")->kind, DWIRE_KIND_CHANGE_ORDER);
        assert_int_equal(devtable_find(&t, "A_X")->kind, DWIRE_KIND_ITEM);
        assert_null(devtable_find(&t, "A"));
        /* the eleven built-ins were added, known */
        assert_int_equal((int)t.n, 14);
        assert_int_equal(devtable_find(&t, "CO_SNAPSHOT")->id_known, 1);
        assert_int_equal(devtable_find(&t, "ITEM_DELETE")->deletes, 1);
        assert_int_equal(devtable_find(&t, "CO_RESOLUTION")->id_known, 1);
        assert_int_equal(devtable_find(&t, "A_B_C")->id_known, 0);
        devtable_free(&t);
}

static void test_errors_name_file_line_and_entry(void **state)
{
        (void)state;
        expect_error("# c\n\nX item a no\n", "t.txt:3: entry X: too few columns");
        expect_error("X item a no - extra\n", "t.txt:1: entry X: more than 5");
        expect_error("\nX widget a no -\n",
                     "t.txt:2: entry X: kind 'widget' is not item");
        expect_error("X item a,1b no -\n",
                     "t.txt:1: entry X: id field '1b' is not a field name");
        expect_error("X item a, no -\n", "t.txt:1: entry X: id list ends");
        expect_error("X item - no -\n",
                     "t.txt:1: entry X: kind item needs at least one");
        expect_error("X item a maybe -\n", "t.txt:1: entry X: deletes 'maybe'");
        expect_error("X item a no Y*\n", "t.txt:1: entry X: topic 'Y*'");
        expect_error("X*Y item a no -\n", "t.txt:1: entry X*Y: the event name");
        expect_error("X item a no -\n# x\nX change_order b no -\n",
                     "t.txt:3: entry X: given twice (also on line 1)");
        /* the built-ins: only their topic may change */
        expect_error("ITEM_SNAPSHOT change_order item_id no -\n",
                     "t.txt:1: entry ITEM_SNAPSHOT: built in as item item_id no");
        expect_error(
            "CO_DELETE change_order change_order_id no -\n",
            "t.txt:1: entry CO_DELETE: built in as change_order change_order_id yes");
        expect_error("ITEM_UPDATE item item_id,id no -\n",
                     "t.txt:1: entry ITEM_UPDATE: built in");
        /* a shared topic names an exact entry with a topic of its own */
        expect_error("X item a no ITEM_UPDTE\n",
                     "t.txt:1: entry X: topic ITEM_UPDTE is no event of the table");
        expect_error("A item a no -\nB item a no A\nC* item a no B\n",
                     "t.txt:3: entry C*: topic B shares A's topic itself");
}

static void test_nul_byte_refused(void **state)
{
        static const char text[] = "X item a no -\nY\0Z item a no -\n";
        struct devtable t;
        char err[300];

        (void)state;
        assert_int_equal(
            devtable_parse(&t, text, sizeof(text) - 1, "t.txt", err, sizeof(err)), -1);
        assert_string_equal(err, "t.txt:2: a NUL byte");
}

static void test_missing_file_names_the_setting(void **state)
{
        struct devtable t;
        char err[700];

        (void)state;
        assert_int_equal(devtable_load(&t, "/nonexistent/table.txt", err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "DURO_EVENT_TABLE"));
        assert_non_null(strstr(err, "/nonexistent/table.txt"));
}

static void test_resource_id_order(void **state)
{
        static const char text[] = "E item a,b,c no -\n";
        struct devtable t;
        const char *field = NULL;
        char err[300];
        json_t *data = json_pack("{s:s, s:s, s:i}", "c", "C", "b", "B", "a", 5);

        (void)state;
        assert_int_equal(devtable_parse(&t, text, strlen(text), "t", err, sizeof(err)),
                         0);
        /* a is not a string, b is the first that is */
        assert_string_equal(devtable_resource_id(devtable_find(&t, "E"), data, &field),
                            "B");
        assert_string_equal(field, "b");
        json_object_set_new(data, "b", json_string(""));
        assert_string_equal(devtable_resource_id(devtable_find(&t, "E"), data, &field),
                            "C");
        json_decref(data);
        devtable_free(&t);
}

static const char *key_of(const struct devtable *t, const char *body,
                          struct dpayload *p, int *rc)
{
        static char buf[DPAYLOAD_HASHKEY_SIZE];

        *rc = dpayload_parse(p, t, body, strlen(body));
        return dpayload_key(p, body, strlen(body), buf);
}

#define BODY(event, data)                                                              \
        "{\"id\":\"evt_1\",\"event\":\"" event "\",\"created_at\":"                    \
        "\"2024-12-20T10:30:00Z\",\"data\":" data "}"

static void test_payload_through_the_table(void **state)
{
        struct devtable t;
        struct dpayload p;
        int rc;

        (void)state;
        load_default(&t);
        /* a renamed event: kind and key from its assumed field */
        assert_string_equal(
            key_of(&t, BODY("COMPONENT_UPDATED", "{\"component_id\":\"c9\"}"), &p, &rc),
            "c9");
        assert_int_equal(rc, 0);
        assert_int_equal(p.kind, DWIRE_KIND_ITEM);
        assert_string_equal(p.resource_id, "c9");
        dpayload_free(&p);
        assert_string_equal(
            key_of(&t, BODY("components.updated", "{\"componentId\":\"c8\"}"), &p, &rc),
            "c8");
        dpayload_free(&p);

        /* ...without it: passes through as unsupported, keyed by the event id */
        assert_string_equal(
            key_of(&t, BODY("COMPONENT_UPDATED", "{\"other\":\"x\"}"), &p, &rc),
            "evt_1");
        assert_int_equal(rc, 0);
        assert_int_equal(p.valid, 1);
        assert_int_equal(p.kind, DWIRE_KIND_UNKNOWN);
        dpayload_free(&p);

        /* the documentation's events keep their rule: invalid, in §3's words */
        key_of(&t, BODY("ITEM_UPDATE", "{\"component_id\":\"c9\"}"), &p, &rc);
        assert_int_equal(rc, -1);
        assert_int_equal(p.id_missing, 1);
        assert_int_equal(p.invalid_id_only, 1);
        assert_string_equal(p.reason,
                            "ITEM_* event without a non-empty string data.item_id");
        dpayload_free(&p);
        key_of(&t, BODY("CO_RESOLUTION", "{}"), &p, &rc);
        assert_int_equal(rc, -1);
        assert_string_equal(
            p.reason, "CO_* event without a non-empty string data.change_order_id");
        dpayload_free(&p);
        /* ...other names of those prefixes only assume the field: unsupported */
        assert_string_equal(key_of(&t, BODY("CO_FUTURE", "{}"), &p, &rc), "evt_1");
        assert_int_equal(rc, 0);
        assert_int_equal(p.kind, DWIRE_KIND_UNKNOWN);
        dpayload_free(&p);
        assert_string_equal(
            key_of(&t, BODY("ITEM_ARCHIVED", "{\"item_id\":\"i4\"}"), &p, &rc), "i4");
        assert_int_equal(p.kind, DWIRE_KIND_ITEM);
        dpayload_free(&p);

        /* an unknown event: unsupported, keyed as before the table */
        assert_string_equal(
            key_of(&t, BODY("COMMENT_ADDED", "{\"change_order_id\":\"co1\"}"), &p, &rc),
            "co1");
        assert_int_equal(rc, 0);
        assert_int_equal(p.kind, DWIRE_KIND_UNKNOWN);
        dpayload_free(&p);

        /* a broken body is invalid for its structure, not for its id... */
        key_of(&t, BODY("ITEM_UPDATE", "[]"), &p, &rc);
        assert_int_equal(rc, -1);
        assert_int_equal(p.invalid_id_only, 0);
        dpayload_free(&p);
        /* ...and keyed by its resource all the same */
        assert_string_equal(
            key_of(&t,
                   "{\"id\":\"e\",\"event\":\"CO_UPDATE\",\"created_at\":\"bad\","
                   "\"data\":{\"item_id\":\"i1\",\"change_order_id\":\"co1\"}}",
                   &p, &rc),
            "co1");
        assert_int_equal(rc, -1);
        assert_int_equal(p.kind, DWIRE_KIND_CHANGE_ORDER);
        assert_int_equal(p.invalid_id_only, 0);
        dpayload_free(&p);
        assert_string_equal(
            key_of(&t,
                   "{\"id\":\"e\",\"event\":\"COMPONENT_UPDATED\",\"data\":"
                   "{\"component_id\":\"c5\"}}",
                   &p, &rc),
            "c5");
        assert_int_equal(rc, -1);
        dpayload_free(&p);
        devtable_free(&t);
}

/* Without a table, the rules before it: the prefix decides. */
static void test_payload_without_a_table(void **state)
{
        struct dpayload p;
        int rc;

        (void)state;
        assert_string_equal(
            key_of(NULL, BODY("COMPONENT_UPDATED", "{\"component_id\":\"c9\"}"), &p,
                   &rc),
            "evt_1");
        assert_int_equal(rc, 0);
        assert_int_equal(p.kind, DWIRE_KIND_UNKNOWN);
        dpayload_free(&p);
        assert_string_equal(
            key_of(NULL, BODY("ITEM_X", "{\"item_id\":\"i1\"}"), &p, &rc), "i1");
        assert_int_equal(p.kind, DWIRE_KIND_ITEM);
        dpayload_free(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_default_table),
            cmocka_unit_test(test_exact_beats_pattern_longest_pattern_wins),
            cmocka_unit_test(test_errors_name_file_line_and_entry),
            cmocka_unit_test(test_nul_byte_refused),
            cmocka_unit_test(test_missing_file_names_the_setting),
            cmocka_unit_test(test_resource_id_order),
            cmocka_unit_test(test_payload_through_the_table),
            cmocka_unit_test(test_payload_without_a_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
