/* http_ceiling.c - the HTTP ceiling of the ingress benchmark (docs/benchmarks.md).
 *
 * A minimal libmicrohttpd server in duro-bridge's threading mode
 * (MHD_USE_EPOLL_INTERNAL_THREAD + a thread pool of one thread per CPU, at most 8, as
 * duro-bridge defaults to): it reads the body, verifies X-Duro-Signature with the
 * project's own common/dsig.c and common/dsecrets.c, and answers 200 with a small JSON
 * body. No Kafka. With --parse it also runs the payload validation the bridge runs
 * (common/dpayload.c), to split the HTTP cost from the JSON cost.
 *
 *   DURO_WEBHOOK_SECRET=... http_ceiling [--port N] [--threads N] [--parse]
 *
 * Prints "listening on port N" on stdout once it accepts connections; runs until
 * SIGTERM/SIGINT, then prints one JSON line with its counters and VmHWM. */
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

#include "dpayload.h"
#include "dsecrets.h"
#include "dsig.h"

#define MAX_BODY (64 * 1024)

struct req {
        size_t len, cap;
        char *data;
        int refused;
};

static struct dsecrets *secrets;
static int parse_payload;
static atomic_ullong n_ok, n_refused;

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *body)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret;

        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct req *rq = *con_cls;
        const char *sig;
        struct dsecrets_set *set;
        enum dsig_result sr;
        (void)cls, (void)url, (void)version;

        if (!rq) {
                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                *con_cls = rq;
                if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
                        rq->refused = 1;
                        atomic_fetch_add(&n_refused, 1);
                        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                       "{\"status\":\"error\"}\n");
                }
                return MHD_YES;
        }
        if (rq->refused) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (*upload_data_size) {
                size_t n = *upload_data_size;
                if (rq->len + n > MAX_BODY)
                        return MHD_NO;
                if (rq->len + n + 1 > rq->cap) {
                        size_t cap = rq->cap ? rq->cap * 2 : 1024;
                        char *p;
                        while (cap < rq->len + n + 1)
                                cap *= 2;
                        p = realloc(rq->data, cap);
                        if (!p)
                                return MHD_NO;
                        rq->data = p;
                        rq->cap  = cap;
                }
                memcpy(rq->data + rq->len, upload_data, n);
                rq->len += n;
                rq->data[rq->len] = '\0';
                *upload_data_size = 0;
                return MHD_YES;
        }
        sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Duro-Signature");
        set = dsecrets_acquire(secrets);
        sr  = dsig_verify(set, sig, rq->data, rq->len);
        dsecrets_release(set);
        rq->refused = 1; /* answered: swallow anything else */
        if (sr != DSIG_OK) {
                atomic_fetch_add(&n_refused, 1);
                return respond(conn, MHD_HTTP_UNAUTHORIZED,
                               "{\"status\":\"error\",\"error\":\"signature\"}\n");
        }
        if (parse_payload) {
                struct dpayload p;
                dpayload_parse(&p, NULL, rq->data ? rq->data : "", rq->len);
                dpayload_free(&p);
        }
        atomic_fetch_add(&n_ok, 1);
        return respond(conn, MHD_HTTP_OK, "{\"status\":\"accepted\"}\n");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct req *rq = *con_cls;
        (void)cls, (void)conn, (void)toe;

        if (!rq)
                return;
        free(rq->data);
        free(rq);
        *con_cls = NULL;
}

int main(int argc, char **argv)
{
        unsigned port = 0, threads = 0;
        const union MHD_DaemonInfo *info;
        struct MHD_Daemon *d;
        char err[256];
        sigset_t set;
        int sig;

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--port") && i + 1 < argc)
                        port = (unsigned)atoi(argv[++i]);
                else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
                        threads = (unsigned)atoi(argv[++i]);
                else if (!strcmp(argv[i], "--parse"))
                        parse_payload = 1;
                else {
                        fprintf(stderr, "usage: http_ceiling [--port N] [--threads N] "
                                        "[--parse]\n");
                        return 2;
                }
        }
        if (!threads) {
                long n  = sysconf(_SC_NPROCESSORS_ONLN);
                threads = n < 1 ? 1 : n > 8 ? 8 : (unsigned)n; /* as duro-bridge */
        }
        secrets = dsecrets_new(getenv("DURO_WEBHOOK_SECRET"),
                               getenv("DURO_WEBHOOK_SECRETS_FILE"), err, sizeof(err));
        if (!secrets) {
                fprintf(stderr, "http_ceiling: %s\n", err);
                return 2;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* duro-bridge's flags (it also suspends requests, hence ALLOW_SUSPEND_RESUME,
         * which gives every pool thread an inter-thread channel to watch). */
        d = MHD_start_daemon(
            MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                MHD_USE_ERROR_LOG,
            (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE,
            threads, MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT,
            30u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "http_ceiling: cannot start the HTTP server\n");
                return 1;
        }
        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        printf("listening on port %u\n", info ? (unsigned)info->port : port);
        fflush(stdout);
        do
                sigwait(&set, &sig);
        while (sig != SIGTERM && sig != SIGINT);
        MHD_stop_daemon(d);
        printf("{\"program\":\"http_ceiling\",\"threads\":%u,\"parse\":%d,\"ok\":%llu,"
               "\"refused\":%llu,\"vm_hwm_kib\":%ld}\n",
               threads, parse_payload, (unsigned long long)atomic_load(&n_ok),
               (unsigned long long)atomic_load(&n_refused), bench_vm_hwm_kib());
        dsecrets_destroy(secrets);
        return 0;
}
