/* dstartup.c - shared start-up steps of the daemons (see dstartup.h). */
#include "dstartup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkafka.h"
#include "dlog.h"
#include "dsecrets.h"
#include "dtopics.h"

extern char **environ;

int dstartup_config(const struct dstartup_prog *prog, void *cfg, int argc, char **argv,
                    struct dconf_props *props)
{
        const char **unknown;
        char err[512];

        dlog_init(prog->name, DLOG_INFO);
        switch (dconf_load(prog->opts, prog->nopts, cfg, argc, argv, environ,
                           prog->usage, props, err, sizeof(err))) {
        case DCONF_HELP:
                return 0;
        case DCONF_ERROR:
                dlog_error("bad setting: %s", err);
                return 2;
        case DCONF_OK:
                break;
        }
        dlog_init(prog->name,
                  (enum dlog_level) * (int *)((char *)cfg + prog->log_level_off));
        if (dkafka_check_props(props, err, sizeof(err))) {
                dlog_error("bad setting: %s", err);
                return 2;
        }
        if (prog->topics_off != DSTARTUP_NO_TOPICS) {
                const struct dtopics_config *tc =
                    (const struct dtopics_config *)((char *)cfg + prog->topics_off);
                if (dtopics_check_configs(tc->configs, err, sizeof(err))) {
                        dlog_error("bad setting: DURO_TOPIC_CONFIGS: %s", err);
                        return 2;
                }
        }
        if (prog->quiet_unknown)
                return -1;
        unknown = dconf_unknown_env(prog->opts, prog->nopts, environ);
        for (size_t i = 0; unknown && unknown[i]; i++)
                dlog_warn("ignoring unknown setting %.*s",
                          (int)strcspn(unknown[i], "="), unknown[i]);
        free(unknown);
        return -1;
}

struct dsecrets *dstartup_secrets_load(char **value, const char *path,
                                       const char *value_env, const char *path_env,
                                       const char *what, char *err, size_t errsize)
{
        int from_env = *value && **value, from_file = path && *path;
        struct dsecrets *s = NULL;
        char why[400];

        if (from_env || from_file)
                s = dsecrets_new(*value, path, why, sizeof(why));
        if (*value) {
                memset(*value, 0, strlen(*value));
                free(*value);
                *value = NULL;
        }
        if (s)
                return s;
        if (from_env)
                snprintf(err, errsize, "%s: %s", value_env, why);
        else if (from_file)
                snprintf(err, errsize, "%s: %s", path_env, why);
        else
                snprintf(err, errsize, "no %s: set %s or %s", what, value_env,
                         path_env);
        return NULL;
}

struct dsecrets *dstartup_secrets(char **value, const char *path, const char *value_env,
                                  const char *path_env, const char *what)
{
        char err[512];
        struct dsecrets *s = dstartup_secrets_load(value, path, value_env, path_env,
                                                   what, err, sizeof(err));

        if (!s)
                dlog_error("bad setting: %s", err);
        return s;
}

void dstartup_block_signals(sigset_t *set)
{
        sigemptyset(set);
        sigaddset(set, SIGTERM);
        sigaddset(set, SIGINT);
        sigaddset(set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, set, NULL);
        signal(SIGPIPE, SIG_IGN);
}
