/* dsig.h - Duro webhook signatures: "X-Duro-Signature: sha256=<64 hex>" over the raw
 * body, HMAC-SHA256 with any of the active secrets, compared in constant time. */
#ifndef DSIG_H
#define DSIG_H

#include <stddef.h>

#include "dsecrets.h"

#define DSIG_LEN 32

enum dsig_result {
        DSIG_OK        = 0,
        DSIG_MISSING   = 1, /* no header */
        DSIG_MALFORMED = 2, /* not sha256= + 64 hex digits */
        DSIG_MISMATCH  = 3, /* no active secret matches */
};

/* Parses the header value (may be NULL) into the 32-byte digest.
 * Returns DSIG_OK, DSIG_MISSING or DSIG_MALFORMED. */
enum dsig_result dsig_parse(const char *header, unsigned char out[DSIG_LEN]);

/* Computes HMAC-SHA256(key, body) into out. Returns 0 or -1. */
int dsig_hmac(const unsigned char *key, size_t keylen, const void *body, size_t bodylen,
              unsigned char out[DSIG_LEN]);

/* Verifies the header against every secret in set (constant-time compare against each,
 * so timing does not tell which secret or how many bytes matched). */
enum dsig_result dsig_verify(const struct dsecrets_set *set, const char *header,
                             const void *body, size_t bodylen);

/* Writes "sha256=<hex>" for body under key into out (at least 72 bytes). */
void dsig_sign(const unsigned char *key, size_t keylen, const void *body,
               size_t bodylen, char *out, size_t outsize);

const char *dsig_result_str(enum dsig_result r);

/* SHA-256 of data into out. The digest is fetched from OpenSSL once per process:
 * OpenSSL 3's one-shot SHA256() fetches it again on every call (a lock and a lookup,
 * more than the hashing itself for short keys). Thread-safe. */
void dsig_sha256(const void *data, size_t len, unsigned char out[DSIG_LEN]);

/* Writes "sha256:<64 lowercase hex>" of data into out. */
#define DSIG_SHA256_KEY_SIZE 72
void dsig_sha256_key(const void *data, size_t len, char out[DSIG_SHA256_KEY_SIZE]);

#endif
