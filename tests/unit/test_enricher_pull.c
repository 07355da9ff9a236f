/* Unit tests for enricher_pull_parse: nodes and pageInfo of GraphQL connection answers.
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

#define MAX_FOUND 16

struct found_log {
        size_t n;
        char *ids[MAX_FOUND];
        json_t *nodes[MAX_FOUND]; /* references taken */
};

static void on_found(void *opaque, const char *id, json_t *node)
{
        struct found_log *f = opaque;

        assert_true(f->n < MAX_FOUND);
        f->ids[f->n]   = strdup(id);
        f->nodes[f->n] = json_incref(node);
        f->n++;
}

static void found_free(struct found_log *f)
{
        for (size_t i = 0; i < f->n; i++) {
                free(f->ids[i]);
                json_decref(f->nodes[i]);
        }
        f->n = 0;
}

/* Parses text (NULL: an answer without "data") for kind; returns the result, fills f,
 * *has_next and *cursor. */
static int parse(const char *text, enum dwire_kind kind, struct found_log *f,
                 int *has_next, char **cursor)
{
        json_error_t err;
        json_t *data = text ? json_loads(text, JSON_DECODE_ANY, &err) : NULL;
        int rc;

        if (text && !data)
                fail_msg("bad test JSON at %d: %s", err.position, err.text);
        *has_next = -7;
        *cursor   = (char *)"sentinel";
        rc        = enricher_pull_parse(data, kind, on_found, f, has_next, cursor);
        json_decref(data);
        return rc;
}

/* The node handed over is the whole document. */
static void bolt_and_nut(const struct found_log *f)
{
        assert_string_equal(json_string_value(json_object_get(f->nodes[0], "cpn")),
                            "100-0001");
        assert_string_equal(json_string_value(json_object_get(f->nodes[1], "name")),
                            "Nut");
}

static void co_with_items(const struct found_log *f)
{
        assert_true(json_is_array(json_object_get(f->nodes[0], "items")));
}

#define ITEM                DWIRE_KIND_ITEM
#define CO                  DWIRE_KIND_CHANGE_ORDER
#define COMPONENTS(conn)    "{\"components\":{\"get\":{\"connection\":" conn "}}}"
#define CHANGE_ORDERS(conn) "{\"changeOrders\":{\"get\":{\"connection\":" conn "}}}"

/* An answer of the expected shape and what parsing it must give: the ids found in
 * order, has_next and the cursor (NULL: none), and more checks of the nodes. */
struct answer {
        const char *what, *text;
        enum dwire_kind kind;
        const char *ids[3]; /* NULL-terminated */
        int has_next;
        const char *cursor;
        void (*more)(const struct found_log *f);
};

static const struct answer answers[] = {
    {.what = "components, last page",
     .text = COMPONENTS(
         "{\"edges\":["
         "{\"node\":{\"id\":\"comp_123456\",\"cpn\":\"100-0001\",\"name\":\"Bolt\"}},"
         "{\"node\":{\"id\":\"comp_654321\",\"cpn\":\"100-0002\",\"name\":\"Nut\"}}],"
         "\"pageInfo\":{\"hasNextPage\":false,\"endCursor\":\"YXJyYXk6MQ==\"}}"),
     .kind = ITEM,
     .ids  = {"comp_123456", "comp_654321"},
     .more = bolt_and_nut},
    {.what     = "components, a next page",
     .kind     = ITEM,
     .text     = COMPONENTS("{\"edges\":[{\"node\":{\"id\":\"comp_1\"}}],"
                                "\"pageInfo\":{\"hasNextPage\":true,"
                                "\"endCursor\":\"cursor-after-1\"}}"),
     .ids      = {"comp_1"},
     .has_next = 1,
     .cursor   = "cursor-after-1"},
    {.what = "change orders",
     .text = CHANGE_ORDERS(
         "{\"edges\":["
         "{\"cursor\":\"c1\",\"node\":{\"id\":\"co_345678\",\"name\":\"ECO-1\","
         "\"status\":\"OPEN\",\"items\":[{\"id\":\"comp_1\"}]}},"
         "{\"cursor\":\"c2\",\"node\":{\"id\":\"co_999\"}}],"
         "\"pageInfo\":{\"hasNextPage\":true,\"endCursor\":\"c2\"}}"),
     .kind     = CO,
     .ids      = {"co_345678", "co_999"},
     .has_next = 1,
     .cursor   = "c2",
     .more     = co_with_items},
    {.what = "no edges",
     .kind = ITEM,
     .text = COMPONENTS("{\"edges\":[],"
                        "\"pageInfo\":{\"hasNextPage\":false,\"endCursor\":null}}")},
    {.what = "no pageInfo: the last page",
     .kind = ITEM,
     .text = COMPONENTS("{\"edges\":[{\"node\":{\"id\":\"comp_1\"}}]}"),
     .ids  = {"comp_1"}},
};

