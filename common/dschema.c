/* dschema.c - default locations of the API description files (see dschema.h). */
#include "dschema.h"

#include <stddef.h>
#include <sys/stat.h>

#ifndef DURO_SCHEMAS_INSTALLED
#define DURO_SCHEMAS_INSTALLED "/usr/local/share/duro-kafka-bridge"
#endif
#ifndef DURO_SCHEMAS_SOURCE
#define DURO_SCHEMAS_SOURCE "schemas"
#endif

/* The first of the two that exists. */
static const char *dschema_pick(const char *installed, const char *source)
{
        struct stat st;

        if (stat(installed, &st) == 0)
                return installed;
        if (stat(source, &st) == 0)
                return source;
        return NULL;
}

const char *dschema_queries_dir(void)
{
        return dschema_pick(DURO_SCHEMAS_INSTALLED "/graphql",
                            DURO_SCHEMAS_SOURCE "/graphql");
}

const char *dschema_event_table(void)
{
        return dschema_pick(DURO_SCHEMAS_INSTALLED "/event-table.txt",
                            DURO_SCHEMAS_SOURCE "/event-table.txt");
}
