/* Unit tests for dmetrics: histogram buckets and the Prometheus text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>

#include "dmetrics.h"

static const double bounds[] = {0.005, 0.01, 0.1, 1};

static void test_counter(void **state)
{
        struct dbuf b;

        (void)state;
        dbuf_init(&b, 0);
        assert_int_equal(dmetrics_counter(&b, "duro_things_total", "Things seen.", 42),
                         0);
        assert_string_equal(dbuf_cstr(&b), "# HELP duro_things_total Things seen.\n"
                                           "# TYPE duro_things_total counter\n"
                                           "duro_things_total 42\n");
        dbuf_reset(&b);
        assert_int_equal(dmetrics_counter(&b, "c_total", "C.", 18446744073709551615ULL),
                         0);
        assert_non_null(strstr(dbuf_cstr(&b), "\nc_total 18446744073709551615\n"));
        dbuf_free(&b);
}

static void test_gauge_and_samples(void **state)
{
        struct dbuf b;

        (void)state;
        dbuf_init(&b, 0);
        assert_int_equal(dmetrics_gauge(&b, "duro_ready", "Ready.", 1), 0);
        assert_string_equal(dbuf_cstr(&b), "# HELP duro_ready Ready.\n"
                                           "# TYPE duro_ready gauge\n"
                                           "duro_ready 1\n");
        dbuf_reset(&b);
        assert_int_equal(
            dmetrics_head(&b, "duro_requests_total", "Requests.", "counter"), 0);
        assert_int_equal(
            dmetrics_sample(&b, "duro_requests_total", "status=\"200\"", 5), 0);
        assert_int_equal(dmetrics_sample(&b, "duro_requests_total",
                                         "status=\"401\",reason=\"bad\"", 2),
                         0);
        assert_int_equal(dmetrics_sample(&b, "duro_requests_total", "", 1.5), 0);
        assert_int_equal(dmetrics_sample(&b, "duro_requests_total", NULL, -2), 0);
        assert_string_equal(dbuf_cstr(&b),
                            "# HELP duro_requests_total Requests.\n"
                            "# TYPE duro_requests_total counter\n"
                            "duro_requests_total{status=\"200\"} 5\n"
                            "duro_requests_total{status=\"401\",reason=\"bad\"} 2\n"
                            "duro_requests_total 1.5\n"
                            "duro_requests_total -2\n");
        /* a large count is exact */
        dbuf_reset(&b);
        assert_int_equal(dmetrics_sample(&b, "x", NULL, 9007199254740992.0), 0);
        assert_string_equal(dbuf_cstr(&b), "x 9007199254740992\n");
        dbuf_free(&b);
}

static void test_hist_exact_render(void **state)
{
        struct dmetrics_hist h;
        struct dbuf b;

        (void)state;
        dmetrics_hist_init(&h, bounds, 4);
        dmetrics_hist_observe_us(&h, 1000);    /* 0.001 -> le 0.005 */
        dmetrics_hist_observe_us(&h, 5000);    /* 0.005 -> le 0.005 (inclusive) */
        dmetrics_hist_observe_us(&h, 5001);    /* -> le 0.01 */
        dmetrics_hist_observe_us(&h, 50000);   /* -> le 0.1 */
        dmetrics_hist_observe_us(&h, 2000000); /* -> +Inf only */
        dbuf_init(&b, 0);
        assert_int_equal(
            dmetrics_hist_render(&b, "duro_ack_seconds", "Ack latency.", &h), 0);
        assert_string_equal(dbuf_cstr(&b), "# HELP duro_ack_seconds Ack latency.\n"
                                           "# TYPE duro_ack_seconds histogram\n"
                                           "duro_ack_seconds_bucket{le=\"0.005\"} 2\n"
                                           "duro_ack_seconds_bucket{le=\"0.01\"} 3\n"
                                           "duro_ack_seconds_bucket{le=\"0.1\"} 4\n"
                                           "duro_ack_seconds_bucket{le=\"1\"} 4\n"
                                           "duro_ack_seconds_bucket{le=\"+Inf\"} 5\n"
                                           "duro_ack_seconds_sum 2.061001\n"
                                           "duro_ack_seconds_count 5\n");
        dbuf_free(&b);
}

