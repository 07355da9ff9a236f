/* dadmin.h - the admin listener shared by both programs: GET /healthz (live),
 * GET /readyz (ready, or 503 with the reason) and GET /metrics (Prometheus text).
 * It runs on its own libmicrohttpd thread, apart from the traffic it reports on. */
#ifndef DADMIN_H
#define DADMIN_H

#include <stddef.h>

#include "dbuf.h"

/* Returns 1 when ready; else 0 with a short reason written into reason. Called on the
 * admin listener's thread. */
typedef int(dadmin_ready_fn)(void *opaque, char *reason, size_t reasonsize);
/* Appends the metrics text to out. Returns 0 or -1. Called on the admin listener's
 * thread. */
typedef int(dadmin_metrics_fn)(void *opaque, struct dbuf *out);

struct dadmin;

/* Starts listening on listen ("host:port"). Returns NULL with err set on failure.
 * dadmin_start and dadmin_stop: main thread. */
struct dadmin *dadmin_start(const char *listen, dadmin_ready_fn *ready,
                            dadmin_metrics_fn *metrics, void *opaque, char *err,
                            size_t errsize);
/* The port actually bound (useful with port 0). */
int dadmin_port(const struct dadmin *a);
void dadmin_stop(struct dadmin *a);

#endif
