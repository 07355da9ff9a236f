/* Unit tests for dkafka: refused and secret passthrough properties, conf set-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dconf.h"
#include "dkafka.h"
#include "tutil.h"

#define MAXARGS 16

/* Collects passthrough properties through dconf_load, as the programs do. */
static void props_from(struct dconf_props *props, const char *const *args,
                       const char *const *env)
{
        char *argv[MAXARGS + 2], *envp[MAXARGS + 1], err[256];
        int argc = tutil_vec(argv, TU_NELEM(argv), "prog", args), dummy = 0;

        tutil_vec(envp, TU_NELEM(envp), NULL, env);
        if (dconf_load(NULL, 0, &dummy, argc, argv, envp, "prog", props, err,
                       sizeof(err)) != DCONF_OK)
                fail_msg("dconf_load: %s", err);
}

/* Expects dkafka_check_props to refuse, with err naming need1 and need2 and never
 * holding the value. */
static void expect_refused(const char *const *args, const char *const *env,
                           const char *need1, const char *need2, const char *value)
{
        struct dconf_props props;
        char err[256] = "";

        props_from(&props, args, env);
        if (dkafka_check_props(&props, err, sizeof(err)) != -1)
                fail_msg("not refused (%s %s)", need1, need2 ? need2 : "");
        if (!strstr(err, need1))
                fail_msg("error \"%s\" lacks \"%s\"", err, need1);
        if (need2 && !strstr(err, need2))
                fail_msg("error \"%s\" lacks \"%s\"", err, need2);
        if (value && strstr(err, value))
                fail_msg("error \"%s\" contains the value \"%s\"", err, value);
        assert_null(strchr(err, '\n'));
        dconf_props_free(&props);
}

static void expect_allowed(const char *const *args, const char *const *env)
{
        struct dconf_props props;
        char err[256] = "";

        props_from(&props, args, env);
        if (dkafka_check_props(&props, err, sizeof(err)) != 0)
                fail_msg("refused: %s", err);
        dconf_props_free(&props);
}

/* One set of properties that dkafka_check_props must refuse, with what the error must
 * name (need2 may be NULL) and the value it must not show (NULL: not checked). */
struct refusal {
        const char *const *args, *const *env;
        const char *need1, *need2, *value;
};

static void expect_all_refused(const struct refusal *c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                expect_refused(c[i].args, c[i].env, c[i].need1, c[i].need2, c[i].value);
}

static const struct {
        const char *prop, *env;
} guarded[] = {
    {"enable.idempotence", "DURO_RDKAFKA_ENABLE_IDEMPOTENCE"},
    {"acks", "DURO_RDKAFKA_ACKS"},
    {"isolation.level", "DURO_RDKAFKA_ISOLATION_LEVEL"},
    {"enable.auto.commit", "DURO_RDKAFKA_ENABLE_AUTO_COMMIT"},
    {"transactional.id", "DURO_RDKAFKA_TRANSACTIONAL_ID"},
    {"partitioner", "DURO_RDKAFKA_PARTITIONER"},
    {"allow.auto.create.topics", "DURO_RDKAFKA_ALLOW_AUTO_CREATE_TOPICS"},
    {"request.required.acks", "DURO_RDKAFKA_REQUEST_REQUIRED_ACKS"}, /* acks alias */
};

static void test_refused_from_env(void **state)
{
        (void)state;
        for (size_t i = 0; i < TU_NELEM(guarded); i++) {
                char e[128];
                snprintf(e, sizeof(e), "%s=V4lue-%zu", guarded[i].env, i);
                expect_refused(NULL, TU_ENV(e), guarded[i].prop, guarded[i].env,
                               "V4lue-");
        }
}

static void test_refused_from_scoped_env(void **state)
{
        const struct refusal cases[] = {
            {NULL, TU_ENV("DURO_RDKAFKA_PRODUCER_ACKS=1"), "acks",
             "DURO_RDKAFKA_PRODUCER_ACKS", NULL},
            {NULL, TU_ENV("DURO_RDKAFKA_PRODUCER_ENABLE_IDEMPOTENCE=false"),
             "enable.idempotence", NULL, NULL},
            {NULL, TU_ENV("DURO_RDKAFKA_CONSUMER_ISOLATION_LEVEL=read_uncommitted"),
             "isolation.level", "DURO_RDKAFKA_CONSUMER_ISOLATION_LEVEL",
             "read_uncommitted"},
            {NULL, TU_ENV("DURO_RDKAFKA_CONSUMER_ENABLE_AUTO_COMMIT=true"),
             "enable.auto.commit", NULL, NULL},
            {NULL, TU_ENV("DURO_RDKAFKA_PRODUCER_PARTITIONER=random"), "partitioner",
             NULL, "random"},
        };

        (void)state;
        expect_all_refused(cases, TU_NELEM(cases));
}

