/* Unit tests for dgql_classify: outcome of GraphQL answers (HTTP status, body,
 * Retry-After). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dgql.h"

/* Classifies a NUL-terminated body (or NULL) into a result prefilled with junk, so
 * that every field the classifier is meant to set is seen to be set. */
static void classify(struct dgql_result *res, long status, const char *body,
                     const char *retry_after)
{
        memset(res, 0x5a, sizeof(*res));
        res->data   = NULL;
        res->errors = NULL;
        dgql_classify(res, status, body, body ? strlen(body) : 0, retry_after);
        assert_int_equal(res->http_status, status);
        if (res->outcome != DGQL_OK)
                assert_non_null(memchr(res->error, '\0', sizeof(res->error)));
}

static void test_ok_with_data(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 200, "{\"data\":{\"components\":{\"get\":null}}}", NULL);
        assert_int_equal(r.outcome, DGQL_OK);
        assert_non_null(r.data);
        assert_true(json_is_object(json_object_get(r.data, "components")));
        assert_null(r.errors);
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);
        assert_null(r.data);
        assert_null(r.errors);
}

static void test_ok_data_outlives_clear_when_taken(void **state)
{
        struct dgql_result r;
        json_t *data;

        (void)state;
        classify(&r, 200, "{\"data\":{\"x\":1}}", NULL);
        assert_int_equal(r.outcome, DGQL_OK);
        /* A completion callback takes ownership by setting res->data to NULL. */
        data   = r.data;
        r.data = NULL;
        dgql_result_clear(&r);
        assert_int_equal(json_integer_value(json_object_get(data, "x")), 1);
        json_decref(data);
}

static void test_ok_empty_errors_array_ignored(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 200, "{\"data\":{\"x\":1},\"errors\":[]}", NULL);
        assert_int_equal(r.outcome, DGQL_OK);
        assert_null(r.errors);
        dgql_result_clear(&r);
}

static void test_graphql_error_internal(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 200,
                 "{\"data\":null,\"errors\":[{\"message\":\"boom\",\"extensions\":"
                 "{\"code\":\"INTERNAL_SERVER_ERROR\"}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_non_null(strstr(r.error, "INTERNAL_SERVER_ERROR"));
        assert_non_null(strstr(r.error, "boom"));
        assert_non_null(r.errors);
        assert_int_equal(json_array_size(r.errors), 1);
        assert_null(r.data);
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);
}

