/* Unit tests for enricher_out.c: output topic names from the template and the enriched
 * value (schema duro.enriched.v1, docs/architecture.md), read back with jansson. */
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

/* A record as the batch holds it once its item was pulled, and its value parsed back
 * (each test gets one from case_setup, with SPEC_PAYLOAD). */
struct out_case {
        rd_kafka_message_t msg;
        struct enricher_item item;
        struct enricher_rec rec;
        json_t *payload;
        char key[80];
        json_t *value; /* out_parse's result */
};

#define SPEC_PAYLOAD                                                                   \
        "{\"id\":\"evt_abc123\",\"webhook_id\":\"webhook_xyz789\",\"event\":\"ITEM_"   \
        "UPDATE\","                                                                    \
        "\"created_at\":\"2024-12-20T10:30:00Z\",\"data\":{\"item_id\":\"comp_1\"}}"

static void out_case_init(struct out_case *c, const char *payload)
{
        json_error_t jerr;

        memset(c, 0, sizeof(*c));
        c->payload = json_loads(payload, 0, &jerr);
        assert_non_null(c->payload);
        c->msg.partition = 3;
        c->msg.offset    = 1234567890123LL;
        c->item.kind     = DWIRE_KIND_ITEM;
        c->item.status   = ENRICHER_ST_FOUND;
        c->item.doc_text = strdup("{\"id\":\"comp_1\",\"name\":\"Bracket \\u00e9\"}");
        c->item.doc_len  = strlen(c->item.doc_text);
        c->rec.msg       = &c->msg;
        c->rec.action    = ENRICHER_ACT_OUTPUT;
        c->rec.payload   = c->payload;
        c->rec.event     = json_string_value(json_object_get(c->payload, "event"));
        c->rec.event_id  = json_string_value(json_object_get(c->payload, "id"));
        c->rec.webhook_id =
            json_string_value(json_object_get(c->payload, "webhook_id"));
        c->rec.created_at =
            json_string_value(json_object_get(c->payload, "created_at"));
        c->rec.kind        = DWIRE_KIND_ITEM;
        c->rec.resource_id = "comp_1";
        c->rec.item        = &c->item;
        c->rec.status      = ENRICHER_ST_FOUND;
        c->rec.dedupe_key  = c->key;
}

static void out_case_free(struct out_case *c)
{
        free(c->item.doc_text);
        if (c->item.doc)
                json_decref(c->item.doc);
        json_decref(c->payload);
        if (c->value)
                json_decref(c->value);
}

/* The case again with another raw payload. */
static void out_case_reset(struct out_case *c, const char *payload)
{
        out_case_free(c);
        out_case_init(c, payload);
}

static int case_setup(void **state)
{
        struct out_case *c = malloc(sizeof(*c));

        assert_non_null(c);
        out_case_init(c, SPEC_PAYLOAD);
        *state = c;
        return 0;
}

static int case_teardown(void **state)
{
        out_case_free(*state);
        free(*state);
        return 0;
}

/* Builds the value and parses it back into c->value (the case owns it). */
static json_t *out_parse(struct out_case *c, const char *received)
{
        size_t len = 0;
        char *v    = enricher_out_build(&c->rec, "duro.webhooks.raw", received,
                                        "2024-12-20T10:30:00.180Z", &len);
        json_error_t jerr;

        assert_non_null(v);
        assert_int_equal(len, strlen(v));
        assert_null(c->value);
        c->value = json_loadb(v, len, 0, &jerr);
        if (!c->value)
                fail_msg("not JSON (%s): %s", jerr.text, v);
        free(v);
        return c->value;
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
        json_t *v = json_object_get(o, a);

        if (b)
                v = json_object_get(v, b);
        return json_string_value(v);
}

