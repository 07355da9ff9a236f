/* Unit tests for dbuf: growth, the hard cap, appendf, reset and take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dbuf.h"

static void test_empty(void **state)
{
        struct dbuf b;
        size_t len = 99;

        (void)state;
        dbuf_init(&b, 0);
        assert_int_equal(b.len, 0);
        assert_string_equal(dbuf_cstr(&b), "");
        assert_null(dbuf_take(&b, &len));
        assert_int_equal(len, 0);
        dbuf_reset(&b);
        assert_string_equal(dbuf_cstr(&b), "");
        dbuf_free(&b);
        assert_string_equal(dbuf_cstr(&b), "");
}

static void test_append_and_grow(void **state)
{
        struct dbuf b;
        char chunk[100];

        (void)state;
        dbuf_init(&b, 0);
        assert_int_equal(dbuf_append(&b, "abc", 3), 0);
        assert_int_equal(b.len, 3);
        assert_string_equal(dbuf_cstr(&b), "abc");
        assert_int_equal(b.data[3], '\0');
        /* many appends past the first allocation */
        for (int i = 0; i < 100; i++) {
                memset(chunk, 'a' + i % 26, sizeof(chunk));
                assert_int_equal(dbuf_append(&b, chunk, sizeof(chunk)), 0);
        }
        assert_int_equal(b.len, 3 + 100 * 100);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
        for (int i = 0; i < 100; i++)
                assert_int_equal(b.data[3 + i * 100 + 99], 'a' + i % 26);
        /* binary data with NULs */
        dbuf_reset(&b);
        assert_int_equal(dbuf_append(&b, "a\0b", 3), 0);
        assert_int_equal(b.len, 3);
        assert_memory_equal(b.data, "a\0b", 3);
        /* an empty append changes nothing */
        assert_int_equal(dbuf_append(&b, NULL, 0), 0);
        assert_int_equal(b.len, 3);
        dbuf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
}

static void test_cap_enforced(void **state)
{
        struct dbuf b;

        (void)state;
        dbuf_init(&b, 10);
        assert_int_equal(dbuf_append(&b, "abcdef", 6), 0);
        /* would exceed: refused, contents untouched */
        assert_int_equal(dbuf_append(&b, "ghijk", 5), -1);
        assert_int_equal(b.len, 6);
        assert_string_equal(dbuf_cstr(&b), "abcdef");
        /* exactly up to the cap is fine */
        assert_int_equal(dbuf_append(&b, "ghij", 4), 0);
        assert_int_equal(b.len, 10);
        assert_string_equal(dbuf_cstr(&b), "abcdefghij");
        assert_int_equal(dbuf_append(&b, "k", 1), -1);
        assert_int_equal(dbuf_append(&b, "", 0), 0);
        assert_string_equal(dbuf_cstr(&b), "abcdefghij");
        /* a huge n does not wrap around the check */
        assert_int_equal(dbuf_append(&b, "x", SIZE_MAX), -1);
        assert_int_equal(dbuf_append(&b, "x", SIZE_MAX - 5), -1);
        assert_int_equal(b.len, 10);
        /* after a reset the whole cap is available again */
        dbuf_reset(&b);
        assert_int_equal(b.len, 0);
        assert_string_equal(dbuf_cstr(&b), "");
        assert_int_equal(dbuf_append(&b, "0123456789", 10), 0);
        assert_int_equal(dbuf_append(&b, "0123456789", 11), -1);
        dbuf_free(&b);

        /* a single append bigger than the cap, on an empty buffer */
        dbuf_init(&b, 4);
        assert_int_equal(dbuf_append(&b, "12345", 5), -1);
        assert_int_equal(b.len, 0);
        assert_string_equal(dbuf_cstr(&b), "");
        dbuf_free(&b);
}

static void test_appendf(void **state)
{
        struct dbuf b;
        char big[1000];

        (void)state;
        dbuf_init(&b, 0);
        assert_int_equal(dbuf_appendf(&b, "%d-%s", 42, "x"), 0);
        assert_int_equal(dbuf_appendf(&b, "|%05.1f|%c", 3.14159, 'z'), 0);
        assert_string_equal(dbuf_cstr(&b), "42-x|003.1|z");
        assert_int_equal(b.len, strlen("42-x|003.1|z"));
        assert_int_equal(dbuf_appendf(&b, "%s", ""), 0);
        assert_int_equal(b.len, 12);
        /* longer than the first allocation */
        memset(big, 'q', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(dbuf_appendf(&b, "[%s]", big), 0);
        assert_int_equal(b.len, 12 + 2 + 999);
        assert_int_equal(b.data[12], '[');
        assert_int_equal(b.data[b.len - 1], ']');
        assert_int_equal(b.data[b.len], '\0');
        dbuf_free(&b);
}

static void test_appendf_cap(void **state)
{
        struct dbuf b;

        (void)state;
        dbuf_init(&b, 8);
        assert_int_equal(dbuf_appendf(&b, "%s", "abcde"), 0);
        assert_int_equal(dbuf_appendf(&b, "%d", 1234), -1);
        assert_int_equal(b.len, 5);
        assert_string_equal(dbuf_cstr(&b), "abcde");
        assert_int_equal(dbuf_appendf(&b, "%d", 123), 0);
        assert_string_equal(dbuf_cstr(&b), "abcde123");
        assert_int_equal(dbuf_appendf(&b, "%s", "x"), -1);
        assert_string_equal(dbuf_cstr(&b), "abcde123");
        dbuf_free(&b);
}

/* Appends with dbuf_vappendf to an empty buffer and expects rc 0 and the text want. */
static void expect_vappendf(const char *want, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void expect_vappendf(const char *want, const char *fmt, ...)
{
        struct dbuf b;
        va_list ap;
        int rc;

        dbuf_init(&b, 0);
        va_start(ap, fmt);
        rc = dbuf_vappendf(&b, fmt, ap);
        va_end(ap);
        assert_int_equal(rc, 0);
        assert_string_equal(dbuf_cstr(&b), want);
        dbuf_free(&b);
}

static void test_vappendf(void **state)
{
        (void)state;
        expect_vappendf("n=7", "%s=%u", "n", 7u);
}

static void test_take(void **state)
{
        struct dbuf b;
        size_t len = 0;
        char *p;

        (void)state;
        dbuf_init(&b, 100);
        assert_int_equal(dbuf_append(&b, "hello", 5), 0);
        assert_int_equal(dbuf_appendf(&b, " %s", "world"), 0);
        p = dbuf_take(&b, &len);
        assert_non_null(p);
        assert_int_equal(len, 11);
        assert_string_equal(p, "hello world");
        /* the buffer is empty and reusable; the cap stays */
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
        assert_int_equal(b.max, 100);
        assert_string_equal(dbuf_cstr(&b), "");
        assert_int_equal(dbuf_append(&b, "again", 5), 0);
        assert_string_equal(dbuf_cstr(&b), "again");
        /* the taken memory is independent of the buffer */
        assert_string_equal(p, "hello world");
        free(p);
        p = dbuf_take(&b, NULL);
        assert_string_equal(p, "again");
        free(p);
        dbuf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty),        cmocka_unit_test(test_append_and_grow),
            cmocka_unit_test(test_cap_enforced), cmocka_unit_test(test_appendf),
            cmocka_unit_test(test_appendf_cap),  cmocka_unit_test(test_vappendf),
            cmocka_unit_test(test_take),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
