/* bench_util.h - helpers shared by the benchmark programs (http_ceiling.c,
 * kafka_ceiling.c). Header-only: each program is one file. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Peak resident set (VmHWM) of this process in KiB, or -1. */
static inline long bench_vm_hwm_kib(void)
{
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        long kib = -1;

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "VmHWM:", 6))
                        kib = atol(line + 6);
        fclose(f);
        return kib;
}

#endif
