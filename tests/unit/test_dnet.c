/* Unit tests for dnet: listen address syntax, port and resolution for bind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "dnet.h"
#include "tutil.h"

static void test_check_ok(void **state)
{
        static const char *const ok[] = {"0.0.0.0:8080", "[::1]:9",    ":80",
                                         "127.0.0.1:0",  "[::]:65535", "localhost:9090",
                                         "[]:80"};
        char why[128];

        (void)state;
        for (size_t i = 0; i < TU_NELEM(ok); i++) {
                why[0] = '\0';
                if (dnet_check_listen(ok[i], why, sizeof(why)) != 0)
                        fail_msg("\"%s\" refused: %s", ok[i], why);
        }
}

static void test_check_bad(void **state)
{
        static const char *const bad[] = {"nope",
                                          "1.2.3.4:99999",
                                          "::1:80",
                                          "1.2.3.4:",
                                          "1.2.3.4:-1",
                                          "1.2.3.4:65536",
                                          "1.2.3.4:80x",
                                          "[::1]80",
                                          "[::1",
                                          "[::1]",
                                          "",
                                          ":",
                                          "a:b:c",
                                          "host:port"};
        char why[128];

        (void)state;
        for (size_t i = 0; i < TU_NELEM(bad); i++) {
                why[0] = '\0';
                if (dnet_check_listen(bad[i], why, sizeof(why)) == 0)
                        fail_msg("\"%s\" accepted", bad[i]);
                assert_true(why[0] != '\0');
        }
        /* the reasons say what is wrong */
        dnet_check_listen("::1:80", why, sizeof(why));
        assert_non_null(strstr(why, "bracket"));
        dnet_check_listen("1.2.3.4:99999", why, sizeof(why));
        assert_non_null(strstr(why, "65535"));
}

static void test_port(void **state)
{
        (void)state;
        assert_int_equal(dnet_listen_port("0.0.0.0:8080"), 8080);
        assert_int_equal(dnet_listen_port(":80"), 80);
        assert_int_equal(dnet_listen_port("[::1]:9"), 9);
        assert_int_equal(dnet_listen_port("h:0"), 0);
        assert_int_equal(dnet_listen_port("h:65535"), 65535);
        assert_int_equal(dnet_listen_port("nope"), -1);
        assert_int_equal(dnet_listen_port("h:65536"), -1);
        assert_int_equal(dnet_listen_port("::1:80"), -1);
}

static void test_resolve_v4(void **state)
{
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char why[128], addr[64];
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

        (void)state;
        assert_int_equal(
            dnet_resolve_listen("127.0.0.1:1234", &ss, &len, why, sizeof(why)), 0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(len, sizeof(struct sockaddr_in));
        assert_int_equal(ntohs(in->sin_port), 1234);
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
        assert_string_equal(addr, "127.0.0.1");

        assert_int_equal(dnet_resolve_listen("0.0.0.0:0", &ss, &len, why, sizeof(why)),
                         0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(ntohs(in->sin_port), 0);
        assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_ANY));
}

static void test_resolve_v6(void **state)
{
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char why[128];
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

        (void)state;
        assert_int_equal(dnet_resolve_listen("[::1]:9", &ss, &len, why, sizeof(why)),
                         0);
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(len, sizeof(struct sockaddr_in6));
        assert_int_equal(ntohs(in6->sin6_port), 9);
        assert_memory_equal(&in6->sin6_addr, &in6addr_loopback,
                            sizeof(in6addr_loopback));
}

static void test_resolve_wildcard(void **state)
{
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char why[128];

        (void)state;
        assert_int_equal(dnet_resolve_listen(":8081", &ss, &len, why, sizeof(why)), 0);
        if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
                assert_int_equal(ntohs(in->sin_port), 8081);
                assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_ANY));
        } else {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
                assert_int_equal(ss.ss_family, AF_INET6);
                assert_int_equal(ntohs(in6->sin6_port), 8081);
                assert_memory_equal(&in6->sin6_addr, &in6addr_any, sizeof(in6addr_any));
        }
}

static void test_resolve_bad_syntax(void **state)
{
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char why[128] = "";

        (void)state;
        assert_int_equal(dnet_resolve_listen("nope", &ss, &len, why, sizeof(why)), -1);
        assert_true(why[0] != '\0');
        why[0] = '\0';
        assert_int_equal(
            dnet_resolve_listen("1.2.3.4:70000", &ss, &len, why, sizeof(why)), -1);
        assert_true(why[0] != '\0');
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_check_ok),
            cmocka_unit_test(test_check_bad),
            cmocka_unit_test(test_port),
            cmocka_unit_test(test_resolve_v4),
            cmocka_unit_test(test_resolve_v6),
            cmocka_unit_test(test_resolve_wildcard),
            cmocka_unit_test(test_resolve_bad_syntax),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
