/* dconf.c - table-driven configuration (see dconf.h). */
#include "dconf.h"

#include <librdkafka/rdkafka.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dlog.h"
#include "dnet.h"

#define DCONF_RDKAFKA_PREFIX "DURO_RDKAFKA_"

int dconf_parse_bool(const char *s, int *out)
{
        if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") ||
            !strcasecmp(s, "on"))
                *out = 1;
        else if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") ||
                 !strcasecmp(s, "off"))
                *out = 0;
        else
                return -1;
        return 0;
}

/* Describes where a value came from, for messages: "--max-body" or "DURO_...". */
static void dconf_err(char *err, size_t errsize, const struct dconf_opt *o,
                      int from_flag, const char *value, const char *why)
{
        const char *name = from_flag ? o->flag : o->env;
        const char *dash = from_flag ? "--" : "";

        if (o->flags & DCONF_F_SECRET || !value)
                snprintf(err, errsize, "%s%s: %s", dash, name, why);
        else
                snprintf(err, errsize, "%s%s=%s: %s", dash, name, value, why);
}

/* Stores value into the field of o. Returns 0 or -1 with err set. */
static int dconf_set(const struct dconf_opt *o, void *cfg, const char *value,
                     int from_flag, char *err, size_t errsize)
{
        char *field = (char *)cfg + o->off;

        switch (o->type) {
        case DCONF_STRING:
        case DCONF_LISTEN: {
                char *dup;
                if (o->type == DCONF_LISTEN) {
                        char why[160];
                        if (dnet_check_listen(value, why, sizeof(why))) {
                                dconf_err(err, errsize, o, from_flag, value, why);
                                return -1;
                        }
                }
                dup = strdup(value);
                if (!dup) {
                        dconf_err(err, errsize, o, from_flag, NULL, "out of memory");
                        return -1;
                }
                free(*(char **)field);
                *(char **)field = dup;
                return 0;
        }
        case DCONF_INT: {
                char *end, why[128];
                long long v;
                errno = 0;
                v     = strtoll(value, &end, 10);
                if (errno || end == value || *end || isspace((unsigned char)*value)) {
                        dconf_err(err, errsize, o, from_flag, value, "not an integer");
                        return -1;
                }
                if (v < o->min || v > o->max) {
                        snprintf(why, sizeof(why), "must be between %lld and %lld",
                                 o->min, o->max);
                        dconf_err(err, errsize, o, from_flag, value, why);
                        return -1;
                }
                *(long long *)field = v;
                return 0;
        }
        case DCONF_BOOL: {
                int b;
                if (dconf_parse_bool(value, &b)) {
                        dconf_err(err, errsize, o, from_flag, value,
                                  "not a boolean (true or false)");
                        return -1;
                }
                *(int *)field = b;
                return 0;
        }
        case DCONF_LOGLEVEL: {
                enum dlog_level l;
                if (dlog_level_parse(value, &l)) {
                        dconf_err(err, errsize, o, from_flag, value,
                                  "not one of debug, info, warn, error");
                        return -1;
                }
                *(int *)field = (int)l;
                return 0;
        }
        }
        return -1;
}

static const char *dconf_getenv(char **envp, const char *name)
{
        size_t n = strlen(name);

        for (char **e = envp; e && *e; e++)
                if (!strncmp(*e, name, n) && (*e)[n] == '=')
                        return *e + n + 1;
        return NULL;
}

static int dconf_props_add(struct dconf_props *props, const char *name, size_t namelen,
                           const char *value, enum dconf_scope scope, int from_flag,
                           const char *origin)
{
        struct dconf_prop *v = realloc(props->v, (props->n + 1) * sizeof(*v));
        struct dconf_prop *p;

        if (!v)
                return -1;
        props->v = v;
        p        = &v[props->n];
        memset(p, 0, sizeof(*p));
        p->name         = strndup(name, namelen);
        p->value        = strdup(value);
        p->origin_owned = origin ? strdup(origin) : NULL;
        if (!p->name || !p->value || (origin && !p->origin_owned)) {
                free(p->name);
                free(p->value);
                free(p->origin_owned);
                return -1;
        }
        p->origin    = p->origin_owned ? p->origin_owned : "-X";
        p->scope     = scope;
        p->from_flag = from_flag;
        props->n++;
        return 0;
}

