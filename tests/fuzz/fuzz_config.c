/* fuzz_config.c - libFuzzer target for the configuration parser: the input is split
 * on NUL bytes; words containing '=' and starting with an upper-case letter become
 * environment entries, the others argv. Checks that every result is DCONF_OK, HELP or
 * an error with a message, and that freeing is clean. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dconf.h"
#include "dkafka.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_cfg {
        char *s;
        long long n;
        int b;
        char *listen;
        int level;
        char *secret;
};

/* One option of each type (the names are the ones the seed corpus uses). */
#define FUZZ_OPT(env, flag, type, def, min, max, field, flags)                         \
        {                                                                              \
                env, flag, type, def, min, max, offsetof(struct fuzz_cfg, field),      \
                    flags, #field                                                      \
        }

static const struct dconf_opt fuzz_opts[] = {
    FUZZ_OPT("DURO_S", "s", DCONF_STRING, "x", 0, 0, s, 0),
    FUZZ_OPT("DURO_N", "n", DCONF_INT, "5", 1, 1000, n, 0),
    FUZZ_OPT("DURO_B", "b", DCONF_BOOL, "false", 0, 0, b, 0),
    FUZZ_OPT("DURO_LISTEN", "listen", DCONF_LISTEN, "127.0.0.1:1", 0, 0, listen, 0),
    FUZZ_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "info", 0, 0, level, 0),
    FUZZ_OPT("DURO_SECRET", NULL, DCONF_STRING, NULL, 0, 0, secret, DCONF_F_SECRET),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *buf = malloc(size + 1), *argv[34], *envp[33], err[512];
        int argc = 1, envc = 0;
        struct fuzz_cfg cfg;
        struct dconf_props props;
        enum dconf_result r;
        FILE *devnull;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = '\0';
        argv[0]   = (char *)"fuzz";
        for (char *w = buf; w < buf + size && argc < 33 && envc < 32;
             w += strlen(w) + 1) {
                if (w[0] >= 'A' && w[0] <= 'Z' && strchr(w, '='))
                        envp[envc++] = w;
                else
                        argv[argc++] = w;
        }
        argv[argc] = NULL;
        envp[envc] = NULL;
        memset(&cfg, 0, sizeof(cfg));
        devnull = freopen("/dev/null", "w", stdout); /* --help prints */
        (void)devnull;
        r = dconf_load(fuzz_opts, sizeof(fuzz_opts) / sizeof(fuzz_opts[0]), &cfg, argc,
                       argv, envp, "fuzz [options]", &props, err, sizeof(err));
        if (r == DCONF_ERROR && !err[0])
                abort(); /* an error must say what is wrong */
        if (r == DCONF_OK)
                (void)dkafka_check_props(&props, err, sizeof(err));
        dconf_props_free(&props);
        dconf_free(fuzz_opts, sizeof(fuzz_opts) / sizeof(fuzz_opts[0]), &cfg);
        free(buf);
        return 0;
}
