/* devtable.c - the event table: reading, checking and looking up (see devtable.h). */
#include "devtable.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dfile.h"
#include "dschema.h"

#define DEVTABLE_MAX_FILE (1024 * 1024)
#define DEVTABLE_MAX_NAME 128
#define DEVTABLE_COLUMNS  5

/* Built in: the nine events of Duro's webhook documentation, whose id field is known
 * (a payload without it is invalid, as the bridge's contract says), and the two that
 * `duro-enricher snapshot` writes. Added when the table lacks them; a table may give
 * them another topic, nothing else. Every other entry's id fields are assumed. */
static const struct {
        const char *name;
        enum dwire_kind kind;
        const char *id;
        int deletes;
} devtable_builtin[] = {
    {"ITEM_CREATE", DWIRE_KIND_ITEM, "item_id", 0},
    {"ITEM_UPDATE", DWIRE_KIND_ITEM, "item_id", 0},
    {"ITEM_DELETE", DWIRE_KIND_ITEM, "item_id", 1},
    {"CO_OPEN", DWIRE_KIND_CHANGE_ORDER, "change_order_id", 0},
    {"CO_UPDATE", DWIRE_KIND_CHANGE_ORDER, "change_order_id", 0},
    {"CO_DELETE", DWIRE_KIND_CHANGE_ORDER, "change_order_id", 1},
    {"CO_STAGE_TRANSITION", DWIRE_KIND_CHANGE_ORDER, "change_order_id", 0},
    {"CO_STAGE_REVIEWER_DECISION", DWIRE_KIND_CHANGE_ORDER, "change_order_id", 0},
    {"CO_RESOLUTION", DWIRE_KIND_CHANGE_ORDER, "change_order_id", 0},
    {"ITEM_SNAPSHOT", DWIRE_KIND_ITEM, "item_id", 0},
    {"CO_SNAPSHOT", DWIRE_KIND_CHANGE_ORDER, "change_order_id", 0},
};
#define DEVTABLE_NBUILTIN (sizeof(devtable_builtin) / sizeof(devtable_builtin[0]))

__attribute__((format(printf, 5, 6))) static int
devtable_fail(char *err, size_t errsize, const char *path, int line, const char *fmt,
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

static void devtable_entry_free(struct devtable_entry *en)
{
        free(en->name);
        for (int i = 0; i < en->nids; i++)
                free(en->ids[i]);
        free(en->topic_of);
}

void devtable_free(struct devtable *t)
{
        for (size_t i = 0; i < t->n; i++)
                devtable_entry_free(&t->e[i]);
        free(t->e);
        free(t->path);
        memset(t, 0, sizeof(*t));
}

/* An event name: printable ASCII without blanks or '*', 1..128 characters. */
static int devtable_name_ok(const char *s, size_t n)
{
        if (n == 0 || n > DEVTABLE_MAX_NAME)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= ' ' || s[i] > '~' || s[i] == '*' || s[i] == ',')
                        return 0;
        return 1;
}

