/* Unit tests for dlog: JSON escaping (UTF-8, controls, truncation), log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <unistd.h>

#include "dlog.h"
#include "tutil.h"

static const char *esc(const char *s, size_t len)
{
        static char out[4096];

        dlog_json_escape(out, sizeof(out), s, len);
        return out;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

/* 1 when "<s>" parses as a JSON string (strict UTF-8, as jansson checks). */
static int is_json_string_body(const char *s, json_t **out)
{
        size_t n  = strlen(s);
        char *buf = malloc(n + 3);
        json_error_t e;
        json_t *j;

        assert_non_null(buf);
        buf[0] = '"';
        memcpy(buf + 1, s, n);
        buf[n + 1] = '"';
        buf[n + 2] = '\0';
        j          = json_loads(buf, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        free(buf);
        if (!j || !json_is_string(j)) {
                json_decref(j);
                return 0;
        }
        if (out)
                *out = j;
        else
                json_decref(j);
        return 1;
}

/* dlog_json_escape cases, by the test that checks them: the input, the escaped text
 * wanted, and how many bytes of the input to escape (0: up to its NUL). */
enum esc_group {
        ESC_PLAIN,
        ESC_QUOTES,
        ESC_CONTROL,
        ESC_UTF8_KEPT,
        ESC_INVALID_UTF8,
        ESC_CUT_BY_LEN,
};

static const struct esc_case {
        enum esc_group group;
        const char *in, *want;
        size_t len;
} escapes[] = {
    {ESC_PLAIN, "hello world", "hello world", 0},
    {ESC_PLAIN, "", "", 0},
    {ESC_QUOTES, "a\"b", "a\\\"b", 0},
    {ESC_QUOTES, "a\\b", "a\\\\b", 0},
    {ESC_QUOTES, "\"\\\"\\", "\\\"\\\\\\\"\\\\", 0},
    /* '/' needs no escape */
    {ESC_QUOTES, "a/b", "a/b", 0},
    {ESC_CONTROL, "a\nb\rc\td", "a\\nb\\rc\\td", 0},
    {ESC_CONTROL, "\x01", "\\u0001", 0},
    {ESC_CONTROL, "\x1f", "\\u001f", 0},
    {ESC_CONTROL, "\b\f", "\\u0008\\u000c", 0},
    {ESC_CONTROL, "\x7f", "\\u007f", 0},
    {ESC_CONTROL, "a\0b", "a\\u0000b", 3},
    /* in order: é, €, 😀, U+FFFF, U+10FFFF, U+0080, U+0800, U+10000 */
    {ESC_UTF8_KEPT, "caf\xc3\xa9", "caf\xc3\xa9", 0},
    {ESC_UTF8_KEPT, "\xe2\x82\xac", "\xe2\x82\xac", 0},
    {ESC_UTF8_KEPT, "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", 0},
    {ESC_UTF8_KEPT, "\xef\xbf\xbf", "\xef\xbf\xbf", 0},
    {ESC_UTF8_KEPT, "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf", 0},
    {ESC_UTF8_KEPT, "\xc2\x80", "\xc2\x80", 0},
    {ESC_UTF8_KEPT, "\xe0\xa0\x80", "\xe0\xa0\x80", 0},
    {ESC_UTF8_KEPT, "\xf0\x90\x80\x80", "\xf0\x90\x80\x80", 0},
    {ESC_INVALID_UTF8, "\xff", "\\ufffd", 0},
    /* lone continuation */
    {ESC_INVALID_UTF8, "a\x80z", "a\\ufffdz", 0},
    /* truncated at end */
    {ESC_INVALID_UTF8, "\xc3", "\\ufffd", 0},
    /* bad continuation */
    {ESC_INVALID_UTF8, "\xc3(", "\\ufffd(", 0},
    /* truncated 3-byte */
    {ESC_INVALID_UTF8, "\xe2\x82", "\\ufffd\\ufffd", 0},
    /* overlong '/' */
    {ESC_INVALID_UTF8, "\xc0\xaf", "\\ufffd\\ufffd", 0},
    {ESC_INVALID_UTF8, "\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd", 0},
    /* surrogate */
    {ESC_INVALID_UTF8, "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd", 0},
    /* > U+10FFFF */
    {ESC_INVALID_UTF8, "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd", 0},
    {ESC_INVALID_UTF8, "\xf8\x88\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd",
     0},
    /* valid text after an invalid byte is kept */
    {ESC_INVALID_UTF8, "\xff\xc3\xa9", "\\ufffd\xc3\xa9", 0},
    /* a sequence that len cuts short is invalid, even when the bytes beyond len
     * would complete it */
    {ESC_CUT_BY_LEN, "a\xc3\xa9", "a\\ufffd", 2},
    {ESC_CUT_BY_LEN, "\xe2\x82\xac", "\\ufffd\\ufffd", 2},
    {ESC_CUT_BY_LEN, "\xf0\x9f\x98\x80", "\\ufffd\\ufffd\\ufffd", 3},
};

/* Checks every case of group g (there is at least one). */
static void expect_escapes(enum esc_group g)
{
        size_t n = 0;

        for (size_t i = 0; i < TU_NELEM(escapes); i++) {
                const struct esc_case *c = &escapes[i];
                if (c->group != g)
                        continue;
                assert_string_equal(esc(c->in, c->len ? c->len : strlen(c->in)),
                                    c->want);
                n++;
        }
        assert_true(n > 0);
}

static void test_escape_plain(void **state)
{
        char out[16];

        (void)state;
        expect_escapes(ESC_PLAIN);
        assert_int_equal(dlog_json_escape(out, sizeof(out), "abc", 3), 3);
        assert_string_equal(out, "abc");
        /* len, not the NUL, ends the input */
        assert_int_equal(dlog_json_escape(out, sizeof(out), "abcdef", 2), 2);
        assert_string_equal(out, "ab");
}

static void test_escape_quotes_backslash(void **state)
{

        (void)state;
        expect_escapes(ESC_QUOTES);
}

static void test_escape_control_chars(void **state)
{
        char in[1];

        (void)state;
        expect_escapes(ESC_CONTROL);
        /* every control character comes out as valid JSON for the same character */
        for (int c = 0; c < 0x20; c++) {
                json_t *j     = NULL;
                in[0]         = (char)c;
                const char *o = esc(in, 1);
                assert_true(o[0] == '\\');
                assert_true(is_json_string_body(o, &j));
                assert_int_equal(json_string_length(j), 1);
                assert_int_equal((unsigned char)json_string_value(j)[0], c);
                json_decref(j);
        }
}

static void test_escape_utf8_kept(void **state)
{

        (void)state;
        expect_escapes(ESC_UTF8_KEPT);
}

static void test_escape_invalid_utf8(void **state)
{

        (void)state;
        expect_escapes(ESC_INVALID_UTF8);
}

static void test_escape_sequence_cut_by_len(void **state)
{
        char *heap;

        (void)state;
        expect_escapes(ESC_CUT_BY_LEN);
        /* and nothing past len is read (ASan checks the heap copy) */
        heap = malloc(1);
        assert_non_null(heap);
        heap[0] = (char)0xf0;
        assert_string_equal(esc(heap, 1), "\\ufffd");
        free(heap);
}

static void test_escape_truncation(void **state)
{
        /* out size, input (len bytes) -> length returned, text written */
        static const struct {
                size_t size;
                const char *in;
                size_t len, n;
                const char *want;
        } cases[] = {
            {1, "abc", 3, 0, ""},
            {3, "abc", 3, 2, "ab"},
            /* an escape is never split */
            {4, "ab\"", 3, 2, "ab"},
            {5, "ab\"", 3, 4, "ab\\\""},
            {7, "a\x01", 2, 1, "a"},
            {8, "a\x01", 2, 7, "a\\u0001"},
            {7, "a\xff", 2, 1, "a"},
            /* nor is a multi-byte character */
            {4, "ab\xe2\x82\xac", 5, 2, "ab"},
            {6, "ab\xe2\x82\xac", 5, 5, "ab\xe2\x82\xac"},
        };
        char out[32];

        (void)state;
        memset(out, 'x', sizeof(out));
        assert_int_equal(dlog_json_escape(out, 0, "abc", 3), 0);
        assert_int_equal(out[0], 'x'); /* nothing written */
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                assert_int_equal(
                    dlog_json_escape(out, cases[i].size, cases[i].in, cases[i].len),
                    cases[i].n);
                assert_string_equal(out, cases[i].want);
        }
}

