/* dpayload.h - Duro webhook payload: validation and the raw record's key.
 *
 * Shared by the bridge (what to publish and how to mark it) and the enricher (how to
 * read a raw record). The payload is {"id","webhook_id","event","created_at","data"};
 * the bridge's contract lists what makes it invalid. */
#ifndef DPAYLOAD_H
#define DPAYLOAD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "dsig.h"
#include "dwire.h"

/* Deepest nesting accepted (a signed body nested deeper is captured as invalid). */
#define DPAYLOAD_MAX_DEPTH 64

struct dpayload {
        json_t *root;     /* owned; NULL when the body is not JSON */
        int valid;        /* 1 when every check passed */
        char reason[160]; /* why it is invalid (empty when valid) */
        /* Borrowed from root (valid while root lives); NULL when absent. */
        const char *id;
        const char *event;
        const char *webhook_id;
        const char *created_at;
        const char *item_id;         /* data.item_id when a non-empty string */
        const char *change_order_id; /* data.change_order_id likewise */
        enum dwire_kind kind;
        int64_t created_at_ms; /* when created_at_ok */
        int created_at_ok; /* created_at is an RFC 3339 string, the body valid or not */
};

/* Parses and validates body (len bytes, need not be NUL-terminated). Always fills p;
 * call dpayload_free() afterwards. Returns 0 when valid, -1 when invalid. */
int dpayload_parse(struct dpayload *p, const char *body, size_t len);
void dpayload_free(struct dpayload *p);

/* The raw record's key (the bridge's contract): item id for ITEM_*, change order id for
 * CO_*, else the first of those present, else the event id, else "sha256:<hex of
 * body>". Returns a string borrowed from p, or, for the hash form, written into buf. */
#define DPAYLOAD_HASHKEY_SIZE DSIG_SHA256_KEY_SIZE
const char *dpayload_key(const struct dpayload *p, const char *body, size_t len,
                         char buf[DPAYLOAD_HASHKEY_SIZE]);

/* Classifies an event name by prefix. */
enum dwire_kind dpayload_kind_of(const char *event);

/* Returns the maximum nesting depth of JSON text, counting brackets outside strings.
 * Stops counting (and returns limit+1) once limit is exceeded. */
int dpayload_depth(const char *body, size_t len, int limit);

#endif
