/* Unit tests for dtrace: reading a W3C traceparent (versions 00 to fe, the refusals of
 * the recommendation), checking a tracestate (size, member count, key and value
 * grammar), starting and continuing a trace, and writing a traceparent back out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dtrace.h"
#include "tutil.h"

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID  "00f067aa0ba902b7"
#define TP00 "00-" TID "-" SID "-01"

/* Parses the NUL-terminated s (its strlen); the result of dtrace_parse. */
static int parse(const char *s, struct dtrace *t, const char **why)
{
        return dtrace_parse(s, strlen(s), t, why);
}

static int is_lower_hex(const char *s, size_t n)
{
        if (strlen(s) != n)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return 1;
}

static int all_zero(const char *s)
{
        return strspn(s, "0") == strlen(s);
}

/* A valid id pair: lower-case hex of the right lengths, neither all zero. */
static void assert_ids(const struct dtrace *t)
{
        assert_true(is_lower_hex(t->trace_id, DTRACE_ID_LEN));
        assert_true(is_lower_hex(t->span_id, DTRACE_SPAN_LEN));
        assert_false(all_zero(t->trace_id));
        assert_false(all_zero(t->span_id));
}

static void test_parse_version_00(void **state)
{
        static const struct {
                const char *in;
                const char *trace_id, *span_id;
                unsigned flags;
        } ok[] = {
            {TP00, TID, SID, 1},
            {"00-" TID "-" SID "-00", TID, SID, 0},
            /* one non-zero digit is enough in either id */
            {"00-00000000000000000000000000000001-0000000000000001-01",
             "00000000000000000000000000000001", "0000000000000001", 1},
            {"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01",
             "ffffffffffffffffffffffffffffffff", "ffffffffffffffff", 1},
        };
        (void)state;
        for (size_t i = 0; i < TU_NELEM(ok); i++) {
                struct dtrace t;
                const char *why = NULL;

                print_message("case %zu: %s\n", i, ok[i].in);
                memset(&t, 'x', sizeof(t));
                assert_int_equal(parse(ok[i].in, &t, &why), 0);
                assert_string_equal(t.trace_id, ok[i].trace_id);
                assert_string_equal(t.span_id, ok[i].span_id);
                assert_int_equal(t.flags, ok[i].flags);
        }
        /* Flags other than sampled are kept or dropped, but sampled reads as set. */
        {
                struct dtrace t;
                const char *why = NULL;
                assert_int_equal(parse("00-" TID "-" SID "-03", &t, &why), 0);
                assert_int_equal(t.flags & 1u, 1u);
                assert_int_equal(parse("00-" TID "-" SID "-02", &t, &why), 0);
                assert_int_equal(t.flags & 1u, 0u);
        }
}

/* A version from 01 to fe may carry more fields after a '-' (ignored); one of exactly
 * 55 bytes parses too. */
static void test_parse_future_version(void **state)
{
        static const char *const ok[] = {
            "cc-" TID "-" SID "-01-xyz",
            "cc-" TID "-" SID "-01",
            "01-" TID "-" SID "-01-",
            "fe-" TID "-" SID "-01-what-ever-comes-next",
        };
        (void)state;
        for (size_t i = 0; i < TU_NELEM(ok); i++) {
                struct dtrace t;
                const char *why = NULL;

                print_message("case %zu: %s\n", i, ok[i]);
                assert_int_equal(parse(ok[i], &t, &why), 0);
                assert_string_equal(t.trace_id, TID);
                assert_string_equal(t.span_id, SID);
                assert_int_equal(t.flags, 1);
        }
}

