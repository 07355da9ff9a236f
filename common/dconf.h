/* dconf.h - table-driven configuration: defaults, then environment, then flags.
 *
 * Each program describes its settings in a table of struct dconf_opt (nginx/Redis
 * style) that binds an environment name, a flag, a type, bounds and a default to a
 * field of its own config struct. dconf_load() fills the struct and collects librdkafka
 * passthrough properties (-X prop=value, DURO_RDKAFKA_[PRODUCER_|CONSUMER_]<PROP>).
 * A bad setting yields one line naming it; secret values never appear in a message.
 *
 * Field types: DCONF_STRING and DCONF_LISTEN -> char * (malloc'd, freed by
 * dconf_free(); NULL when unset), DCONF_INT -> long long, DCONF_BOOL -> int,
 * DCONF_LOGLEVEL -> int (enum dlog_level). */
#ifndef DCONF_H
#define DCONF_H

#include <stddef.h>

enum dconf_type {
        DCONF_STRING,
        DCONF_INT,
        DCONF_BOOL,
        DCONF_LISTEN, /* host:port, [v6]:port or :port */
        DCONF_LOGLEVEL,
};

#define DCONF_F_SECRET 0x1 /* environment only, never a flag, never printed */

struct dconf_opt {
        const char *env;  /* environment name, e.g. "DURO_BRIDGE_MAX_BODY" */
        const char *flag; /* long flag without "--", NULL for secrets */
        enum dconf_type type;
        const char *def; /* default as text, NULL = unset */
        long long min, max;
        size_t off; /* offsetof() the field in the program's struct */
        int flags;
        const char *help;
};

enum dconf_scope {
        DCONF_SCOPE_ALL      = 0,
        DCONF_SCOPE_PRODUCER = 1,
        DCONF_SCOPE_CONSUMER = 2,
};

struct dconf_prop {
        char *name; /* librdkafka property, e.g. "linger.ms" */
        char *value;
        enum dconf_scope scope;
        int from_flag;      /* 1 when given with -X (so it is visible in argv) */
        const char *origin; /* env name or "-X" for messages (static or owned below) */
        char *origin_owned;
};

struct dconf_props {
        struct dconf_prop *v;
        size_t n;
};

enum dconf_result {
        DCONF_OK    = 0,
        DCONF_HELP  = 1, /* --help or --version was printed; exit 0 */
        DCONF_ERROR = -1,
};

/* Fills cfg from tab (defaults, then envp, then argv[1..argc-1]) and collects the
 * passthrough properties into props (owned; free with dconf_props_free()).
 * usage names the program for --help. On DCONF_ERROR, err holds one line such as
 * "DURO_BRIDGE_MAX_BODY=abc: not an integer". */
enum dconf_result dconf_load(const struct dconf_opt *tab, size_t n, void *cfg, int argc,
                             char **argv, char **envp, const char *usage,
                             struct dconf_props *props, char *err, size_t errsize);

/* Frees the strings dconf_load() stored in cfg. */
void dconf_free(const struct dconf_opt *tab, size_t n, void *cfg);
void dconf_props_free(struct dconf_props *props);

/* Environment names starting with DURO_ that are neither in tab nor passthrough: the
 * caller logs them (names only) as ignored. Returns a malloc'd array of borrowed
 * pointers into envp (NULL-terminated); free() the array. */
const char **dconf_unknown_env(const struct dconf_opt *tab, size_t n, char **envp);

/* Parses a boolean ("true/false/1/0/yes/no/on/off"). Returns 0 or -1. */
int dconf_parse_bool(const char *s, int *out);

#endif
