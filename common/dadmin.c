/* dadmin.c - admin HTTP listener: /healthz, /readyz, /metrics (see dadmin.h). */
#include "dadmin.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "dnet.h"

#define DADMIN_METRICS_MAX (4 * 1024 * 1024)

struct dadmin {
        struct MHD_Daemon *d;
        dadmin_ready_fn *ready;
        dadmin_metrics_fn *metrics;
        void *opaque;
        int port;
};

static enum MHD_Result dadmin_reply(struct MHD_Connection *conn, unsigned status,
                                    const char *ctype, char *body, size_t len,
                                    enum MHD_ResponseMemoryMode mode)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
        enum MHD_Result ret;

        if (!r) {
                if (mode == MHD_RESPMEM_MUST_FREE)
                        free(body);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result dadmin_handler(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **con_cls)
{
        struct dadmin *a         = cls;
        static const char text[] = "text/plain; charset=utf-8";
        (void)version;
        (void)upload_data;

        if (*upload_data_size)
                return MHD_NO; /* the admin endpoints take no body */
        (void)con_cls;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return dadmin_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text,
                                    (char *)"method not allowed\n", 19,
                                    MHD_RESPMEM_PERSISTENT);
        if (!strcmp(url, "/healthz"))
                return dadmin_reply(conn, MHD_HTTP_OK, text, (char *)"ok\n", 3,
                                    MHD_RESPMEM_PERSISTENT);
        if (!strcmp(url, "/readyz")) {
                char reason[256], body[300];
                int n;
                reason[0] = '\0';
                if (a->ready(a->opaque, reason, sizeof(reason))) {
                        return dadmin_reply(conn, MHD_HTTP_OK, text, (char *)"ready\n",
                                            6, MHD_RESPMEM_PERSISTENT);
                }
                n = snprintf(body, sizeof(body), "not ready: %s\n", reason);
                if (n < 0)
                        return MHD_NO;
                if ((size_t)n >= sizeof(body))
                        n = (int)sizeof(body) - 1;
                return dadmin_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text, body,
                                    (size_t)n, MHD_RESPMEM_MUST_COPY);
        }
        if (!strcmp(url, "/metrics")) {
                struct dbuf b;
                size_t len;
                char *data;
                dbuf_init(&b, DADMIN_METRICS_MAX);
                if (a->metrics(a->opaque, &b)) {
                        dbuf_free(&b);
                        return dadmin_reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text,
                                            (char *)"metrics failed\n", 15,
                                            MHD_RESPMEM_PERSISTENT);
                }
                data = dbuf_take(&b, &len);
                return dadmin_reply(
                    conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                    data ? data : (char *)"", len,
                    data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        }
        return dadmin_reply(conn, MHD_HTTP_NOT_FOUND, text, (char *)"not found\n", 10,
                            MHD_RESPMEM_PERSISTENT);
}

struct dadmin *dadmin_start(const char *listen, dadmin_ready_fn *ready,
                            dadmin_metrics_fn *metrics, void *opaque, char *err,
                            size_t errsize)
{
        struct sockaddr_storage ss;
        socklen_t sslen;
        char why[200];
        const union MHD_DaemonInfo *info;
        struct dadmin *a;

        if (dnet_resolve_listen(listen, &ss, &sslen, why, sizeof(why))) {
                snprintf(err, errsize, "admin listen %s: %s", listen, why);
                return NULL;
        }
        a = calloc(1, sizeof(*a));
        if (!a) {
                snprintf(err, errsize, "out of memory");
                return NULL;
        }
        a->ready   = ready;
        a->metrics = metrics;
        a->opaque  = opaque;
        a->d       = MHD_start_daemon(
                  MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                      (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                  0, NULL, NULL, dadmin_handler, a, MHD_OPTION_EXTERNAL_LOGGER,
                  dlog_vcallback, (void *)"libmicrohttpd (admin): ", MHD_OPTION_SOCK_ADDR,
                  (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
        if (!a->d) {
                snprintf(err, errsize,
                         "admin listen %s: cannot listen (address in use?)", listen);
                free(a);
                return NULL;
        }
        info    = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
        a->port = info ? info->port : dnet_listen_port(listen);
        return a;
}

int dadmin_port(const struct dadmin *a)
{
        return a->port;
}

void dadmin_stop(struct dadmin *a)
{
        if (!a)
                return;
        MHD_stop_daemon(a->d);
        free(a);
}