/* DURO_RDKAFKA_[PRODUCER_|CONSUMER_]<PROP>=value -> property "<prop>" (lower case, "_"
 * to "."). */
static int dconf_env_prop(struct dconf_props *props, const char *entry, char *err,
                          size_t errsize)
{
        const char *eq = strchr(entry, '='), *p = entry + strlen(DCONF_RDKAFKA_PREFIX);
        enum dconf_scope scope = DCONF_SCOPE_ALL;
        char name[256], envname[256];
        size_t n = 0;

        snprintf(envname, sizeof(envname), "%.*s", (int)(eq - entry), entry);
        if (!strncmp(p, "PRODUCER_", 9)) {
                scope = DCONF_SCOPE_PRODUCER;
                p += 9;
        } else if (!strncmp(p, "CONSUMER_", 9)) {
                scope = DCONF_SCOPE_CONSUMER;
                p += 9;
        }
        for (; p < eq && n < sizeof(name) - 1; p++)
                name[n++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        name[n] = '\0';
        if (n == 0 || p != eq) {
                snprintf(err, errsize, "%s: no librdkafka property named", envname);
                return -1;
        }
        if (dconf_props_add(props, name, n, eq + 1, scope, 0, envname)) {
                snprintf(err, errsize, "out of memory");
                return -1;
        }
        return 0;
}

static int dconf_flag_prop(struct dconf_props *props, const char *arg, char *err,
                           size_t errsize)
{
        const char *eq = strchr(arg, '=');

        if (!eq || eq == arg) {
                snprintf(err, errsize, "-X %s: expected property=value", eq ? "" : arg);
                return -1;
        }
        if (dconf_props_add(props, arg, (size_t)(eq - arg), eq + 1, DCONF_SCOPE_ALL, 1,
                            NULL)) {
                snprintf(err, errsize, "out of memory");
                return -1;
        }
        return 0;
}

static void dconf_help(const struct dconf_opt *tab, size_t n, const char *usage)
{
        printf("usage: %s\n\noptions (each also from the environment variable "
               "shown):\n",
               usage);
        for (size_t i = 0; i < n; i++) {
                const struct dconf_opt *o = &tab[i];
                char left[64];
                if (o->flags & DCONF_F_SECRET)
                        snprintf(left, sizeof(left), "(env only)");
                else
                        snprintf(left, sizeof(left), "--%s", o->flag);
                printf("  %-28s %-32s %s", left, o->env, o->help);
                if (o->def)
                        printf(" [default: %s]", o->def);
                printf("\n");
        }
        printf("  %-28s %-32s %s\n", "-X prop=value",
               "DURO_RDKAFKA_[PRODUCER_|CONSUMER_]<PROP>",
               "librdkafka property passthrough");
        printf("  %-28s %-32s %s\n", "--help", "", "this text");
}

/* Sets the table's setting that argv[*a] ("--name=value", "--name value" or a bare
 * boolean "--name") names; *a moves past a separate value. Returns 0 or -1. */
static int dconf_flag(const struct dconf_opt *tab, size_t n, void *cfg, int argc,
                      char **argv, int *a, char *err, size_t errsize)
{
        const char *arg = argv[*a] + 2, *val, *eq = strchr(arg, '=');
        size_t namelen            = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct dconf_opt *o = NULL;

        for (size_t i = 0; i < n && !o; i++)
                if (tab[i].flag && strlen(tab[i].flag) == namelen &&
                    !strncmp(tab[i].flag, arg, namelen))
                        o = &tab[i];
        if (!o) {
                snprintf(err, errsize, "--%.*s: unknown option (see --help)",
                         (int)namelen, arg);
                return -1;
        }
        if (eq)
                val = eq + 1;
        else if (o->type == DCONF_BOOL)
                val = "true";
        else if (*a + 1 < argc)
                val = argv[++*a];
        else {
                snprintf(err, errsize, "--%s: expects a value", o->flag);
                return -1;
        }
        return dconf_set(o, cfg, val, 1, err, errsize);
}

enum dconf_result dconf_load(const struct dconf_opt *tab, size_t n, void *cfg, int argc,
                             char **argv, char **envp, const char *usage,
                             struct dconf_props *props, char *err, size_t errsize)
{
        props->v = NULL;
        props->n = 0;

        for (size_t i = 0; i < n; i++) {
                if (tab[i].def && dconf_set(&tab[i], cfg, tab[i].def, 0, err, errsize))
                        return DCONF_ERROR;
        }
        for (size_t i = 0; i < n; i++) {
                const char *v = dconf_getenv(envp, tab[i].env);
                if (v && dconf_set(&tab[i], cfg, v, 0, err, errsize))
                        return DCONF_ERROR;
        }
        for (char **e = envp; e && *e; e++) {
                if (!strncmp(*e, DCONF_RDKAFKA_PREFIX, strlen(DCONF_RDKAFKA_PREFIX)) &&
                    strchr(*e, '=') && dconf_env_prop(props, *e, err, errsize))
                        return DCONF_ERROR;
        }
        for (int a = 1; a < argc; a++) {
                const char *arg = argv[a];

                if (!strcmp(arg, "--version")) {
                        printf("%.*s %s (librdkafka %s)\n", (int)strcspn(usage, " "),
                               usage, DURO_VERSION, rd_kafka_version_str());
                        return DCONF_HELP;
                }
                if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
                        dconf_help(tab, n, usage);
                        return DCONF_HELP;
                }
                if (!strcmp(arg, "-X")) {
                        if (a + 1 >= argc) {
                                snprintf(err, errsize, "-X: expected property=value");
                                return DCONF_ERROR;
                        }
                        if (dconf_flag_prop(props, argv[++a], err, errsize))
                                return DCONF_ERROR;
                        continue;
                }
                if (!strncmp(arg, "-X", 2)) {
                        if (dconf_flag_prop(props, arg + 2, err, errsize))
                                return DCONF_ERROR;
                        continue;
                }
                if (strncmp(arg, "--", 2) != 0) {
                        snprintf(err, errsize, "%s: unexpected argument (see --help)",
                                 arg);
                        return DCONF_ERROR;
                }
                if (dconf_flag(tab, n, cfg, argc, argv, &a, err, errsize))
                        return DCONF_ERROR;
        }
        return DCONF_OK;
}