static void test_graphql_error_with_partial_data(void **state)
{
        struct dgql_result r;

        (void)state;
        /* Errors win over partial data; the data is still handed over. */
        classify(&r, 200,
                 "{\"data\":{\"x\":1},\"errors\":[{\"message\":\"no\",\"extensions\":"
                 "{\"code\":\"FORBIDDEN\"}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_non_null(strstr(r.error, "FORBIDDEN"));
        assert_non_null(r.data);
        dgql_result_clear(&r);
}

static void test_graphql_error_without_code(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 200, "{\"errors\":[{\"message\":\"Syntax Error\"}]}", NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_non_null(strstr(r.error, "Syntax Error"));
        dgql_result_clear(&r);

        classify(&r, 200, "{\"errors\":[42]}", NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_true(strlen(r.error) > 0);
        dgql_result_clear(&r);
}

static void test_graphql_rate_limited(void **state)
{
        struct dgql_result r;

        (void)state;
        /* Duro's documented form. */
        classify(&r, 200,
                 "{\"errors\":[{\"message\":\"Rate limit exceeded\",\"extensions\":"
                 "{\"code\":\"RATE_LIMITED\",\"retryAfter\":3}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, 3000);
        assert_non_null(strstr(r.error, "RATE_LIMITED"));
        dgql_result_clear(&r);

        /* Fractional seconds. */
        classify(&r, 200,
                 "{\"errors\":[{\"extensions\":{\"code\":\"RATE_LIMITED\","
                 "\"retryAfter\":1.5}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, 1500);
        dgql_result_clear(&r);

        /* Without retryAfter, or not a number: not said. */
        classify(&r, 200, "{\"errors\":[{\"extensions\":{\"code\":\"RATE_LIMITED\"}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);
        classify(&r, 200,
                 "{\"errors\":[{\"extensions\":{\"code\":\"RATE_LIMITED\","
                 "\"retryAfter\":\"3\"}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);
}

static void test_graphql_rate_limited_not_first(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 200,
                 "{\"errors\":[{\"message\":\"a\",\"extensions\":{\"code\":\"X\"}},"
                 "{\"message\":\"b\",\"extensions\":{\"code\":\"RATE_LIMITED\","
                 "\"retryAfter\":2}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, 2000);
        dgql_result_clear(&r);
}

static void test_graphql_unauthenticated(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 200,
                 "{\"data\":null,\"errors\":[{\"message\":\"Invalid API key\","
                 "\"extensions\":{\"code\":\"UNAUTHENTICATED\"}}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_AUTH);
        assert_non_null(strstr(r.error, "UNAUTHENTICATED"));
        dgql_result_clear(&r);
}

static void test_http_auth(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 401, "{\"errors\":[{\"message\":\"no\"}]}", NULL);
        assert_int_equal(r.outcome, DGQL_AUTH);
        assert_non_null(strstr(r.error, "401"));
        assert_null(r.data);
        assert_null(r.errors);
        dgql_result_clear(&r);
        classify(&r, 403, NULL, NULL);
        assert_int_equal(r.outcome, DGQL_AUTH);
        assert_non_null(strstr(r.error, "403"));
        dgql_result_clear(&r);
}

static void test_http_429(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 429, "slow down", "7");
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, 7000);
        dgql_result_clear(&r);

        classify(&r, 429, "", NULL);
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);

        classify(&r, 429, "", "");
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);

        classify(&r, 429, "", "0");
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, 0);
        dgql_result_clear(&r);

        /* Not seconds (an HTTP date, garbage, negative): not said. */
        classify(&r, 429, "", "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);
        classify(&r, 429, "", "soon");
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);
        classify(&r, 429, "", "-5");
        assert_int_equal(r.retry_after_ms, -1);
        dgql_result_clear(&r);

        /* Huge values are capped (one hour), never overflow. */
        classify(&r, 429, "", "99999999999999999999999");
        assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
        assert_true(r.retry_after_ms > 0 && r.retry_after_ms <= 3600 * 1000L);
        dgql_result_clear(&r);
}

static void test_http_5xx_and_others(void **state)
{
        static const long statuses[] = {500, 502, 503, 504, 400, 404, 301, 204, 0};
        struct dgql_result r;

        (void)state;
        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
                /* Even a well-formed GraphQL body does not make a non-200 a success. */
                classify(&r, statuses[i], "{\"data\":{\"x\":1}}", "5");
                assert_int_equal(r.outcome, DGQL_FAILED);
                assert_int_equal(r.retry_after_ms, -1);
                assert_null(r.data);
                assert_true(strlen(r.error) > 0);
                dgql_result_clear(&r);
        }
        classify(&r, 503, "<html>Service Unavailable</html>", NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_non_null(strstr(r.error, "503"));
        dgql_result_clear(&r);
}

static void test_not_json_or_not_object(void **state)
{
        static const char *const bodies[] = {
            "<html>oops</html>", "",         "{\"data\":", "[]",
            "[{\"data\":{}}]",   "\"data\"", "42",         "null",
        };
        struct dgql_result r;

        (void)state;
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                classify(&r, 200, bodies[i], NULL);
                assert_int_equal(r.outcome, DGQL_FAILED);
                assert_null(r.data);
                assert_null(r.errors);
                assert_true(strlen(r.error) > 0);
                dgql_result_clear(&r);
        }
        classify(&r, 200, NULL, NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        dgql_result_clear(&r);
}

static void test_body_not_nul_terminated(void **state)
{
        static const char buf[] = "{\"data\":{\"x\":1}}GARBAGE";
        struct dgql_result r;

        (void)state;
        memset(&r, 0, sizeof(r));
        dgql_classify(&r, 200, buf, strlen("{\"data\":{\"x\":1}}"), NULL);
        assert_int_equal(r.outcome, DGQL_OK);
        dgql_result_clear(&r);
}

