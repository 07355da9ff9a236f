/* Unit tests for dgqllit: GraphQL string escaping (every control character, quote,
 * backslash, DEL, non-ASCII and characters outside the BMP as UTF-8), UTF-8
 * validation with the offset of the bad byte, names and enum values, and the
 * writer's lists, objects and sticky errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dgqllit.h"
#include "tutil.h"

/* The literal of the string s (len bytes) into out; returns dgqllit_end()'s value. */
static int lit_string(const char *s, size_t len, char *out, size_t outsize, char *err,
                      size_t errsize)
{
        struct dbuf b;
        struct dgqllit w;
        int rc;

        dbuf_init(&b, 0);
        dgqllit_init(&w, &b);
        dgqllit_string(&w, s, len);
        rc = dgqllit_end(&w, err, errsize);
        snprintf(out, outsize, "%s", dbuf_cstr(&b));
        dbuf_free(&b);
        return rc;
}

static void test_string_escapes(void **state)
{
        static const char *const shortesc[32] = {
            [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r"};
        char out[64], want[64], err[256], in[1];

        (void)state;
        /* every control character U+0000-U+001F, one at a time (U+0000 too: the
         * writer takes a length) */
        for (int c = 0; c < 32; c++) {
                in[0] = (char)c;
                assert_int_equal(lit_string(in, 1, out, sizeof(out), err, sizeof(err)),
                                 0);
                if (shortesc[c])
                        snprintf(want, sizeof(want), "\"%s\"", shortesc[c]);
                else
                        snprintf(want, sizeof(want), "\"\\u%04X\"", c);
                assert_string_equal(out, want);
        }
        assert_int_equal(lit_string("\x7f", 1, out, sizeof(out), err, sizeof(err)), 0);
        assert_string_equal(out, "\"\\u007F\"");
        assert_int_equal(lit_string("a\"b\\c/d", 7, out, sizeof(out), err, sizeof(err)),
                         0);
        assert_string_equal(out, "\"a\\\"b\\\\c/d\"");
        assert_int_equal(lit_string("", 0, out, sizeof(out), err, sizeof(err)), 0);
        assert_string_equal(out, "\"\"");
}

static void test_string_non_ascii_as_utf8(void **state)
{
        /* é (2 bytes), 日本 (3 each), U+1F600 (4: outside the BMP), U+10FFFF, U+FFFF,
         * U+2028: all written as themselves */
        static const char s[] = "\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 "
                                "\xf4\x8f\xbf\xbf \xef\xbf\xbf \xe2\x80\xa8";
        char out[128], want[128], err[256];

        (void)state;
        assert_int_equal(lit_string(s, strlen(s), out, sizeof(out), err, sizeof(err)),
                         0);
        snprintf(want, sizeof(want), "\"%s\"", s);
        assert_string_equal(out, want);
}

static void test_string_every_awkward_character(void **state)
{
        /* the integration test's string: quote, backslash, newline, tab, U+0001,
         * U+007F, é, 日本, U+1F600 */
        static const char s[] = "q\"b\\s\nt\t\x01\x7f\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac"
                                "\xf0\x9f\x98\x80";
        char out[128], err[256];

        (void)state;
        assert_int_equal(lit_string(s, strlen(s), out, sizeof(out), err, sizeof(err)),
                         0);
        assert_string_equal(out,
                            "\"q\\\"b\\\\s\\nt\\t\\u0001\\u007F\xc3\xa9\xe6\x97\xa5"
                            "\xe6\x9c\xac\xf0\x9f\x98\x80\"");
}

static void test_invalid_utf8(void **state)
{
        static const struct {
                const char *s;
                size_t len;
                const char *want; /* in the message */
        } cases[] = {
            {"ab\xff", 3, "byte 0xFF at offset 2 cannot start"},
            {"\x80", 1, "byte 0x80 at offset 0 cannot start"},
            {"x\xc0\x80", 3, "byte 0xC0 at offset 1 cannot start"}, /* overlong NUL */
            {"\xc1\xbf", 2, "byte 0xC1 at offset 0 cannot start"},
            {"\xe0\x80\x80", 3, "overlong encoding at offset 0"},
            {"\xf0\x80\x80\x80", 4, "overlong encoding at offset 0"},
            {"ok\xed\xa0\x80", 5, "surrogate U+D800 encoded at offset 2"},
            {"\xed\xbf\xbf", 3, "surrogate U+DFFF encoded at offset 0"},
            {"\xf4\x90\x80\x80", 4, "above U+10FFFF at offset 0"},
            {"\xf5\x80\x80\x80", 4, "byte 0xF5 at offset 0 cannot start"},
            {"abc\xc3", 4, "offset 3 is cut short"},
            {"\xe6\x97", 2, "offset 0 is cut short"},
            {"\xc3(", 2,
             "byte 0x28 at offset 1 does not continue the character at "
             "offset 0"},
            {"\xf0\x9f\x98 ", 4, "byte 0x20 at offset 3 does not continue"},
        };
        char out[64], err[256];

        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                err[0] = '\0';
                assert_int_equal(
                    dgqllit_check_utf8(cases[i].s, cases[i].len, err, sizeof(err)), -1);
                if (!strstr(err, cases[i].want))
                        fail_msg("case %zu: %s (want %s)", i, err, cases[i].want);
                assert_non_null(strstr(err, "invalid UTF-8"));
                /* the writer refuses it with the same message and writes nothing */
                assert_int_equal(lit_string(cases[i].s, cases[i].len, out, sizeof(out),
                                            err, sizeof(err)),
                                 -1);
                assert_non_null(strstr(err, cases[i].want));
                assert_string_equal(out, "");
        }
        assert_int_equal(dgqllit_check_utf8("\xf4\x8f\xbf\xbf", 4, err, sizeof(err)),
                         0);
}

static void test_names_and_enums(void **state)
{
        static const char *const good[] = {
            "ITEM_CREATE", "_x", "a1", "CO_STAGE_2", "TRUE", "nullable", "Z"};
        static const struct {
                const char *s;
                const char *want;
        } bad[] = {
            {"", "empty"},
            {"1ITEM", "'1' at offset 0"},
            {"ITEM_UPDATE] } ) { x", "']' at offset 11"},
            {"ITEM CREATE", "a space at offset 4"},
            {"ITEM\"X", "'\"' at offset 4"},
            {"IT'EM", "byte 0x27 at offset 2"},
            {"ITEM\n", "byte 0x0A at offset 4"},
            {"\xc3\xa9T", "byte 0xC3 at offset 0"},
            {"A-B", "'-' at offset 1"},
            {"$input", "'$' at offset 0"},
        };
        char err[256];

        (void)state;
        for (size_t i = 0; i < TU_NELEM(good); i++) {
                assert_int_equal(
                    dgqllit_check_name(good[i], strlen(good[i]), err, sizeof(err)), 0);
                assert_int_equal(
                    dgqllit_check_enum(good[i], strlen(good[i]), err, sizeof(err)), 0);
        }
        for (size_t i = 0; i < TU_NELEM(bad); i++) {
                assert_int_equal(
                    dgqllit_check_enum(bad[i].s, strlen(bad[i].s), err, sizeof(err)),
                    -1);
                if (!strstr(err, bad[i].want))
                        fail_msg("case %zu: %s (want %s)", i, err, bad[i].want);
                assert_null(strchr(err, '\n'));
        }
        /* names, but not enum values */
        for (size_t i = 0; i < 3; i++) {
                const char *s = (const char *[]){"true", "false", "null"}[i];
                assert_int_equal(dgqllit_check_name(s, strlen(s), err, sizeof(err)), 0);
                assert_int_equal(dgqllit_check_enum(s, strlen(s), err, sizeof(err)),
                                 -1);
                assert_non_null(strstr(err, "cannot be a GraphQL enum value"));
        }
}

static void test_object_and_list(void **state)
{
        struct dbuf b;
        struct dgqllit w;
        char err[256];

        (void)state;
        dbuf_init(&b, 0);
        dgqllit_init(&w, &b);
        dgqllit_object(&w);
        dgqllit_key(&w, "name");
        dgqllit_string(&w, "x", 1);
        dgqllit_key(&w, "events");
        dgqllit_list(&w);
        dgqllit_enum(&w, "ITEM_CREATE", 11);
        dgqllit_enum(&w, "CO_RESOLUTION", 13);
        dgqllit_close(&w);
        dgqllit_key(&w, "isEnabled");
        dgqllit_bool(&w, 1);
        dgqllit_key(&w, "off");
        dgqllit_bool(&w, 0);
        dgqllit_key(&w, "description");
        dgqllit_null(&w);
        dgqllit_key(&w, "nested");
        dgqllit_object(&w);
        dgqllit_key(&w, "ids");
        dgqllit_list(&w);
        dgqllit_close(&w);
        dgqllit_close(&w);
        dgqllit_close(&w);
        assert_int_equal(dgqllit_end(&w, err, sizeof(err)), 0);
        assert_string_equal(dbuf_cstr(&b),
                            "{name: \"x\", events: [ITEM_CREATE, CO_RESOLUTION], "
                            "isEnabled: true, off: false, description: null, "
                            "nested: {ids: []}}");
        dbuf_free(&b);

        dbuf_init(&b, 0);
        dgqllit_init(&w, &b);
        dgqllit_list(&w);
        dgqllit_string(&w, "webhook_1", 9);
        dgqllit_close(&w);
        assert_int_equal(dgqllit_end(&w, err, sizeof(err)), 0);
        assert_string_equal(dbuf_cstr(&b), "[\"webhook_1\"]");
        dbuf_free(&b);
}

/* Runs one misuse and checks the sticky error. */
static void misuse(int which, const char *want)
{
        struct dbuf b;
        struct dgqllit w;
        char err[256];

        dbuf_init(&b, 0);
        dgqllit_init(&w, &b);
        switch (which) {
        case 0: /* a value in an object without its key */
                dgqllit_object(&w);
                dgqllit_bool(&w, 1);
                break;
        case 1: /* a key in a list */
                dgqllit_list(&w);
                dgqllit_key(&w, "a");
                break;
        case 2: /* left open */
                dgqllit_object(&w);
                dgqllit_key(&w, "a");
                dgqllit_list(&w);
                break;
        case 3: /* two values at the top */
                dgqllit_bool(&w, 1);
                dgqllit_bool(&w, 0);
                break;
        case 4: /* a key that is not a name */
                dgqllit_object(&w);
                dgqllit_key(&w, "a b");
                break;
        case 5: /* an enum value that is not a name: nothing of it is written */
                dgqllit_list(&w);
                dgqllit_enum(&w, "A] } x", 6);
                dgqllit_close(&w);
                break;
        case 6: /* too deep */
                for (int i = 0; i <= DGQLLIT_MAX_DEPTH; i++)
                        dgqllit_list(&w);
                break;
        case 7: /* close with nothing open */
                dgqllit_close(&w);
                break;
        case 8: /* a key after a key */
                dgqllit_object(&w);
                dgqllit_key(&w, "a");
                dgqllit_key(&w, "b");
                break;
        case 9: /* nothing */
                break;
        case 10: /* an enum value true */
                dgqllit_enum(&w, "true", 4);
                break;
        }
        /* sticky: once failed, later calls change nothing (left open and nothing
         * written are found by dgqllit_end()) */
        if (which != 2 && which != 9) {
                assert_true(w.failed);
                dgqllit_string(&w, "later", 5);
                dgqllit_close(&w);
        }
        assert_int_equal(dgqllit_end(&w, err, sizeof(err)), -1);
        if (!strstr(err, want))
                fail_msg("misuse %d: %s (want %s)", which, err, want);
        assert_null(strstr(dbuf_cstr(&b), "later"));
        assert_null(strchr(dbuf_cstr(&b), '}'));
        dbuf_free(&b);
}

static void test_misuse_is_sticky(void **state)
{
        (void)state;
        misuse(0, "without its key");
        misuse(1, "a key outside an object");
        misuse(2, "left open");
        misuse(3, "a second value");
        misuse(4, "object key: not a GraphQL name: a space at offset 1");
        misuse(5, "enum value: not a GraphQL name: ']' at offset 1");
        misuse(6, "nested deeper than");
        misuse(7, "nothing open");
        misuse(8, "a key after a key");
        misuse(9, "no value");
        misuse(10, "true cannot be a GraphQL enum value");
}

static void test_capped_buffer(void **state)
{
        struct dbuf b;
        struct dgqllit w;
        char err[256];

        (void)state;
        dbuf_init(&b, 8);
        dgqllit_init(&w, &b);
        dgqllit_string(&w, "0123456789", 10);
        assert_int_equal(dgqllit_end(&w, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "too long"));
        dbuf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_string_escapes),
            cmocka_unit_test(test_string_non_ascii_as_utf8),
            cmocka_unit_test(test_string_every_awkward_character),
            cmocka_unit_test(test_invalid_utf8),
            cmocka_unit_test(test_names_and_enums),
            cmocka_unit_test(test_object_and_list),
            cmocka_unit_test(test_misuse_is_sticky),
            cmocka_unit_test(test_capped_buffer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
