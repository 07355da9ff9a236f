/* dstartup.c - shared start-up steps of the daemons (see dstartup.h). */
#include "dstartup.h"

#include <stdlib.h>
#include <string.h>

#include "dkafka.h"
#include "dlog.h"

extern char **environ;

int dstartup_config(const char *prog, const struct dconf_opt *tab, size_t n, void *cfg,
                    size_t log_level_off, int argc, char **argv, const char *usage,
                    struct dconf_props *props)
{
        const char **unknown;
        char err[512];

        dlog_init(prog, DLOG_INFO);
        switch (dconf_load(tab, n, cfg, argc, argv, environ, usage, props, err,
                           sizeof(err))) {
        case DCONF_HELP:
                return 0;
        case DCONF_ERROR:
                dlog_error("bad setting: %s", err);
                return 2;
        case DCONF_OK:
                break;
        }
        dlog_init(prog, (enum dlog_level) * (int *)((char *)cfg + log_level_off));
        if (dkafka_check_props(props, err, sizeof(err))) {
                dlog_error("bad setting: %s", err);
                return 2;
        }
        unknown = dconf_unknown_env(tab, n, environ);
        for (size_t i = 0; unknown && unknown[i]; i++)
                dlog_warn("ignoring unknown setting %.*s",
                          (int)strcspn(unknown[i], "="), unknown[i]);
        free(unknown);
        return -1;
}
