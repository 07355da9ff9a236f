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
#include "tutil.h"

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

/* Answers classified by the tests below, each tagged with the test that checks it:
 * HTTP status, body (NULL: none), Retry-After (NULL: none), and what must come out.
 * A field left out of a case is not checked. */
enum gql_group {
        G_OK_EMPTY_ERRORS,
        G_INTERNAL,
        G_PARTIAL,
        G_NO_CODE,
        G_RATE,
        G_RATE_NOT_FIRST,
        G_UNAUTH,
        G_HTTP_AUTH,
        G_HTTP_429,
        G_EMPTY,
};

enum { ANY_OUTCOME = -1 }; /* outcome not checked */
enum {
        RETRY_EQ     = 1,
        RETRY_CAPPED = 2
};                                /* retry_after_ms == retry_ms, or in (0, 1 h] */
enum { IS_SET = 1, IS_NULL = 2 }; /* data, errors */

#define RETRY_MS(v) .retry = RETRY_EQ, .retry_ms = (v)

static const struct gql_case {
        enum gql_group group;
        long status;
        const char *body, *retry_after;
        int outcome;
        int retry;
        long retry_ms;
        const char *error, *error2; /* in r.error; "": r.error is not empty */
        int data, errors;
        size_t nerrors; /* json_array_size(errors), when not 0 */
} gql_cases[] = {
    {G_OK_EMPTY_ERRORS, 200, "{\"data\":{\"x\":1},\"errors\":[]}", NULL, DGQL_OK,
     .errors = IS_NULL},
    {G_INTERNAL, 200,
     "{\"data\":null,\"errors\":[{\"message\":\"boom\",\"extensions\":"
     "{\"code\":\"INTERNAL_SERVER_ERROR\"}}]}",
     NULL, DGQL_FAILED, RETRY_MS(-1), .error = "INTERNAL_SERVER_ERROR",
     .error2 = "boom", .errors = IS_SET, .nerrors = 1, .data = IS_NULL},
    /* Errors win over partial data; the data is still handed over. */
    {G_PARTIAL, 200,
     "{\"data\":{\"x\":1},\"errors\":[{\"message\":\"no\",\"extensions\":"
     "{\"code\":\"FORBIDDEN\"}}]}",
     NULL, DGQL_FAILED, .error = "FORBIDDEN", .data = IS_SET},
    {G_NO_CODE, 200, "{\"errors\":[{\"message\":\"Syntax Error\"}]}", NULL, DGQL_FAILED,
     .error = "Syntax Error"},
    {G_NO_CODE, 200, "{\"errors\":[42]}", NULL, DGQL_FAILED, .error = ""},
    /* Duro's documented form. */
    {G_RATE, 200,
     "{\"errors\":[{\"message\":\"Rate limit exceeded\",\"extensions\":"
     "{\"code\":\"RATE_LIMITED\",\"retryAfter\":3}}]}",
     NULL, DGQL_RATE_LIMITED, RETRY_MS(3000), .error = "RATE_LIMITED"},
    /* Fractional seconds. */
    {G_RATE, 200,
     "{\"errors\":[{\"extensions\":{\"code\":\"RATE_LIMITED\","
     "\"retryAfter\":1.5}}]}",
     NULL, DGQL_RATE_LIMITED, RETRY_MS(1500)},
    /* Without retryAfter, or not a number: not said. */
    {G_RATE, 200, "{\"errors\":[{\"extensions\":{\"code\":\"RATE_LIMITED\"}}]}", NULL,
     DGQL_RATE_LIMITED, RETRY_MS(-1)},
    {G_RATE, 200,
     "{\"errors\":[{\"extensions\":{\"code\":\"RATE_LIMITED\","
     "\"retryAfter\":\"3\"}}]}",
     NULL, DGQL_RATE_LIMITED, RETRY_MS(-1)},
    {G_RATE_NOT_FIRST, 200,
     "{\"errors\":[{\"message\":\"a\",\"extensions\":{\"code\":\"X\"}},"
     "{\"message\":\"b\",\"extensions\":{\"code\":\"RATE_LIMITED\","
     "\"retryAfter\":2}}]}",
     NULL, DGQL_RATE_LIMITED, RETRY_MS(2000)},
    {G_UNAUTH, 200,
     "{\"data\":null,\"errors\":[{\"message\":\"Invalid API key\","
     "\"extensions\":{\"code\":\"UNAUTHENTICATED\"}}]}",
     NULL, DGQL_AUTH, .error = "UNAUTHENTICATED"},
    {G_HTTP_AUTH, 401, "{\"errors\":[{\"message\":\"no\"}]}", NULL, DGQL_AUTH,
     .error = "401", .data = IS_NULL, .errors = IS_NULL},
    {G_HTTP_AUTH, 403, NULL, NULL, DGQL_AUTH, .error = "403"},
    {G_HTTP_429, 429, "slow down", "7", DGQL_RATE_LIMITED, RETRY_MS(7000)},
    {G_HTTP_429, 429, "", NULL, DGQL_RATE_LIMITED, RETRY_MS(-1)},
    {G_HTTP_429, 429, "", "", DGQL_RATE_LIMITED, RETRY_MS(-1)},
    {G_HTTP_429, 429, "", "0", DGQL_RATE_LIMITED, RETRY_MS(0)},
    /* Not seconds (an HTTP date, garbage, negative): not said. */
    {G_HTTP_429, 429, "", "Wed, 21 Oct 2015 07:28:00 GMT", DGQL_RATE_LIMITED,
     RETRY_MS(-1)},
    {G_HTTP_429, 429, "", "soon", ANY_OUTCOME, RETRY_MS(-1)},
    {G_HTTP_429, 429, "", "-5", ANY_OUTCOME, RETRY_MS(-1)},
    /* Huge values are capped (one hour), never overflow. */
    {G_HTTP_429, 429, "", "99999999999999999999999", DGQL_RATE_LIMITED,
     .retry = RETRY_CAPPED},
    {G_EMPTY, 200, "{}", NULL, DGQL_FAILED, .data = IS_NULL, .error = ""},
    {G_EMPTY, 200, "{\"data\":null,\"errors\":[]}", NULL, DGQL_FAILED, .data = IS_NULL,
     .errors = IS_NULL, .error = ""},
    {G_EMPTY, 200, "{\"data\":null}", NULL, .outcome = DGQL_FAILED},
    /* "errors" that is not an array is no error list. */
    {G_EMPTY, 200, "{\"data\":null,\"errors\":{\"message\":\"x\"}}", NULL, DGQL_FAILED,
     .errors = IS_NULL},
};

