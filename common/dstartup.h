/* dstartup.h - the start-up steps both daemons share: load the configuration table
 * (defaults, environment, flags), set the log level, refuse guarantee-breaking
 * librdkafka properties, and warn about unknown DURO_* variables (names only). */
#ifndef DSTARTUP_H
#define DSTARTUP_H

#include <stddef.h>

#include "dconf.h"

/* Returns -1 to go on, or the exit status: 0 when --help/--version was printed, 2 after
 * logging the one-line error. log_level_off is offsetof() the int DCONF_LOGLEVEL
 * field. */
int dstartup_config(const char *prog, const struct dconf_opt *tab, size_t n, void *cfg,
                    size_t log_level_off, int argc, char **argv, const char *usage,
                    struct dconf_props *props);

#endif
