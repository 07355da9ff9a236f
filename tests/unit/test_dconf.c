/* Unit tests for dconf: precedence, types, errors, -X and DURO_RDKAFKA_* props. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dconf.h"
#include "dlog.h"

struct tcfg {
        char *name;
        long long port;
        int verbose;
        char *listen;
        int level;
        char *secret;
        long long secret_num;
        char *opt;
        char *listen2;
};

static const struct dconf_opt tab[] = {
    {"DURO_T_NAME", "name", DCONF_STRING, "dflt", 0, 0, offsetof(struct tcfg, name), 0,
     "a name"},
    {"DURO_T_PORT", "port", DCONF_INT, "10", 1, 100, offsetof(struct tcfg, port), 0,
     "a number"},
    {"DURO_T_VERBOSE", "verbose", DCONF_BOOL, "false", 0, 0,
     offsetof(struct tcfg, verbose), 0, "a switch"},
    {"DURO_T_LISTEN", "listen", DCONF_LISTEN, "0.0.0.0:8080", 0, 0,
     offsetof(struct tcfg, listen), 0, "an address"},
    {"DURO_T_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "info", 0, 0,
     offsetof(struct tcfg, level), 0, "a level"},
    {"DURO_T_SECRET", NULL, DCONF_STRING, NULL, 0, 0, offsetof(struct tcfg, secret),
     DCONF_F_SECRET, "a secret"},
    {"DURO_T_SECRET_NUM", NULL, DCONF_INT, NULL, 1, 10,
     offsetof(struct tcfg, secret_num), DCONF_F_SECRET, "a secret number"},
    {"DURO_T_OPT", "opt", DCONF_STRING, NULL, 0, 0, offsetof(struct tcfg, opt), 0,
     "optional"},
    {"DURO_T_LISTEN2", "listen2", DCONF_LISTEN, NULL, 0, 0,
     offsetof(struct tcfg, listen2), 0, "another address"},
};
#define NTAB (sizeof(tab) / sizeof(tab[0]))

#define MAXARGS 16

struct run {
        struct tcfg cfg;
        struct dconf_props props;
        char err[256];
        enum dconf_result rc;
};

/* Runs dconf_load with NULL-terminated lists of argv (after the program name) and
 * env entries. */
static void load(struct run *r, const char *const *args, const char *const *env)
{
        char *argv[MAXARGS + 2], *envp[MAXARGS + 1];
        int argc = 0, n = 0;

        memset(r, 0, sizeof(*r));
        r->cfg.port  = -99;
        argv[argc++] = (char *)"prog";
        for (; args && *args; args++)
                argv[argc++] = (char *)*args;
        argv[argc] = NULL;
        for (; env && *env; env++)
                envp[n++] = (char *)*env;
        envp[n] = NULL;
        r->rc   = dconf_load(tab, NTAB, &r->cfg, argc, argv, envp, "prog [options]",
                             &r->props, r->err, sizeof(r->err));
}

static void done(struct run *r)
{
        dconf_free(tab, NTAB, &r->cfg);
        dconf_props_free(&r->props);
        assert_null(r->cfg.name);
        assert_null(r->cfg.listen);
        assert_int_equal(r->props.n, 0);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})

static void expect_ok(struct run *r)
{
        if (r->rc != DCONF_OK)
                fail_msg("dconf_load failed: %s", r->err);
}

static void expect_error(struct run *r, const char *needle, const char *forbidden)
{
        if (r->rc != DCONF_ERROR)
                fail_msg("dconf_load did not fail (rc %d)", r->rc);
        assert_true(r->err[0] != '\0');
        assert_null(strchr(r->err, '\n'));
        if (needle && !strstr(r->err, needle))
                fail_msg("error \"%s\" lacks \"%s\"", r->err, needle);
        if (forbidden && strstr(r->err, forbidden))
                fail_msg("error \"%s\" contains \"%s\"", r->err, forbidden);
}

