/* dlogtable.h - the log table: where, in an entry of a webhook's delivery log (Duro's
 * `webhooks { getLogs }`: id, event, metadata, responseCode, isAcknowledged,
 * createdAt), the event id, the event name, the original payload and the resource sit.
 * Read from a file at start-up by `duro-enricher reconcile` (schemas/log-table.txt;
 * DURO_LOG_TABLE), so that a Duro whose `metadata` is an object, a string holding
 * JSON, or delivery details only is followed by editing a file, not a release.
 *
 * Each field has paths tried in order; a path is dot-separated object keys from the
 * entry, and a step that meets a string holding JSON parses it and goes on inside.
 * A table is immutable once loaded; lookups are thread-safe. */
#ifndef DLOGTABLE_H
#define DLOGTABLE_H

#include <jansson.h>
#include <stddef.h>

enum dlogtable_field {
        DLOGTABLE_EVENT_ID, /* the event's id (required) */
        DLOGTABLE_EVENT,    /* the event name (required) */
        DLOGTABLE_PAYLOAD,  /* the payload Duro delivered, as an object */
        DLOGTABLE_DATA,     /* the payload's data, whose id field names the resource */
        DLOGTABLE_RESOURCE, /* the resource id itself */
        DLOGTABLE_CREATED_AT, /* when the event happened */
        DLOGTABLE_NFIELDS
};

#define DLOGTABLE_MAX_PATHS 8            /* per field */
#define DLOGTABLE_MAX_STEPS 8            /* per path */
#define DLOGTABLE_MAX_JSON  (256 * 1024) /* longest string parsed as JSON */

struct dlogtable_path {
        char *step[DLOGTABLE_MAX_STEPS];
        int nsteps;
};

struct dlogtable {
        struct dlogtable_path paths[DLOGTABLE_NFIELDS][DLOGTABLE_MAX_PATHS];
        int npaths[DLOGTABLE_NFIELDS];
        char *path; /* the file read, for messages */
};

/* The field's name as the table writes it ("event_id"). */
const char *dlogtable_field_name(enum dlogtable_field f);

/* Parses text (len bytes) as read from path. On error returns -1 and writes one line
 * "<path>:<line>: <what>" into err; the table is then empty. */
int dlogtable_parse(struct dlogtable *t, const char *text, size_t len, const char *path,
                    char *err, size_t errsize);

/* Reads and parses the file at path (NULL: the installed default). Errors start with
 * "DURO_LOG_TABLE" or the file and line. */
int dlogtable_load(struct dlogtable *t, const char *path, char *err, size_t errsize);

void dlogtable_free(struct dlogtable *t);

/* The value of field f in entry: that of its first path that reaches a value of the
 * field's type: an object for payload and data (a string holding one is parsed), a
 * non-empty string for the others. A new reference (json_decref()), or NULL when no
 * path does. */
json_t *dlogtable_get(const struct dlogtable *t, enum dlogtable_field f, json_t *entry);

/* dlogtable_get() of a string field: a malloc'd copy, or NULL when no path gives one.
 */
char *dlogtable_string(const struct dlogtable *t, enum dlogtable_field f,
                       json_t *entry);

#endif
