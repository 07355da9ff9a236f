/* Unit tests for dwire: the names of the enums, and the metadata of committed offsets
 * (written by the enricher's transactions, read back by its dedupe rebuild). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dwire.h"

static void test_meta_round_trip(void **state)
{
        static const int64_t values[] = {0, 1, 946684800000, 1796644737389,
                                         INT64_C(999999999999999999)};
        (void)state;
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                char buf[DWIRE_OFFSET_META_SIZE];
                int64_t got = -7;
                int n       = dwire_offset_meta_format(buf, values[i]);
                assert_true(n > 1 && n <= DWIRE_OFFSET_META_SIZE);
                assert_int_equal(buf[n - 1], '\0'); /* the NUL is part of it */
                assert_int_equal(dwire_offset_meta_parse(buf, (size_t)n, &got), 0);
                assert_int_equal(got, values[i]);
                /* and without the NUL, as a client that drops it hands it back */
                got = -7;
                assert_int_equal(dwire_offset_meta_parse(buf, (size_t)n - 1, &got), 0);
                assert_int_equal(got, values[i]);
        }
}

static void test_meta_written_as_documented(void **state)
{
        char buf[DWIRE_OFFSET_META_SIZE];
        int n = dwire_offset_meta_format(buf, 1796644737389);
        (void)state;
        assert_int_equal(n, (int)sizeof("{\"last_ts\":1796644737389}"));
        assert_string_equal(buf, "{\"last_ts\":1796644737389}");
}

/* Metadata that is not ours (another tool's, truncated, absent) is refused and leaves
 * the value alone: the rebuild then reads the whole retained partition. */
static void test_meta_refused(void **state)
{
        static const char *const bad[] = {
            "",
            "{}",
            "{\"last_ts\":}",
            "{\"last_ts\":12a}",
            "{\"last_ts\":-5}",
            "{\"last_ts\":12",
            "{\"last_ts\": 12}",
            "{\"lastts\":12}",
            "x{\"last_ts\":12}",
            "{\"last_ts\":12}x",
            "{\"last_ts\":1234567890123456789012}",
            "consumer-offset-metadata",
        };
        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t got = -7;
                if (dwire_offset_meta_parse(bad[i], strlen(bad[i]), &got) == 0)
                        fail_msg("\"%s\" parsed as %lld", bad[i], (long long)got);
                assert_int_equal(got, -7);
        }
        {
                int64_t got = -7;
                assert_int_equal(dwire_offset_meta_parse(NULL, 0, &got), -1);
                assert_int_equal(dwire_offset_meta_parse("\0\0", 2, &got), -1);
                assert_int_equal(got, -7);
        }
}

static void test_names(void **state)
{
        (void)state;
        assert_string_equal(dwire_kind_name(DWIRE_KIND_ITEM), "item");
        assert_string_equal(dwire_kind_name((enum dwire_kind)99), "unknown");
        for (int c = 0; c < DWIRE_NDLQ_CLASSES; c++)
                assert_int_equal(dwire_dlq_class_parse(
                                     dwire_dlq_class_name((enum dwire_dlq_class)c)),
                                 c);
        assert_int_equal(dwire_dlq_class_parse("resource"), -1);
}

/* Each kind's name reads back as that kind; anything else is refused. */
static void test_kind_parse(void **state)
{
        enum dwire_kind k = DWIRE_KIND_ITEM;

        (void)state;
        for (int i = 0; i < DWIRE_NKINDS; i++) {
                const char *n = dwire_kind_name((enum dwire_kind)i);
                assert_int_equal(dwire_kind_parse(n, strlen(n), &k), 0);
                assert_int_equal(k, i);
        }
        assert_int_equal(dwire_kind_parse("item", 3, &k), -1); /* "ite" */
        assert_int_equal(dwire_kind_parse("items", 5, &k), -1);
        assert_int_equal(dwire_kind_parse("Item", 4, &k), -1);
        assert_int_equal(dwire_kind_parse("", 0, &k), -1);
        assert_int_equal(k, DWIRE_KIND_CHANGE_ORDER); /* untouched when refused */
}

static void test_progress_round_trip(void **state)
{
        static const char neg[] = "{\"next_offset\":-3,\"last_ts\":1}";
        char buf[DWIRE_PROGRESS_VALUE_SIZE];
        int64_t n = 0, t = 0;
        int len;

        (void)state;
        len = dwire_progress_format(buf, 1042, 1734690600120LL);
        assert_string_equal(buf, "{\"next_offset\":1042,\"last_ts\":1734690600120}");
        assert_int_equal(dwire_progress_parse(buf, (size_t)len, &n, &t), 0);
        assert_int_equal(n, 1042);
        assert_int_equal(t, 1734690600120LL);
        len = dwire_progress_format(buf, 7, -1);
        assert_int_equal(dwire_progress_parse(buf, (size_t)len, &n, &t), 0);
        assert_int_equal(t, -1);
        assert_int_equal(dwire_progress_parse(buf, (size_t)len - 1, &n, &t), -1);
        assert_int_equal(dwire_progress_parse(neg, strlen(neg), &n, &t), -1);
        assert_int_equal(dwire_progress_parse("{\"last_ts\":1}", 13, &n, &t), -1);
        assert_int_equal(dwire_progress_parse(NULL, 0, &n, &t), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_meta_round_trip),
            cmocka_unit_test(test_meta_written_as_documented),
            cmocka_unit_test(test_meta_refused),
            cmocka_unit_test(test_names),
            cmocka_unit_test(test_kind_parse),
            cmocka_unit_test(test_progress_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