static void test_answers(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
                const struct answer *a = &answers[i];
                struct found_log f     = {0};
                int has_next;
                char *cursor;
                size_t n = 0;

                print_message("%s\n", a->what);
                assert_int_equal(parse(a->text, a->kind, &f, &has_next, &cursor), 0);
                while (a->ids[n])
                        n++;
                assert_int_equal(f.n, n);
                for (size_t k = 0; k < n; k++)
                        assert_string_equal(f.ids[k], a->ids[k]);
                assert_int_equal(has_next, a->has_next);
                if (a->cursor)
                        assert_string_equal(cursor, a->cursor);
                else
                        assert_null(cursor);
                if (a->more)
                        a->more(&f);
                if (a->cursor)
                        free(cursor);
                found_free(&f);
        }
}

/* Answers without the expected shape: refused, with nothing found, no next page and
 * no cursor. */
static const struct refused {
        const char *text;
        enum dwire_kind kind;
} refused[] = {
    {NULL, ITEM}, /* an answer without "data" */
    /* The kind selects the root: a components answer read as change orders has no
     * connection, and back. */
    {COMPONENTS("{\"edges\":[{\"node\":{\"id\":\"comp_1\"}}],"
                "\"pageInfo\":{\"hasNextPage\":false}}"),
     CO},
    {CHANGE_ORDERS("{\"edges\":[{\"node\":{\"id\":\"co_1\"}}],"
                   "\"pageInfo\":{\"hasNextPage\":false}}"),
     ITEM},
    /* No connection. */
    {"{}", ITEM},
    {"{\"components\":null}", ITEM},
    {"{\"components\":{}}", ITEM},
    {"{\"components\":{\"get\":null}}", ITEM},
    {"{\"components\":{\"get\":{}}}", ITEM},
    {COMPONENTS("null"), ITEM},
    {COMPONENTS("{}"), ITEM},
    {COMPONENTS("{\"pageInfo\":{\"hasNextPage\":false}}"), ITEM},
    {"[]", ITEM},
    {"null", ITEM},
    /* Edges that are not an array. */
    {COMPONENTS("{\"edges\":{}}"), ITEM},
    {COMPONENTS("{\"edges\":null}"), ITEM},
    {COMPONENTS("{\"edges\":\"[]\"}"), ITEM},
    {COMPONENTS("{\"edges\":{\"node\":{\"id\":\"comp_1\"}}}"), ITEM},
    /* A node without a string id. */
    {CHANGE_ORDERS("{\"edges\":[{\"node\":{\"name\":\"ECO-1\"}}]}"), CO},
    {CHANGE_ORDERS("{\"edges\":[{\"node\":{\"id\":null}}]}"), CO},
    {CHANGE_ORDERS("{\"edges\":[{\"node\":{\"id\":42}}]}"), CO},
    {CHANGE_ORDERS("{\"edges\":[{\"node\":null}]}"), CO},
    {CHANGE_ORDERS("{\"edges\":[{\"cursor\":\"c1\"}]}"), CO},
    {CHANGE_ORDERS("{\"edges\":[\"co_1\"]}"), CO},
    /* A next page without a string endCursor. */
    {COMPONENTS("{\"edges\":[],\"pageInfo\":{\"hasNextPage\":true}}"), ITEM},
    {COMPONENTS(
         "{\"edges\":[],\"pageInfo\":{\"hasNextPage\":true,\"endCursor\":null}}"),
     ITEM},
    {COMPONENTS("{\"edges\":[],\"pageInfo\":{\"hasNextPage\":true,\"endCursor\":7}}"),
     ITEM},
};

static void test_refused(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                struct found_log f = {0};
                int has_next;
                char *cursor;

                print_message("%s\n", refused[i].text ? refused[i].text : "(no data)");
                assert_int_equal(
                    parse(refused[i].text, refused[i].kind, &f, &has_next, &cursor),
                    -1);
                assert_int_equal(f.n, 0);
                assert_int_equal(has_next, 0);
                assert_null(cursor);
        }
}

static void test_bad_node_after_good_ones(void **state)
{
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        assert_int_equal(parse(COMPONENTS("{\"edges\":[{\"node\":{\"id\":\"comp_1\"}},"
                                          "{\"node\":{}}]}"),
                               DWIRE_KIND_ITEM, &f, &has_next, &cursor),
                         -1);
        /* The answer as a whole is refused; what was reported before is the caller's
         * to ignore. */
        assert_true(f.n <= 1);
        assert_null(cursor);
        found_free(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_answers),
            cmocka_unit_test(test_refused),
            cmocka_unit_test(test_bad_node_after_good_ones),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
