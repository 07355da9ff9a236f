/* Unit tests for dgqldoc: the lexer (every kind of token, what it skips, its errors
 * with their lines), the document check (balanced brackets, exactly one named query
 * or mutation), the placeholders and the plain leaf field, and the repository's own
 * documents in schemas/graphql/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dfile.h"
#include "dgqldoc.h"
#include "tutil.h"

static int check(const char *doc, char *err, size_t errsize)
{
        err[0] = '\0';
        return dgqldoc_check(doc, strlen(doc), "t.graphql", err, errsize);
}

/* doc must fail with err exactly want. */
static void check_fails(const char *doc, const char *want)
{
        char err[512];

        if (check(doc, err, sizeof(err)) != -1)
                fail_msg("accepted: %s", doc);
        if (strcmp(err, want))
                fail_msg("for %s\n got: %s\nwant: %s", doc, err, want);
}

static void check_ok(const char *doc)
{
        char err[512];

        if (check(doc, err, sizeof(err)))
                fail_msg("refused: %s: %s", doc, err);
}

static void test_tokens(void **state)
{
        static const char doc[] =
            "\xef\xbb\xbf# comment, \"not a string\"\r\n"
            "query Q($a: [Int!]! = [1, -2], $b: Float = -1.5e+3) @d(x: "
            "\"s\\u00e9\\\"\")"
            " { f(s: \"\"\"block\n \\\"\"\" \"\" line\"\"\", e: ENUM, n: null) "
            "...F ... on T { g } }\r"
            "fragment F on T { h }";
        static const struct {
                enum dgqldoc_kind kind;
                const char *text;
                int line;
        } want[] = {
            {DGQLDOC_NAME, "query", 2},
            {DGQLDOC_NAME, "Q", 2},
            {DGQLDOC_PUNCT, "(", 2},
            {DGQLDOC_PUNCT, "$", 2},
            {DGQLDOC_NAME, "a", 2},
            {DGQLDOC_PUNCT, ":", 2},
            {DGQLDOC_PUNCT, "[", 2},
            {DGQLDOC_NAME, "Int", 2},
            {DGQLDOC_PUNCT, "!", 2},
            {DGQLDOC_PUNCT, "]", 2},
            {DGQLDOC_PUNCT, "!", 2},
            {DGQLDOC_PUNCT, "=", 2},
            {DGQLDOC_PUNCT, "[", 2},
            {DGQLDOC_INT, "1", 2},
            {DGQLDOC_INT, "-2", 2},
            {DGQLDOC_PUNCT, "]", 2},
            {DGQLDOC_PUNCT, "$", 2},
            {DGQLDOC_NAME, "b", 2},
            {DGQLDOC_PUNCT, ":", 2},
            {DGQLDOC_NAME, "Float", 2},
            {DGQLDOC_PUNCT, "=", 2},
            {DGQLDOC_FLOAT, "-1.5e+3", 2},
            {DGQLDOC_PUNCT, ")", 2},
            {DGQLDOC_PUNCT, "@", 2},
            {DGQLDOC_NAME, "d", 2},
            {DGQLDOC_PUNCT, "(", 2},
            {DGQLDOC_NAME, "x", 2},
            {DGQLDOC_PUNCT, ":", 2},
            {DGQLDOC_STRING, "\"s\\u00e9\\\"\"", 2},
            {DGQLDOC_PUNCT, ")", 2},
            {DGQLDOC_PUNCT, "{", 2},
            {DGQLDOC_NAME, "f", 2},
            {DGQLDOC_PUNCT, "(", 2},
            {DGQLDOC_NAME, "s", 2},
            {DGQLDOC_PUNCT, ":", 2},
            {DGQLDOC_BLOCK_STRING, "\"\"\"block\n \\\"\"\" \"\" line\"\"\"", 2},
            {DGQLDOC_NAME, "e", 3},
            {DGQLDOC_PUNCT, ":", 3},
            {DGQLDOC_NAME, "ENUM", 3},
            {DGQLDOC_NAME, "n", 3},
            {DGQLDOC_PUNCT, ":", 3},
            {DGQLDOC_NAME, "null", 3},
            {DGQLDOC_PUNCT, ")", 3},
            {DGQLDOC_PUNCT, "...", 3},
            {DGQLDOC_NAME, "F", 3},
            {DGQLDOC_PUNCT, "...", 3},
            {DGQLDOC_NAME, "on", 3},
            {DGQLDOC_NAME, "T", 3},
            {DGQLDOC_PUNCT, "{", 3},
            {DGQLDOC_NAME, "g", 3},
            {DGQLDOC_PUNCT, "}", 3},
            {DGQLDOC_PUNCT, "}", 3},
            {DGQLDOC_NAME, "fragment", 4},
        };
        struct dgqldoc_lexer lx;
        struct dgqldoc_token t;
        char err[256];

        (void)state;
        dgqldoc_lexer_init(&lx, doc, strlen(doc));
        for (size_t i = 0; i < TU_NELEM(want); i++) {
                if (dgqldoc_next(&lx, &t, err, sizeof(err)))
                        fail_msg("token %zu: %s (line %d)", i, err, lx.line);
                if (t.kind != want[i].kind || t.len != strlen(want[i].text) ||
                    memcmp(doc + t.off, want[i].text, t.len) || t.line != want[i].line)
                        fail_msg("token %zu: kind %d '%.*s' line %d; want kind %d '%s' "
                                 "line %d",
                                 i, t.kind, (int)t.len, doc + t.off, t.line,
                                 want[i].kind, want[i].text, want[i].line);
        }
        while (t.kind != DGQLDOC_END)
                assert_int_equal(dgqldoc_next(&lx, &t, err, sizeof(err)), 0);
        assert_int_equal(t.line, 4);
        check_ok(doc);
}

