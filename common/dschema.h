/* dschema.h - where the files that describe Duro's API live by default: the
 * GraphQL documents (schemas/graphql/) and the event table (schemas/event-table.txt).
 * The installed copy wins; a build run from its source tree falls back to the
 * source's schemas/ folder. Settings (DURO_QUERIES_DIR, DURO_EVENT_TABLE) override
 * both; this module only answers "where, when nothing was set". */
#ifndef DSCHEMA_H
#define DSCHEMA_H

/* The default folder of the GraphQL documents: a static string, or NULL when neither
 * the installed nor the source folder exists. */
const char *dschema_queries_dir(void);

/* The default event table file, likewise. */
const char *dschema_event_table(void);

#endif
