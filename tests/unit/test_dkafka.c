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

#define MAXARGS   16
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})

/* Collects passthrough properties through dconf_load, as the programs do. */
static void props_from(struct dconf_props *props, const char *const *args,
                       const char *const *env)
{
        char *argv[MAXARGS + 2], *envp[MAXARGS + 1], err[256];
        int argc = 0, n = 0, dummy = 0;

        argv[argc++] = (char *)"prog";
        for (; args && *args; args++)
                argv[argc++] = (char *)*args;
        argv[argc] = NULL;
        for (; env && *env; env++)
                envp[n++] = (char *)*env;
        envp[n] = NULL;
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
        for (size_t i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++) {
                char e[128];
                snprintf(e, sizeof(e), "%s=V4lue-%zu", guarded[i].env, i);
                expect_refused(NULL, ENV(e), guarded[i].prop, guarded[i].env, "V4lue-");
        }
}

static void test_refused_from_scoped_env(void **state)
{
        (void)state;
        expect_refused(NULL, ENV("DURO_RDKAFKA_PRODUCER_ACKS=1"), "acks",
                       "DURO_RDKAFKA_PRODUCER_ACKS", NULL);
        expect_refused(NULL, ENV("DURO_RDKAFKA_PRODUCER_ENABLE_IDEMPOTENCE=false"),
                       "enable.idempotence", NULL, NULL);
        expect_refused(NULL,
                       ENV("DURO_RDKAFKA_CONSUMER_ISOLATION_LEVEL=read_uncommitted"),
                       "isolation.level", "DURO_RDKAFKA_CONSUMER_ISOLATION_LEVEL",
                       "read_uncommitted");
        expect_refused(NULL, ENV("DURO_RDKAFKA_CONSUMER_ENABLE_AUTO_COMMIT=true"),
                       "enable.auto.commit", NULL, NULL);
        expect_refused(NULL, ENV("DURO_RDKAFKA_PRODUCER_PARTITIONER=random"),
                       "partitioner", NULL, "random");
}

static void test_refused_from_flag(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++) {
                char x[128];
                snprintf(x, sizeof(x), "%s=V4lue-%zu", guarded[i].prop, i);
                expect_refused(ARGS("-X", x), NULL, guarded[i].prop, "-X", "V4lue-");
                snprintf(x, sizeof(x), "-X%s=V4lue-%zu", guarded[i].prop, i);
                expect_refused(ARGS(x), NULL, guarded[i].prop, "-X", "V4lue-");
        }
}

static void test_refused_among_allowed(void **state)
{
        (void)state;
        /* one bad property among good ones is still refused */
        expect_refused(ARGS("-X", "linger.ms=5", "-X", "acks=0", "-X", "batch.size=9"),
                       ENV("DURO_RDKAFKA_COMPRESSION_TYPE=lz4"), "acks", NULL, NULL);
}

static void test_secret_from_flag_refused(void **state)
{
        (void)state;
        expect_refused(ARGS("-X", "sasl.password=hunter2"), NULL, "sasl.password", "-X",
                       "hunter2");
        expect_refused(ARGS("-Xsasl.password=hunter2"), NULL, "sasl.password", NULL,
                       "hunter2");
        expect_refused(ARGS("-X", "ssl.key.password=hunter2"), NULL, "ssl.key.password",
                       NULL, "hunter2");
        expect_refused(ARGS("-X", "ssl.keystore.password=hunter2"), NULL,
                       "ssl.keystore.password", NULL, "hunter2");
        expect_refused(ARGS("-X", "sasl.oauthbearer.client.secret=hunter2"), NULL,
                       "sasl.oauthbearer.client.secret", NULL, "hunter2");
        expect_refused(ARGS("-X", "ssl.key.pem=-----BEGIN hunter2"), NULL,
                       "ssl.key.pem", NULL, "hunter2");
        expect_refused(ARGS("-X", "sasl.oauthbearer.config=principal=hunter2"), NULL,
                       "sasl.oauthbearer.config", NULL, "hunter2");
}