static void test_value_layout(void **state)
{
        struct out_case *c = *state;
        size_t len         = 0;
        char *v =
            enricher_out_build(&c->rec, "duro.webhooks.raw", "2024-12-20T10:30:00.120Z",
                               "2024-12-20T10:30:00.180Z", &len);

        assert_non_null(v);
        /* The documented field order, compact, the document as it was pulled */
        assert_string_equal(
            v,
            "{\"schema\":\"duro.enriched.v1\",\"idempotency_key\":\"evt_abc123\","
            "\"event\":{\"id\":\"evt_abc123\",\"type\":\"ITEM_UPDATE\",\"webhook_id\":"
            "\"webhook_xyz789\",\"created_at\":\"2024-12-20T10:30:00Z\",\"data\":{"
            "\"item_id\":\"comp_1\"}},\"resource\":{\"kind\":\"item\",\"id\":\"comp_"
            "1\","
            "\"status\":\"found\"},\"document\":{\"id\":\"comp_1\",\"name\":\"Bracket "
            "\\u00e9\"},\"received_at\":\"2024-12-20T10:30:00.120Z\",\"enriched_at\":"
            "\"2024-12-20T10:30:00.180Z\",\"source\":{\"topic\":\"duro.webhooks.raw\","
            "\"partition\":3,\"offset\":1234567890123}}");
        assert_int_equal(len, strlen(v));
        free(v);
}

static void test_strings_escaped(void **state)
{
        struct out_case *c = *state;
        json_t *o;

        /* quotes, backslash, control characters, multi-byte UTF-8, "/" */
        out_case_reset(c, "{\"id\":\"e\\\"v\\\\t\\n\\u0001\",\"webhook_id\":\"w/1\","
                          "\"event\":\"ITEM_UPDATE\",\"created_at\":\"2024\\u2028x\","
                          "\"data\":{\"item_id\":\"\\u00fc\\ud83d\\ude00\\\"\"}}");
        c->rec.resource_id = "r\"\\\x7f";
        o                  = out_parse(c, "t\tab");
        assert_string_equal(str_at(o, "idempotency_key", NULL), "e\"v\\t\n\x01");
        assert_string_equal(str_at(o, "event", "id"), "e\"v\\t\n\x01");
        assert_string_equal(str_at(o, "event", "webhook_id"), "w/1");
        assert_string_equal(str_at(o, "event", "created_at"), "2024\xe2\x80\xa8x");
        assert_string_equal(
            json_string_value(json_object_get(
                json_object_get(json_object_get(o, "event"), "data"), "item_id")),
            "\xc3\xbc\xf0\x9f\x98\x80\"");
        assert_string_equal(str_at(o, "resource", "id"), "r\"\\\x7f");
        assert_string_equal(str_at(o, "received_at", NULL), "t\tab");
}

static void test_invalid_utf8_replaced(void **state)
{
        /* a received-at header is raw bytes: still a valid value, U+FFFD in place */
        json_t *o = out_parse(*state, "2024\xff\xc3(");

        assert_string_equal(str_at(o, "received_at", NULL),
                            "2024\xef\xbf\xbd\xef\xbf\xbd(");
}

static void test_missing_fields_are_null(void **state)
{
        struct out_case *c = *state;
        json_t *o, *ev;

        out_case_reset(c, "{\"event\":\"SOMETHING_NEW\"}");
        c->rec.kind        = DWIRE_KIND_UNKNOWN;
        c->rec.resource_id = NULL;
        c->rec.status      = ENRICHER_ST_UNSUPPORTED;
        c->rec.item        = NULL;
        strcpy(c->key, "sha256:00ff");
        o  = out_parse(c, "2024-12-20T10:30:00.120Z");
        ev = json_object_get(o, "event");
        assert_string_equal(str_at(o, "idempotency_key", NULL), "sha256:00ff");
        assert_true(json_is_null(json_object_get(ev, "id")));
        assert_true(json_is_null(json_object_get(ev, "webhook_id")));
        assert_true(json_is_null(json_object_get(ev, "created_at")));
        assert_true(json_is_null(json_object_get(ev, "data")));
        assert_string_equal(str_at(o, "event", "type"), "SOMETHING_NEW");
        assert_string_equal(str_at(o, "resource", "kind"), "unknown");
        assert_string_equal(str_at(o, "resource", "id"), "");
        assert_string_equal(str_at(o, "resource", "status"), "unsupported");
        assert_true(json_is_null(json_object_get(o, "document")));
}