static void test_defaults(void **state)
{
        struct run r;

        (void)state;
        load(&r, NULL, NULL);
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "dflt");
        assert_int_equal(r.cfg.port, 10);
        assert_int_equal(r.cfg.verbose, 0);
        assert_string_equal(r.cfg.listen, "0.0.0.0:8080");
        assert_int_equal(r.cfg.level, DLOG_INFO);
        assert_null(r.cfg.secret);
        assert_int_equal(r.cfg.secret_num, 0);
        assert_null(r.cfg.opt);
        assert_null(r.cfg.listen2);
        assert_int_equal(r.props.n, 0);
        done(&r);
}

static void test_env_overrides_default(void **state)
{
        struct run r;

        (void)state;
        load(&r, NULL,
             ENV("PATH=/bin", "DURO_T_NAME=fromenv", "DURO_T_PORT=42",
                 "DURO_T_VERBOSE=yes", "DURO_T_LISTEN=[::1]:9",
                 "DURO_T_LOG_LEVEL=warning", "DURO_T_SECRET=s3cr3t",
                 "DURO_T_SECRET_NUM=7", "DURO_T_OPT=o"));
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "fromenv");
        assert_int_equal(r.cfg.port, 42);
        assert_int_equal(r.cfg.verbose, 1);
        assert_string_equal(r.cfg.listen, "[::1]:9");
        assert_int_equal(r.cfg.level, DLOG_WARN);
        assert_string_equal(r.cfg.secret, "s3cr3t");
        assert_int_equal(r.cfg.secret_num, 7);
        assert_string_equal(r.cfg.opt, "o");
        done(&r);
}

static void test_env_name_must_match_exactly(void **state)
{
        struct run r;

        (void)state;
        load(&r, NULL, ENV("DURO_T_PORTX=50", "XDURO_T_PORT=51", "DURO_T_POR=52"));
        expect_ok(&r);
        assert_int_equal(r.cfg.port, 10);
        done(&r);
        /* an empty value is a value: a string becomes "", an int is an error */
        load(&r, NULL, ENV("DURO_T_NAME="));
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "");
        done(&r);
        load(&r, NULL, ENV("DURO_T_PORT="));
        expect_error(&r, "DURO_T_PORT", NULL);
        done(&r);
}

static void test_flag_overrides_env(void **state)
{
        struct run r;

        (void)state;
        load(&r,
             ARGS("--name=fromflag", "--port", "77", "--log-level=debug", "--listen",
                  ":81"),
             ENV("DURO_T_NAME=fromenv", "DURO_T_PORT=42", "DURO_T_LOG_LEVEL=error",
                 "DURO_T_LISTEN=1.2.3.4:80"));
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "fromflag");
        assert_int_equal(r.cfg.port, 77);
        assert_int_equal(r.cfg.level, DLOG_DEBUG);
        assert_string_equal(r.cfg.listen, ":81");
        done(&r);
}

static void test_flag_forms(void **state)
{
        struct run r;

        (void)state;
        load(&r, ARGS("--port=5"), NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.port, 5);
        done(&r);
        load(&r, ARGS("--port", "6"), NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.port, 6);
        done(&r);
        /* the last one wins, and the earlier string is freed (ASan would see a leak) */
        load(&r, ARGS("--name=a", "--name", "b", "--port=5", "--port=9"), NULL);
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "b");
        assert_int_equal(r.cfg.port, 9);
        done(&r);
        /* a value may contain '=' and may be empty with --flag= */
        load(&r, ARGS("--name=a=b"), NULL);
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "a=b");
        done(&r);
        load(&r, ARGS("--name="), NULL);
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "");
        done(&r);
        /* --flag value takes the next argument even when it starts with a dash */
        load(&r, ARGS("--name", "--port"), NULL);
        expect_ok(&r);
        assert_string_equal(r.cfg.name, "--port");
        assert_int_equal(r.cfg.port, 10);
        done(&r);
}

