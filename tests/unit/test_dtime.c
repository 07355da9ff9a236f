/* Unit tests for dtime: RFC 3339 parsing to exact epoch ms, formatting, clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtime.h"
#include "tutil.h"

static void expect_ms(const char *s, int64_t want)
{
        int64_t got = 12345;

        if (dtime_parse_rfc3339(s, strlen(s), &got) != 0)
                fail_msg("\"%s\" did not parse", s);
        if (got != want)
                fail_msg("\"%s\": got %lld, want %lld", s, (long long)got,
                         (long long)want);
}

static void expect_bad(const char *s)
{
        int64_t got = 12345;

        if (dtime_parse_rfc3339(s, strlen(s), &got) == 0)
                fail_msg("\"%s\" parsed (as %lld) but is not RFC 3339", s,
                         (long long)got);
        assert_int_equal(got, 12345); /* untouched on failure */
}

/* RFC 3339 parsing cases, a list for each test below (see TIME_TEST in main): a text
 * and the epoch milliseconds it parses to, or BAD when it is not RFC 3339 (refused). */
struct time_case {
        const char *text; /* NULL ends a list */
        int64_t ms;
};

#define BAD           INT64_MIN
#define FRACTION_BASE 1734690600000LL /* 2024-12-20T10:30:00Z */

static const struct time_case utc[] = {
    {"2024-12-20T10:30:00Z", 1734690600000LL},
    {"2024-12-20T10:30:00z", 1734690600000LL},
    {"2024-12-20t10:30:00Z", 1734690600000LL},
    {"2024-12-20t10:30:00z", 1734690600000LL},
    {"1970-01-01T00:00:00Z", 0},
    {"1999-12-31T23:59:59Z", 946684799000LL},
    {"2100-03-01T00:00:00Z", 4107542400000LL},
    {NULL, 0},
};

static const struct time_case offsets[] = {
    {"2024-12-20T12:30:00+02:00", 1734690600000LL},
    {"2024-12-20T05:00:00-05:30", 1734690600000LL},
    {"2024-12-20T10:30:00+00:00", 1734690600000LL},
    {"2024-12-20T10:30:00-00:00", 1734690600000LL},
    {"2024-12-20T10:30:00+23:59", 1734690600000LL - 1439LL * 60000},
    /* an offset that crosses the day, month and year */
    /* 2023-12-31 23:30Z */
    {"2024-01-01T00:30:00+01:00", 1704065400000LL},
    /* 2024-01-01 00:30Z */
    {"2023-12-31T23:30:00-01:00", 1704069000000LL},
    {NULL, 0},
};

static const struct time_case fractions[] = {
    {"2024-12-20T10:30:00.1Z", FRACTION_BASE + 100},
    {"2024-12-20T10:30:00.12Z", FRACTION_BASE + 120},
    {"2024-12-20T10:30:00.123Z", FRACTION_BASE + 123},
    {"2024-12-20T10:30:00.1234Z", FRACTION_BASE + 123},
    {"2024-12-20T10:30:00.12345Z", FRACTION_BASE + 123},
    {"2024-12-20T10:30:00.123456Z", FRACTION_BASE + 123},
    {"2024-12-20T10:30:00.1234567Z", FRACTION_BASE + 123},
    {"2024-12-20T10:30:00.12345678Z", FRACTION_BASE + 123},
    {"2024-12-20T10:30:00.123456789Z", FRACTION_BASE + 123},
    /* truncated, not rounded */
    {"2024-12-20T10:30:00.999999999Z", FRACTION_BASE + 999},
    {"2024-12-20T10:30:00.000000001Z", FRACTION_BASE},
    {"2024-12-20T10:30:00.0Z", FRACTION_BASE},
    {"2024-12-20T10:30:00.5+02:00", FRACTION_BASE - 7200000 + 500},
    {"2024-12-20T05:00:00.250-05:30", FRACTION_BASE + 250},
    /* negative epoch with a fraction */
    {"1969-12-31T23:59:59.5Z", -500},
    {NULL, 0},
};

static const struct time_case leap_years[] = {
    {"2024-02-29T00:00:00Z", 1709164800000LL},
    {"2000-02-29T23:59:59Z", 951868799000LL},
    {"2023-02-29T00:00:00Z", BAD},
    {"1900-02-29T00:00:00Z", BAD},
    {"2100-02-29T00:00:00Z", BAD},
    {"2024-02-30T00:00:00Z", BAD},
    {"2023-02-28T00:00:00Z", 1677542400000LL},
    {NULL, 0},
};