static void test_refused_from_flag(void **state)
{
        (void)state;
        for (size_t i = 0; i < TU_NELEM(guarded); i++) {
                char x[128];
                snprintf(x, sizeof(x), "%s=V4lue-%zu", guarded[i].prop, i);
                expect_refused(TU_ARGS("-X", x), NULL, guarded[i].prop, "-X", "V4lue-");
                snprintf(x, sizeof(x), "-X%s=V4lue-%zu", guarded[i].prop, i);
                expect_refused(TU_ARGS(x), NULL, guarded[i].prop, "-X", "V4lue-");
        }
}

static void test_refused_among_allowed(void **state)
{
        (void)state;
        /* one bad property among good ones is still refused */
        expect_refused(
            TU_ARGS("-X", "linger.ms=5", "-X", "acks=0", "-X", "batch.size=9"),
            TU_ENV("DURO_RDKAFKA_COMPRESSION_TYPE=lz4"), "acks", NULL, NULL);
}

static void test_secret_from_flag_refused(void **state)
{
        const struct refusal cases[] = {
            {TU_ARGS("-X", "sasl.password=hunter2"), NULL, "sasl.password", "-X",
             "hunter2"},
            {TU_ARGS("-Xsasl.password=hunter2"), NULL, "sasl.password", NULL,
             "hunter2"},
            {TU_ARGS("-X", "ssl.key.password=hunter2"), NULL, "ssl.key.password", NULL,
             "hunter2"},
            {TU_ARGS("-X", "ssl.keystore.password=hunter2"), NULL,
             "ssl.keystore.password", NULL, "hunter2"},
            {TU_ARGS("-X", "sasl.oauthbearer.client.secret=hunter2"), NULL,
             "sasl.oauthbearer.client.secret", NULL, "hunter2"},
            {TU_ARGS("-X", "ssl.key.pem=-----BEGIN hunter2"), NULL, "ssl.key.pem", NULL,
             "hunter2"},
            {TU_ARGS("-X", "sasl.oauthbearer.config=principal=hunter2"), NULL,
             "sasl.oauthbearer.config", NULL, "hunter2"},
        };

        (void)state;
        expect_all_refused(cases, TU_NELEM(cases));
}

static void test_secret_from_env_allowed(void **state)
{
        (void)state;
        expect_allowed(NULL, TU_ENV("DURO_RDKAFKA_SASL_PASSWORD=hunter2"));
        expect_allowed(NULL, TU_ENV("DURO_RDKAFKA_SSL_KEY_PASSWORD=hunter2",
                                    "DURO_RDKAFKA_PRODUCER_SASL_PASSWORD=x"));
        /* and non-secret properties with -X are fine */
        expect_allowed(TU_ARGS("-X", "linger.ms=5", "-X", "sasl.username=bob", "-X",
                               "security.protocol=SASL_SSL"),
                       TU_ENV("DURO_RDKAFKA_SASL_MECHANISMS=PLAIN"));
        expect_allowed(NULL, NULL);
}

static void test_prop_is_secret(void **state)
{
        (void)state;
        assert_true(dkafka_prop_is_secret("sasl.password"));
        assert_true(dkafka_prop_is_secret("ssl.key.password"));
        assert_true(dkafka_prop_is_secret("ssl.keystore.password"));
        assert_true(dkafka_prop_is_secret("sasl.oauthbearer.client.secret"));
        assert_true(dkafka_prop_is_secret("ssl.key.pem"));
        assert_true(dkafka_prop_is_secret("sasl.oauthbearer.config"));
        assert_false(dkafka_prop_is_secret("sasl.username"));
        assert_false(dkafka_prop_is_secret("ssl.key.location"));
        assert_false(dkafka_prop_is_secret("linger.ms"));
        assert_false(dkafka_prop_is_secret("bootstrap.servers"));
}

static void test_conf_set(void **state)
{
        /* refused: the error names the property and shows the value (1), must not
         * show it (0) or may (-1) */
        static const struct {
                const char *prop, *value;
                int shown;
        } bad[] = {
            /* a bad non-secret value is named with its value */
            {"linger.ms", "abc", 1},
            {"no.such.property", "v4l", -1},
            /* a rejected secret property never shows its value */
            {"sasl.bogus.password", "hunter2", 0},
            {"my.client.secret", "hunter2", 0},
        };
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512], val[64];
        size_t vs = sizeof(val);

        (void)state;
        assert_int_equal(dkafka_conf_set(conf, "linger.ms", "7", err, sizeof(err)), 0);
        assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", val, &vs),
                         RD_KAFKA_CONF_OK);
        assert_string_equal(val, "7");
        for (size_t i = 0; i < TU_NELEM(bad); i++) {
                assert_int_equal(
                    dkafka_conf_set(conf, bad[i].prop, bad[i].value, err, sizeof(err)),
                    -1);
                assert_non_null(strstr(err, bad[i].prop));
                if (bad[i].shown == 1)
                        assert_non_null(strstr(err, bad[i].value));
                else if (bad[i].shown == 0)
                        assert_null(strstr(err, bad[i].value));
        }
        /* a good secret is just set */
        assert_int_equal(
            dkafka_conf_set(conf, "sasl.password", "hunter2", err, sizeof(err)), 0);
        rd_kafka_conf_destroy(conf);
}

