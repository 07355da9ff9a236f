/* dschema.c - default locations of the API description files (see dschema.h). */
#include "dschema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dfile.h"
#include "dgqldoc.h"

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

const char *dschema_log_table(void)
{
        return dschema_pick(DURO_SCHEMAS_INSTALLED "/log-table.txt",
                            DURO_SCHEMAS_SOURCE "/log-table.txt");
}

/* How many times the variable $name appears in the document text (tokens, never in
 * strings or comments); -1 when it does not lex (dgqldoc_parse said so first). */
static int dschema_var_count(const char *text, size_t len, const char *name)
{
        struct dgqldoc_lexer lx;
        struct dgqldoc_token t;
        int n = 0, dollar = 0;
        char why[200];

        dgqldoc_lexer_init(&lx, text, len);
        for (;;) {
                if (dgqldoc_next(&lx, &t, why, sizeof(why)))
                        return -1;
                if (t.kind == DGQLDOC_END)
                        return n;
                if (dollar && t.kind == DGQLDOC_NAME && t.len == strlen(name) &&
                    !memcmp(text + t.off, name, t.len))
                        n++;
                dollar = t.kind == DGQLDOC_PUNCT && text[t.off] == '$';
        }
}

char *dschema_read_query(const char *dir, const char *name, const char *const *vars,
                         char **op, char *err, size_t errsize)
{
        char path[4096], why[4400];
        struct dgqldoc_op o;
        size_t len;
        char *q;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        q = dfile_read(path, 1024 * 1024, &len, NULL, why, sizeof(why));
        if (!q) {
                snprintf(err, errsize, "DURO_QUERIES_DIR=%s: %s", dir, why);
                return NULL;
        }
        if (dgqldoc_parse(q, len, path, &o, why, sizeof(why))) {
                snprintf(err, errsize, "DURO_QUERIES_DIR: %s", why);
                free(q);
                return NULL;
        }
        if (o.mutation) {
                snprintf(err, errsize,
                         "DURO_QUERIES_DIR: %s:%d: a mutation, want a query", path,
                         o.line);
                free(q);
                return NULL;
        }
        for (const char *const *v = vars; *v; v++) {
                const char *var = *v;
                if (dschema_var_count(q, len, var) < 2) {
                        snprintf(err, errsize,
                                 "DURO_QUERIES_DIR: %s:%d: the query must declare and "
                                 "use $%s",
                                 path, o.line, var);
                        free(q);
                        return NULL;
                }
        }
        *op = strndup(o.name, o.name_len);
        if (!*op) {
                snprintf(err, errsize, "out of memory");
                free(q);
                return NULL;
        }
        return q;
}
