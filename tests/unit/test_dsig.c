/* Unit tests for dsig: header parsing, HMAC-SHA256 (RFC 4231), verify, sign. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "dsecrets.h"
#include "dsig.h"

static void hex_of(const unsigned char *b, size_t n, char *out)
{
        static const char hx[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i]     = hx[b[i] >> 4];
                out[2 * i + 1] = hx[b[i] & 15];
        }
        out[2 * n] = '\0';
}

static void hmac_hex(const unsigned char *key, size_t keylen, const void *body,
                     size_t bodylen, char out[2 * DSIG_LEN + 1])
{
        unsigned char mac[DSIG_LEN];

        assert_int_equal(dsig_hmac(key, keylen, body, bodylen, mac), 0);
        hex_of(mac, sizeof(mac), out);
}

/* ---- dsig_parse ---- */

static void test_parse_missing(void **state)
{
        unsigned char d[DSIG_LEN];

        (void)state;
        assert_int_equal(dsig_parse(NULL, d), DSIG_MISSING);
}

static void test_parse_ok_lower_and_upper(void **state)
{
        unsigned char d[DSIG_LEN], want[DSIG_LEN];
        char hdr[80];

        (void)state;
        for (int i = 0; i < DSIG_LEN; i++)
                want[i] = (unsigned char)(i * 7 + 0xa0);
        strcpy(hdr, "sha256=");
        hex_of(want, DSIG_LEN, hdr + 7);
        memset(d, 0, sizeof(d));
        assert_int_equal(dsig_parse(hdr, d), DSIG_OK);
        assert_memory_equal(d, want, DSIG_LEN);

        /* Upper-case hex digits are the same digest. */
        for (char *p = hdr + 7; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
        memset(d, 0, sizeof(d));
        assert_int_equal(dsig_parse(hdr, d), DSIG_OK);
        assert_memory_equal(d, want, DSIG_LEN);

        /* Mixed case too. */
        hdr[7] = 'a';
        hdr[8] = 'B';
        memset(d, 0, sizeof(d));
        assert_int_equal(dsig_parse(hdr, d), DSIG_OK);
        assert_int_equal(d[0], 0xab);
}

static void test_parse_malformed(void **state)
{
        unsigned char d[DSIG_LEN];
        char hex64[65], buf[128];

        (void)state;
        memset(hex64, 'a', 64);
        hex64[64] = '\0';

        /* wrong or missing prefix */
        snprintf(buf, sizeof(buf), "sha1=%s", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        snprintf(buf, sizeof(buf), "%s", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        snprintf(buf, sizeof(buf), "sha256:%s", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        snprintf(buf, sizeof(buf), " sha256=%s", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        assert_int_equal(dsig_parse("", d), DSIG_MALFORMED);
        assert_int_equal(dsig_parse("sha256=", d), DSIG_MALFORMED);

        /* 63 and 65 hex digits */
        snprintf(buf, sizeof(buf), "sha256=%.63s", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        snprintf(buf, sizeof(buf), "sha256=%sa", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);

        /* non-hex digit at the start, middle and end */
        snprintf(buf, sizeof(buf), "sha256=%s", hex64);
        buf[7] = 'g';
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        snprintf(buf, sizeof(buf), "sha256=%s", hex64);
        buf[7 + 31] = 'z';
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        snprintf(buf, sizeof(buf), "sha256=%s", hex64);
        buf[7 + 63] = ' ';
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);
        snprintf(buf, sizeof(buf), "sha256=%.62s-1", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_MALFORMED);

        /* the control case: exactly 64 valid digits parse */
        snprintf(buf, sizeof(buf), "sha256=%s", hex64);
        assert_int_equal(dsig_parse(buf, d), DSIG_OK);
}

/* ---- RFC 4231 HMAC-SHA256 test vectors ---- */

static void test_rfc4231_case1(void **state)
{
        unsigned char key[20];
        char got[65];

        (void)state;
        memset(key, 0x0b, sizeof(key));
        hmac_hex(key, sizeof(key), "Hi There", 8, got);
        assert_string_equal(
            got, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void test_rfc4231_case2(void **state)
{
        const char *data = "what do ya want for nothing?";
        char got[65];

        (void)state;
        hmac_hex((const unsigned char *)"Jefe", 4, data, strlen(data), got);
        assert_string_equal(
            got, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_rfc4231_case3(void **state)
{
        unsigned char key[20], data[50];
        char got[65];

        (void)state;
        memset(key, 0xaa, sizeof(key));
        memset(data, 0xdd, sizeof(data));
        hmac_hex(key, sizeof(key), data, sizeof(data), got);
        assert_string_equal(
            got, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

static void test_rfc4231_case4(void **state)
{
        unsigned char key[25], data[50];
        char got[65];

        (void)state;
        for (int i = 0; i < 25; i++)
                key[i] = (unsigned char)(i + 1);
        memset(data, 0xcd, sizeof(data));
        hmac_hex(key, sizeof(key), data, sizeof(data), got);
        assert_string_equal(
            got, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

static void test_rfc4231_case6(void **state)
{
        const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";
        unsigned char key[131];
        char got[65];

        (void)state;
        memset(key, 0xaa, sizeof(key));
        hmac_hex(key, sizeof(key), data, strlen(data), got);
        assert_string_equal(
            got, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_rfc4231_case7(void **state)
{
        const char *data = "This is a test using a larger than block-size key and a "
                           "larger than block-size data. The key needs to be hashed "
                           "before being used by the HMAC algorithm.";
        unsigned char key[131];
        char got[65];

        (void)state;
        memset(key, 0xaa, sizeof(key));
        hmac_hex(key, sizeof(key), data, strlen(data), got);
        assert_string_equal(
            got, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void test_hmac_empty_body(void **state)
{
        char got[65];

        (void)state;
        /* HMAC-SHA256(key="key", "") (well-known value). */
        hmac_hex((const unsigned char *)"key", 3, "", 0, got);
        assert_string_equal(
            got, "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
        /* A NULL body with length 0 is the same. */
        hmac_hex((const unsigned char *)"key", 3, NULL, 0, got);
        assert_string_equal(
            got, "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

/* ---- dsig_sign / dsig_verify ---- */

static struct dsecrets_set *set_of(const char *lines)
{
        struct dsecrets_set *s = dsecrets_parse(lines, strlen(lines));

        assert_non_null(s);
        return s;
}

static void test_sign_format_and_round_trip(void **state)
{
        const char *body = "{\"id\":\"evt_1\"}";
        char sig[80], want[65];
        struct dsecrets_set *set = set_of("s3cret\n");

        (void)state;
        dsig_sign((const unsigned char *)"s3cret", 6, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(strlen(sig), 7 + 64);
        assert_memory_equal(sig, "sha256=", 7);
        hmac_hex((const unsigned char *)"s3cret", 6, body, strlen(body), want);
        assert_string_equal(sig + 7, want);
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_OK);
        dsecrets_release(set);
}

static void test_sign_small_buffer(void **state)
{
        char sig[71];

        (void)state;
        memset(sig, 'x', sizeof(sig));
        dsig_sign((const unsigned char *)"k", 1, "b", 1, sig, sizeof(sig));
        assert_string_equal(sig, "");
        /* exactly 72 bytes is enough */
        {
                char ok[72];
                dsig_sign((const unsigned char *)"k", 1, "b", 1, ok, sizeof(ok));
                assert_int_equal(strlen(ok), 71);
        }
}

static void test_verify_several_secrets(void **state)
{
        const char *body         = "{\"event\":\"ITEM_UPDATE\"}";
        struct dsecrets_set *set = set_of("old-secret\nnew-secret\n");
        char sig[80];

        (void)state;
        assert_int_equal(set->n, 2);
        dsig_sign((const unsigned char *)"old-secret", 10, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_OK);
        dsig_sign((const unsigned char *)"new-secret", 10, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_OK);
        dsig_sign((const unsigned char *)"other", 5, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_MISMATCH);
        dsecrets_release(set);
}

static void test_verify_secret_one_byte_off(void **state)
{
        const char *body         = "payload";
        struct dsecrets_set *set = set_of("abcdef");
        char sig[80];

        (void)state;
        /* last byte differs */
        dsig_sign((const unsigned char *)"abcdeg", 6, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_MISMATCH);
        /* one byte shorter, one byte longer */
        dsig_sign((const unsigned char *)"abcde", 5, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_MISMATCH);
        dsig_sign((const unsigned char *)"abcdefg", 7, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_MISMATCH);
        /* the right one */
        dsig_sign((const unsigned char *)"abcdef", 6, body, strlen(body), sig,
                  sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_OK);
        /* ... but over a body one byte off */
        assert_int_equal(dsig_verify(set, sig, "payloae", 7), DSIG_MISMATCH);
        assert_int_equal(dsig_verify(set, sig, body, strlen(body) - 1), DSIG_MISMATCH);
        dsecrets_release(set);
}

static void test_verify_signature_one_bit_off(void **state)
{
        const char *body         = "payload";
        struct dsecrets_set *set = set_of("abcdef");
        char sig[80];

        (void)state;
        dsig_sign((const unsigned char *)"abcdef", 6, body, strlen(body), sig,
                  sizeof(sig));
        sig[7 + 63] = sig[7 + 63] == '0' ? '1' : '0';
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_MISMATCH);
        dsecrets_release(set);
}

static void test_verify_empty_body(void **state)
{
        struct dsecrets_set *set = set_of("key");
        char sig[80];

        (void)state;
        dsig_sign((const unsigned char *)"key", 3, "", 0, sig, sizeof(sig));
        assert_string_equal(sig, "sha256=5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794"
                                 "cd232dc1b74832607d0");
        assert_int_equal(dsig_verify(set, sig, "", 0), DSIG_OK);
        assert_int_equal(dsig_verify(set, sig, NULL, 0), DSIG_OK);
        assert_int_equal(dsig_verify(set, sig, " ", 1), DSIG_MISMATCH);
        dsecrets_release(set);
}

static void test_verify_header_errors_and_null_set(void **state)
{
        struct dsecrets_set *set = set_of("key");
        char sig[80];

        (void)state;
        assert_int_equal(dsig_verify(set, NULL, "x", 1), DSIG_MISSING);
        assert_int_equal(dsig_verify(set, "sha256=zz", "x", 1), DSIG_MALFORMED);
        dsig_sign((const unsigned char *)"key", 3, "x", 1, sig, sizeof(sig));
        assert_int_equal(dsig_verify(NULL, sig, "x", 1), DSIG_MISMATCH);
        dsecrets_release(set);
}

static void test_verify_binary_body(void **state)
{
        static const unsigned char body[] = {0x00, 0xff, 0x7b, 0x00, 0x0a};
        struct dsecrets_set *set          = set_of("k");
        char sig[80];

        (void)state;
        dsig_sign((const unsigned char *)"k", 1, body, sizeof(body), sig, sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, sizeof(body)), DSIG_OK);
        /* a NUL in the body is not a terminator: dropping the bytes after it fails */
        assert_int_equal(dsig_verify(set, sig, body, 1), DSIG_MISMATCH);
        dsecrets_release(set);
}

static void test_result_str(void **state)
{
        (void)state;
        assert_string_equal(dsig_result_str(DSIG_OK), "ok");
        assert_non_null(strstr(dsig_result_str(DSIG_MISSING), "missing"));
        assert_non_null(strstr(dsig_result_str(DSIG_MALFORMED), "malformed"));
        assert_non_null(strstr(dsig_result_str(DSIG_MISMATCH), "match"));
}

/* FIPS 180-2 examples, and the empty string */
static void test_sha256_known_digests(void **state)
{
        static const struct {
                const char *in, *hex;
        } cases[] = {
            {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
            {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
            {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        };
        char key[DSIG_SHA256_KEY_SIZE], want[DSIG_SHA256_KEY_SIZE];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned char md[DSIG_LEN];
                char hex[2 * DSIG_LEN + 1];
                dsig_sha256(cases[i].in, strlen(cases[i].in), md);
                for (size_t k = 0; k < DSIG_LEN; k++)
                        snprintf(hex + 2 * k, 3, "%02x", md[k]);
                assert_string_equal(hex, cases[i].hex);
                dsig_sha256_key(cases[i].in, strlen(cases[i].in), key);
                snprintf(want, sizeof(want), "sha256:%s", cases[i].hex);
                assert_string_equal(key, want);
        }
        /* no data at all is the empty string */
        dsig_sha256_key(NULL, 0, key);
        snprintf(want, sizeof(want), "sha256:%s", cases[0].hex);
        assert_string_equal(key, want);
}

/* dsig_verify copies each secret's keyed HMAC context; without one it keys HMAC from
 * the secret itself. Both give the same answers, and the context is not used up. */
static void test_verify_keyed_context_and_fallback(void **state)
{
        const char *body = "{\"event\":\"CO_RESOLUTION\"}";
        char sig_b[80], sig_c[80];
        struct dsecrets_set *set = set_of("a-secret\nb-secret\n");

        (void)state;
        dsig_sign((const unsigned char *)"b-secret", 8, body, strlen(body), sig_b,
                  sizeof(sig_b));
        dsig_sign((const unsigned char *)"c-secret", 8, body, strlen(body), sig_c,
                  sizeof(sig_c));
        assert_int_equal(set->n, 2);
        assert_non_null(set->secret[0].mac);
        assert_non_null(set->secret[1].mac);
        for (int round = 0; round < 3; round++) {
                assert_int_equal(dsig_verify(set, sig_b, body, strlen(body)), DSIG_OK);
                assert_int_equal(dsig_verify(set, sig_c, body, strlen(body)),
                                 DSIG_MISMATCH);
                assert_int_equal(dsig_verify(set, sig_b, body, strlen(body) - 1),
                                 DSIG_MISMATCH);
        }
        for (size_t i = 0; i < set->n; i++) {
                EVP_MAC_CTX_free(set->secret[i].mac);
                set->secret[i].mac = NULL;
        }
        assert_int_equal(dsig_verify(set, sig_b, body, strlen(body)), DSIG_OK);
        assert_int_equal(dsig_verify(set, sig_c, body, strlen(body)), DSIG_MISMATCH);
        dsecrets_release(set);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_missing),
            cmocka_unit_test(test_sha256_known_digests),
            cmocka_unit_test(test_parse_ok_lower_and_upper),
            cmocka_unit_test(test_parse_malformed),
            cmocka_unit_test(test_rfc4231_case1),
            cmocka_unit_test(test_rfc4231_case2),
            cmocka_unit_test(test_rfc4231_case3),
            cmocka_unit_test(test_rfc4231_case4),
            cmocka_unit_test(test_rfc4231_case6),
            cmocka_unit_test(test_rfc4231_case7),
            cmocka_unit_test(test_hmac_empty_body),
            cmocka_unit_test(test_sign_format_and_round_trip),
            cmocka_unit_test(test_sign_small_buffer),
            cmocka_unit_test(test_verify_several_secrets),
            cmocka_unit_test(test_verify_keyed_context_and_fallback),
            cmocka_unit_test(test_verify_secret_one_byte_off),
            cmocka_unit_test(test_verify_signature_one_bit_off),
            cmocka_unit_test(test_verify_empty_body),
            cmocka_unit_test(test_verify_header_errors_and_null_set),
            cmocka_unit_test(test_verify_binary_body),
            cmocka_unit_test(test_result_str),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