void dconf_free(const struct dconf_opt *tab, size_t n, void *cfg)
{
        for (size_t i = 0; i < n; i++) {
                if (tab[i].type == DCONF_STRING || tab[i].type == DCONF_LISTEN) {
                        char **f = (char **)((char *)cfg + tab[i].off);
                        free(*f);
                        *f = NULL;
                }
        }
}

void dconf_props_free(struct dconf_props *props)
{
        for (size_t i = 0; i < props->n; i++) {
                free(props->v[i].name);
                if (props->v[i].value) {
                        memset(props->v[i].value, 0, strlen(props->v[i].value));
                        free(props->v[i].value);
                }
                free(props->v[i].origin_owned);
        }
        free(props->v);
        props->v = NULL;
        props->n = 0;
}

const char **dconf_unknown_env(const struct dconf_opt *tab, size_t n, char **envp)
{
        size_t cnt = 0, k = 0;
        const char **out;

        for (char **e = envp; e && *e; e++)
                cnt++;
        out = calloc(cnt + 1, sizeof(*out));
        if (!out)
                return NULL;
        for (char **e = envp; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                size_t len     = eq ? (size_t)(eq - *e) : strlen(*e);
                int known      = 0;
                if (strncmp(*e, "DURO_", 5) != 0 ||
                    !strncmp(*e, DCONF_RDKAFKA_PREFIX, strlen(DCONF_RDKAFKA_PREFIX)))
                        continue;
                for (size_t i = 0; i < n && !known; i++)
                        known =
                            strlen(tab[i].env) == len && !strncmp(tab[i].env, *e, len);
                if (!known)
                        out[k++] = *e;
        }
        return out;
}