static void test_hist_empty(void **state)
{
        struct dmetrics_hist h;
        struct dbuf b;

        (void)state;
        memset(&h, 0xff, sizeof(h)); /* init must clear everything */
        dmetrics_hist_init(&h, bounds, 2);
        dbuf_init(&b, 0);
        assert_int_equal(dmetrics_hist_render(&b, "e", "E.", &h), 0);
        assert_string_equal(dbuf_cstr(&b), "# HELP e E.\n# TYPE e histogram\n"
                                           "e_bucket{le=\"0.005\"} 0\n"
                                           "e_bucket{le=\"0.01\"} 0\n"
                                           "e_bucket{le=\"+Inf\"} 0\n"
                                           "e_sum 0.000000\ne_count 0\n");
        dbuf_free(&b);
}

/* Reads "name_bucket{le="X"} N" lines: fills counts (n+1 with +Inf), returns count. */
static unsigned long long parse_hist(const char *text, const char *name,
                                     unsigned long long *counts, size_t *ncounts)
{
        char prefix[128], cntname[140];
        unsigned long long count = 0;
        size_t k                 = 0;
        const char *p;

        snprintf(prefix, sizeof(prefix), "%s_bucket{le=\"", name);
        snprintf(cntname, sizeof(cntname), "\n%s_count ", name);
        for (p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
                const char *sp = strstr(p, "} ");
                assert_non_null(sp);
                counts[k++] = strtoull(sp + 2, NULL, 10);
        }
        *ncounts = k;
        p        = strstr(text, cntname);
        assert_non_null(p);
        count = strtoull(p + strlen(cntname), NULL, 10);
        return count;
}

static void test_hist_cumulative_random(void **state)
{
        static const double many[] = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                      0.025,  0.05,   0.1,   0.25,   0.5,   1,
                                      2.5,    5,      10,    30};
        struct dmetrics_hist h;
        struct dbuf b;
        unsigned long long counts[DMETRICS_MAX_BUCKETS + 1], count, want[17] = {0};
        size_t nc;
        uint32_t x = 88172645u;

        (void)state;
        dmetrics_hist_init(&h, many, 16);
        for (int i = 0; i < 5000; i++) {
                unsigned long long us;
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                us = x % 40000000u;
                dmetrics_hist_observe_us(&h, us);
                for (size_t j = 0; j < 16; j++)
                        if ((double)us / 1e6 <= many[j])
                                want[j]++;
                want[16]++;
        }
        dbuf_init(&b, 0);
        assert_int_equal(dmetrics_hist_render(&b, "r", "R.", &h), 0);
        count = parse_hist(dbuf_cstr(&b), "r", counts, &nc);
        assert_int_equal(nc, 17);
        for (size_t j = 0; j < nc; j++) {
                if (j)
                        assert_true(counts[j] >= counts[j - 1]);
                assert_int_equal(counts[j], want[j]);
        }
        assert_int_equal(counts[16], count);
        assert_int_equal(count, 5000);
        assert_non_null(strstr(dbuf_cstr(&b), "r_bucket{le=\"30\"}"));
        assert_non_null(strstr(dbuf_cstr(&b), "r_bucket{le=\"0.0001\"}"));
        dbuf_free(&b);
}

static void test_hist_too_many_bounds(void **state)
{
        double b17[17];
        struct dmetrics_hist h;
        struct dbuf b;
        unsigned long long counts[20];
        size_t nc;

        (void)state;
        for (int i = 0; i < 17; i++)
                b17[i] = i + 1;
        dmetrics_hist_init(&h, b17, 17);
        assert_int_equal(h.n, DMETRICS_MAX_BUCKETS);
        dmetrics_hist_observe_us(&h, 16500000); /* 16.5 s: above the 16 kept bounds */
        dbuf_init(&b, 0);
        assert_int_equal(dmetrics_hist_render(&b, "t", "T.", &h), 0);
        assert_int_equal(parse_hist(dbuf_cstr(&b), "t", counts, &nc), 1);
        assert_int_equal(nc, 17);
        assert_int_equal(counts[15], 0);
        assert_int_equal(counts[16], 1);
        assert_null(strstr(dbuf_cstr(&b), "le=\"17\""));
        dbuf_free(&b);
}

/* What rendering one metric into a buffer capped at cap returns: the histogram
 * (which 0), a counter (1) or a gauge (2). */
