/* dsecrets.c - active webhook secrets with reload (see dsecrets.h). */
#include "dsecrets.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dfile.h"

#define DSECRETS_MAX_FILE (1024 * 1024)

struct dsecrets {
        pthread_mutex_t lock;
        struct dsecrets_set *cur;
        char *path;       /* NULL when from the environment */
        struct stat seen; /* identity of the file last loaded */
        int failing;      /* the last reload failed */
};

static void dsecrets_set_free(struct dsecrets_set *set)
{
        for (size_t i = 0; i < set->n; i++) {
                EVP_MAC_CTX_free(set->secret[i].mac); /* wipes the keyed state */
                OPENSSL_cleanse(set->secret[i].key, set->secret[i].len);
                free(set->secret[i].key);
        }
        free(set);
}

void dsecrets_release(struct dsecrets_set *set)
{
        if (set && atomic_fetch_sub(&set->refcnt, 1) == 1)
                dsecrets_set_free(set);
}

/* A keyed HMAC-SHA256 context for one secret, or NULL. */
static EVP_MAC_CTX *dsecrets_mac_new(const unsigned char *key, size_t len)
{
        EVP_MAC *mac     = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        char digest[]    = "SHA256";
        OSSL_PARAM params[2];

        EVP_MAC_free(mac); /* the context keeps its own reference */
        if (!ctx)
                return NULL;
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        if (!EVP_MAC_init(ctx, key, len, params)) {
                EVP_MAC_CTX_free(ctx);
                return NULL;
        }
        return ctx;
}

static int dsecrets_is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
               c == '\f';
}

struct dsecrets_set *dsecrets_parse(const char *data, size_t len)
{
        struct dsecrets_set *set;
        size_t lines = 1, i = 0;

        for (size_t k = 0; k < len; k++)
                lines += data[k] == '\n';
        set = calloc(1, sizeof(*set) + lines * sizeof(set->secret[0]));
        if (!set)
                return NULL;
        set->refcnt = 1;
        while (i < len) {
                size_t s = i, e;
                while (i < len && data[i] != '\n')
                        i++;
                e = i;
                i++; /* skip the newline */
                while (s < e && dsecrets_is_space(data[s]))
                        s++;
                while (e > s && dsecrets_is_space(data[e - 1]))
                        e--;
                if (e == s)
                        continue;
                set->secret[set->n].key = malloc(e - s);
                if (!set->secret[set->n].key) {
                        dsecrets_set_free(set);
                        return NULL;
                }
                memcpy(set->secret[set->n].key, data + s, e - s);
                set->secret[set->n].len = e - s;
                set->secret[set->n].mac =
                    dsecrets_mac_new(set->secret[set->n].key, e - s);
                set->n++;
        }
        if (set->n == 0) {
                dsecrets_set_free(set);
                return NULL;
        }
        return set;
}

static int dsecrets_same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
               a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int dsecrets_reload(struct dsecrets *s, int force, char *err, size_t errsize)
{
        struct dsecrets_set *set, *old;
        struct stat st;
        size_t len = 0;
        char *buf;

        if (!s->path)
                return 0;
        if (!force && stat(s->path, &st) == 0 && dsecrets_same_file(&st, &s->seen))
                return 0;
        if (!force && s->failing && stat(s->path, &st) != 0)
                return 0; /* still missing: said once already */
        buf = dfile_read(s->path, DSECRETS_MAX_FILE, &len, &st, err, errsize);
        if (!buf) {
                s->failing = 1;
                return -1;
        }
        set = dsecrets_parse(buf, len);
        OPENSSL_cleanse(buf, len);
        free(buf);
        if (!set) {
                snprintf(err, errsize, "secrets file %s holds no secret", s->path);
                s->seen = st; /* do not retry the same empty file every tick */
                return -1;
        }
        pthread_mutex_lock(&s->lock);
        s->failing = 0;
        old        = s->cur;
        s->cur     = set;
        s->seen    = st;
        pthread_mutex_unlock(&s->lock);
        dsecrets_release(old);
        return 1;
}

struct dsecrets *dsecrets_new(const char *env_secret, const char *path, char *err,
                              size_t errsize)
{
        struct dsecrets *s = calloc(1, sizeof(*s));

        if (!s) {
                snprintf(err, errsize, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&s->lock, NULL);
        if (env_secret && *env_secret) {
                s->cur = dsecrets_parse(env_secret, strlen(env_secret));
                if (!s->cur) {
                        snprintf(err, errsize,
                                 "the secret given in the environment is blank");
                        dsecrets_destroy(s);
                        return NULL;
                }
                return s;
        }
        if (!path || !*path) {
                snprintf(err, errsize, "no secret: neither a value nor a file given");
                dsecrets_destroy(s);
                return NULL;
        }
        s->path = strdup(path);
        if (!s->path || dsecrets_reload(s, 1, err, errsize) < 0) {
                dsecrets_destroy(s);
                return NULL;
        }
        return s;
}

void dsecrets_destroy(struct dsecrets *s)
{
        if (!s)
                return;
        dsecrets_release(s->cur);
        free(s->path);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

struct dsecrets_set *dsecrets_acquire(struct dsecrets *s)
{
        struct dsecrets_set *set;

        pthread_mutex_lock(&s->lock);
        set = s->cur;
        atomic_fetch_add(&set->refcnt, 1);
        pthread_mutex_unlock(&s->lock);
        return set;
}

size_t dsecrets_count(struct dsecrets *s)
{
        struct dsecrets_set *set = dsecrets_acquire(s);
        size_t n                 = set->n;

        dsecrets_release(set);
        return n;
}