static void test_bool_flag(void **state)
{
        struct run r;

        (void)state;
        load(&r, ARGS("--verbose"), NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.verbose, 1);
        done(&r);
        /* the bare flag does not swallow the next argument */
        load(&r, ARGS("--verbose", "--port=3"), NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.verbose, 1);
        assert_int_equal(r.cfg.port, 3);
        done(&r);
        load(&r, ARGS("--verbose=false"), ENV("DURO_T_VERBOSE=true"));
        expect_ok(&r);
        assert_int_equal(r.cfg.verbose, 0);
        done(&r);
        load(&r, ARGS("--verbose=maybe"), NULL);
        expect_error(&r, "--verbose", NULL);
        done(&r);
        load(&r, NULL, ENV("DURO_T_VERBOSE=2"));
        expect_error(&r, "DURO_T_VERBOSE", NULL);
        done(&r);
}

static void test_int_errors(void **state)
{
        static const char *const notint[] = {
            "abc",  "12abc", " 12", "12 ", "1e3",
            "0x10", "1.5",   "-",   "+",   "99999999999999999999"};
        struct run r;

        (void)state;
        load(&r, NULL, ENV("DURO_T_PORT=1000"));
        expect_error(&r, "DURO_T_PORT", NULL);
        assert_non_null(strstr(r.err, "1000"));
        assert_non_null(strstr(r.err, "between 1 and 100"));
        done(&r);
        load(&r, NULL, ENV("DURO_T_PORT=0"));
        expect_error(&r, "DURO_T_PORT", NULL);
        done(&r);
        load(&r, ARGS("--port=101"), NULL);
        expect_error(&r, "--port", NULL);
        done(&r);
        /* the bounds themselves are fine */
        load(&r, ARGS("--port=100"), ENV("DURO_T_PORT=1"));
        expect_ok(&r);
        assert_int_equal(r.cfg.port, 100);
        done(&r);
        for (size_t i = 0; i < sizeof(notint) / sizeof(notint[0]); i++) {
                char e[64], f[64];
                snprintf(e, sizeof(e), "DURO_T_PORT=%s", notint[i]);
                load(&r, NULL, ENV(e));
                expect_error(&r, "DURO_T_PORT", NULL);
                if (i < 9)
                        assert_non_null(strstr(r.err, "not an integer"));
                done(&r);
                snprintf(f, sizeof(f), "--port=%s", notint[i]);
                load(&r, ARGS(f), NULL);
                expect_error(&r, "--port", NULL);
                done(&r);
        }
        /* a flag that needs a value, given last */
        load(&r, ARGS("--port"), NULL);
        expect_error(&r, "--port", NULL);
        done(&r);
}

static void test_secret_values_never_in_errors(void **state)
{
        struct run r;

        (void)state;
        load(&r, NULL, ENV("DURO_T_SECRET_NUM=777777"));
        expect_error(&r, "DURO_T_SECRET_NUM", "777777");
        done(&r);
        load(&r, NULL, ENV("DURO_T_SECRET_NUM=hunter2"));
        expect_error(&r, "DURO_T_SECRET_NUM", "hunter2");
        done(&r);
        /* secrets have no flag */
        load(&r, ARGS("--secret=hunter2"), NULL);
        expect_error(&r, "--secret", "hunter2");
        done(&r);
        load(&r, ARGS("--secret-num=5"), NULL);
        expect_error(&r, NULL, NULL);
        done(&r);
}

static void test_unknown_flag_and_stray_args(void **state)
{
        struct run r;

        (void)state;
        load(&r, ARGS("--nope"), NULL);
        expect_error(&r, "--nope", NULL);
        done(&r);
        /* the value of an unknown flag is not echoed (it might be a secret) */
        load(&r, ARGS("--webhook-secret=hunter2"), NULL);
        expect_error(&r, "--webhook-secret", "hunter2");
        done(&r);
        /* a prefix of a flag is not that flag */
        load(&r, ARGS("--por=5"), NULL);
        expect_error(&r, "--por", NULL);
        done(&r);
        load(&r, ARGS("--portx=5"), NULL);
        expect_error(&r, "--portx", NULL);
        done(&r);
        load(&r, ARGS("stray"), NULL);
        expect_error(&r, "stray", NULL);
        done(&r);
        load(&r, ARGS("-p"), NULL);
        expect_error(&r, "-p", NULL);
        done(&r);
}