static void test_lexical_errors(void **state)
{
        (void)state;
        check_fails("query Q {\n  f(s: \"abc)\n}", "t.graphql:2: unterminated string");
        check_fails("query Q {\n\n  f(s: \"\"\"abc)\n}",
                    "t.graphql:3: unterminated block string");
        check_fails("query Q { f(s: \"a\\qb\") }",
                    "t.graphql:1: invalid escape sequence in a string");
        check_fails("query Q { f(s: \"\\u00g1\") }",
                    "t.graphql:1: invalid \\u escape in a string (want 4 hex digits)");
        check_fails("query Q { f(s: \"\\uD83D\") }",
                    "t.graphql:1: \\uD83D: a leading surrogate without its trailing "
                    "one");
        check_fails("query Q { f(s: \"\\uDE00\") }",
                    "t.graphql:1: \\uDE00: a trailing surrogate alone");
        check_ok("query Q { f(s: \"\\uD83D\\uDE00 \\u{1F600} \\/\") }");
        check_fails("query Q { f(s: \"\\u{110000}\") }",
                    "t.graphql:1: invalid \\u{...} escape in a string");
        check_fails("query Q { f(n: 01) }",
                    "t.graphql:1: a number with a leading zero");
        check_fails("query Q { f(n: 1.) }",
                    "t.graphql:1: a number without digits after '.'");
        check_fails("query Q { f(n: 1e) }",
                    "t.graphql:1: a number without digits in its exponent");
        check_fails("query Q { f(n: 12abc) }", "t.graphql:1: a number followed by 'a'");
        check_fails("query Q { f(n: 1.5.2) }", "t.graphql:1: a number followed by '.'");
        check_fails("query Q { f(n: -x) }", "t.graphql:1: '-' without a number");
        check_fails("query Q {\n ..F }", "t.graphql:2: '.' that does not start '...'");
        check_fails("query Q {\n\n f\xc3\xa9 }",
                    "t.graphql:3: unexpected byte 0xC3 (only ASCII outside strings and "
                    "comments)");
        check_fails("query Q { f ? }", "t.graphql:1: unexpected character '?'");
        check_fails("query Q {\n f\x01 }",
                    "t.graphql:2: unexpected control character U+0001");
        check_fails("query Q {\n f(s: \"a\x01\") }",
                    "t.graphql:2: control character U+0001 in a string or comment");
        check_fails(
            "# caf\xc3\n query Q { f }",
            "t.graphql:1: invalid UTF-8: the character at offset 5 is cut short "
            "by the end of the text");
        check_fails("query Q { f(s: \"\"\"\nok\n\xff\n\"\"\") }",
                    "t.graphql:3: invalid UTF-8: byte 0xFF at offset 0 cannot start a "
                    "character");
        /* non-ASCII is fine in strings, comments and block strings */
        check_ok("# caf\xc3\xa9 \xf0\x9f\x98\x80\nquery Q { f(s: \"\xe6\x97\xa5\", b: "
                 "\"\"\"\xf0\x9f\x98\x80\n\xc3\xa9\"\"\") }");
}

