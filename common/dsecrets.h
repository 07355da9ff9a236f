/* dsecrets.h - the set of active webhook secrets, swappable at run time.
 *
 * Secrets come from DURO_WEBHOOK_SECRET (one) or a file (one per line, blank lines
 * ignored, surrounding white space trimmed). A reader takes a reference with
 * dsecrets_acquire() and gives it back with dsecrets_release(); a reload swaps in a new
 * set atomically, so a request always verifies against one consistent set. Secret bytes
 * are wiped before their memory is freed. Nothing here logs a secret. */
#ifndef DSECRETS_H
#define DSECRETS_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct dsecrets_secret {
        unsigned char *key;
        size_t len;
        /* HMAC-SHA256 keyed with key, made once per set: dsig_verify() copies it for
         * each request instead of fetching and keying HMAC again. NULL when it could
         * not be made (dsig_verify then computes the HMAC from key). */
        struct evp_mac_ctx_st *mac;
};

struct dsecrets_set {
        atomic_int refcnt;
        size_t n;
        struct dsecrets_secret secret[];
};

struct dsecrets;

/* Creates a holder. Exactly one of env_secret (the value, copied) or path is used:
 * env_secret when non-NULL and non-empty, else path. Loads once; returns NULL with a
 * reason in err when nothing usable was found. */
struct dsecrets *dsecrets_new(const char *env_secret, const char *path, char *err,
                              size_t errsize);
void dsecrets_destroy(struct dsecrets *s);

/* Takes a reference to the current set (never NULL while the holder lives). */
struct dsecrets_set *dsecrets_acquire(struct dsecrets *s);
void dsecrets_release(struct dsecrets_set *set);

/* Re-reads the file. force=0: only when its identity (device, inode, size, mtime)
 * changed since the last load. Returns 1 when a new set was installed, 0 when unchanged
 * or not file-backed, -1 on error (the old set stays; err says why). */
int dsecrets_reload(struct dsecrets *s, int force, char *err, size_t errsize);

/* Number of secrets in the current set. */
size_t dsecrets_count(struct dsecrets *s);

/* Parses file contents into a new set (refcnt 1). Returns NULL when it holds none. */
struct dsecrets_set *dsecrets_parse(const char *data, size_t len);

#endif