static void test_loglevel(void **state)
{
        struct run r;

        (void)state;
        load(&r, ARGS("--log-level=ERROR"), NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.level, DLOG_ERROR);
        done(&r);
        load(&r, ARGS("--log-level=verbose"), NULL);
        expect_error(&r, "--log-level", NULL);
        done(&r);
        load(&r, NULL, ENV("DURO_T_LOG_LEVEL=trace"));
        expect_error(&r, "DURO_T_LOG_LEVEL", NULL);
        done(&r);
}

static void test_listen_validation(void **state)
{
        static const char *const ok[]  = {"0.0.0.0:8080", "[::1]:9", ":80",
                                          "localhost:0", "[::]:65535"};
        static const char *const bad[] = {"nope",     "1.2.3.4:99999", "::1:80",
                                          "1.2.3.4:", "1.2.3.4:-1",    "1.2.3.4:80x",
                                          "[::1]80",  "[::1",          ""};
        struct run r;

        (void)state;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char e[64];
                snprintf(e, sizeof(e), "DURO_T_LISTEN2=%s", ok[i]);
                load(&r, NULL, ENV(e));
                expect_ok(&r);
                assert_string_equal(r.cfg.listen2, ok[i]);
                done(&r);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char e[64], f[64];
                snprintf(e, sizeof(e), "DURO_T_LISTEN2=%s", bad[i]);
                load(&r, NULL, ENV(e));
                expect_error(&r, "DURO_T_LISTEN2", NULL);
                done(&r);
                snprintf(f, sizeof(f), "--listen2=%s", bad[i]);
                load(&r, ARGS(f), NULL);
                expect_error(&r, "--listen2", NULL);
                done(&r);
        }
}

static void test_x_flag(void **state)
{
        struct run r;

        (void)state;
        load(&r, ARGS("-X", "a.b=c", "-Xd.e=f", "-X", "sasl.jaas=x=y"), NULL);
        expect_ok(&r);
        assert_int_equal(r.props.n, 3);
        assert_string_equal(r.props.v[0].name, "a.b");
        assert_string_equal(r.props.v[0].value, "c");
        assert_int_equal(r.props.v[0].from_flag, 1);
        assert_int_equal(r.props.v[0].scope, DCONF_SCOPE_ALL);
        assert_string_equal(r.props.v[0].origin, "-X");
        assert_string_equal(r.props.v[1].name, "d.e");
        assert_string_equal(r.props.v[1].value, "f");
        assert_int_equal(r.props.v[1].from_flag, 1);
        assert_string_equal(r.props.v[2].name, "sasl.jaas");
        assert_string_equal(r.props.v[2].value, "x=y");
        done(&r);
        /* an empty value is allowed */
        load(&r, ARGS("-Xa.b="), NULL);
        expect_ok(&r);
        assert_int_equal(r.props.n, 1);
        assert_string_equal(r.props.v[0].value, "");
        done(&r);
}

static void test_x_flag_errors(void **state)
{
        struct run r;

        (void)state;
        load(&r, ARGS("-X"), NULL);
        expect_error(&r, "-X", NULL);
        done(&r);
        load(&r, ARGS("-X", "noequals"), NULL);
        expect_error(&r, "-X", NULL);
        done(&r);
        load(&r, ARGS("-X", "=v"), NULL);
        expect_error(&r, "-X", NULL);
        done(&r);
        load(&r, ARGS("-Xnoequals"), NULL);
        expect_error(&r, "-X", NULL);
        done(&r);
}