/* A data field name: [A-Za-z_][A-Za-z0-9_]*, at most 128 characters. */
static int devtable_field_ok(const char *s, size_t n)
{
        if (n == 0 || n > DEVTABLE_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
                      (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
                        return 0;
        return 1;
}

static int devtable_kind(const char *s, enum dwire_kind *kind)
{
        if (!strcmp(s, "item"))
                *kind = DWIRE_KIND_ITEM;
        else if (!strcmp(s, "change_order"))
                *kind = DWIRE_KIND_CHANGE_ORDER;
        else if (!strcmp(s, "unknown"))
                *kind = DWIRE_KIND_UNKNOWN;
        else
                return -1;
        return 0;
}

/* Fills en's id fields from a comma-separated list ('-' for none). */
static int devtable_ids(struct devtable_entry *en, const char *list, char *why,
                        size_t whysize)
{
        const char *p = list;

        if (!strcmp(list, "-"))
                return 0;
        while (*p) {
                size_t n = strcspn(p, ",");
                if (!devtable_field_ok(p, n)) {
                        snprintf(why, whysize,
                                 "id field '%.*s' is not a field name "
                                 "([A-Za-z_][A-Za-z0-9_]*)",
                                 (int)(n > 64 ? 64 : n), p);
                        return -1;
                }
                if (en->nids == DEVTABLE_MAX_IDS) {
                        snprintf(why, whysize, "more than %d id fields",
                                 DEVTABLE_MAX_IDS);
                        return -1;
                }
                en->ids[en->nids] = strndup(p, n);
                if (!en->ids[en->nids++]) {
                        snprintf(why, whysize, "out of memory");
                        return -1;
                }
                p += n;
                if (*p == ',' && !*++p) {
                        snprintf(why, whysize, "id list ends with a comma");
                        return -1;
                }
        }
        return 0;
}

/* Reads one entry from its five words into en. Returns 0, or -1 with why. */
static int devtable_entry(struct devtable_entry *en, char **w, char *why,
                          size_t whysize)
{
        size_t n = strlen(w[0]);

        en->pattern = n > 0 && w[0][n - 1] == '*';
        if (en->pattern)
                n--;
        if ((n || !en->pattern) && !devtable_name_ok(w[0], n)) {
                snprintf(why, whysize,
                         "the event name is not 1-%d printable characters without "
                         "blanks, commas or '*' (a pattern ends in one '*')",
                         DEVTABLE_MAX_NAME);
                return -1;
        }
        en->name = strndup(w[0], n);
        if (!en->name)
                return snprintf(why, whysize, "out of memory"), -1;
        if (devtable_kind(w[1], &en->kind)) {
                snprintf(why, whysize,
                         "kind '%.64s' is not item, change_order or unknown", w[1]);
                return -1;
        }
        if (devtable_ids(en, w[2], why, whysize))
                return -1;
        if (en->kind != DWIRE_KIND_UNKNOWN && !en->nids) {
                snprintf(why, whysize, "kind %s needs at least one id field", w[1]);
                return -1;
        }
        if (!strcmp(w[3], "yes"))
                en->deletes = 1;
        else if (strcmp(w[3], "no")) {
                snprintf(why, whysize, "deletes '%.64s' is not yes or no", w[3]);
                return -1;
        }
        if (strcmp(w[4], "-")) {
                if (!devtable_name_ok(w[4], strlen(w[4]))) {
                        snprintf(why, whysize,
                                 "topic '%.64s' is not an event name (or '-')", w[4]);
                        return -1;
                }
                en->topic_of = strdup(w[4]);
                if (!en->topic_of)
                        return snprintf(why, whysize, "out of memory"), -1;
        }
        return 0;
}

static int devtable_cmp(const void *a, const void *b)
{
        const struct devtable_entry *x = a, *y = b;

        if (x->pattern != y->pattern)
                return x->pattern - y->pattern;
        return strcmp(x->name, y->name);
}

static int devtable_cmp_name(const void *key, const void *elem)
{
        return strcmp(key, ((const struct devtable_entry *)elem)->name);
}

/* The built-in entries: added when absent, refused when changed (but for their topic),
 * and the only ones whose id is known. */
static int devtable_builtins(struct devtable *t, char *err, size_t errsize)
{
        for (size_t b = 0; b < DEVTABLE_NBUILTIN; b++) {
                struct devtable_entry *en = NULL, *ne;
                for (size_t i = 0; i < t->n && !en; i++)
                        if (!t->e[i].pattern &&
                            !strcmp(t->e[i].name, devtable_builtin[b].name))
                                en = &t->e[i];
                if (en) {
                        if (en->kind != devtable_builtin[b].kind || en->nids != 1 ||
                            strcmp(en->ids[0], devtable_builtin[b].id) ||
                            en->deletes != devtable_builtin[b].deletes)
                                return devtable_fail(
                                    err, errsize, t->path, en->line,
                                    "entry %s: built in as %s %s %s (only its topic "
                                    "may "
                                    "change)",
                                    en->name, dwire_kind_name(devtable_builtin[b].kind),
                                    devtable_builtin[b].id,
                                    devtable_builtin[b].deletes ? "yes" : "no");
                        en->id_known = 1;
                        continue;
                }
                ne = realloc(t->e, (t->n + 1) * sizeof(*ne));
                if (!ne)
                        return devtable_fail(err, errsize, t->path, 0, "out of memory");
                t->e = ne;
                ne   = &t->e[t->n++];
                memset(ne, 0, sizeof(*ne));
                ne->name     = strdup(devtable_builtin[b].name);
                ne->ids[0]   = strdup(devtable_builtin[b].id);
                ne->nids     = 1;
                ne->kind     = devtable_builtin[b].kind;
                ne->deletes  = devtable_builtin[b].deletes;
                ne->id_known = 1;
                if (!ne->name || !ne->ids[0])
                        return devtable_fail(err, errsize, t->path, 0, "out of memory");
        }
        return 0;
}

/* Every shared topic names an exact entry that has a topic of its own. */
static int devtable_check_topics(const struct devtable *t, char *err, size_t errsize)
{
        for (size_t i = 0; i < t->n; i++) {
                const struct devtable_entry *en = &t->e[i], *to;
                if (!en->topic_of)
                        continue;
                to = bsearch(en->topic_of, t->e, t->nexact, sizeof(*t->e),
                             devtable_cmp_name);
                if (!to)
                        return devtable_fail(
                            err, errsize, t->path, en->line,
                            "entry %s%s: topic %s is no event of the table", en->name,
                            en->pattern ? "*" : "", en->topic_of);
                if (to->topic_of)
                        return devtable_fail(
                            err, errsize, t->path, en->line,
                            "entry %s%s: topic %s shares %s's topic itself (name %s)",
                            en->name, en->pattern ? "*" : "", en->topic_of,
                            to->topic_of, to->topic_of);
        }
        return 0;
}

/* Sorts the entries (exact names first) and refuses duplicates. */
static int devtable_index(struct devtable *t, char *err, size_t errsize)
{
        qsort(t->e, t->n, sizeof(*t->e), devtable_cmp);
        t->nexact = 0;
        for (size_t i = 0; i < t->n; i++) {
                if (!t->e[i].pattern)
                        t->nexact = i + 1;
                if (i && !devtable_cmp(&t->e[i - 1], &t->e[i])) {
                        const struct devtable_entry *a = &t->e[i - 1], *b = &t->e[i];
                        return devtable_fail(
                            err, errsize, t->path,
                            a->line > b->line ? a->line : b->line,
                            "entry %s%s: given twice (also on line %d)", b->name,
                            b->pattern ? "*" : "",
                            a->line < b->line ? a->line : b->line);
                }
        }
        return 0;
}

int devtable_parse(struct devtable *t, const char *text, size_t len, const char *path,
                   char *err, size_t errsize)
{
        size_t at = 0, cap = 0;
        int line = 0;

        memset(t, 0, sizeof(*t));
        t->path = strdup(path ? path : "event table");
        if (!t->path)
                return snprintf(err, errsize, "out of memory"), -1;
        while (at < len) {
                const char *nl = memchr(text + at, '\n', len - at);
                size_t n       = nl ? (size_t)(nl - (text + at)) : len - at;
                char buf[1024], *w[DEVTABLE_COLUMNS + 1], why[400];
                struct devtable_entry en = {0};
                int nw;

                line++;
                if (n >= sizeof(buf)) {
                        devtable_fail(err, errsize, t->path, line,
                                      "line longer than %zu bytes", sizeof(buf) - 1);
                        goto fail;
                }
                memcpy(buf, text + at, n);
                buf[n] = '\0';
                at += n + 1;
                if (memchr(buf, '\0', n)) {
                        devtable_fail(err, errsize, t->path, line, "a NUL byte");
                        goto fail;
                }
                buf[strcspn(buf, "#")] = '\0';
                nw                     = dfile_words(buf, w, DEVTABLE_COLUMNS);
                if (!nw)
                        continue;
                if (nw != DEVTABLE_COLUMNS) {
                        devtable_fail(
                            err, errsize, t->path, line,
                            "entry %.64s: %s columns, want 5 (event kind id "
                            "deletes topic)",
                            w[0], nw > DEVTABLE_COLUMNS ? "more than 5" : "too few");
                        goto fail;
                }
                en.line = line;
                if (devtable_entry(&en, w, why, sizeof(why))) {
                        devtable_entry_free(&en);
                        devtable_fail(err, errsize, t->path, line, "entry %.64s: %s",
                                      w[0], why);
                        goto fail;
                }
                if (t->n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        struct devtable_entry *grow =
                            realloc(t->e, ncap * sizeof(*grow));
                        if (!grow) {
                                devtable_entry_free(&en);
                                devtable_fail(err, errsize, t->path, line,
                                              "out of memory");
                                goto fail;
                        }
                        t->e = grow;
                        cap  = ncap;
                }
                t->e[t->n++] = en;
        }
        if (devtable_builtins(t, err, errsize) || devtable_index(t, err, errsize) ||
            devtable_check_topics(t, err, errsize))
                goto fail;
        return 0;
fail:
        devtable_free(t);
        return -1;
}

int devtable_load(struct devtable *t, const char *path, char *err, size_t errsize)
{
        char why[600];
        size_t len;
        char *text;
        int rc;

        memset(t, 0, sizeof(*t));
        if (!path)
                path = dschema_event_table();
        if (!path) {
                snprintf(
                    err, errsize,
                    "DURO_EVENT_TABLE: not set and no installed event table found");
                return -1;
        }
        text = dfile_read(path, DEVTABLE_MAX_FILE, &len, NULL, why, sizeof(why));
        if (!text) {
                snprintf(err, errsize, "DURO_EVENT_TABLE: %s", why);
                return -1;
        }
        rc = devtable_parse(t, text, len, path, err, errsize);
        free(text);
        return rc;
}

const struct devtable_entry *devtable_find(const struct devtable *t, const char *event)
{
        const struct devtable_entry *best = NULL;
        size_t bestlen                    = 0;

        if (!t || !t->n || !event)
                return NULL;
        best = bsearch(event, t->e, t->nexact, sizeof(*t->e), devtable_cmp_name);
        if (best)
                return best;
        for (size_t i = t->nexact; i < t->n; i++) {
                size_t n = strlen(t->e[i].name);
                if (!strncmp(event, t->e[i].name, n) && (!best || n > bestlen)) {
                        best    = &t->e[i];
                        bestlen = n;
                }
        }
        return best;
}

const char *devtable_resource_id(const struct devtable_entry *en, json_t *data,
                                 const char **field)
{
        for (int i = 0; en && i < en->nids; i++) {
                const char *s = json_string_value(json_object_get(data, en->ids[i]));
                if (s && *s) {
                        if (field)
                                *field = en->ids[i];
                        return s;
                }
        }
        return NULL;
}

const char *devtable_topic_event(const struct devtable_entry *en, const char *event)
{
        return en && en->topic_of ? en->topic_of : event;
}