static void test_escape_truncation_every_size(void **state)
{
        static const char in[] = "q\"b\\n\nt\tc\x01u\xc3\xa9"
                                 "e\xe2\x82\xac"
                                 "x\xff"
                                 "f\xf0\x9f\x98\x80z\x7f";
        char full[256], part[256];
        size_t fl;

        (void)state;
        fl = dlog_json_escape(full, sizeof(full), in, sizeof(in) - 1);
        assert_int_equal(fl, strlen(full));
        assert_true(is_json_string_body(full, NULL));
        for (size_t size = 1; size <= fl + 1; size++) {
                size_t n = dlog_json_escape(part, size, in, sizeof(in) - 1);
                assert_true(n < size);
                assert_int_equal(n, strlen(part));
                /* a prefix of the full output that is itself valid JSON content */
                assert_memory_equal(part, full, n);
                if (!is_json_string_body(part, NULL))
                        fail_msg("size %zu: \"%s\" is not valid JSON content", size,
                                 part);
                /* and as long as it could be (no escape is longer than 6 bytes) */
                assert_true(n + 6 >= size - 1 || n == fl);
        }
        assert_int_equal(dlog_json_escape(part, fl + 1, in, sizeof(in) - 1), fl);
}

static void test_escape_random_bytes_valid_json(void **state)
{
        unsigned char in[64];
        char out[512];
        uint32_t x = 2463534242u;

        (void)state;
        for (int round = 0; round < 20000; round++) {
                size_t len = (size_t)(x % sizeof(in));
                for (size_t i = 0; i < len; i++) {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        in[i] = (unsigned char)x;
                }
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                dlog_json_escape(out, sizeof(out), (const char *)in, len);
                if (!is_json_string_body(out, NULL))
                        fail_msg("round %d: output not valid JSON", round);
        }
}