static void test_env_props(void **state)
{
        struct run r;

        (void)state;
        load(&r, ARGS("-X", "a.b=c"),
             ENV("DURO_RDKAFKA_LINGER_MS=5", "DURO_RDKAFKA_PRODUCER_X_Y=1",
                 "DURO_RDKAFKA_CONSUMER_FETCH_MAX_BYTES=2", "KAFKA_FOO_BAR=3",
                 "DURO_T_PORT=12"));
        expect_ok(&r);
        assert_int_equal(r.cfg.port, 12);
        assert_int_equal(r.props.n, 4);
        /* environment first (in envp order), then -X */
        assert_string_equal(r.props.v[0].name, "linger.ms");
        assert_string_equal(r.props.v[0].value, "5");
        assert_int_equal(r.props.v[0].scope, DCONF_SCOPE_ALL);
        assert_int_equal(r.props.v[0].from_flag, 0);
        assert_string_equal(r.props.v[0].origin, "DURO_RDKAFKA_LINGER_MS");
        assert_string_equal(r.props.v[1].name, "x.y");
        assert_string_equal(r.props.v[1].value, "1");
        assert_int_equal(r.props.v[1].scope, DCONF_SCOPE_PRODUCER);
        assert_string_equal(r.props.v[1].origin, "DURO_RDKAFKA_PRODUCER_X_Y");
        assert_string_equal(r.props.v[2].name, "fetch.max.bytes");
        assert_int_equal(r.props.v[2].scope, DCONF_SCOPE_CONSUMER);
        assert_string_equal(r.props.v[3].name, "a.b");
        assert_int_equal(r.props.v[3].from_flag, 1);
        done(&r);
}

static void test_env_props_errors(void **state)
{
        struct run r;

        (void)state;
        load(&r, NULL, ENV("DURO_RDKAFKA_=x"));
        expect_error(&r, "DURO_RDKAFKA_", "=x");
        done(&r);
        load(&r, NULL, ENV("DURO_RDKAFKA_PRODUCER_=hunter2"));
        expect_error(&r, "DURO_RDKAFKA_PRODUCER_", "hunter2");
        done(&r);
}

static int has_name(const char **list, const char *entry)
{
        for (; *list; list++)
                if (!strcmp(*list, entry))
                        return 1;
        return 0;
}

static void test_unknown_env(void **state)
{
        char *envp[] = {
            (char *)"PATH=/bin",
            (char *)"DURO_T_PORT=1",
            (char *)"DURO_T_SECRET=x",
            (char *)"DURO_RDKAFKA_LINGER_MS=5",
            (char *)"DURO_RDKAFKA_PRODUCER_X_Y=1",
            (char *)"KAFKA_BOOTSTRAP_SERVERS=a:9092",
            (char *)"KAFKA_PORT=tcp://1.2.3.4:9092",
            (char *)"DURO_BRIDGE_SERVICE_PORT=8080",
            (char *)"DURO_T_PORTX=1",
            (char *)"DURO_T=1",
            (char *)"DURO_NOEQ",
            (char *)"XDURO_T_X=1",
            (char *)"duro_t_port=1",
            NULL,
        };
        const char **u = dconf_unknown_env(tab, NTAB, envp);
        size_t n       = 0;

        (void)state;
        assert_non_null(u);
        while (u[n])
                n++;
        assert_int_equal(n, 4);
        assert_true(has_name(u, "DURO_BRIDGE_SERVICE_PORT=8080"));
        assert_true(has_name(u, "DURO_T_PORTX=1"));
        assert_true(has_name(u, "DURO_T=1"));
        assert_true(has_name(u, "DURO_NOEQ"));
        /* borrowed pointers into envp */
        for (size_t i = 0; i < n; i++) {
                int found = 0;
                for (char **e = envp; *e; e++)
                        found |= u[i] == *e;
                assert_true(found);
        }
        free(u);

        u = dconf_unknown_env(tab, NTAB, NULL);
        assert_non_null(u);
        assert_null(u[0]);
        free(u);
}

