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
#include "tutil.h"

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
        int argc;

        memset(r, 0, sizeof(*r));
        r->cfg.port = -99;
        argc        = tutil_vec(argv, TU_NELEM(argv), "prog", args);
        tutil_vec(envp, TU_NELEM(envp), NULL, env);
        r->rc = dconf_load(tab, NTAB, &r->cfg, argc, argv, envp, "prog [options]",
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

/* The fields a load case compares (its `check`). */
enum {
        C_NAME    = 1,
        C_PORT    = 2,
        C_VERBOSE = 4,
        C_LISTEN  = 8,
        C_LEVEL   = 16,
        C_LISTEN2 = 32
};

/* One dconf_load: its arguments and environment, then either the error it must give
 * (one line naming each of error[], "" for any error, never holding forbidden) or,
 * with error[0] NULL, a load after which the fields in `check` hold these values. */
struct load_case {
        const char *const *args, *const *env;
        const char *error[3];
        const char *forbidden;
        unsigned check;
        const char *name, *listen2;
        long long port;
        int verbose, level;
};

static void check_case(const struct load_case *c)
{
        struct run r;

        load(&r, c->args, c->env);
        const struct {
                unsigned flag;
                const char *got, *want;
        } strs[] = {{C_NAME, r.cfg.name, c->name},
                    {C_LISTEN2, r.cfg.listen2, c->listen2}};
        const struct {
                unsigned flag;
                long long got, want;
        } nums[] = {{C_PORT, r.cfg.port, c->port},
                    {C_VERBOSE, r.cfg.verbose, c->verbose},
                    {C_LEVEL, r.cfg.level, c->level}};

        if (c->error[0]) {
                expect_error(&r, c->error[0], c->forbidden);
                for (size_t i = 1; i < TU_NELEM(c->error) && c->error[i]; i++)
                        if (!strstr(r.err, c->error[i]))
                                fail_msg("error \"%s\" lacks \"%s\"", r.err,
                                         c->error[i]);
        } else {
                expect_ok(&r);
        }
        for (size_t i = 0; i < TU_NELEM(strs); i++)
                if (c->check & strs[i].flag)
                        assert_string_equal(strs[i].got, strs[i].want);
        for (size_t i = 0; i < TU_NELEM(nums); i++)
                if (c->check & nums[i].flag)
                        assert_int_equal(nums[i].got, nums[i].want);
        done(&r);
}

static void check_cases(const struct load_case *c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                check_case(&c[i]);
}

/* A whole configuration as a test expects it (a NULL string: unset). */
struct want_cfg {
        const char *name, *listen, *secret, *opt;
        long long port, secret_num;
        int verbose, level;
};

static void expect_str(const char *got, const char *want)
{
        if (want)
                assert_string_equal(got, want);
        else
                assert_null(got);
}

static void expect_cfg(const struct tcfg *got, const struct want_cfg *w)
{
        expect_str(got->name, w->name);
        assert_int_equal(got->port, w->port);
        assert_int_equal(got->verbose, w->verbose);
        expect_str(got->listen, w->listen);
        assert_int_equal(got->level, w->level);
        expect_str(got->secret, w->secret);
        assert_int_equal(got->secret_num, w->secret_num);
        expect_str(got->opt, w->opt);
}

static void test_defaults(void **state)
{
        /* every other field 0 or unset */
        const struct want_cfg want = {
            .name = "dflt", .port = 10, .listen = "0.0.0.0:8080", .level = DLOG_INFO};
        struct run r;

        (void)state;
        load(&r, NULL, NULL);
        expect_ok(&r);
        expect_cfg(&r.cfg, &want);
        assert_null(r.cfg.listen2);
        assert_int_equal(r.props.n, 0);
        done(&r);
}

static void test_env_overrides_default(void **state)
{
        const struct want_cfg want = {.name       = "fromenv",
                                      .port       = 42,
                                      .verbose    = 1,
                                      .listen     = "[::1]:9",
                                      .level      = DLOG_WARN,
                                      .secret     = "s3cr3t",
                                      .secret_num = 7,
                                      .opt        = "o"};
        struct run r;

        (void)state;
        load(&r, NULL,
             TU_ENV("PATH=/bin", "DURO_T_NAME=fromenv", "DURO_T_PORT=42",
                    "DURO_T_VERBOSE=yes", "DURO_T_LISTEN=[::1]:9",
                    "DURO_T_LOG_LEVEL=warning", "DURO_T_SECRET=s3cr3t",
                    "DURO_T_SECRET_NUM=7", "DURO_T_OPT=o"));
        expect_ok(&r);
        expect_cfg(&r.cfg, &want);
        done(&r);
}

static void test_env_name_must_match_exactly(void **state)
{
        const struct load_case cases[] = {
            {NULL, TU_ENV("DURO_T_PORTX=50", "XDURO_T_PORT=51", "DURO_T_POR=52"),
             .check = C_PORT, .port = 10},
            /* an empty value is a value: a string becomes "", an int is an error */
            {NULL, TU_ENV("DURO_T_NAME="), .check = C_NAME, .name = ""},
            {NULL, TU_ENV("DURO_T_PORT="), .error = {"DURO_T_PORT"}},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
}

static void test_flag_overrides_env(void **state)
{
        struct run r;

        (void)state;
        load(&r,
             TU_ARGS("--name=fromflag", "--port", "77", "--log-level=debug", "--listen",
                     ":81"),
             TU_ENV("DURO_T_NAME=fromenv", "DURO_T_PORT=42", "DURO_T_LOG_LEVEL=error",
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
        const struct load_case cases[] = {
            {TU_ARGS("--port=5"), NULL, .check = C_PORT, .port = 5},
            {TU_ARGS("--port", "6"), NULL, .check = C_PORT, .port = 6},
            /* the last one wins, and the earlier string is freed (ASan would see a
             * leak) */
            {TU_ARGS("--name=a", "--name", "b", "--port=5", "--port=9"), NULL,
             .check = C_NAME | C_PORT, .name = "b", .port = 9},
            /* a value may contain '=' and may be empty with --flag= */
            {TU_ARGS("--name=a=b"), NULL, .check = C_NAME, .name = "a=b"},
            {TU_ARGS("--name="), NULL, .check = C_NAME, .name = ""},
            /* --flag value takes the next argument even when it starts with a dash */
            {TU_ARGS("--name", "--port"), NULL, .check = C_NAME | C_PORT,
             .name = "--port", .port = 10},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
}

static void test_bool_flag(void **state)
{
        const struct load_case cases[] = {
            {TU_ARGS("--verbose"), NULL, .check = C_VERBOSE, .verbose = 1},
            /* the bare flag does not swallow the next argument */
            {TU_ARGS("--verbose", "--port=3"), NULL, .check = C_VERBOSE | C_PORT,
             .verbose = 1, .port = 3},
            {TU_ARGS("--verbose=false"), TU_ENV("DURO_T_VERBOSE=true"),
             .check = C_VERBOSE, .verbose = 0},
            {TU_ARGS("--verbose=maybe"), NULL, .error = {"--verbose"}},
            {NULL, TU_ENV("DURO_T_VERBOSE=2"), .error = {"DURO_T_VERBOSE"}},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
}

static void test_int_errors(void **state)
{
        static const char *const notint[] = {
            "abc",  "12abc", " 12", "12 ", "1e3",
            "0x10", "1.5",   "-",   "+",   "99999999999999999999"};
        const struct load_case cases[] = {
            {NULL, TU_ENV("DURO_T_PORT=1000"),
             .error = {"DURO_T_PORT", "1000", "between 1 and 100"}},
            {NULL, TU_ENV("DURO_T_PORT=0"), .error = {"DURO_T_PORT"}},
            {TU_ARGS("--port=101"), NULL, .error = {"--port"}},
            /* the bounds themselves are fine */
            {TU_ARGS("--port=100"), TU_ENV("DURO_T_PORT=1"), .check = C_PORT,
             .port = 100},
            /* a flag that needs a value, given last */
            {TU_ARGS("--port"), NULL, .error = {"--port"}},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
        for (size_t i = 0; i < TU_NELEM(notint); i++) {
                char e[64], f[64];
                snprintf(e, sizeof(e), "DURO_T_PORT=%s", notint[i]);
                snprintf(f, sizeof(f), "--port=%s", notint[i]);
                const struct load_case bad[] = {
                    {NULL, TU_ENV(e),
                     .error = {"DURO_T_PORT", i < 9 ? "not an integer" : NULL}},
                    {TU_ARGS(f), NULL, .error = {"--port"}},
                };
                check_cases(bad, TU_NELEM(bad));
        }
}

static void test_secret_values_never_in_errors(void **state)
{
        const struct load_case cases[] = {
            {NULL, TU_ENV("DURO_T_SECRET_NUM=777777"), .error = {"DURO_T_SECRET_NUM"},
             .forbidden = "777777"},
            {NULL, TU_ENV("DURO_T_SECRET_NUM=hunter2"), .error = {"DURO_T_SECRET_NUM"},
             .forbidden = "hunter2"},
            /* secrets have no flag */
            {TU_ARGS("--secret=hunter2"), NULL, .error = {"--secret"},
             .forbidden = "hunter2"},
            {TU_ARGS("--secret-num=5"), NULL, .error = {""}},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
}

static void test_unknown_flag_and_stray_args(void **state)
{
        const struct load_case cases[] = {
            {TU_ARGS("--nope"), NULL, .error = {"--nope"}},
            /* the value of an unknown flag is not echoed (it might be a secret) */
            {TU_ARGS("--webhook-secret=hunter2"), NULL, .error = {"--webhook-secret"},
             .forbidden = "hunter2"},
            /* a prefix of a flag is not that flag */
            {TU_ARGS("--por=5"), NULL, .error = {"--por"}},
            {TU_ARGS("--portx=5"), NULL, .error = {"--portx"}},
            {TU_ARGS("stray"), NULL, .error = {"stray"}},
            {TU_ARGS("-p"), NULL, .error = {"-p"}},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
}

static void test_loglevel(void **state)
{
        const struct load_case cases[] = {
            {TU_ARGS("--log-level=ERROR"), NULL, .check = C_LEVEL, .level = DLOG_ERROR},
            {TU_ARGS("--log-level=verbose"), NULL, .error = {"--log-level"}},
            {NULL, TU_ENV("DURO_T_LOG_LEVEL=trace"), .error = {"DURO_T_LOG_LEVEL"}},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
}

static void test_listen_validation(void **state)
{
        static const char *const ok[]  = {"0.0.0.0:8080", "[::1]:9", ":80",
                                          "localhost:0", "[::]:65535"};
        static const char *const bad[] = {"nope",     "1.2.3.4:99999", "::1:80",
                                          "1.2.3.4:", "1.2.3.4:-1",    "1.2.3.4:80x",
                                          "[::1]80",  "[::1",          ""};

        (void)state;
        for (size_t i = 0; i < TU_NELEM(ok); i++) {
                char e[64];
                snprintf(e, sizeof(e), "DURO_T_LISTEN2=%s", ok[i]);
                const struct load_case c = {NULL, TU_ENV(e), .check = C_LISTEN2,
                                            .listen2 = ok[i]};
                check_case(&c);
        }
        for (size_t i = 0; i < TU_NELEM(bad); i++) {
                char e[64], f[64];
                snprintf(e, sizeof(e), "DURO_T_LISTEN2=%s", bad[i]);
                snprintf(f, sizeof(f), "--listen2=%s", bad[i]);
                const struct load_case c[] = {
                    {NULL, TU_ENV(e), .error = {"DURO_T_LISTEN2"}},
                    {TU_ARGS(f), NULL, .error = {"--listen2"}},
                };
                check_cases(c, TU_NELEM(c));
        }
}

static void test_x_flag(void **state)
{
        struct run r;

        (void)state;
        load(&r, TU_ARGS("-X", "a.b=c", "-Xd.e=f", "-X", "sasl.jaas=x=y"), NULL);
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
        load(&r, TU_ARGS("-Xa.b="), NULL);
        expect_ok(&r);
        assert_int_equal(r.props.n, 1);
        assert_string_equal(r.props.v[0].value, "");
        done(&r);
}

static void test_x_flag_errors(void **state)
{
        const struct load_case cases[] = {
            {TU_ARGS("-X"), NULL, .error = {"-X"}},
            {TU_ARGS("-X", "noequals"), NULL, .error = {"-X"}},
            {TU_ARGS("-X", "=v"), NULL, .error = {"-X"}},
            {TU_ARGS("-Xnoequals"), NULL, .error = {"-X"}},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
}

static void test_env_props(void **state)
{
        struct run r;

        (void)state;
        load(&r, TU_ARGS("-X", "a.b=c"),
             TU_ENV("DURO_RDKAFKA_LINGER_MS=5", "DURO_RDKAFKA_PRODUCER_X_Y=1",
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
        const struct load_case cases[] = {
            {NULL, TU_ENV("DURO_RDKAFKA_=x"), .error = {"DURO_RDKAFKA_"},
             .forbidden = "=x"},
            {NULL, TU_ENV("DURO_RDKAFKA_PRODUCER_=hunter2"),
             .error = {"DURO_RDKAFKA_PRODUCER_"}, .forbidden = "hunter2"},
        };

        (void)state;
        check_cases(cases, TU_NELEM(cases));
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
        char *argv[MAXARGS + 2];
        int argc = tutil_vec(argv, TU_NELEM(argv), "prog", args);
        struct tcfg cfg;
        struct dconf_props props;
        struct tutil_capture cap;
        char err[256];
        enum dconf_result rc;

        memset(&cfg, 0, sizeof(cfg));
        tutil_capture_begin(&cap, STDOUT_FILENO);
        rc = dconf_load(tab, NTAB, &cfg, argc, argv, NULL, "prog [options]", &props,
                        err, sizeof(err));
        tutil_capture_end(&cap, out, outsize);
        dconf_free(tab, NTAB, &cfg);
        dconf_props_free(&props);
        return rc;
}

static void test_help(void **state)
{
        static char out[8192];

        (void)state;
        assert_int_equal(load_captured(TU_ARGS("--help"), out, sizeof(out)),
                         DCONF_HELP);
        assert_non_null(strstr(out, "prog [options]"));
        assert_non_null(strstr(out, "--port"));
        assert_non_null(strstr(out, "DURO_T_PORT"));
        assert_non_null(strstr(out, "[default: 10]"));
        assert_non_null(strstr(out, "[default: 0.0.0.0:8080]"));
        assert_non_null(strstr(out, "DURO_T_SECRET"));
        assert_non_null(strstr(out, "(env only)"));
        assert_non_null(strstr(out, "-X prop=value"));
        assert_null(strstr(out, "--secret")); /* a secret has no flag */
        assert_int_equal(load_captured(TU_ARGS("-h"), out, sizeof(out)), DCONF_HELP);
        assert_non_null(strstr(out, "--port"));
}

static void test_help_stops_parsing(void **state)
{
        static char out[8192];

        (void)state;
        /* --help is answered before a later bad flag is looked at */
        assert_int_equal(
            load_captured(TU_ARGS("--port=5", "--help", "--nope"), out, sizeof(out)),
            DCONF_HELP);
        assert_non_null(strstr(out, "usage: prog [options]"));
}

static void test_parse_bool(void **state)
{
        /* each group of texts: what dconf_parse_bool returns and the value it sets (-1:
         * left as it was) */
        const struct {
                const char *const *texts;
                int rc, value;
        } groups[] = {
            {TU_LIST("true", "TRUE", "True", "1", "yes", "YES", "on", "On"), 0, 1},
            {TU_LIST("false", "FALSE", "0", "no", "No", "off", "OFF"), 0, 0},
            {TU_LIST("", "2", "y", "n", "t", "f", "truex", " true", "enabled"), -1, -1},
        };

        (void)state;
        for (size_t g = 0; g < TU_NELEM(groups); g++)
                for (const char *const *t = groups[g].texts; *t; t++) {
                        int b = -1;
                        assert_int_equal(dconf_parse_bool(*t, &b), groups[g].rc);
                        assert_int_equal(b, groups[g].value);
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
