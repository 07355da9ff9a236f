/* dstartup.h - the start-up steps both daemons (and their admin commands) share: load
 * the configuration table (defaults, environment, flags), set the log level, refuse
 * guarantee-breaking librdkafka properties, check the topic-provisioning settings,
 * warn about unknown DURO_* variables (names only), load a secret from the
 * environment or a file, and block the signals one thread takes.
 *
 * Called from main's thread only, before other threads start. */
#ifndef DSTARTUP_H
#define DSTARTUP_H

#include <signal.h>
#include <stddef.h>

#include "dconf.h"

struct dsecrets;

/* What a program's configuration is. */
struct dstartup_prog {
        const char *name;  /* "duro-bridge": the log's prog field */
        const char *usage; /* first line of --help */
        const struct dconf_opt *opts;
        size_t nopts;
        size_t log_level_off; /* offsetof() its DCONF_LOGLEVEL int */
        /* offsetof() its struct dtopics_config, or DSTARTUP_NO_TOPICS */
        size_t topics_off;
        int quiet_unknown; /* 1: do not warn about DURO_* names outside opts */
};
#define DSTARTUP_NO_TOPICS ((size_t)-1)

/* Fills cfg and props (the passthrough librdkafka properties; free with
 * dconf_props_free()). Returns -1 to go on, or the exit status: 0 when --help or
 * --version was printed, 2 after logging the one-line "bad setting: ..." error. */
int dstartup_config(const struct dstartup_prog *prog, void *cfg, int argc, char **argv,
                    struct dconf_props *props);

/* Loads a secret set (webhook secrets, the API key; `what` names it in a message)
 * from *value, the value of the environment variable value_env (wiped, freed and set
 * to NULL here, whatever happens), or else from the file path (setting path_env).
 * Returns the set (the caller owns it: dsecrets_destroy()), or NULL after logging one
 * "bad setting: ..." line naming the setting at fault. */
struct dsecrets *dstartup_secrets(char **value, const char *path, const char *value_env,
                                  const char *path_env, const char *what);

/* The same, for the admin commands (which print their own errors): instead of logging,
 * it writes the one line, without "bad setting: ", into err. */
struct dsecrets *dstartup_secrets_load(char **value, const char *path,
                                       const char *value_env, const char *path_env,
                                       const char *what, char *err, size_t errsize);

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (threads started later
 * inherit the mask, so the one thread that waits for them takes them) and ignores
 * SIGPIPE. set gets the three. */
void dstartup_block_signals(sigset_t *set);

#endif