static void test_empty_object_and_null_data(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 200, "{}", NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_null(r.data);
        assert_true(strlen(r.error) > 0);
        dgql_result_clear(&r);

        classify(&r, 200, "{\"data\":null,\"errors\":[]}", NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_null(r.data);
        assert_null(r.errors);
        assert_true(strlen(r.error) > 0);
        dgql_result_clear(&r);

        classify(&r, 200, "{\"data\":null}", NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        dgql_result_clear(&r);

        /* "errors" that is not an array is no error list. */
        classify(&r, 200, "{\"data\":null,\"errors\":{\"message\":\"x\"}}", NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_null(r.errors);
        dgql_result_clear(&r);
}

static void test_error_text_bounded(void **state)
{
        char body[4096];
        char msg[2000];
        struct dgql_result r;

        (void)state;
        memset(msg, 'm', sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';
        snprintf(
            body, sizeof(body),
            "{\"errors\":[{\"message\":\"%s\",\"extensions\":{\"code\":\"BAD\"}}]}",
            msg);
        classify(&r, 200, body, NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_true(strlen(r.error) < sizeof(r.error));
        assert_non_null(strstr(r.error, "BAD"));
        dgql_result_clear(&r);
}

static void test_clear_twice_and_on_empty(void **state)
{
        struct dgql_result r;

        (void)state;
        memset(&r, 0, sizeof(r));
        dgql_result_clear(&r);
        classify(&r, 200, "{\"data\":{},\"errors\":[{\"message\":\"x\"}]}", NULL);
        dgql_result_clear(&r);
        dgql_result_clear(&r);
        assert_null(r.data);
        assert_null(r.errors);
}

/* retryAfter comes from Duro's answer: huge, negative or odd values stay in range. */
static void test_graphql_retry_after_clamped(void **state)
{
        static const struct {
                const char *value;
                long want;
        } cases[] = {{"1e300", 3600 * 1000L},
                     {"86400", 3600 * 1000L},
                     {"-5", -1},
                     {"\"7\"", -1},
                     {"2.5", 2500}};
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char body[200];
                struct dgql_result r;
                snprintf(body, sizeof(body),
                         "{\"errors\":[{\"extensions\":{\"code\":\"RATE_LIMITED\","
                         "\"retryAfter\":%s}}]}",
                         cases[i].value);
                classify(&r, 200, body, NULL);
                assert_int_equal(r.outcome, DGQL_RATE_LIMITED);
                assert_int_equal(r.retry_after_ms, cases[i].want);
                dgql_result_clear(&r);
        }
}

static void test_outcome_names(void **state)
{
        (void)state;
        assert_string_equal(dgql_outcome_name(DGQL_OK), "ok");
        assert_string_equal(dgql_outcome_name(DGQL_RATE_LIMITED), "rate_limited");
        assert_string_equal(dgql_outcome_name(DGQL_AUTH), "auth");
        assert_string_equal(dgql_outcome_name(DGQL_FAILED), "failed");
        assert_string_equal(dgql_outcome_name((enum dgql_outcome)9), "?");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ok_with_data),
            cmocka_unit_test(test_ok_data_outlives_clear_when_taken),
            cmocka_unit_test(test_ok_empty_errors_array_ignored),
            cmocka_unit_test(test_graphql_error_internal),
            cmocka_unit_test(test_graphql_error_with_partial_data),
            cmocka_unit_test(test_graphql_error_without_code),
            cmocka_unit_test(test_graphql_rate_limited),
            cmocka_unit_test(test_graphql_rate_limited_not_first),
            cmocka_unit_test(test_graphql_unauthenticated),
            cmocka_unit_test(test_http_auth),
            cmocka_unit_test(test_http_429),
            cmocka_unit_test(test_http_5xx_and_others),
            cmocka_unit_test(test_not_json_or_not_object),
            cmocka_unit_test(test_body_not_nul_terminated),
            cmocka_unit_test(test_empty_object_and_null_data),
            cmocka_unit_test(test_error_text_bounded),
            cmocka_unit_test(test_clear_twice_and_on_empty),
            cmocka_unit_test(test_graphql_retry_after_clamped),
            cmocka_unit_test(test_outcome_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
