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

static json_t *load(const char *text)
{
        json_error_t err;
        json_t *j = json_loads(text, 0, &err);

        if (!j)
                fail_msg("bad test JSON at %d: %s", err.position, err.text);
        return j;
}

/* Parses text for kind; returns the result, fills f, *has_next and *cursor. */
static int parse(const char *text, enum dwire_kind kind, struct found_log *f,
                 int *has_next, char **cursor)
{
        json_t *data = load(text);
        int rc;

        *has_next = -7;
        *cursor   = (char *)"sentinel";
        rc        = enricher_pull_parse(data, kind, on_found, f, has_next, cursor);
        json_decref(data);
        return rc;
}

static void test_components_nodes_and_last_page(void **state)
{
        static const char text[] =
            "{\"components\":{\"get\":{\"connection\":{"
            "\"edges\":["
            "{\"node\":{\"id\":\"comp_123456\",\"cpn\":\"100-0001\",\"name\":\"Bolt\"}}"
            ","
            "{\"node\":{\"id\":\"comp_654321\",\"cpn\":\"100-0002\",\"name\":\"Nut\"}}"
            "],"
            "\"pageInfo\":{\"hasNextPage\":false,\"endCursor\":\"YXJyYXk6MQ==\"}}}}}";
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        assert_int_equal(parse(text, DWIRE_KIND_ITEM, &f, &has_next, &cursor), 0);
        assert_int_equal(f.n, 2);
        assert_string_equal(f.ids[0], "comp_123456");
        assert_string_equal(f.ids[1], "comp_654321");
        /* The node handed over is the whole document. */
        assert_string_equal(json_string_value(json_object_get(f.nodes[0], "cpn")),
                            "100-0001");
        assert_string_equal(json_string_value(json_object_get(f.nodes[1], "name")),
                            "Nut");
        assert_int_equal(has_next, 0);
        assert_null(cursor);
        found_free(&f);
}

static void test_components_next_page(void **state)
{
        static const char text[] =
            "{\"components\":{\"get\":{\"connection\":{"
            "\"edges\":[{\"node\":{\"id\":\"comp_1\"}}],"
            "\"pageInfo\":{\"hasNextPage\":true,\"endCursor\":\"cursor-after-1\"}}}}}";
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        assert_int_equal(parse(text, DWIRE_KIND_ITEM, &f, &has_next, &cursor), 0);
        assert_int_equal(f.n, 1);
        assert_string_equal(f.ids[0], "comp_1");
        assert_int_equal(has_next, 1);
        assert_non_null(cursor);
        assert_string_equal(cursor, "cursor-after-1");
        free(cursor);
        found_free(&f);
}

static void test_change_orders_nodes(void **state)
{
        static const char text[] =
            "{\"changeOrders\":{\"get\":{\"connection\":{"
            "\"edges\":["
            "{\"cursor\":\"c1\",\"node\":{\"id\":\"co_345678\",\"name\":\"ECO-1\","
            "\"status\":\"OPEN\",\"items\":[{\"id\":\"comp_1\"}]}},"
            "{\"cursor\":\"c2\",\"node\":{\"id\":\"co_999\"}}"
            "],"
            "\"pageInfo\":{\"hasNextPage\":true,\"endCursor\":\"c2\"}}}}}";
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        assert_int_equal(parse(text, DWIRE_KIND_CHANGE_ORDER, &f, &has_next, &cursor),
                         0);
        assert_int_equal(f.n, 2);
        assert_string_equal(f.ids[0], "co_345678");
        assert_string_equal(f.ids[1], "co_999");
        assert_true(json_is_array(json_object_get(f.nodes[0], "items")));
        assert_int_equal(has_next, 1);
        assert_string_equal(cursor, "c2");
        free(cursor);
        found_free(&f);
}

static void test_kind_selects_root(void **state)
{
        static const char components[] =
            "{\"components\":{\"get\":{\"connection\":{\"edges\":[{\"node\":{\"id\":"
            "\"comp_1\"}}],\"pageInfo\":{\"hasNextPage\":false}}}}}";
        static const char change_orders[] =
            "{\"changeOrders\":{\"get\":{\"connection\":{\"edges\":[{\"node\":{\"id\":"
            "\"co_1\"}}],\"pageInfo\":{\"hasNextPage\":false}}}}}";
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        /* A components answer read as change orders has no connection, and back. */
        assert_int_equal(
            parse(components, DWIRE_KIND_CHANGE_ORDER, &f, &has_next, &cursor), -1);
        assert_int_equal(f.n, 0);
        assert_int_equal(parse(change_orders, DWIRE_KIND_ITEM, &f, &has_next, &cursor),
                         -1);
        assert_int_equal(f.n, 0);
}

static void test_empty_edges(void **state)
{
        static const char text[] =
            "{\"components\":{\"get\":{\"connection\":{\"edges\":[],"
            "\"pageInfo\":{\"hasNextPage\":false,\"endCursor\":null}}}}}";
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        assert_int_equal(parse(text, DWIRE_KIND_ITEM, &f, &has_next, &cursor), 0);
        assert_int_equal(f.n, 0);
        assert_int_equal(has_next, 0);
        assert_null(cursor);
}

static void test_page_info_absent_means_last_page(void **state)
{
        static const char text[] = "{\"components\":{\"get\":{\"connection\":{"
                                   "\"edges\":[{\"node\":{\"id\":\"comp_1\"}}]}}}}";
        struct found_log f       = {0};
        int has_next;
        char *cursor;

        (void)state;
        assert_int_equal(parse(text, DWIRE_KIND_ITEM, &f, &has_next, &cursor), 0);
        assert_int_equal(f.n, 1);
        assert_int_equal(has_next, 0);
        assert_null(cursor);
        found_free(&f);
}