static void test_secret_from_env_allowed(void **state)
{
        (void)state;
        expect_allowed(NULL, ENV("DURO_RDKAFKA_SASL_PASSWORD=hunter2"));
        expect_allowed(NULL, ENV("DURO_RDKAFKA_SSL_KEY_PASSWORD=hunter2",
                                 "DURO_RDKAFKA_PRODUCER_SASL_PASSWORD=x"));
        /* and non-secret properties with -X are fine */
        expect_allowed(ARGS("-X", "linger.ms=5", "-X", "sasl.username=bob", "-X",
                            "security.protocol=SASL_SSL"),
                       ENV("DURO_RDKAFKA_SASL_MECHANISMS=PLAIN"));
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
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512], val[64];
        size_t vs = sizeof(val);

        (void)state;
        assert_int_equal(dkafka_conf_set(conf, "linger.ms", "7", err, sizeof(err)), 0);
        assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", val, &vs),
                         RD_KAFKA_CONF_OK);
        assert_string_equal(val, "7");
        /* a bad non-secret value is named with its value */
        assert_int_equal(dkafka_conf_set(conf, "linger.ms", "abc", err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "linger.ms"));
        assert_non_null(strstr(err, "abc"));
        assert_int_equal(
            dkafka_conf_set(conf, "no.such.property", "v4l", err, sizeof(err)), -1);
        assert_non_null(strstr(err, "no.such.property"));
        /* a rejected secret property never shows its value */
        assert_int_equal(
            dkafka_conf_set(conf, "sasl.bogus.password", "hunter2", err, sizeof(err)),
            -1);
        assert_non_null(strstr(err, "sasl.bogus.password"));
        assert_null(strstr(err, "hunter2"));
        assert_int_equal(
            dkafka_conf_set(conf, "my.client.secret", "hunter2", err, sizeof(err)), -1);
        assert_non_null(strstr(err, "my.client.secret"));
        assert_null(strstr(err, "hunter2"));
        /* a good secret is just set */
        assert_int_equal(
            dkafka_conf_set(conf, "sasl.password", "hunter2", err, sizeof(err)), 0);
        rd_kafka_conf_destroy(conf);
}

static void conf_get(rd_kafka_conf_t *conf, const char *name, char *val, size_t size)
{
        size_t vs = size;

        assert_int_equal(rd_kafka_conf_get(conf, name, val, &vs), RD_KAFKA_CONF_OK);
}

static void test_conf_new_scopes(void **state)
{
        struct dconf_props props;
        rd_kafka_conf_t *conf;
        char err[512], val[256];

        (void)state;
        props_from(&props, ARGS("-X", "socket.timeout.ms=12345"),
                   ENV("DURO_RDKAFKA_CLIENT_RACK=r1",
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
        conf_get(conf, "bootstrap.servers", val, sizeof(val));
        assert_string_equal(val, "h1:9092,h2:9092");
        conf_get(conf, "client.id", val, sizeof(val));
        assert_string_equal(val, "duro-test");
        conf_get(conf, "client.rack", val, sizeof(val));
        assert_string_equal(val, "r1");
        conf_get(conf, "socket.timeout.ms", val, sizeof(val));
        assert_string_equal(val, "12345");
        conf_get(conf, "linger.ms", val, sizeof(val));
        assert_string_equal(val, "7");
        conf_get(conf, "fetch.wait.max.ms", val, sizeof(val));
        assert_string_not_equal(val, "77"); /* consumer-only: not applied */
        rd_kafka_conf_destroy(conf);

        conf = dkafka_conf_new("h1:9092", "duro-test", &props, DCONF_SCOPE_CONSUMER,
                               err, sizeof(err));
        if (!conf)
                fail_msg("dkafka_conf_new: %s", err);
        conf_get(conf, "fetch.wait.max.ms", val, sizeof(val));
        assert_string_equal(val, "77");
        conf_get(conf, "linger.ms", val, sizeof(val));
        assert_string_not_equal(val, "7");
        rd_kafka_conf_destroy(conf);
        dconf_props_free(&props);
}

static void test_conf_new_rejects(void **state)
{
        struct dconf_props props;
        rd_kafka_conf_t *conf;
        char err[512];

        (void)state;
        props_from(&props, NULL, ENV("DURO_RDKAFKA_LINGER_MS=soon"));
        conf = dkafka_conf_new("h:9092", "c", &props, DCONF_SCOPE_PRODUCER, err,
                               sizeof(err));
        assert_null(conf);
        assert_non_null(strstr(err, "linger.ms"));
        assert_non_null(strstr(err, "DURO_RDKAFKA_LINGER_MS"));
        dconf_props_free(&props);

        props_from(&props, NULL, ENV("DURO_RDKAFKA_SASL_BOGUS_PASSWORD=hunter2"));
        conf = dkafka_conf_new("h:9092", "c", &props, DCONF_SCOPE_PRODUCER, err,
                               sizeof(err));
        assert_null(conf);
        assert_non_null(strstr(err, "sasl.bogus.password"));
        assert_non_null(strstr(err, "DURO_RDKAFKA_SASL_BOGUS_PASSWORD"));
        assert_null(strstr(err, "hunter2"));
        dconf_props_free(&props);

        /* a property of the other scope is not applied, so not rejected */
        props_from(&props, NULL, ENV("DURO_RDKAFKA_CONSUMER_LINGER_MS=soon"));
        conf = dkafka_conf_new("h:9092", "c", &props, DCONF_SCOPE_PRODUCER, err,
                               sizeof(err));
        assert_non_null(conf);
        rd_kafka_conf_destroy(conf);
        dconf_props_free(&props);
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