static int render_capped(int which, size_t cap)
{
        struct dmetrics_hist h;
        struct dbuf b;
        int rc;

        dmetrics_hist_init(&h, bounds, 4);
        dbuf_init(&b, cap);
        if (which == 0)
                rc = dmetrics_hist_render(&b, "duro_ack_seconds", "Ack latency.", &h);
        else if (which == 1)
                rc = dmetrics_counter(&b, "duro_things_total", "Things.", 1);
        else
                rc = dmetrics_gauge(&b, "duro_gauge", "G.", 1);
        dbuf_free(&b);
        return rc;
}

static void test_render_cap(void **state)
{
        (void)state;
        assert_int_equal(render_capped(0, 60), -1);
        assert_int_equal(render_capped(1, 20), -1);
        assert_int_equal(render_capped(2, 20), -1);
}

/* A table renders as the single calls would, a labelled family under one head. */
static void test_rows(void **state)
{
        const struct dmetrics_row rows[] = {
            DMETRICS_GAUGE_ROW("duro_inflight", "In flight.", 3),
            DMETRICS_COUNTER_ROW("duro_errors_total", "Errors.", 7),
            DMETRICS_SAMPLE_ROW("counter", "duro_cut_total", "Cut.", "reason=\"idle\"",
                                2),
            DMETRICS_SAMPLE_ROW("counter", "duro_cut_total", NULL, "reason=\"slow\"",
                                0),
            DMETRICS_GAUGE_ROW("duro_ready", "Ready.", 0.5),
        };
        struct dbuf b, want;

        (void)state;
        dbuf_init(&b, 0);
        dbuf_init(&want, 0);
        assert_int_equal(dmetrics_rows(&b, rows, 5), 0);
        assert_int_equal(dmetrics_gauge(&want, "duro_inflight", "In flight.", 3), 0);
        assert_int_equal(dmetrics_counter(&want, "duro_errors_total", "Errors.", 7), 0);
        assert_string_equal(dbuf_cstr(&b), "# HELP duro_inflight In flight.\n"
                                           "# TYPE duro_inflight gauge\n"
                                           "duro_inflight 3\n"
                                           "# HELP duro_errors_total Errors.\n"
                                           "# TYPE duro_errors_total counter\n"
                                           "duro_errors_total 7\n"
                                           "# HELP duro_cut_total Cut.\n"
                                           "# TYPE duro_cut_total counter\n"
                                           "duro_cut_total{reason=\"idle\"} 2\n"
                                           "duro_cut_total{reason=\"slow\"} 0\n"
                                           "# HELP duro_ready Ready.\n"
                                           "# TYPE duro_ready gauge\n"
                                           "duro_ready 0.5\n");
        /* the first two rows are exactly what dmetrics_gauge and _counter write */
        assert_memory_equal(dbuf_cstr(&b), dbuf_cstr(&want), strlen(dbuf_cstr(&want)));
        dbuf_free(&want);
        dbuf_free(&b);
        dbuf_init(&b, 40);
        assert_int_equal(dmetrics_rows(&b, rows, 5), -1);
        dbuf_free(&b);
}

static struct dmetrics_hist shared;

static void *observer(void *arg)
{
        (void)arg;
        for (int i = 0; i < 10000; i++)
                dmetrics_hist_observe_us(&shared, (unsigned long long)(i % 3) * 4000);
        return NULL;
}

static void test_hist_concurrent(void **state)
{
        pthread_t th[4];
        struct dbuf b;
        unsigned long long counts[20];
        size_t nc;

        (void)state;
        dmetrics_hist_init(&shared, bounds, 4);
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, observer, NULL), 0);
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        dbuf_init(&b, 0);
        assert_int_equal(dmetrics_hist_render(&b, "c", "C.", &shared), 0);
        assert_int_equal(parse_hist(dbuf_cstr(&b), "c", counts, &nc), 40000);
        /* 0 and 4000 us are <= 0.005; 8000 us <= 0.01 */
        assert_int_equal(counts[0], 4 * (3334 + 3333));
        assert_int_equal(counts[1], 40000);
        assert_int_equal(counts[4], 40000);
        dbuf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_counter),
            cmocka_unit_test(test_gauge_and_samples),
            cmocka_unit_test(test_hist_exact_render),
            cmocka_unit_test(test_hist_empty),
            cmocka_unit_test(test_hist_cumulative_random),
            cmocka_unit_test(test_hist_too_many_bounds),
            cmocka_unit_test(test_render_cap),
            cmocka_unit_test(test_rows),
            cmocka_unit_test(test_hist_concurrent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
