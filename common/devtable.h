/* devtable.h - the event table: what each Duro webhook event is about (its resource
 * kind, the data fields that may hold the resource id, whether it deletes, which
 * event's output topic it shares). Read from a file at start-up by duro-bridge and
 * duro-enricher (schemas/event-table.txt; DURO_EVENT_TABLE), so that a renamed or new
 * Duro event is a line of data, not a release.
 *
 * A table is immutable once loaded; lookups are thread-safe. Entries and their
 * strings belong to the table (devtable_free). */
#ifndef DEVTABLE_H
#define DEVTABLE_H

#include <jansson.h>
#include <stddef.h>

#include "dwire.h"

#define DEVTABLE_MAX_IDS 8 /* id fields per entry */

struct devtable_entry {
        char *name;  /* the event name, or the prefix of a pattern */
        int pattern; /* 1 when the name ended in '*' (a prefix match) */
        enum dwire_kind kind;
        char *ids[DEVTABLE_MAX_IDS]; /* data fields that may hold the id, in order */
        int nids;
        int id_known; /* one of Duro's documented nine (or a snapshot event): a payload
                         without the id is invalid; otherwise the id is assumed, and a
                         payload without it unsupported */
        int deletes;  /* 1: nothing to pull */
        char *topic_of; /* the event whose output topic it shares; NULL: its own */
        int line;       /* where it was read (0 when built in) */
};

struct devtable {
        struct devtable_entry *e; /* exact names first (sorted), then patterns */
        size_t n, nexact;
        char *path; /* the file read, for messages */
};

/* Parses text (len bytes) as read from path. On error returns -1 and writes one line
 * "<path>:<line>: <what>" into err; the table is then empty. */
int devtable_parse(struct devtable *t, const char *text, size_t len, const char *path,
                   char *err, size_t errsize);

/* Reads and parses the file at path (NULL: the installed default). */
int devtable_load(struct devtable *t, const char *path, char *err, size_t errsize);

void devtable_free(struct devtable *t);

/* The entry for an event name: the exact one, else the longest matching pattern, else
 * NULL. t may be NULL (no table: NULL). */
const struct devtable_entry *devtable_find(const struct devtable *t, const char *event);

/* The first of the entry's id fields that is a non-empty string in data (borrowed
 * from data), and in *field its name; NULL when none is. */
const char *devtable_resource_id(const struct devtable_entry *en, json_t *data,
                                 const char **field);

/* The event whose topic en's events go to: topic_of, or the event itself. */
const char *devtable_topic_event(const struct devtable_entry *en, const char *event);

#endif