static const struct time_case bad_fields[] = {
    {"2024-00-20T10:30:00Z", BAD},
    {"2024-13-20T10:30:00Z", BAD},
    {"2024-12-00T10:30:00Z", BAD},
    {"2024-12-32T10:30:00Z", BAD},
    {"2024-04-31T10:30:00Z", BAD},
    {"2024-06-31T10:30:00Z", BAD},
    {"2024-11-31T10:30:00Z", BAD},
    {"2024-12-20T24:00:00Z", BAD},
    {"2024-12-20T10:60:00Z", BAD},
    {"2024-12-20T10:30:61Z", BAD},
    {"2024-12-20T10:30:00+24:00", BAD},
    {"2024-12-20T10:30:00+02:60", BAD},
    /* the 31st of the long months is fine */
    {"2024-12-31T00:00:00Z", 1735603200000LL},
    {NULL, 0},
};

static const struct time_case leap_second[] = {
    /* 2016-12-31T23:59:60Z, clamped to :59 */
    {"2016-12-31T23:59:60Z", 1483228799000LL},
    {NULL, 0},
};

static const struct time_case bad_syntax[] = {
    {"", BAD},
    /* missing zone */
    {"2024-12-20T10:30:00", BAD},
    /* missing zone after fraction */
    {"2024-12-20T10:30:00.123", BAD},
    /* trailing junk */
    {"2024-12-20T10:30:00Z ", BAD},
    {"2024-12-20T10:30:00Zx", BAD},
    {"2024-12-20T10:30:00+02:00x", BAD},
    {"2024-12-20T10:30:00ZZ", BAD},
    {" 2024-12-20T10:30:00Z", BAD},
    /* space separator */
    {"2024-12-20 10:30:00Z", BAD},
    {"2024-12-20X10:30:00Z", BAD},
    /* no seconds */
    {"2024-12-20T10:30Z", BAD},
    {"2024-12-20", BAD},
    {"2024-1-20T10:30:00Z", BAD},
    {"24-12-20T10:30:00Z", BAD},
    {"2024/12/20T10:30:00Z", BAD},
    /* empty fraction */
    {"2024-12-20T10:30:00.Z", BAD},
    {"2024-12-20T10:30:00,5Z", BAD},
    /* offset without colon */
    {"2024-12-20T10:30:00+0200", BAD},
    {"2024-12-20T10:30:00+02", BAD},
    {"2024-12-20T10:30:00+2:00", BAD},
    {"2024-12-20T10:30:00 +02:00", BAD},
    {"2024-12-20T10:30:00UTC", BAD},
    {"+2024-12-20T10:30:00Z", BAD},
    {"2024-12-2aT10:30:00Z", BAD},
    {"1734690600", BAD},
    {NULL, 0},
};

static const struct time_case extreme_years[] = {
    {"0001-01-01T00:00:00Z", -62135596800000LL},
    {"9999-12-31T23:59:59.999Z", 253402300799999LL},
    {NULL, 0},
};

/* Checks the cases of the list the state points to. */
static void run_time_cases(void **state)
{
        const struct time_case *c = *state;

        assert_non_null(c->text);
        for (; c->text; c++)
                if (c->ms == BAD)
                        expect_bad(c->text);
                else
                        expect_ms(c->text, c->ms);
}

#define TIME_TEST(name, cases)                                                         \
        {                                                                              \
#name, run_time_cases, NULL, NULL, (void *)(cases)                     \
        }

static void test_parse_len_bounds(void **state)
{
        const char *s = "2024-12-20T10:30:00Zjunk";
        int64_t ms    = 0;
        char *heap;

        (void)state;
        /* exactly len bytes: the junk beyond is not looked at */
        assert_int_equal(dtime_parse_rfc3339(s, 20, &ms), 0);
        assert_int_equal(ms, 1734690600000LL);
        /* a prefix of a valid time is not valid */
        for (size_t n = 0; n < 20; n++)
                assert_int_equal(dtime_parse_rfc3339(s, n, &ms), -1);
        /* a non-NUL-terminated heap copy: ASan proves no over-read */
        heap = malloc(25);
        assert_non_null(heap);
        memcpy(heap, "2024-12-20T10:30:00.12345", 25);
        assert_int_equal(dtime_parse_rfc3339(heap, 25, &ms), -1);
        memcpy(heap, "2024-12-20T10:30:00+02:00", 25);
        assert_int_equal(dtime_parse_rfc3339(heap, 25, &ms), 0);
        assert_int_equal(ms, 1734690600000LL - 7200000);
        assert_int_equal(dtime_parse_rfc3339(heap, 24, &ms), -1);
        free(heap);
}