static void test_level_parse(void **state)
{
        /* text -> result, and the level it leaves (set to DLOG_INFO before each) */
        static const struct {
                const char *text;
                int rc;
                enum dlog_level level;
        } cases[] = {
            {"debug", 0, DLOG_DEBUG}, {"INFO", 0, DLOG_INFO},
            {"warn", 0, DLOG_WARN},   {"Warning", 0, DLOG_WARN},
            {"error", 0, DLOG_ERROR}, {"fatal", -1, DLOG_INFO},
            {"", -1, DLOG_INFO},      {"infos", -1, DLOG_INFO},
        };

        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                enum dlog_level l = DLOG_INFO;
                assert_int_equal(dlog_level_parse(cases[i].text, &l), cases[i].rc);
                assert_int_equal(l, cases[i].level);
        }
}

/* Runs fn with stderr captured into out. */
static void capture_stderr(void (*fn)(void), char *out, size_t outsize)
{
        struct tutil_capture cap;

        tutil_capture_begin(&cap, STDERR_FILENO);
        fn();
        tutil_capture_end(&cap, out, outsize);
}

static void log_some(void)
{
        dlog_init("test-prog", DLOG_WARN);
        dlog_info("not shown %d", 1);
        dlog_debug("not shown %d", 2);
        dlog_warn("shown \"quoted\"\nnew line %d", 3);
        dlog_error("bad byte \xff here");
}

static void test_write_lines(void **state)
{
        static char out[16384];
        json_t *j;
        json_error_t e;
        char *nl;

        (void)state;
        capture_stderr(log_some, out, sizeof(out));
        /* exactly two lines */
        nl = strchr(out, '\n');
        assert_non_null(nl);
        assert_non_null(strchr(nl + 1, '\n'));
        assert_string_equal(strchr(nl + 1, '\n'), "\n");
        *nl = '\0';
        j   = json_loads(out, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                fail_msg("line 1 not JSON: %s: %s", e.text, out);
        assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
        assert_string_equal(json_string_value(json_object_get(j, "prog")), "test-prog");
        assert_string_equal(json_string_value(json_object_get(j, "msg")),
                            "shown \"quoted\"\nnew line 3");
        assert_int_equal(strlen(json_string_value(json_object_get(j, "ts"))), 24);
        json_decref(j);
        j = json_loads(nl + 1, 0, &e);
        if (!j)
                fail_msg("line 2 not JSON: %s", e.text);
        assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
        assert_string_equal(json_string_value(json_object_get(j, "msg")),
                            "bad byte \xef\xbf\xbd here");
        json_decref(j);
        assert_false(dlog_enabled(DLOG_INFO));
        assert_true(dlog_enabled(DLOG_ERROR));
        dlog_init("test-prog", DLOG_DEBUG);
        assert_true(dlog_enabled(DLOG_DEBUG));
}

static void log_long(void)
{
        static char big[10000];

        memset(big, '"', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        dlog_init("test-prog", DLOG_INFO);
        dlog_info("%s", big);
}

static void test_write_long_line_stays_json(void **state)
{
        static char out[16384];
        json_t *j;
        json_error_t e;
        size_t n;

        (void)state;
        capture_stderr(log_long, out, sizeof(out));
        n = strlen(out);
        assert_true(n > 100);
        assert_int_equal(out[n - 1], '\n');
        assert_null(memchr(out, '\n', n - 1));
        j = json_loads(out, 0, &e);
        if (!j)
                fail_msg("long line not JSON: %s", e.text);
        assert_true(json_string_length(json_object_get(j, "msg")) > 1000);
        json_decref(j);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_escape_plain),
            cmocka_unit_test(test_escape_quotes_backslash),
            cmocka_unit_test(test_escape_control_chars),
            cmocka_unit_test(test_escape_utf8_kept),
            cmocka_unit_test(test_escape_invalid_utf8),
            cmocka_unit_test(test_escape_sequence_cut_by_len),
            cmocka_unit_test(test_escape_truncation),
            cmocka_unit_test(test_escape_truncation_every_size),
            cmocka_unit_test(test_escape_random_bytes_valid_json),
            cmocka_unit_test(test_level_parse),
            cmocka_unit_test(test_write_lines),
            cmocka_unit_test(test_write_long_line_stays_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
