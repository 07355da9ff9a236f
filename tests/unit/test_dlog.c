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

static void test_escape_plain(void **state)
{
        char out[16];

        (void)state;
        assert_string_equal(ESC("hello world"), "hello world");
        assert_string_equal(ESC(""), "");
        assert_int_equal(dlog_json_escape(out, sizeof(out), "abc", 3), 3);
        assert_string_equal(out, "abc");
        /* len, not the NUL, ends the input */
        assert_int_equal(dlog_json_escape(out, sizeof(out), "abcdef", 2), 2);
        assert_string_equal(out, "ab");
}

static void test_escape_quotes_backslash(void **state)
{
        (void)state;
        assert_string_equal(ESC("a\"b"), "a\\\"b");
        assert_string_equal(ESC("a\\b"), "a\\\\b");
        assert_string_equal(ESC("\"\\\"\\"), "\\\"\\\\\\\"\\\\");
        /* '/' needs no escape */
        assert_string_equal(ESC("a/b"), "a/b");
}

static void test_escape_control_chars(void **state)
{
        char in[1];

        (void)state;
        assert_string_equal(ESC("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_string_equal(ESC("\x01"), "\\u0001");
        assert_string_equal(ESC("\x1f"), "\\u001f");
        assert_string_equal(ESC("\b\f"), "\\u0008\\u000c");
        assert_string_equal(ESC("\x7f"), "\\u007f");
        assert_string_equal(esc("a\0b", 3), "a\\u0000b");
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
        assert_string_equal(ESC("caf\xc3\xa9"), "caf\xc3\xa9");           /* é */
        assert_string_equal(ESC("\xe2\x82\xac"), "\xe2\x82\xac");         /* € */
        assert_string_equal(ESC("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80"); /* 😀 */
        assert_string_equal(ESC("\xef\xbf\xbf"), "\xef\xbf\xbf");         /* U+FFFF */
        assert_string_equal(ESC("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
        assert_string_equal(ESC("\xc2\x80"), "\xc2\x80");                 /* U+0080 */
        assert_string_equal(ESC("\xe0\xa0\x80"), "\xe0\xa0\x80");         /* U+0800 */
        assert_string_equal(ESC("\xf0\x90\x80\x80"), "\xf0\x90\x80\x80"); /* U+10000 */
}

static void test_escape_invalid_utf8(void **state)
{
        (void)state;
        assert_string_equal(ESC("\xff"), "\\ufffd");
        assert_string_equal(ESC("a\x80z"), "a\\ufffdz");        /* lone continuation */
        assert_string_equal(ESC("\xc3"), "\\ufffd");            /* truncated at end */
        assert_string_equal(ESC("\xc3("), "\\ufffd(");          /* bad continuation */
        assert_string_equal(ESC("\xe2\x82"), "\\ufffd\\ufffd"); /* truncated 3-byte */
        assert_string_equal(ESC("\xc0\xaf"), "\\ufffd\\ufffd"); /* overlong '/' */
        assert_string_equal(ESC("\xe0\x80\xaf"), "\\ufffd\\ufffd\\ufffd");
        assert_string_equal(ESC("\xed\xa0\x80"),
                            "\\ufffd\\ufffd\\ufffd"); /* surrogate */
        assert_string_equal(ESC("\xf4\x90\x80\x80"),
                            "\\ufffd\\ufffd\\ufffd\\ufffd"); /* > U+10FFFF */
        assert_string_equal(ESC("\xf8\x88\x80\x80\x80"),
                            "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd");
        /* valid text after an invalid byte is kept */
        assert_string_equal(ESC("\xff\xc3\xa9"), "\\ufffd\xc3\xa9");
}

static void test_escape_sequence_cut_by_len(void **state)
{
        char *heap;

        (void)state;
        /* a sequence that len cuts short is invalid, even when the bytes beyond len
         * would complete it */
        assert_string_equal(esc("a\xc3\xa9", 2), "a\\ufffd");
        assert_string_equal(esc("\xe2\x82\xac", 2), "\\ufffd\\ufffd");
        assert_string_equal(esc("\xf0\x9f\x98\x80", 3), "\\ufffd\\ufffd\\ufffd");
        /* and nothing past len is read (ASan checks the heap copy) */
        heap = malloc(1);
        assert_non_null(heap);
        heap[0] = (char)0xf0;
        assert_string_equal(esc(heap, 1), "\\ufffd");
        free(heap);
}

static void test_escape_truncation(void **state)
{
        char out[32];

        (void)state;
        memset(out, 'x', sizeof(out));
        assert_int_equal(dlog_json_escape(out, 0, "abc", 3), 0);
        assert_int_equal(out[0], 'x'); /* nothing written */
        assert_int_equal(dlog_json_escape(out, 1, "abc", 3), 0);
        assert_string_equal(out, "");
        assert_int_equal(dlog_json_escape(out, 3, "abc", 3), 2);
        assert_string_equal(out, "ab");
        /* an escape is never split */
        assert_int_equal(dlog_json_escape(out, 4, "ab\"", 3), 2);
        assert_string_equal(out, "ab");
        assert_int_equal(dlog_json_escape(out, 5, "ab\"", 3), 4);
        assert_string_equal(out, "ab\\\"");
        assert_int_equal(dlog_json_escape(out, 7, "a\x01", 2), 1);
        assert_string_equal(out, "a");
        assert_int_equal(dlog_json_escape(out, 8, "a\x01", 2), 7);
        assert_string_equal(out, "a\\u0001");
        assert_int_equal(dlog_json_escape(out, 7, "a\xff", 2), 1);
        assert_string_equal(out, "a");
        /* nor is a multi-byte character */
        assert_int_equal(dlog_json_escape(out, 4, "ab\xe2\x82\xac", 5), 2);
        assert_string_equal(out, "ab");
        assert_int_equal(dlog_json_escape(out, 6, "ab\xe2\x82\xac", 5), 5);
        assert_string_equal(out, "ab\xe2\x82\xac");
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
        enum dlog_level l;

        (void)state;
        assert_int_equal(dlog_level_parse("debug", &l), 0);
        assert_int_equal(l, DLOG_DEBUG);
        assert_int_equal(dlog_level_parse("INFO", &l), 0);
        assert_int_equal(l, DLOG_INFO);
        assert_int_equal(dlog_level_parse("warn", &l), 0);
        assert_int_equal(l, DLOG_WARN);
        assert_int_equal(dlog_level_parse("Warning", &l), 0);
        assert_int_equal(l, DLOG_WARN);
        assert_int_equal(dlog_level_parse("error", &l), 0);
        assert_int_equal(l, DLOG_ERROR);
        l = DLOG_INFO;
        assert_int_equal(dlog_level_parse("fatal", &l), -1);
        assert_int_equal(dlog_level_parse("", &l), -1);
        assert_int_equal(dlog_level_parse("infos", &l), -1);
        assert_int_equal(l, DLOG_INFO);
}

/* Runs fn with stderr captured into out. */
static void capture_stderr(void (*fn)(void), char *out, size_t outsize)
{
        char tmpl[] = "/tmp/test_dlog_XXXXXX";
        int fd      = mkstemp(tmpl), saved;
        ssize_t n;

        assert_true(fd >= 0);
        unlink(tmpl);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        fn();
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        n = pread(fd, out, outsize - 1, 0);
        assert_true(n >= 0);
        out[n] = '\0';
        close(fd);
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
