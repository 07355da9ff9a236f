/* dpayload.h - Duro webhook payload: validation, its resource and the raw record's key.
 *
 * Shared by the bridge (what to publish and how to mark it) and the enricher (how to
 * read a raw record). The payload is {"id","webhook_id","event","created_at","data"};
 * the bridge's contract lists what makes it invalid. The resource (kind and id) comes
 * from the event table (devtable.h); without one, from the rules that came before it
 * (ITEM_* names data.item_id, CO_* data.change_order_id, both required). */
#ifndef DPAYLOAD_H
#define DPAYLOAD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "devtable.h"
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
        enum dwire_kind kind;        /* UNKNOWN unless resource_id was found */
        const char *resource_id;     /* borrowed: the id named by the entry's fields */
        const struct devtable_entry *entry; /* borrowed from the table; may be NULL */
        int id_missing;        /* one of Duro's documented events without its id */
        int invalid_id_only;   /* invalid for that alone: everything else passed */
        char id_reason[96];    /* why, in the bridge's contract's words */
        int64_t created_at_ms; /* when created_at_ok */
        int created_at_ok; /* created_at is an RFC 3339 string, the body valid or not */
};

/* Parses and validates body (len bytes, need not be NUL-terminated), finding its
 * resource through t (NULL: the rules before the event table). Always fills p; call
 * dpayload_free() afterwards. Returns 0 when valid, -1 when invalid. */
int dpayload_parse(struct dpayload *p, const struct devtable *t, const char *body,
                   size_t len);
void dpayload_free(struct dpayload *p);

/* The raw record's key (the bridge's contract): the resource id, else the first of
 * data.item_id and data.change_order_id present, else the event id, else
 * "sha256:<hex of body>". Returns a string borrowed from p, or, for the hash form,
 * written into buf. */
#define DPAYLOAD_HASHKEY_SIZE DSIG_SHA256_KEY_SIZE
const char *dpayload_key(const struct dpayload *p, const char *body, size_t len,
                         char buf[DPAYLOAD_HASHKEY_SIZE]);

/* Classifies an event name by prefix (the rule before the event table). */
enum dwire_kind dpayload_kind_of(const char *event);

/* Returns the maximum nesting depth of JSON text, counting brackets outside strings.
 * Stops counting (and returns limit+1) once limit is exceeded. */
int dpayload_depth(const char *body, size_t len, int limit);

#endif
