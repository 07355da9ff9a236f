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
#include "tutil.h"

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
        /* the header: prefix, then `digits` hex digits 'a', then suffix; at byte `at`
         * (when not -1) `c` instead; and what dsig_parse says */
        static const struct {
                const char *prefix;
                int digits;
                const char *suffix;
                int at;
                char c;
                enum dsig_result want;
        } cases[] = {
            /* wrong or missing prefix */
            {"sha1=", 64, "", -1, 0, DSIG_MALFORMED},
            {"", 64, "", -1, 0, DSIG_MALFORMED},
            {"sha256:", 64, "", -1, 0, DSIG_MALFORMED},
            {" sha256=", 64, "", -1, 0, DSIG_MALFORMED},
            {"", 0, "", -1, 0, DSIG_MALFORMED},
            {"sha256=", 0, "", -1, 0, DSIG_MALFORMED},
            /* 63 and 65 hex digits */
            {"sha256=", 63, "", -1, 0, DSIG_MALFORMED},
            {"sha256=", 64, "a", -1, 0, DSIG_MALFORMED},
            /* non-hex digit at the start, middle and end */
            {"sha256=", 64, "", 7, 'g', DSIG_MALFORMED},
            {"sha256=", 64, "", 7 + 31, 'z', DSIG_MALFORMED},
            {"sha256=", 64, "", 7 + 63, ' ', DSIG_MALFORMED},
            {"sha256=", 62, "-1", -1, 0, DSIG_MALFORMED},
            /* the control case: exactly 64 valid digits parse */
            {"sha256=", 64, "", -1, 0, DSIG_OK},
        };
        unsigned char d[DSIG_LEN];

        (void)state;
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
                char buf[128];
                int n = snprintf(
                    buf, sizeof(buf), "%s%.*s%s", cases[i].prefix, cases[i].digits,
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaa",
                    cases[i].suffix);
                assert_true(n >= 0 && (size_t)n < sizeof(buf));
                if (cases[i].at >= 0)
                        buf[cases[i].at] = cases[i].c;
                assert_int_equal(dsig_parse(buf, d), cases[i].want);
        }
}

/* ---- RFC 4231 HMAC-SHA256 test vectors ---- */

/* One test case of RFC 4231: key and data are either given (len bytes) or len bytes
 * of fill; hex is the HMAC-SHA256. Each is a test of its own (see main). */
struct rfc4231 {
        const char *key;
        size_t key_len;
        unsigned char key_fill;
        const char *data;
        size_t data_len;
        unsigned char data_fill;
        const char *hex;
};