/* Runs dconf_load with stdout captured into out. */
static enum dconf_result load_captured(const char *const *args, char *out,
                                       size_t outsize)
{
        char tmpl[] = "/tmp/test_dconf_XXXXXX";
        int fd = mkstemp(tmpl), saved, argc = 0;
        char *argv[MAXARGS + 2];
        struct tcfg cfg;
        struct dconf_props props;
        char err[256];
        enum dconf_result rc;
        ssize_t n;

        assert_true(fd >= 0);
        unlink(tmpl);
        argv[argc++] = (char *)"prog";
        for (; *args; args++)
                argv[argc++] = (char *)*args;
        argv[argc] = NULL;
        memset(&cfg, 0, sizeof(cfg));
        fflush(stdout);
        saved = dup(STDOUT_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fd, STDOUT_FILENO) >= 0);
        rc = dconf_load(tab, NTAB, &cfg, argc, argv, NULL, "prog [options]", &props,
                        err, sizeof(err));
        fflush(stdout);
        assert_true(dup2(saved, STDOUT_FILENO) >= 0);
        close(saved);
        n = pread(fd, out, outsize - 1, 0);
        assert_true(n >= 0);
        out[n] = '\0';
        close(fd);
        dconf_free(tab, NTAB, &cfg);
        dconf_props_free(&props);
        return rc;
}

static void test_help(void **state)
{
        static char out[8192];

        (void)state;
        assert_int_equal(load_captured(ARGS("--help"), out, sizeof(out)), DCONF_HELP);
        assert_non_null(strstr(out, "prog [options]"));
        assert_non_null(strstr(out, "--port"));
        assert_non_null(strstr(out, "DURO_T_PORT"));
        assert_non_null(strstr(out, "[default: 10]"));
        assert_non_null(strstr(out, "[default: 0.0.0.0:8080]"));
        assert_non_null(strstr(out, "DURO_T_SECRET"));
        assert_non_null(strstr(out, "(env only)"));
        assert_non_null(strstr(out, "-X prop=value"));
        assert_null(strstr(out, "--secret")); /* a secret has no flag */
        assert_int_equal(load_captured(ARGS("-h"), out, sizeof(out)), DCONF_HELP);
        assert_non_null(strstr(out, "--port"));
}

static void test_help_stops_parsing(void **state)
{
        static char out[8192];

        (void)state;
        /* --help is answered before a later bad flag is looked at */
        assert_int_equal(
            load_captured(ARGS("--port=5", "--help", "--nope"), out, sizeof(out)),
            DCONF_HELP);
        assert_non_null(strstr(out, "usage: prog [options]"));
}

static void test_parse_bool(void **state)
{
        static const char *const t[]   = {"true", "TRUE", "True", "1",
                                          "yes",  "YES",  "on",   "On"};
        static const char *const f[]   = {"false", "FALSE", "0",  "no",
                                          "No",    "off",   "OFF"};
        static const char *const bad[] = {"",  "2",     "y",     "n",      "t",
                                          "f", "truex", " true", "enabled"};
        int b;

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                b = -1;
                assert_int_equal(dconf_parse_bool(t[i], &b), 0);
                assert_int_equal(b, 1);
        }
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
                b = -1;
                assert_int_equal(dconf_parse_bool(f[i], &b), 0);
                assert_int_equal(b, 0);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                b = -1;
                assert_int_equal(dconf_parse_bool(bad[i], &b), -1);
                assert_int_equal(b, -1);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_env_overrides_default),
            cmocka_unit_test(test_env_name_must_match_exactly),
            cmocka_unit_test(test_flag_overrides_env),
            cmocka_unit_test(test_flag_forms),
            cmocka_unit_test(test_bool_flag),
            cmocka_unit_test(test_int_errors),
            cmocka_unit_test(test_secret_values_never_in_errors),
            cmocka_unit_test(test_unknown_flag_and_stray_args),
            cmocka_unit_test(test_loglevel),
            cmocka_unit_test(test_listen_validation),
            cmocka_unit_test(test_x_flag),
            cmocka_unit_test(test_x_flag_errors),
            cmocka_unit_test(test_env_props),
            cmocka_unit_test(test_env_props_errors),
            cmocka_unit_test(test_unknown_env),
            cmocka_unit_test(test_help),
            cmocka_unit_test(test_help_stops_parsing),
            cmocka_unit_test(test_parse_bool),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