static void test_structure(void **state)
{
        (void)state;
        check_ok("query Q { a }");
        check_ok("mutation M($x: ID!) @d { a(x: $x) { b } }\n"
                 "fragment F on T @d(x: [{a: 1}]) { c }");
        check_ok("fragment F on T { c }\nquery Q { ...F }");
        check_ok(",,, query Q { a },,,");
        check_fails("query Q {\n  a {\n    b\n  }\n",
                    "t.graphql:1: '{' is never closed");
        check_fails("query Q {\n  a(x: [1, 2) \n}",
                    "t.graphql:2: ')' closes '[' opened at line 2");
        check_fails("query Q {\n  a(x: 1\n}",
                    "t.graphql:3: '}' closes '(' opened at line 2");
        check_fails("query Q { a }\n}", "t.graphql:2: '}' without an opening '{'");
        check_fails("", "t.graphql:1: no query or mutation in the document");
        check_fails("# only a comment\n\n", "t.graphql:3: no query or mutation in the "
                                            "document");
        check_fails("fragment F on T { a }",
                    "t.graphql:1: no query or mutation in the document");
        check_fails(
            "query Q { a }\n\nmutation M { b }",
            "t.graphql:3: a second operation (the first starts at line 1); want "
            "exactly one");
        check_fails("{ a }", "t.graphql:1: an operation without a name (write query "
                             "Name { ... })");
        check_fails("query { a }", "t.graphql:1: an operation without a name (write "
                                   "query Name ...)");
        check_fails("mutation\n($x: Int) { a }",
                    "t.graphql:2: an operation without a name (write mutation Name "
                    "...)");
        check_fails("subscription S { a }",
                    "t.graphql:1: a subscription (want a query or a mutation)");
        check_fails("type Webhook { id: ID }",
                    "t.graphql:1: 'type' where a query or mutation should start");
        check_fails("query Q",
                    "t.graphql:1: the document ends before the selection set "
                    "of its last definition");
        check_fails("query Q: Int { a }",
                    "t.graphql:1: unexpected ':' before the selection set");
}

static void test_operation(void **state)
{
        static const char doc[] = "# c\n\nmutation  DuroCreate_1 { a }";
        struct dgqldoc_op op;
        char err[256];

        (void)state;
        assert_int_equal(dgqldoc_parse(doc, strlen(doc), "x", &op, err, sizeof(err)),
                         0);
        assert_int_equal(op.mutation, 1);
        assert_int_equal(op.line, 3);
        assert_int_equal(op.name_len, strlen("DuroCreate_1"));
        assert_memory_equal(op.name, "DuroCreate_1", op.name_len);
        assert_int_equal(dgqldoc_parse("query Q { a }", 13, "x", &op, err, sizeof(err)),
                         0);
        assert_int_equal(op.mutation, 0);
}

static int placeholder(const char *doc, const char *name, size_t *off, char *err,
                       size_t errsize)
{
        err[0] = '\0';
        return dgqldoc_placeholder(doc, strlen(doc), "p.graphql", name, off, err,
                                   errsize);
}

static void test_placeholders(void **state)
{
        static const char doc[] = "# $input in a comment\n"
                                  "mutation M { w { update(filter: { ids: $ids }, "
                                  "input: $input, s: \"$input\") { id } } }";
        char err[256];
        size_t off = 0;

        (void)state;
        assert_int_equal(placeholder(doc, "input", &off, err, sizeof(err)), 0);
        assert_memory_equal(doc + off, "$input,", 7);
        assert_int_equal(placeholder(doc, "ids", &off, err, sizeof(err)), 0);
        assert_memory_equal(doc + off, "$ids }", 6);
        assert_int_equal(placeholder(doc, "in", &off, err, sizeof(err)), -1);
        assert_string_equal(err, "p.graphql:1: no $in placeholder in the document");
        assert_int_equal(placeholder("mutation M($input: X) {\n a(input: $input) }",
                                     "input", &off, err, sizeof(err)),
                         -1);
        assert_string_equal(err, "p.graphql:2: $input a second time (first at line 1): "
                                 "it is a placeholder the command fills with a "
                                 "literal, never a declared variable");
        assert_int_equal(placeholder("query Q { a(", "x", &off, err, sizeof(err)), -1);
        assert_string_equal(err, "p.graphql:1: '(' is never closed");
}

