/* dsig.c - HMAC-SHA256 webhook signatures (see dsig.h). */
#include "dsig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int dsig_hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

enum dsig_result dsig_parse(const char *header, unsigned char out[DSIG_LEN])
{
        static const char prefix[] = "sha256=";
        const char *hex;
        size_t len;

        if (!header)
                return DSIG_MISSING;
        if (strncmp(header, prefix, sizeof(prefix) - 1) != 0)
                return DSIG_MALFORMED;
        hex = header + sizeof(prefix) - 1;
        len = strlen(hex);
        while (len && (hex[len - 1] == ' ' || hex[len - 1] == '\t'))
                len--; /* trailing optional white space is not part of the value */
        if (len != DSIG_LEN * 2)
                return DSIG_MALFORMED;
        for (size_t i = 0; i < DSIG_LEN; i++) {
                int hi = dsig_hexval(hex[2 * i]), lo = dsig_hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return DSIG_MALFORMED;
                out[i] = (unsigned char)(hi << 4 | lo);
        }
        return DSIG_OK;
}

int dsig_hmac(const unsigned char *key, size_t keylen, const void *body, size_t bodylen,
              unsigned char out[DSIG_LEN])
{
        unsigned int outlen              = 0;
        static const unsigned char empty = 0;

        if (keylen > (size_t)0x7fffffff)
                return -1;
        if (!HMAC(EVP_sha256(), key, (int)keylen,
                  bodylen ? (const unsigned char *)body : &empty, bodylen, out,
                  &outlen) ||
            outlen != DSIG_LEN)
                return -1;
        return 0;
}

/* HMAC-SHA256 of body with a secret: a copy of its keyed context when the set has
 * one, else from the key. Returns 0 or -1. */
static int dsig_hmac_secret(const struct dsecrets_secret *sec, const void *body,
                            size_t bodylen, unsigned char out[DSIG_LEN])
{
        static const unsigned char empty = 0;
        EVP_MAC_CTX *ctx;
        size_t outlen = 0;
        int ok;

        if (!sec->mac || !(ctx = EVP_MAC_CTX_dup(sec->mac)))
                return dsig_hmac(sec->key, sec->len, body, bodylen, out);
        ok = EVP_MAC_update(ctx, bodylen ? body : &empty, bodylen) &&
             EVP_MAC_final(ctx, out, &outlen, DSIG_LEN) && outlen == DSIG_LEN;
        EVP_MAC_CTX_free(ctx);
        return ok ? 0 : -1;
}

enum dsig_result dsig_verify(const struct dsecrets_set *set, const char *header,
                             const void *body, size_t bodylen)
{
        unsigned char want[DSIG_LEN], got[DSIG_LEN];
        enum dsig_result r = dsig_parse(header, want);
        int match          = 0;

        if (r != DSIG_OK)
                return r;
        if (!set)
                return DSIG_MISMATCH;
        for (size_t i = 0; i < set->n; i++) {
                if (dsig_hmac_secret(&set->secret[i], body, bodylen, got))
                        continue;
                match |= CRYPTO_memcmp(got, want, DSIG_LEN) == 0;
        }
        return match ? DSIG_OK : DSIG_MISMATCH;
}

void dsig_sign(const unsigned char *key, size_t keylen, const void *body,
               size_t bodylen, char *out, size_t outsize)
{
        unsigned char mac[DSIG_LEN];
        size_t o;

        if (outsize < 8 + DSIG_LEN * 2) {
                if (outsize)
                        out[0] = '\0';
                return;
        }
        if (dsig_hmac(key, keylen, body, bodylen, mac)) {
                out[0] = '\0';
                return;
        }
        o = (size_t)snprintf(out, outsize, "sha256=");
        for (size_t i = 0; i < DSIG_LEN; i++)
                o += (size_t)snprintf(out + o, outsize - o, "%02x", mac[i]);
}

const char *dsig_result_str(enum dsig_result r)
{
        switch (r) {
        case DSIG_OK:
                return "ok";
        case DSIG_MISSING:
                return "missing X-Duro-Signature header";
        case DSIG_MALFORMED:
                return "malformed X-Duro-Signature (want sha256= and 64 hex "
                       "digits)";
        case DSIG_MISMATCH:
                return "signature does not match any active secret";
        }
        return "?";
}

static EVP_MD *dsig_md; /* SHA-256, fetched once; never freed (process lifetime) */
static pthread_once_t dsig_md_once = PTHREAD_ONCE_INIT;

static void dsig_md_fetch(void)
{
        dsig_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void dsig_sha256(const void *data, size_t len, unsigned char out[DSIG_LEN])
{
        static const unsigned char empty = 0;
        unsigned int n                   = 0;

        if (!data)
                data = &empty, len = 0;
        pthread_once(&dsig_md_once, dsig_md_fetch);
        if (!dsig_md || !EVP_Digest(data, len, out, &n, dsig_md, NULL) || n != DSIG_LEN)
                SHA256(data, len, out); /* the slow path never fails */
}

void dsig_sha256_key(const void *data, size_t len, char out[DSIG_SHA256_KEY_SIZE])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char md[DSIG_LEN];

        dsig_sha256(data, len, md);
        memcpy(out, "sha256:", 7);
        for (size_t i = 0; i < DSIG_LEN; i++) {
                out[7 + 2 * i]     = hex[md[i] >> 4];
                out[7 + 2 * i + 1] = hex[md[i] & 15];
        }
        out[7 + 2 * DSIG_LEN] = '\0';
}