static void test_missing_connection(void **state)
{
        static const char *const texts[] = {
            "{}",
            "{\"components\":null}",
            "{\"components\":{}}",
            "{\"components\":{\"get\":null}}",
            "{\"components\":{\"get\":{}}}",
            "{\"components\":{\"get\":{\"connection\":null}}}",
            "{\"components\":{\"get\":{\"connection\":{}}}}",
            ("{\"components\":{\"get\":{\"connection\":{\"pageInfo\":"
             "{\"hasNextPage\":false}}}}}"),
            "[]",
            "null",
        };
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                json_t *data = json_loads(texts[i], JSON_DECODE_ANY, NULL);
                assert_non_null(data);
                has_next = -7;
                assert_int_equal(enricher_pull_parse(data, DWIRE_KIND_ITEM, on_found,
                                                     &f, &has_next, &cursor),
                                 -1);
                assert_int_equal(f.n, 0);
                assert_null(cursor);
                json_decref(data);
        }
        /* NULL data (an answer without "data") too. */
        assert_int_equal(enricher_pull_parse(NULL, DWIRE_KIND_ITEM, on_found, &f,
                                             &has_next, &cursor),
                         -1);
        assert_null(cursor);
}

static void test_edges_not_an_array(void **state)
{
        static const char *const texts[] = {
            "{\"components\":{\"get\":{\"connection\":{\"edges\":{}}}}}",
            "{\"components\":{\"get\":{\"connection\":{\"edges\":null}}}}",
            "{\"components\":{\"get\":{\"connection\":{\"edges\":\"[]\"}}}}",
            ("{\"components\":{\"get\":{\"connection\":{\"edges\":{\"node\":{\"id\":"
             "\"comp_1\"}}}}}}"),
        };
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                assert_int_equal(
                    parse(texts[i], DWIRE_KIND_ITEM, &f, &has_next, &cursor), -1);
                assert_int_equal(f.n, 0);
                assert_null(cursor);
        }
}

static void test_node_without_id(void **state)
{
        static const char *const texts[] = {
            "{\"changeOrders\":{\"get\":{\"connection\":{\"edges\":"
            "[{\"node\":{\"name\":\"ECO-1\"}}]}}}}",
            "{\"changeOrders\":{\"get\":{\"connection\":{\"edges\":"
            "[{\"node\":{\"id\":null}}]}}}}",
            "{\"changeOrders\":{\"get\":{\"connection\":{\"edges\":"
            "[{\"node\":{\"id\":42}}]}}}}",
            "{\"changeOrders\":{\"get\":{\"connection\":{\"edges\":"
            "[{\"node\":null}]}}}}",
            "{\"changeOrders\":{\"get\":{\"connection\":{\"edges\":"
            "[{\"cursor\":\"c1\"}]}}}}",
            "{\"changeOrders\":{\"get\":{\"connection\":{\"edges\":"
            "[\"co_1\"]}}}}",
        };
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                assert_int_equal(
                    parse(texts[i], DWIRE_KIND_CHANGE_ORDER, &f, &has_next, &cursor),
                    -1);
                assert_int_equal(f.n, 0);
                assert_null(cursor);
        }
}

static void test_bad_node_after_good_ones(void **state)
{
        static const char text[] =
            "{\"components\":{\"get\":{\"connection\":{\"edges\":["
            "{\"node\":{\"id\":\"comp_1\"}},{\"node\":{}}]}}}}";
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        assert_int_equal(parse(text, DWIRE_KIND_ITEM, &f, &has_next, &cursor), -1);
        /* The answer as a whole is refused; what was reported before is the caller's
         * to ignore. */
        assert_true(f.n <= 1);
        assert_null(cursor);
        found_free(&f);
}

static void test_has_next_without_end_cursor(void **state)
{
        static const char *const texts[] = {
            "{\"components\":{\"get\":{\"connection\":{\"edges\":[],"
            "\"pageInfo\":{\"hasNextPage\":true}}}}}",
            "{\"components\":{\"get\":{\"connection\":{\"edges\":[],"
            "\"pageInfo\":{\"hasNextPage\":true,\"endCursor\":null}}}}}",
            "{\"components\":{\"get\":{\"connection\":{\"edges\":[],"
            "\"pageInfo\":{\"hasNextPage\":true,\"endCursor\":7}}}}}",
        };
        struct found_log f = {0};
        int has_next;
        char *cursor;

        (void)state;
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                assert_int_equal(
                    parse(texts[i], DWIRE_KIND_ITEM, &f, &has_next, &cursor), -1);
                assert_null(cursor);
                assert_int_equal(has_next, 0);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_components_nodes_and_last_page),
            cmocka_unit_test(test_components_next_page),
            cmocka_unit_test(test_change_orders_nodes),
            cmocka_unit_test(test_kind_selects_root),
            cmocka_unit_test(test_empty_edges),
            cmocka_unit_test(test_page_info_absent_means_last_page),
            cmocka_unit_test(test_missing_connection),
            cmocka_unit_test(test_edges_not_an_array),
            cmocka_unit_test(test_node_without_id),
            cmocka_unit_test(test_bad_node_after_good_ones),
            cmocka_unit_test(test_has_next_without_end_cursor),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