static void test_parse_refused(void **state)
{
        char nul_inside[]              = "00-" TID "-" SID "-01";
        static const char *const bad[] = {
            "ff-" TID "-" SID "-01",                           /* version ff */
            "ff-" TID "-" SID "-01-xyz",                       /* ff, longer */
            "0A-" TID "-" SID "-01",                           /* upper case */
            "AA-" TID "-" SID "-01",                           /* ditto */
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01",  /* trace id */
            "00-4bf92f3577b34da6a3ce929d0e0e473A-" SID "-01",  /* last digit */
            "00-" TID "-00F067AA0BA902B7-01",                  /* span id */
            "00-" TID "-" SID "-0A",                           /* flags */
            "cc-" TID "-" SID "-0A-xyz",                       /* flags, later */
            "00-00000000000000000000000000000000-" SID "-01",  /* zero trace id */
            "00-" TID "-0000000000000000-01",                  /* zero span id */
            "00-" TID "-" SID "-0",                            /* 54 bytes */
            "00-" TID "-" SID "-010",                          /* 56 bytes */
            "00-" TID "-" SID "-01-",                          /* 56 bytes */
            "00-" TID "-" SID "-01-xyz",                       /* 00 takes none */
            "cc-" TID "-" SID "-01x",                          /* byte 55 not - */
            "cc-" TID "-" SID "-01xyz",                        /* ditto */
            "cc-" TID "-" SID "-010-",                         /* ditto */
            "00-4bf92f3577b34da6a3ce929d0e0e473g-" SID "-01",  /* non-hex */
            "00-" TID "-00f067aa0ba902bz-01",                  /* ditto */
            "00-" TID "-" SID "-g1",                           /* ditto */
            "0g-" TID "-" SID "-01",                           /* ditto */
            "00_" TID "-" SID "-01",                           /* separators */
            "00-" TID "_" SID "-01",                           /* ditto */
            "00-" TID "-" SID "_01",                           /* ditto */
            "00-4bf92f3577b34da6a3ce929d0e0e4736" SID "-01--", /* misplaced */
            "00-" TID "-" SID "-+1",                           /* sign */
            " 00-" TID "-" SID "-0",                           /* leading blank */
            "",                                                /* empty */
            "00",                                              /* short */
            "00-" TID "-" SID,                                 /* no flags */
        };
        (void)state;
        for (size_t i = 0; i < TU_NELEM(bad); i++) {
                struct dtrace t;
                const char *why = NULL;

                print_message("case %zu: \"%s\" (%zu bytes)\n", i, bad[i],
                              strlen(bad[i]));
                if (parse(bad[i], &t, &why) == 0)
                        fail_msg("\"%s\" parsed", bad[i]);
                assert_non_null(why);
                assert_true(why[0] != '\0');
        }
        /* The length given is what counts, not a NUL: an embedded NUL is a non-hex
         * byte, and the terminating one counted in makes 56 bytes. */
        {
                struct dtrace t;
                const char *why = NULL;

                assert_int_equal(strlen(nul_inside), 55);
                nul_inside[10] = '\0';
                assert_int_equal(dtrace_parse(nul_inside, 55, &t, &why), -1);
                assert_non_null(why);
                why = NULL;
                assert_int_equal(dtrace_parse(TP00, sizeof(TP00), &t, &why), -1);
                assert_non_null(why);
                why = NULL;
                assert_int_equal(dtrace_parse("cc-" TID "-" SID "-01",
                                              sizeof("cc-" TID "-" SID "-01"), &t,
                                              &why),
                                 -1);
                assert_non_null(why);
                /* and a prefix of a valid value is not one */
                why = NULL;
                assert_int_equal(dtrace_parse(TP00 "-xyz", 54, &t, &why), -1);
                assert_non_null(why);
                /* while the 55 bytes of a longer buffer are */
                why = NULL;
                assert_int_equal(dtrace_parse(TP00 "garbage", 55, &t, &why), 0);
                assert_string_equal(t.trace_id, TID);
                why = NULL;
                assert_int_equal(dtrace_parse("", 0, &t, &why), -1);
                assert_non_null(why);
        }
}

