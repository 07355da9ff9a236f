/* dschema.h - where the files that describe Duro's API live by default: the
 * GraphQL documents (schemas/graphql/), the event table (schemas/event-table.txt) and
 * the log table (schemas/log-table.txt).
 * The installed copy wins; a build run from its source tree falls back to the
 * source's schemas/ folder. Settings (DURO_QUERIES_DIR, DURO_EVENT_TABLE) override
 * both; this module answers "where, when nothing was set", and reads a query
 * document from there. */
#ifndef DSCHEMA_H
#define DSCHEMA_H

#include <stddef.h>

/* The default folder of the GraphQL documents: a static string, or NULL when neither
 * the installed nor the source folder exists. */
const char *dschema_queries_dir(void);

/* The default event table file, likewise. */
const char *dschema_event_table(void);

/* The default log table file (reconcile), likewise. */
const char *dschema_log_table(void);

/* Reads dir/name (at most 1 MiB) into a malloc'd string, checked as a GraphQL query
 * (dgqldoc) that declares and uses each variable of vars (NULL-terminated, names
 * without the `$`); *op gets its operation name (malloc'd). Returns the text, or NULL
 * with err saying why, starting "DURO_QUERIES_DIR". */
char *dschema_read_query(const char *dir, const char *name, const char *const *vars,
                         char **op, char *err, size_t errsize);

#endif