/* Expects conf to hold name = want (same 1) or anything else (same 0). */
static void expect_conf(rd_kafka_conf_t *conf, const char *name, const char *want,
                        int same)
{
        char val[256];
        size_t vs = sizeof(val);

        assert_int_equal(rd_kafka_conf_get(conf, name, val, &vs), RD_KAFKA_CONF_OK);
        if (same)
                assert_string_equal(val, want);
        else
                assert_string_not_equal(val, want);
}

static void test_conf_new_scopes(void **state)
{
        struct dconf_props props;
        rd_kafka_conf_t *conf;
        char err[512];

        (void)state;
        props_from(&props, TU_ARGS("-X", "socket.timeout.ms=12345"),
                   TU_ENV("DURO_RDKAFKA_CLIENT_RACK=r1",
                          "DURO_RDKAFKA_PRODUCER_LINGER_MS=7",
                          "DURO_RDKAFKA_CONSUMER_FETCH_WAIT_MAX_MS=77"));
        assert_true(dkafka_props_has(&props, DCONF_SCOPE_PRODUCER, "linger.ms"));
        assert_false(dkafka_props_has(&props, DCONF_SCOPE_CONSUMER, "linger.ms"));
        assert_true(
            dkafka_props_has(&props, DCONF_SCOPE_CONSUMER, "fetch.wait.max.ms"));
        assert_true(dkafka_props_has(&props, DCONF_SCOPE_CONSUMER, "client.rack"));
        assert_true(
            dkafka_props_has(&props, DCONF_SCOPE_PRODUCER, "socket.timeout.ms"));
        assert_false(dkafka_props_has(&props, DCONF_SCOPE_PRODUCER, "acks"));

        conf = dkafka_conf_new("h1:9092,h2:9092", "duro-test", &props,
                               DCONF_SCOPE_PRODUCER, err, sizeof(err));
        if (!conf)
                fail_msg("dkafka_conf_new: %s", err);
        expect_conf(conf, "bootstrap.servers", "h1:9092,h2:9092", 1);
        expect_conf(conf, "client.id", "duro-test", 1);
        expect_conf(conf, "client.rack", "r1", 1);
        expect_conf(conf, "socket.timeout.ms", "12345", 1);
        expect_conf(conf, "linger.ms", "7", 1);
        /* consumer-only: not applied */
        expect_conf(conf, "fetch.wait.max.ms", "77", 0);
        rd_kafka_conf_destroy(conf);

        conf = dkafka_conf_new("h1:9092", "duro-test", &props, DCONF_SCOPE_CONSUMER,
                               err, sizeof(err));
        if (!conf)
                fail_msg("dkafka_conf_new: %s", err);
        expect_conf(conf, "fetch.wait.max.ms", "77", 1);
        expect_conf(conf, "linger.ms", "7", 0);
        rd_kafka_conf_destroy(conf);
        dconf_props_free(&props);
}

static void test_conf_new_rejects(void **state)
{
        /* environment -> whether the producer's conf is refused, what the error names,
         * and the value it must not show */
        const struct {
                const char *const *env;
                int refused;
                const char *prop, *origin, *value;
        } cases[] = {
            {TU_ENV("DURO_RDKAFKA_LINGER_MS=soon"), 1, "linger.ms",
             "DURO_RDKAFKA_LINGER_MS", NULL},
            {TU_ENV("DURO_RDKAFKA_SASL_BOGUS_PASSWORD=hunter2"), 1,
             "sasl.bogus.password", "DURO_RDKAFKA_SASL_BOGUS_PASSWORD", "hunter2"},
            /* a property of the other scope is not applied, so not rejected */
            {TU_ENV("DURO_RDKAFKA_CONSUMER_LINGER_MS=soon"), 0, NULL, NULL, NULL},
        };

        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                struct dconf_props props;
                rd_kafka_conf_t *conf;
                char err[512];

                props_from(&props, NULL, cases[i].env);
                conf = dkafka_conf_new("h:9092", "c", &props, DCONF_SCOPE_PRODUCER, err,
                                       sizeof(err));
                if (cases[i].refused) {
                        assert_null(conf);
                        assert_non_null(strstr(err, cases[i].prop));
                        assert_non_null(strstr(err, cases[i].origin));
                        if (cases[i].value)
                                assert_null(strstr(err, cases[i].value));
                } else {
                        assert_non_null(conf);
                        rd_kafka_conf_destroy(conf);
                }
                dconf_props_free(&props);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_refused_from_env),
            cmocka_unit_test(test_refused_from_scoped_env),
            cmocka_unit_test(test_refused_from_flag),
            cmocka_unit_test(test_refused_among_allowed),
            cmocka_unit_test(test_secret_from_flag_refused),
            cmocka_unit_test(test_secret_from_env_allowed),
            cmocka_unit_test(test_prop_is_secret),
            cmocka_unit_test(test_conf_set),
            cmocka_unit_test(test_conf_new_scopes),
            cmocka_unit_test(test_conf_new_rejects),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