static void test_format(void **state)
{
        char buf[40];

        (void)state;
        assert_string_equal(dtime_format_ms(buf, sizeof(buf), 0),
                            "1970-01-01T00:00:00.000Z");
        assert_string_equal(dtime_format_ms(buf, sizeof(buf), 1734690600120LL),
                            "2024-12-20T10:30:00.120Z");
        assert_string_equal(dtime_format_ms(buf, sizeof(buf), 1709164800001LL),
                            "2024-02-29T00:00:00.001Z");
        assert_string_equal(dtime_format_ms(buf, sizeof(buf), -1),
                            "1969-12-31T23:59:59.999Z");
        assert_string_equal(dtime_format_ms(buf, sizeof(buf), -500),
                            "1969-12-31T23:59:59.500Z");
        assert_string_equal(dtime_format_ms(buf, sizeof(buf), -1000),
                            "1969-12-31T23:59:59.000Z");
        assert_int_equal(strlen(dtime_format_ms(buf, 25, 1734690600120LL)), 24);
        assert_ptr_equal(dtime_format_ms(buf, sizeof(buf), 0), buf);
}

static void test_format_small_buffer_terminated(void **state)
{
        char buf[40];

        (void)state;
        memset(buf, 'x', sizeof(buf));
        dtime_format_ms(buf, 10, 1734690600120LL);
        assert_int_equal(strlen(buf), 9);
        assert_memory_equal(buf, "2024-12-2", 9);
        assert_int_equal(buf[10], 'x'); /* nothing written past size */
}

static void test_round_trip(void **state)
{
        static const int64_t v[] = {
            0,
            1,
            999,
            1000,
            -1,
            -999,
            -1001,
            1734690600120LL,
            1709164800000LL,
            951868799999LL,
            4107542400000LL,
            253402300799999LL,
            -62135596800000LL,
        };
        char buf[40];
        int64_t back;
        uint64_t x = 0x9e3779b97f4a7c15ULL;

        (void)state;
        for (size_t i = 0; i < TU_NELEM(v); i++) {
                dtime_format_ms(buf, sizeof(buf), v[i]);
                assert_int_equal(dtime_parse_rfc3339(buf, strlen(buf), &back), 0);
                if (back != v[i])
                        fail_msg("%lld -> %s -> %lld", (long long)v[i], buf,
                                 (long long)back);
        }
        /* pseudo-random instants between 1970 and 2100 */
        for (int i = 0; i < 10000; i++) {
                int64_t ms;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ms = (int64_t)(x % 4102444800000ULL);
                dtime_format_ms(buf, sizeof(buf), ms);
                assert_int_equal(dtime_parse_rfc3339(buf, strlen(buf), &back), 0);
                if (back != ms)
                        fail_msg("%lld -> %s -> %lld", (long long)ms, buf,
                                 (long long)back);
        }
}

static void test_clocks(void **state)
{
        int64_t now = dtime_now_ms(), m1, m2, u1, u2;

        (void)state;
        /* after 2020-01-01 and before 2100-01-01 */
        assert_true(now > 1577836800000LL);
        assert_true(now < 4102444800000LL);
        m1 = dtime_mono_ms();
        u1 = dtime_mono_us();
        for (volatile int i = 0; i < 100000; i++)
                ;
        m2 = dtime_mono_ms();
        u2 = dtime_mono_us();
        assert_true(m2 >= m1);
        assert_true(u2 >= u1);
        /* same clock, different units */
        assert_true(u1 / 1000 >= m1 && u1 / 1000 <= m2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            TIME_TEST(test_parse_utc, utc),
            TIME_TEST(test_parse_offsets, offsets),
            TIME_TEST(test_parse_fractions, fractions),
            TIME_TEST(test_parse_leap_years, leap_years),
            TIME_TEST(test_parse_bad_fields, bad_fields),
            TIME_TEST(test_parse_leap_second, leap_second),
            TIME_TEST(test_parse_bad_syntax, bad_syntax),
            cmocka_unit_test(test_parse_len_bounds),
            TIME_TEST(test_parse_extreme_years, extreme_years),
            cmocka_unit_test(test_format),
            cmocka_unit_test(test_format_small_buffer_terminated),
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_clocks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