/* A tracestate of n members "k<i>=v<i>" joined by sep into buf. */
static void members(char *buf, size_t size, int n, const char *sep)
{
        size_t len = 0;

        buf[0] = '\0';
        for (int i = 0; i < n; i++) {
                int w =
                    snprintf(buf + len, size - len, "%sk%d=v%d", i ? sep : "", i, i);
                assert_true(w > 0 && (size_t)w < size - len);
                len += (size_t)w;
        }
}

/* "a=<254 x>,b=<n y>" into buf: 256 + 1 + 2 + n bytes of two valid members. */
static void two_members(char *buf, size_t n)
{
        memcpy(buf, "a=", 2);
        memset(buf + 2, 'x', 254);
        memcpy(buf + 256, ",b=", 3);
        memset(buf + 259, 'y', n);
        buf[259 + n] = '\0';
}

static int state_valid(const char *s, const char **why)
{
        return dtrace_state_valid(s, strlen(s), why);
}

static void test_state_valid(void **state)
{
        static const char *const ok[] = {
            "congo=t61rcWkgMzE",
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE",
            "rojo=00f067aa0ba902b7\t,\tcongo=t61rcWkgMzE",
            "rojo=00f067aa0ba902b7,  congo=t61rcWkgMzE",
            "tenant@system=1",
            "fw529a3039@dt=ffffffff;0;1",
            "1tenant@vendor=x,tenant_1@sys-2=y",
            "a-_*/0=~!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~",
            "a=1,,b=2",
            "a=1, ,b=2",
            "a=1,b=2,", /* empty members first and last */
            ",a=1",
            "key=value with inner blanks",
            "k=v",
        };
        char buf[DTRACE_STATE_MAX + 64];
        (void)state;
        for (size_t i = 0; i < TU_NELEM(ok); i++) {
                const char *why = NULL;

                print_message("case %zu: \"%s\"\n", i, ok[i]);
                if (state_valid(ok[i], &why) != 0)
                        fail_msg("\"%s\" refused: %s", ok[i], why ? why : "(no why)");
        }
        /* 32 members, with and without blanks around the commas */
        {
                const char *why = NULL;
                members(buf, sizeof(buf), 32, ",");
                assert_int_equal(state_valid(buf, &why), 0);
                members(buf, sizeof(buf), 32, " , ");
                assert_int_equal(state_valid(buf, &why), 0);
        }
        /* exactly 512 bytes */
        {
                const char *why = NULL;
                two_members(buf, 253);
                assert_int_equal(strlen(buf), DTRACE_STATE_MAX);
                if (state_valid(buf, &why) != 0)
                        fail_msg("512 bytes refused: %s", why ? why : "(no why)");
        }
        /* a value of 256 characters */
        {
                const char *why = NULL;
                memcpy(buf, "a=", 2);
                memset(buf + 2, 'x', 256);
                buf[258] = '\0';
                if (state_valid(buf, &why) != 0)
                        fail_msg("a value of 256 refused: %s", why ? why : "(no why)");
        }
        /* a key of 256 characters */
        {
                const char *why = NULL;
                memset(buf, 'k', 256);
                memcpy(buf + 256, "=v", 3);
                assert_int_equal(strlen(buf), 258);
                if (state_valid(buf, &why) != 0)
                        fail_msg("a key of 256 refused: %s", why ? why : "(no why)");
        }
        /* only the length given is read */
        {
                const char *why = NULL;
                assert_int_equal(dtrace_state_valid("a=1,B=2", 3, &why), 0);
        }
}

