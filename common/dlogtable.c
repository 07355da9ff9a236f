/* dlogtable.c - the log table: reading, checking and looking up (see dlogtable.h). */
#include "dlogtable.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfile.h"
#include "dschema.h"

#define DLOGTABLE_MAX_FILE (1024 * 1024)
#define DLOGTABLE_MAX_STEP 128

static const char *const dlogtable_names[DLOGTABLE_NFIELDS] = {
    [DLOGTABLE_EVENT_ID] = "event_id", [DLOGTABLE_EVENT] = "event",
    [DLOGTABLE_PAYLOAD] = "payload",   [DLOGTABLE_DATA] = "data",
    [DLOGTABLE_RESOURCE] = "resource", [DLOGTABLE_CREATED_AT] = "created_at",
};

const char *dlogtable_field_name(enum dlogtable_field f)
{
        return (unsigned)f < DLOGTABLE_NFIELDS ? dlogtable_names[f] : "?";
}

__attribute__((format(printf, 5, 6))) static int
dlogtable_fail(char *err, size_t errsize, const char *path, int line, const char *fmt,
               ...)
{
        char what[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(err, errsize, "%s:%d: %s", path, line, what);
        return -1;
}

void dlogtable_free(struct dlogtable *t)
{
        for (int f = 0; f < DLOGTABLE_NFIELDS; f++)
                for (int i = 0; i < t->npaths[f]; i++)
                        for (int s = 0; s < t->paths[f][i].nsteps; s++)
                                free(t->paths[f][i].step[s]);
        free(t->path);
        memset(t, 0, sizeof(*t));
}

/* A step: [A-Za-z0-9_-], 1 to 128 characters. */
static int dlogtable_step_ok(const char *s, size_t n)
{
        if (n == 0 || n > DLOGTABLE_MAX_STEP)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] == '_' || s[i] == '-' || (s[i] >= 'a' && s[i] <= 'z') ||
                      (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
                        return 0;
        return 1;
}

/* Reads the path word w into p. Returns 0, or -1 with why. */
static int dlogtable_path(struct dlogtable_path *p, const char *w, char *why,
                          size_t whysize)
{
        const char *s = w;

        for (;;) {
                size_t n = strcspn(s, ".");
                if (!dlogtable_step_ok(s, n)) {
                        snprintf(why, whysize,
                                 "path '%s': each step is 1 to %d of A-Z a-z 0-9 _ -",
                                 w, DLOGTABLE_MAX_STEP);
                        return -1;
                }
                if (p->nsteps == DLOGTABLE_MAX_STEPS) {
                        snprintf(why, whysize, "path '%s': more than %d steps", w,
                                 DLOGTABLE_MAX_STEPS);
                        return -1;
                }
                if (!(p->step[p->nsteps] = strndup(s, n))) {
                        snprintf(why, whysize, "out of memory");
                        return -1;
                }
                p->nsteps++;
                if (!s[n])
                        return 0;
                s += n + 1;
        }
}

/* One line of the table (comment already cut). Returns 0, or -1 with why. */
static int dlogtable_line(struct dlogtable *t, char *line, char *why, size_t whysize)
{
        char *w[DLOGTABLE_MAX_PATHS + 2];
        int n = dfile_words(line, w, DLOGTABLE_MAX_PATHS + 1), f;

        if (n == 0)
                return 0;
        for (f = 0; f < DLOGTABLE_NFIELDS; f++)
                if (!strcmp(w[0], dlogtable_names[f]))
                        break;
        if (f == DLOGTABLE_NFIELDS) {
                snprintf(why, whysize,
                         "unknown field '%.128s' (event_id, event, payload, data, "
                         "resource, created_at)",
                         w[0]);
                return -1;
        }
        if (t->npaths[f]) {
                snprintf(why, whysize, "field %s given twice", w[0]);
                return -1;
        }
        if (n == 1) {
                snprintf(why, whysize, "field %s without a path", w[0]);
                return -1;
        }
        if (n > DLOGTABLE_MAX_PATHS + 1) {
                snprintf(why, whysize, "field %s: more than %d paths", w[0],
                         DLOGTABLE_MAX_PATHS);
                return -1;
        }
        for (int i = 1; i < n; i++) {
                if (dlogtable_path(&t->paths[f][i - 1], w[i], why, whysize)) {
                        t->npaths[f] = i; /* freed with what it holds */
                        return -1;
                }
        }
        t->npaths[f] = n - 1;
        return 0;
}

int dlogtable_parse(struct dlogtable *t, const char *text, size_t len, const char *path,
                    char *err, size_t errsize)
{
        char why[600];
        size_t at  = 0;
        int lineno = 0;

        memset(t, 0, sizeof(*t));
        if (!(t->path = strdup(path)))
                return dlogtable_fail(err, errsize, path, 0, "out of memory");
        while (at < len) {
                const char *nl = memchr(text + at, '\n', len - at);
                size_t n       = nl ? (size_t)(nl - (text + at)) : len - at;
                char *line     = strndup(text + at, n);
                int rc;
                lineno++;
                at += n + 1;
                if (!line) {
                        dlogtable_free(t);
                        return dlogtable_fail(err, errsize, path, lineno,
                                              "out of memory");
                }
                if (memchr(line, '\0', n) || strlen(line) != n) {
                        free(line);
                        dlogtable_free(t);
                        return dlogtable_fail(err, errsize, path, lineno,
                                              "a NUL byte in the line");
                }
                line[strcspn(line, "#")] = '\0';
                rc                       = dlogtable_line(t, line, why, sizeof(why));
                free(line);
                if (rc) {
                        dlogtable_free(t);
                        return dlogtable_fail(err, errsize, path, lineno, "%s", why);
                }
        }
        for (int f = DLOGTABLE_EVENT_ID; f <= DLOGTABLE_EVENT; f++)
                if (!t->npaths[f]) {
                        dlogtable_free(t);
                        return dlogtable_fail(err, errsize, path, lineno,
                                              "no row for %s (required)",
                                              dlogtable_names[f]);
                }
        return 0;
}

int dlogtable_load(struct dlogtable *t, const char *path, char *err, size_t errsize)
{
        char why[600];
        size_t len;
        char *text;
        int rc;

        memset(t, 0, sizeof(*t));
        if (!path)
                path = dschema_log_table();
        if (!path) {
                snprintf(err, errsize,
                         "DURO_LOG_TABLE: not set and no installed log table found");
                return -1;
        }
        text = dfile_read(path, DLOGTABLE_MAX_FILE, &len, NULL, why, sizeof(why));
        if (!text) {
                snprintf(err, errsize, "DURO_LOG_TABLE: %s", why);
                return -1;
        }
        rc = dlogtable_parse(t, text, len, path, err, errsize);
        free(text);
        return rc;
}

/* Follows p from v (borrowed). Returns a new reference, or NULL. */
static json_t *dlogtable_follow(const struct dlogtable_path *p, json_t *v)
{
        json_incref(v);
        for (int s = 0; v && s < p->nsteps; s++) {
                json_t *next;
                if (json_is_string(v)) { /* a string holding JSON */
                        json_t *parsed = NULL;
                        if (json_string_length(v) <= DLOGTABLE_MAX_JSON)
                                parsed = json_loadb(json_string_value(v),
                                                    json_string_length(v),
                                                    JSON_DECODE_ANY, NULL);
                        json_decref(v);
                        v = parsed;
                }
                next = json_is_object(v) ? json_object_get(v, p->step[s]) : NULL;
                json_incref(next);
                json_decref(v);
                v = next;
        }
        if (v && (json_is_null(v) || (json_is_string(v) && !json_string_length(v)))) {
                json_decref(v);
                return NULL;
        }
        return v;
}

/* 1 for the fields whose value is an object (a string holding one is parsed). */
static int dlogtable_is_object_field(enum dlogtable_field f)
{
        return f == DLOGTABLE_PAYLOAD || f == DLOGTABLE_DATA;
}

/* v (taken) as field f wants it: an object for payload and data (a string holding
 * JSON parsed), a non-empty string for the others. NULL when it is not. */
static json_t *dlogtable_typed(enum dlogtable_field f, json_t *v)
{
        if (dlogtable_is_object_field(f) && json_is_string(v)) {
                json_t *parsed = NULL;
                if (json_string_length(v) <= DLOGTABLE_MAX_JSON)
                        parsed = json_loadb(json_string_value(v), json_string_length(v),
                                            0, NULL);
                json_decref(v);
                v = parsed;
        }
        if (dlogtable_is_object_field(f) ? json_is_object(v) : json_is_string(v))
                return v;
        json_decref(v);
        return NULL;
}

json_t *dlogtable_get(const struct dlogtable *t, enum dlogtable_field f, json_t *entry)
{
        if ((unsigned)f >= DLOGTABLE_NFIELDS)
                return NULL;
        for (int i = 0; i < t->npaths[f]; i++) {
                json_t *v =
                    dlogtable_typed(f, dlogtable_follow(&t->paths[f][i], entry));
                if (v)
                        return v;
        }
        return NULL;
}

char *dlogtable_string(const struct dlogtable *t, enum dlogtable_field f, json_t *entry)
{
        json_t *v = dlogtable_get(t, f, entry);
        char *s   = json_is_string(v) ? strdup(json_string_value(v)) : NULL;

        json_decref(v);
        return s;
}