static void test_document_only_when_found(void **state)
{
        struct out_case *c = *state;

        json_t *o;

        c->rec.status = ENRICHER_ST_DELETED; /* the item has a text, the record not */
        o             = out_parse(c, "x");
        assert_true(json_is_null(json_object_get(o, "document")));
        assert_string_equal(str_at(o, "resource", "status"), "deleted");
}

static void test_document_from_tree_when_no_text(void **state)
{
        struct out_case *c = *state;
        json_t *o;

        free(c->item.doc_text);
        c->item.doc_text = NULL;
        c->item.doc_len  = 0;
        c->item.doc      = json_pack("{s:s, s:[i,i]}", "id", "comp_1", "revs", 1, 2);
        o                = out_parse(c, "x");
        assert_true(json_equal(json_object_get(o, "document"), c->item.doc));
}

/* enricher_state_plan: per (kind, id), the batch's last output names the state; a live
 * not_found names none; unknown kinds, duplicates and DLQ records are no state. */
static void test_state_plan(void **state)
{
        static const struct {
                enum dwire_kind kind;
                const char *id, *event;
                enum enricher_action action;
                enum enricher_status status;
        } recs[] = {
            {DWIRE_KIND_ITEM, "a", "ITEM_UPDATE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_FOUND},
            {DWIRE_KIND_CHANGE_ORDER, "a", "CO_UPDATE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_FOUND}, /* same id, other kind: its own state */
            {DWIRE_KIND_ITEM, "b", "ITEM_UPDATE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_FOUND},
            {DWIRE_KIND_ITEM, "a", "ITEM_DELETE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_DELETED}, /* a's last: a tombstone */
            {DWIRE_KIND_ITEM, "b", "ITEM_UPDATE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_NOT_FOUND}, /* b's last: a live not_found: b's found stays */
            {DWIRE_KIND_ITEM, "c", "ITEM_SNAPSHOT", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_NOT_FOUND}, /* a snapshot's not_found: a tombstone */
            {DWIRE_KIND_UNKNOWN, "d", "FOO", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_UNSUPPORTED},
            {DWIRE_KIND_ITEM, "e", "ITEM_UPDATE", ENRICHER_ACT_DLQ, ENRICHER_ST_ERROR},
            {DWIRE_KIND_ITEM, "f", "ITEM_UPDATE", ENRICHER_ACT_DUPLICATE,
             ENRICHER_ST_FOUND},
            {DWIRE_KIND_ITEM, "g", "ITEM_UPDATE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_NOT_FOUND}, /* only live not_founds: nothing, counted */
            {DWIRE_KIND_ITEM, "h", "ITEM_DELETE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_DELETED},
            {DWIRE_KIND_ITEM, "h", "ITEM_UPDATE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_NOT_FOUND}, /* deleted, then an update: still a tombstone */
            {DWIRE_KIND_ITEM, "g", "ITEM_CREATE", ENRICHER_ACT_OUTPUT,
             ENRICHER_ST_NOT_FOUND},
        };
        struct enricher e;
        struct enricher_batch b;
        struct enricher_rec r[13];

        (void)state;
        memset(&e, 0, sizeof(e));
        memset(&b, 0, sizeof(b));
        memset(r, 0, sizeof(r));
        e.cfg.state_topics = 1;
        for (size_t i = 0; i < 13; i++) {
                r[i].kind        = recs[i].kind;
                r[i].resource_id = recs[i].id;
                r[i].event       = recs[i].event;
                r[i].action      = recs[i].action;
                r[i].status      = recs[i].status;
        }
        b.recs = r;
        b.n    = 13;
        assert_int_equal(enricher_state_plan(&e, &b), 0);
        assert_int_equal((int)b.nstate, 5);
        assert_int_equal((int)b.state_recs[0], 1); /* change order a, in offset order */
        assert_int_equal((int)b.state_recs[1], 2); /* item b: its found event */
        assert_int_equal((int)b.state_recs[2], 3); /* item a: the delete */
        assert_int_equal((int)b.state_recs[3], 5); /* item c */
        assert_int_equal((int)b.state_recs[4], 10); /* item h: the delete */
        assert_true(enricher_state_tombstone(&r[3]));
        assert_true(enricher_state_tombstone(&r[5]));
        assert_true(enricher_state_tombstone(&r[10]));
        assert_false(enricher_state_tombstone(&r[1]));
        assert_false(enricher_state_tombstone(&r[4]));
        assert_int_equal((int)b.state_skipped, 1); /* g, once */
        /* off: none */
        e.cfg.state_topics = 0;
        assert_int_equal(enricher_state_plan(&e, &b), 0);
        assert_int_equal((int)b.nstate, 0);
        free(b.state_recs);
}

/* A state larger than its topic takes: that resource's events go to the DLQ, before
 * any transaction; the other resources keep theirs. */
static void test_state_too_large(void **state)
{
        struct enricher_item big = {.doc_text = (char *)"{\"id\":\"a\"}",
                                    .doc_len  = 10};
        struct enricher_rec r[3];
        struct enricher_batch b;
        struct enricher e;

        (void)state;
        memset(&e, 0, sizeof(e));
        memset(&b, 0, sizeof(b));
        memset(r, 0, sizeof(r));
        e.cfg.state_topics                 = 1;
        e.cfg.raw_topic                    = (char *)"raw";
        e.state_topic[DWIRE_KIND_ITEM]     = (char *)"st.item";
        e.state_max_bytes[DWIRE_KIND_ITEM] = 600; /* less than any state record */
        e.state_max_bytes[DWIRE_KIND_CHANGE_ORDER] = 1 << 20;
        for (int i = 0; i < 3; i++) {
                r[i].action = ENRICHER_ACT_OUTPUT;
                r[i].status = ENRICHER_ST_FOUND;
                r[i].item   = &big;
                r[i].event  = "ITEM_UPDATE";
        }
        r[0].kind = r[1].kind = DWIRE_KIND_ITEM;
        r[0].resource_id = r[1].resource_id = "a";
        r[2].kind                           = DWIRE_KIND_CHANGE_ORDER;
        r[2].resource_id                    = "a";
        b.recs                              = r;
        b.n                                 = 3;
        assert_int_equal(enricher_state_plan(&e, &b), 0);
        assert_int_equal((int)b.nstate, 1);
        assert_int_equal((int)b.state_recs[0], 2);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(r[i].action, ENRICHER_ACT_DLQ);
                assert_int_equal(r[i].dlq_class, DWIRE_DLQ_PRODUCE_REJECTED);
                assert_non_null(
                    strstr(r[i].dlq_message, "st.item takes records of at most 600"));
        }
        assert_int_equal(r[2].action, ENRICHER_ACT_OUTPUT);
        free(b.state_recs);
}

static void test_state_topic_names(void **state)
{
        char *t;

        (void)state;
        t = dwire_state_topic("duro.state.{kind}", DWIRE_KIND_CHANGE_ORDER);
        assert_string_equal(t, "duro.state.change_order");
        free(t);
        t = dwire_state_topic("{kind}-current", DWIRE_KIND_ITEM);
        assert_string_equal(t, "item-current");
        free(t);
}

#define CASE_TEST(f) cmocka_unit_test_setup_teardown(f, case_setup, case_teardown)

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
            CASE_TEST(test_value_layout),
            CASE_TEST(test_strings_escaped),
            CASE_TEST(test_invalid_utf8_replaced),
            CASE_TEST(test_missing_fields_are_null),
            CASE_TEST(test_document_only_when_found),
            CASE_TEST(test_document_from_tree_when_no_text),
            cmocka_unit_test(test_state_plan),
            cmocka_unit_test(test_state_topic_names),
            cmocka_unit_test(test_state_too_large),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