static void test_state_refused(void **state)
{
        static const char *const bad[] = {
            "Congo=t61rcWkgMzE", /* key with upper case */
            "conGo=1",           /* ditto */
            "tenant@System=1",   /* ditto, system id */
            "a=b=c",             /* '=' in the value */
            "a=b,c",             /* ',' in a value: a member without '=' */
            "a=b,c=d,e",         /* ditto, last */
            "a=",                /* empty value */
            "=v",                /* empty key */
            "novalue",           /* no '=' */
            "_a=1",              /* key starting with '_' */
            "a b=1",             /* blank in the key */
            "a=\x01",            /* control byte */
            "a=caf\xc3\xa9",     /* not ASCII */
        };
        char buf[DTRACE_STATE_MAX + 512];
        (void)state;
        for (size_t i = 0; i < TU_NELEM(bad); i++) {
                const char *why = NULL;

                print_message("case %zu: \"%s\"\n", i, bad[i]);
                if (state_valid(bad[i], &why) == 0)
                        fail_msg("\"%s\" accepted", bad[i]);
                assert_non_null(why);
        }
        /* 33 members */
        {
                const char *why = NULL;
                members(buf, sizeof(buf), 33, ",");
                assert_true(strlen(buf) <= DTRACE_STATE_MAX);
                assert_int_equal(state_valid(buf, &why), -1);
                assert_non_null(why);
        }
        /* 513 bytes, otherwise valid */
        {
                const char *why = NULL;
                two_members(buf, 254);
                assert_int_equal(strlen(buf), DTRACE_STATE_MAX + 1);
                assert_int_equal(state_valid(buf, &why), -1);
                assert_non_null(why);
        }
        /* a value of 257 characters */
        {
                const char *why = NULL;
                memcpy(buf, "a=", 2);
                memset(buf + 2, 'x', 257);
                buf[259] = '\0';
                assert_int_equal(state_valid(buf, &why), -1);
                assert_non_null(why);
        }
        /* a key of 257 characters */
        {
                const char *why = NULL;
                memset(buf, 'k', 257);
                memcpy(buf + 257, "=v", 3);
                assert_int_equal(state_valid(buf, &why), -1);
                assert_non_null(why);
        }
        /* an embedded NUL */
        {
                const char *why = NULL;
                assert_int_equal(dtrace_state_valid("a=1\0b", 5, &why), -1);
                assert_non_null(why);
        }
}

/* The key grammar of the recommendation: a simple key starts with a lower-case letter;
 * a multi-tenant key is a tenant id (letter or digit first, at most 241 characters),
 * '@' and a system id (letter first, at most 14 characters). */
static void test_state_keys(void **state)
{
        static const char *const ok[] = {
            "t@abcdefghijklmn=x", /* system id of 14 */
            "0@a=x",
            "a0_-*/@z9_-*/=x",
        };
        static const char *const bad[] = {
            "1abc=x",              /* a simple key starts with a letter */
            "_abc=x",              /* ditto */
            "t@1x=x",              /* a system id starts with a letter */
            "t@_x=x",              /* ditto */
            "t@abcdefghijklmno=x", /* system id of 15 */
            "t@=x",                /* no system id */
            "@s=x",                /* no tenant id */
            "a@b@c=x",             /* two '@' */
            "t@S=x",               /* upper case */
        };
        char buf[300];
        (void)state;
        for (size_t i = 0; i < TU_NELEM(ok); i++) {
                const char *why = NULL;
                print_message("ok %zu: \"%s\"\n", i, ok[i]);
                if (state_valid(ok[i], &why) != 0)
                        fail_msg("\"%s\" refused: %s", ok[i], why ? why : "(no why)");
        }
        for (size_t i = 0; i < TU_NELEM(bad); i++) {
                const char *why = NULL;
                print_message("bad %zu: \"%s\"\n", i, bad[i]);
                if (state_valid(bad[i], &why) == 0)
                        fail_msg("\"%s\" accepted", bad[i]);
        }
        /* a tenant id of 241 characters, then 242 */
        {
                const char *why = NULL;
                memset(buf, 't', 241);
                memcpy(buf + 241, "@s=x", 5);
                if (state_valid(buf, &why) != 0)
                        fail_msg("a tenant id of 241 refused: %s",
                                 why ? why : "(no why)");
                memset(buf, 't', 242);
                memcpy(buf + 242, "@s=x", 5);
                if (state_valid(buf, &why) == 0)
                        fail_msg("a tenant id of 242 accepted");
        }
}