static const struct rfc4231 rfc4231_case1 = {
    NULL,
    20,
    0x0b,
    "Hi There",
    8,
    0,
    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"};
static const struct rfc4231 rfc4231_case2 = {
    "Jefe",
    4,
    0,
    "what do ya want for nothing?",
    28,
    0,
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"};
static const struct rfc4231 rfc4231_case3 = {
    NULL,
    20,
    0xaa,
    NULL,
    50,
    0xdd,
    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"};
static const struct rfc4231 rfc4231_case4 = {
    "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12"
    "\x13\x14\x15\x16\x17\x18\x19",
    25,
    0,
    NULL,
    50,
    0xcd,
    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"};
static const struct rfc4231 rfc4231_case6 = {
    NULL,
    131,
    0xaa,
    "Test Using Larger Than Block-Size Key - Hash Key First",
    54,
    0,
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"};
static const struct rfc4231 rfc4231_case7 = {
    NULL,
    131,
    0xaa,
    "This is a test using a larger than block-size key and a larger than block-size "
    "data. The key needs to be hashed before being used by the HMAC algorithm.",
    152,
    0,
    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"};

/* Runs the RFC 4231 case its state points to. */
static void test_rfc4231(void **state)
{
        const struct rfc4231 *c = *state;
        unsigned char key[256], data[256];
        char got[65];

        assert_true(c->key_len <= sizeof(key) && c->data_len <= sizeof(data));
        if (c->key)
                memcpy(key, c->key, c->key_len);
        else
                memset(key, c->key_fill, c->key_len);
        if (c->data) {
                assert_int_equal(strlen(c->data), c->data_len);
                memcpy(data, c->data, c->data_len);
        } else {
                memset(data, c->data_fill, c->data_len);
        }
        hmac_hex(key, c->key_len, data, c->data_len, got);
        assert_string_equal(got, c->hex);
}

#define RFC4231_TEST(n)                                                                \
        {                                                                              \
                "test_rfc4231_case" #n, test_rfc4231, NULL, NULL,                      \
                    (void *)&rfc4231_case##n                                           \
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

/* dsig_sign with a text key, over a text body, into sig (80 bytes: room to spare). */
static void sign_with(const char *key, const char *body, char sig[80])
{
        dsig_sign((const unsigned char *)key, strlen(key), body, strlen(body), sig, 80);
}

/* Fixture of the tests that verify: the initial state is the secrets file text, the
 * test gets the parsed set, teardown releases it. */
static int set_setup(void **state)
{
        const char *lines      = *state;
        struct dsecrets_set *s = dsecrets_parse(lines, strlen(lines));

        if (!s)
                return -1;
        *state = s;
        return 0;
}

static int set_teardown(void **state)
{
        dsecrets_release(*state);
        return 0;
}

#define SET_TEST(f, secrets)                                                           \
        cmocka_unit_test_prestate_setup_teardown(f, set_setup, set_teardown,           \
                                                 (void *)(secrets))

static void test_sign_format_and_round_trip(void **state)
{
        const char *body = "{\"id\":\"evt_1\"}";
        char sig[80], want[65];
        struct dsecrets_set *set = *state;

        sign_with("s3cret", body, sig);
        assert_int_equal(strlen(sig), 7 + 64);
        assert_memory_equal(sig, "sha256=", 7);
        hmac_hex((const unsigned char *)"s3cret", 6, body, strlen(body), want);
        assert_string_equal(sig + 7, want);
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_OK);
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

/* Signs body with key, then verifies that signature over the same body with set. */
static enum dsig_result verify_signed_by(const struct dsecrets_set *set,
                                         const char *key, const char *body)
{
        char sig[80];

        dsig_sign((const unsigned char *)key, strlen(key), body, strlen(body), sig,
                  sizeof(sig));
        return dsig_verify(set, sig, body, strlen(body));
}

static void test_verify_several_secrets(void **state)
{
        const char *body         = "{\"event\":\"ITEM_UPDATE\"}";
        struct dsecrets_set *set = *state;

        assert_int_equal(set->n, 2);
        assert_int_equal(verify_signed_by(set, "old-secret", body), DSIG_OK);
        assert_int_equal(verify_signed_by(set, "new-secret", body), DSIG_OK);
        assert_int_equal(verify_signed_by(set, "other", body), DSIG_MISMATCH);
}

static void test_verify_secret_one_byte_off(void **state)
{
        const char *body         = "payload";
        struct dsecrets_set *set = *state;
        char sig[80];

        /* last byte differs */
        assert_int_equal(verify_signed_by(set, "abcdeg", body), DSIG_MISMATCH);
        /* one byte shorter, one byte longer */
        assert_int_equal(verify_signed_by(set, "abcde", body), DSIG_MISMATCH);
        assert_int_equal(verify_signed_by(set, "abcdefg", body), DSIG_MISMATCH);
        /* the right one */
        assert_int_equal(verify_signed_by(set, "abcdef", body), DSIG_OK);
        /* ... but over a body one byte off */
        sign_with("abcdef", body, sig);
        assert_int_equal(dsig_verify(set, sig, "payloae", 7), DSIG_MISMATCH);
        assert_int_equal(dsig_verify(set, sig, body, strlen(body) - 1), DSIG_MISMATCH);
}

static void test_verify_signature_one_bit_off(void **state)
{
        const char *body         = "payload";
        struct dsecrets_set *set = *state;
        char sig[80];

        sign_with("abcdef", body, sig);
        sig[7 + 63] = sig[7 + 63] == '0' ? '1' : '0';
        assert_int_equal(dsig_verify(set, sig, body, strlen(body)), DSIG_MISMATCH);
}

static void test_verify_empty_body(void **state)
{
        struct dsecrets_set *set = *state;
        char sig[80];

        dsig_sign((const unsigned char *)"key", 3, "", 0, sig, sizeof(sig));
        assert_string_equal(sig, "sha256=5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794"
                                 "cd232dc1b74832607d0");
        assert_int_equal(dsig_verify(set, sig, "", 0), DSIG_OK);
        assert_int_equal(dsig_verify(set, sig, NULL, 0), DSIG_OK);
        assert_int_equal(dsig_verify(set, sig, " ", 1), DSIG_MISMATCH);
}

static void test_verify_header_errors_and_null_set(void **state)
{
        struct dsecrets_set *set = *state;
        char sig[80];

        assert_int_equal(dsig_verify(set, NULL, "x", 1), DSIG_MISSING);
        assert_int_equal(dsig_verify(set, "sha256=zz", "x", 1), DSIG_MALFORMED);
        dsig_sign((const unsigned char *)"key", 3, "x", 1, sig, sizeof(sig));
        assert_int_equal(dsig_verify(NULL, sig, "x", 1), DSIG_MISMATCH);
}

static void test_verify_binary_body(void **state)
{
        static const unsigned char body[] = {0x00, 0xff, 0x7b, 0x00, 0x0a};
        struct dsecrets_set *set          = *state;
        char sig[80];

        dsig_sign((const unsigned char *)"k", 1, body, sizeof(body), sig, sizeof(sig));
        assert_int_equal(dsig_verify(set, sig, body, sizeof(body)), DSIG_OK);
        /* a NUL in the body is not a terminator: dropping the bytes after it fails */
        assert_int_equal(dsig_verify(set, sig, body, 1), DSIG_MISMATCH);
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
        for (size_t i = 0; i < TU_NELEM(cases); i++) {
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
        struct dsecrets_set *set = *state;

        sign_with("b-secret", body, sig_b);
        sign_with("c-secret", body, sig_c);
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
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_missing),
            cmocka_unit_test(test_sha256_known_digests),
            cmocka_unit_test(test_parse_ok_lower_and_upper),
            cmocka_unit_test(test_parse_malformed),
            RFC4231_TEST(1),
            RFC4231_TEST(2),
            RFC4231_TEST(3),
            RFC4231_TEST(4),
            RFC4231_TEST(6),
            RFC4231_TEST(7),
            cmocka_unit_test(test_hmac_empty_body),
            SET_TEST(test_sign_format_and_round_trip, "s3cret\n"),
            cmocka_unit_test(test_sign_small_buffer),
            SET_TEST(test_verify_several_secrets, "old-secret\nnew-secret\n"),
            SET_TEST(test_verify_keyed_context_and_fallback, "a-secret\nb-secret\n"),
            SET_TEST(test_verify_secret_one_byte_off, "abcdef"),
            SET_TEST(test_verify_signature_one_bit_off, "abcdef"),
            SET_TEST(test_verify_empty_body, "key"),
            SET_TEST(test_verify_header_errors_and_null_set, "key"),
            SET_TEST(test_verify_binary_body, "k"),
            cmocka_unit_test(test_result_str),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
