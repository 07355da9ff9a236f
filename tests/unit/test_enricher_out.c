/* Unit tests for enricher_out_topic: output topic names from the template (DESIGN §4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enricher.h"

#define DEFAULT_TEMPLATE "duro.events.{event}"

static void check_topic(const char *tmpl, const char *event, const char *want)
{
        char *t = enricher_out_topic(tmpl, event);

        assert_non_null(t);
        assert_string_equal(t, want);
        free(t);
}

static void test_default_template_spec_examples(void **state)
{
        (void)state;
        check_topic(DEFAULT_TEMPLATE, "ITEM_UPDATE", "duro.events.item_update");
        check_topic(DEFAULT_TEMPLATE, "CO_RESOLUTION", "duro.events.co_resolution");
}

static void test_default_template_all_known_events(void **state)
{
        static const char *const ev[][2] = {
            {"ITEM_CREATE", "duro.events.item_create"},
            {"ITEM_DELETE", "duro.events.item_delete"},
            {"CO_OPEN", "duro.events.co_open"},
            {"CO_UPDATE", "duro.events.co_update"},
            {"CO_DELETE", "duro.events.co_delete"},
            {"CO_STAGE_TRANSITION", "duro.events.co_stage_transition"},
            {"CO_STAGE_REVIEWER_DECISION", "duro.events.co_stage_reviewer_decision"},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
                check_topic(DEFAULT_TEMPLATE, ev[i][0], ev[i][1]);
}

static void test_allowed_characters_kept(void **state)
{
        (void)state;
        /* [a-z0-9._-] pass through; upper case is lowered. */
        check_topic(DEFAULT_TEMPLATE, "abc.XYZ-09_z", "duro.events.abc.xyz-09_z");
        check_topic(DEFAULT_TEMPLATE, "lower", "duro.events.lower");
}

static void test_odd_characters_replaced(void **state)
{
        (void)state;
        check_topic(DEFAULT_TEMPLATE, "ITEM UPDATE", "duro.events.item_update");
        check_topic(DEFAULT_TEMPLATE, "a/b\\c:d", "duro.events.a_b_c_d");
        check_topic(DEFAULT_TEMPLATE, "x{y}z*?", "duro.events.x_y_z__");
        check_topic(DEFAULT_TEMPLATE, "tab\there", "duro.events.tab_here");
        check_topic(DEFAULT_TEMPLATE, "q\"'#%", "duro.events.q____");
        /* Every byte of a multi-byte UTF-8 character becomes one '_'. */
        check_topic(DEFAULT_TEMPLATE, "\xc3\xa9v\xc3\xa9nement",
                    "duro.events.__v__nement");
        /* High bytes are not lowered into letters by tolower(). */
        check_topic(DEFAULT_TEMPLATE, "\xff\x80", "duro.events.__");
}

static void test_event_placeholder_in_middle(void **state)
{
        (void)state;
        check_topic("acme.{event}.v1", "ITEM_UPDATE", "acme.item_update.v1");
        check_topic("pre-{event}-post", "CO_OPEN", "pre-co_open-post");
        check_topic("{event}", "ITEM_CREATE", "item_create");
        check_topic("{event}.events", "CO_DELETE", "co_delete.events");
}

static void test_only_first_placeholder_replaced(void **state)
{
        (void)state;
        /* The first "{event}" is replaced; the rest of the template is copied. */
        check_topic("{event}.{event}", "ITEM_UPDATE", "item_update.{event}");
}

static void test_template_without_placeholder(void **state)
{
        (void)state;
        check_topic("duro.events.all", "ITEM_UPDATE", "duro.events.all");
        check_topic("duro.events.all", "CO_RESOLUTION", "duro.events.all");
        check_topic("duro.events.{evt}", "ITEM_UPDATE", "duro.events.{evt}");
}

static void test_long_event_name(void **state)
{
        char ev[300], want[320];

        (void)state;
        memset(ev, 'A', sizeof(ev) - 1);
        ev[sizeof(ev) - 1] = '\0';
        strcpy(want, "duro.events.");
        memset(want + 12, 'a', sizeof(ev) - 1);
        want[12 + sizeof(ev) - 1] = '\0';
        check_topic(DEFAULT_TEMPLATE, ev, want);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_default_template_spec_examples),
            cmocka_unit_test(test_default_template_all_known_events),
            cmocka_unit_test(test_allowed_characters_kept),
            cmocka_unit_test(test_odd_characters_replaced),
            cmocka_unit_test(test_event_placeholder_in_middle),
            cmocka_unit_test(test_only_first_placeholder_replaced),
            cmocka_unit_test(test_template_without_placeholder),
            cmocka_unit_test(test_long_event_name),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