static void test_new(void **state)
{
        struct dtrace a, b;
        (void)state;
        for (int i = 0; i < 200; i++) {
                assert_int_equal(dtrace_new(&a), 0);
                assert_int_equal(dtrace_new(&b), 0);
                assert_ids(&a);
                assert_ids(&b);
                assert_int_equal(a.flags, 1); /* sampled */
                assert_string_not_equal(a.trace_id, b.trace_id);
                assert_string_not_equal(a.span_id, b.span_id);
        }
}

static void test_child(void **state)
{
        struct dtrace parent, child, grandchild;
        const char *why = NULL;
        (void)state;
        for (unsigned flags = 0; flags < 2; flags++) {
                assert_int_equal(
                    parse(flags ? TP00 : "00-" TID "-" SID "-00", &parent, &why), 0);
                for (int i = 0; i < 100; i++) {
                        assert_int_equal(dtrace_child(&parent, &child), 0);
                        assert_ids(&child);
                        assert_string_equal(child.trace_id, TID);
                        assert_string_not_equal(child.span_id, SID);
                        assert_int_equal(child.flags, flags);
                        assert_int_equal(dtrace_child(&child, &grandchild), 0);
                        assert_ids(&grandchild);
                        assert_string_equal(grandchild.trace_id, TID);
                        assert_string_not_equal(grandchild.span_id, child.span_id);
                        assert_int_equal(grandchild.flags, flags);
                }
        }
        /* the child of a new trace */
        assert_int_equal(dtrace_new(&parent), 0);
        assert_int_equal(dtrace_child(&parent, &child), 0);
        assert_string_equal(child.trace_id, parent.trace_id);
        assert_string_not_equal(child.span_id, parent.span_id);
        assert_int_equal(child.flags, 1);
}

static void test_format_round_trip(void **state)
{
        char buf[DTRACE_PARENT_SIZE];
        struct dtrace t, back;
        const char *why = NULL;
        (void)state;

        assert_int_equal(parse(TP00, &t, &why), 0);
        memset(buf, 'x', sizeof(buf));
        dtrace_format(&t, buf);
        assert_string_equal(buf, TP00);

        /* a later version comes out as 00, without its extra fields */
        assert_int_equal(parse("cc-" TID "-" SID "-00-xyz", &t, &why), 0);
        dtrace_format(&t, buf);
        assert_string_equal(buf, "00-" TID "-" SID "-00");

        for (int i = 0; i < 100; i++) {
                assert_int_equal(dtrace_new(&t), 0);
                if (i & 1)
                        t.flags = 0;
                dtrace_format(&t, buf);
                assert_int_equal(strlen(buf), DTRACE_PARENT_SIZE - 1);
                assert_memory_equal(buf, "00-", 3);
                assert_string_equal(buf + 53, (i & 1) ? "00" : "01");
                assert_int_equal(parse(buf, &back, &why), 0);
                assert_string_equal(back.trace_id, t.trace_id);
                assert_string_equal(back.span_id, t.span_id);
                assert_int_equal(back.flags, t.flags);
                assert_int_equal(dtrace_child(&t, &back), 0);
                dtrace_format(&back, buf);
                assert_memory_equal(buf + 3, t.trace_id, DTRACE_ID_LEN);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_version_00),
            cmocka_unit_test(test_parse_future_version),
            cmocka_unit_test(test_parse_refused),
            cmocka_unit_test(test_state_valid),
            cmocka_unit_test(test_state_refused),
            cmocka_unit_test(test_state_keys),
            cmocka_unit_test(test_new),
            cmocka_unit_test(test_child),
            cmocka_unit_test(test_format_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