static void expect_json(const json_t *j, int want)
{
        if (want == IS_SET)
                assert_non_null(j);
        else if (want == IS_NULL)
                assert_null(j);
}

static void expect_error_text(const char *error, const char *want)
{
        if (want && !want[0])
                assert_true(strlen(error) > 0);
        else if (want)
                assert_non_null(strstr(error, want));
}

/* Classifies every case of group g (there is at least one) and checks it. */
static void expect_group(enum gql_group g)
{
        size_t n = 0;

        for (size_t i = 0; i < TU_NELEM(gql_cases); i++) {
                const struct gql_case *c = &gql_cases[i];
                struct dgql_result r;

                if (c->group != g)
                        continue;
                classify(&r, c->status, c->body, c->retry_after);
                if (c->outcome != ANY_OUTCOME)
                        assert_int_equal(r.outcome, c->outcome);
                if (c->retry == RETRY_EQ)
                        assert_int_equal(r.retry_after_ms, c->retry_ms);
                else if (c->retry == RETRY_CAPPED)
                        assert_true(r.retry_after_ms > 0 &&
                                    r.retry_after_ms <= 3600 * 1000L);
                expect_error_text(r.error, c->error);
                expect_error_text(r.error, c->error2);
                expect_json(r.data, c->data);
                expect_json(r.errors, c->errors);
                if (c->nerrors)
                        assert_int_equal(json_array_size(r.errors), c->nerrors);
                dgql_result_clear(&r);
                n++;
        }
        assert_true(n > 0);
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
        (void)state;
        expect_group(G_OK_EMPTY_ERRORS);
}

static void test_graphql_error_internal(void **state)
{
        (void)state;
        expect_group(G_INTERNAL);
}

static void test_graphql_error_with_partial_data(void **state)
{
        (void)state;
        expect_group(G_PARTIAL);
}

static void test_graphql_error_without_code(void **state)
{
        (void)state;
        expect_group(G_NO_CODE);
}

static void test_graphql_rate_limited(void **state)
{
        (void)state;
        expect_group(G_RATE);
}

static void test_graphql_rate_limited_not_first(void **state)
{
        (void)state;
        expect_group(G_RATE_NOT_FIRST);
}

static void test_graphql_unauthenticated(void **state)
{
        (void)state;
        expect_group(G_UNAUTH);
}

static void test_http_auth(void **state)
{
        (void)state;
        expect_group(G_HTTP_AUTH);
}

static void test_http_429(void **state)
{
        (void)state;
        expect_group(G_HTTP_429);
}

static void test_http_5xx_and_others(void **state)
{
        static const long statuses[] = {500, 502, 503, 504, 400, 404, 301, 204, 0};
        struct dgql_result r;

        (void)state;
        for (size_t i = 0; i < TU_NELEM(statuses); i++) {
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
        assert_null(r.errors);
        dgql_result_clear(&r);
}

/* A validation error answered with 400 keeps its errors and says the first message. */
static void test_http_400_keeps_graphql_errors(void **state)
{
        struct dgql_result r;

        (void)state;
        classify(&r, 400,
                 "{\"errors\":[{\"message\":\"Cannot query field 'secret' on type "
                 "'Webhook'.\"},{\"message\":\"other\"}]}",
                 NULL);
        assert_int_equal(r.outcome, DGQL_FAILED);
        assert_null(r.data);
        assert_non_null(r.errors);
        assert_int_equal((int)json_array_size(r.errors), 2);
        assert_string_equal(
            r.error, "HTTP 400: GraphQL error: Cannot query field 'secret' on type "
                     "'Webhook'.");
        dgql_result_clear(&r);
        classify(&r, 400, "{\"errors\":[]}", NULL);
        assert_null(r.errors);
        assert_string_equal(r.error, "HTTP 400");
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
        for (size_t i = 0; i < TU_NELEM(bodies); i++) {
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
        (void)state;
        expect_group(G_EMPTY);
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
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
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
            cmocka_unit_test(test_http_400_keeps_graphql_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