static int leaf(const char *doc, size_t *off, size_t *len, char *err, size_t errsize)
{
        err[0] = '\0';
        return dgqldoc_leaf_field(doc, strlen(doc), "l.graphql", "secret", off, len,
                                  err, errsize);
}

static void test_leaf_field(void **state)
{
        static const char doc[] =
            "mutation M @secret { w(x: {secret: 1}, s: \"secret\") "
            "{ create(input: $input) {\n id\n secret\n url } } }";
        char err[256];
        size_t off = 0, len = 0;

        (void)state;
        assert_int_equal(leaf(doc, &off, &len, err, sizeof(err)), 1);
        assert_int_equal(len, 6);
        assert_memory_equal(doc + off, "secret\n url", 11);
        assert_int_equal(leaf("query Q { a { b } }", &off, &len, err, sizeof(err)), 0);
        assert_int_equal(leaf("query Q { a {\n secretive\n secrets } }", &off, &len,
                              err, sizeof(err)),
                         0);
        assert_int_equal(
            leaf("query Q { a {\n s: secret } }", &off, &len, err, sizeof(err)), -1);
        assert_string_equal(err,
                            "l.graphql:2: the field secret under an alias: it must "
                            "be plain");
        assert_int_equal(
            leaf("query Q { a {\n\n secret(x: 1) } }", &off, &len, err, sizeof(err)),
            -1);
        assert_string_equal(err, "l.graphql:3: the field secret must be plain (no "
                                 "alias, arguments, directives or selection): the "
                                 "command leaves it out when the API has no such "
                                 "field");
        assert_int_equal(
            leaf("query Q { a { secret: b } }", &off, &len, err, sizeof(err)), -1);
        assert_int_equal(leaf("query Q { a { secret @skip(if: true) } }", &off, &len,
                              err, sizeof(err)),
                         -1);
        assert_int_equal(
            leaf("query Q { a { secret { x } } }", &off, &len, err, sizeof(err)), -1);
        assert_int_equal(leaf("query Q { a { secret\n b { secret } } }", &off, &len,
                              err, sizeof(err)),
                         -1);
        assert_string_equal(err,
                            "l.graphql:2: the field secret a second time (first at "
                            "line 1)");
        /* at the very end of a selection */
        assert_int_equal(
            leaf("query Q { a { b secret} }", &off, &len, err, sizeof(err)), 1);
        assert_int_equal(off, 16);
}

/* The repository's documents (found from this file's path) pass, with the
 * placeholders and fields the commands rely on. */
static void test_repository_documents(void **state)
{
        static const char *const files[] = {
            "components.graphql",      "change_orders.graphql",
            "webhooks_list.graphql",   "webhooks_create.graphql",
            "webhooks_update.graphql", "webhooks_logs.graphql"};
        char root[4096], path[4200], err[512];
        const char *cut = strstr(__FILE__, "tests/unit/test_dgqldoc.c");
        struct dgqldoc_op op;

        (void)state;
        if (!cut || __FILE__[0] != '/')
                skip();
        snprintf(root, sizeof(root), "%.*s", (int)(cut - __FILE__), __FILE__);
        for (size_t i = 0; i < TU_NELEM(files); i++) {
                size_t len, off, flen;
                char *text;
                snprintf(path, sizeof(path), "%sschemas/graphql/%s", root, files[i]);
                text = dfile_read(path, 1 << 20, &len, NULL, err, sizeof(err));
                if (!text)
                        fail_msg("%s", err);
                if (dgqldoc_parse(text, len, path, &op, err, sizeof(err)))
                        fail_msg("%s", err);
                assert_int_equal(op.mutation,
                                 !strcmp(files[i], "webhooks_create.graphql") ||
                                     !strcmp(files[i], "webhooks_update.graphql"));
                if (op.mutation) {
                        assert_int_equal(dgqldoc_placeholder(text, len, path, "input",
                                                             &off, err, sizeof(err)),
                                         0);
                        assert_int_equal(dgqldoc_leaf_field(text, len, path, "secret",
                                                            &off, &flen, err,
                                                            sizeof(err)),
                                         !strcmp(files[i], "webhooks_create.graphql"));
                }
                free(text);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tokens),
            cmocka_unit_test(test_lexical_errors),
            cmocka_unit_test(test_structure),
            cmocka_unit_test(test_operation),
            cmocka_unit_test(test_placeholders),
            cmocka_unit_test(test_leaf_field),
            cmocka_unit_test(test_repository_documents),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
