/* bridge_http.c - the webhook listener: runs DESIGN §3's checks in order, publishes
 * what passes, and answers from the delivery report. A request waiting for Kafka is
 * suspended, never parked on a thread (see bridge.h). */
#include "bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dlog.h"
#include "dnet.h"
#include "dpayload.h"
#include "dsig.h"
#include "dtime.h"
#include "dfile.h"
#include "dwire.h"

#define BRIDGE_SIG_HEADER  "X-Duro-Signature"
#define BRIDGE_RETRY_AFTER "5"

const unsigned bridge_statuses[BRIDGE_NSTATUS] = {200, 202, 400, 401, 404, 405,
                                                  413, 415, 422, 500, 503, 0};

static void bridge_req_free(struct bridge_req *req)
{
        dbuf_free(&req->body);
        free(req->event_id);
        free(req);
}

void bridge_req_release(struct bridge_req *req)
{
        if (atomic_fetch_sub(&req->refcnt, 1) == 1)
                bridge_req_free(req);
}

static void bridge_peer(struct MHD_Connection *conn, char *out, size_t outsize)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

        snprintf(out, outsize, "?");
        if (!ci || !ci->client_addr)
                return;
        getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    out, (socklen_t)outsize, NULL, 0, NI_NUMERICHOST);
}

/* Queues a JSON response and counts it. body is copied. */
static enum MHD_Result bridge_respond(struct bridge *br, struct MHD_Connection *conn,
                                      unsigned status, const char *body)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret;

        bridge_metrics_count(&br->m, status);
        bridge_guard_phase(conn, BRIDGE_PHASE_ANSWERING);
        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
                MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER,
                                        BRIDGE_RETRY_AFTER);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
        if (atomic_load(&br->draining))
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
        ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

/* Answers {"status":"error","error":why} and logs the refusal. */
static enum MHD_Result bridge_refuse(struct bridge *br, struct MHD_Connection *conn,
                                     unsigned status, const char *why)
{
        char esc[512], body[600], peer[64];

        bridge_peer(conn, peer, sizeof(peer));
        dlog_info("refused %u from %s: %s", status, peer, why);
        dlog_json_escape(esc, sizeof(esc), why, strlen(why));
        snprintf(body, sizeof(body), "{\"status\":\"error\",\"error\":\"%s\"}\n", esc);
        return bridge_respond(br, conn, status, body);
}

/* 1 when the media type is application/json or application/<x>+json. */
static int bridge_json_media_type(const char *ct)
{
        size_t n = strcspn(ct, ";");

        while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
                n--;
        while (n && (*ct == ' ' || *ct == '\t'))
                ct++, n--;
        if (n == 16 && !strncasecmp(ct, "application/json", 16))
                return 1;
        return n > 17 && !strncasecmp(ct, "application/", 12) &&
               !strncasecmp(ct + n - 5, "+json", 5) && !memchr(ct, ' ', n);
}

struct bridge_hdr_count {
        const char *name;
        int n;
};

static enum MHD_Result bridge_count_hdr(void *cls, enum MHD_ValueKind kind,
                                        const char *key, const char *value)
{
        struct bridge_hdr_count *c = cls;
        (void)kind;
        (void)value;

        c->n += !strcasecmp(key, c->name);
        return MHD_YES;
}

/* How many header lines called name the request has. */
static int bridge_hdr_lines(struct MHD_Connection *conn, const char *name)
{
        struct bridge_hdr_count c = {name, 0};

        MHD_get_connection_values(conn, MHD_HEADER_KIND, bridge_count_hdr, &c);
        return c.n;
}

/* URL unescaping that refuses to decode %00: a path with an encoded NUL stays as it
 * is, so it can never compare equal to the webhook path. */
size_t bridge_unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
        (void)cls;
        (void)c;
        if (strstr(s, "%00"))
                return strlen(s);
        return MHD_http_unescape(s);
}

/* The header-time checks (path, method, content type, declared size, signature
 * shape). Returns 0 to go on, else the status already answered. */
static unsigned bridge_check_headers(struct bridge *br, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     enum MHD_Result *ret)
{
        const char *ct, *cl, *sig;
        unsigned char digest[DSIG_LEN];
        enum dsig_result sr;

        if (strcmp(url, br->cfg.webhook_path) != 0) {
                *ret = bridge_refuse(br, conn, MHD_HTTP_NOT_FOUND, "no such path");
                return MHD_HTTP_NOT_FOUND;
        }
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
                *ret = bridge_refuse(br, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                     "method not allowed (use POST)");
                return MHD_HTTP_METHOD_NOT_ALLOWED;
        }
        ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ct && !bridge_json_media_type(ct)) {
                *ret = bridge_refuse(br, conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "Content-Type must be application/json");
                return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        }
        if (bridge_hdr_lines(conn, MHD_HTTP_HEADER_CONTENT_LENGTH) > 1) {
                /* Two framings of one body: a request-smuggling shape. */
                *ret = bridge_refuse(br, conn, MHD_HTTP_BAD_REQUEST,
                                     "more than one Content-Length header");
                return MHD_HTTP_BAD_REQUEST;
        }
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
                char *end;
                unsigned long long n;
                errno = 0;
                n     = strtoull(cl, &end, 10);
                if (errno || end == cl || *end ||
                    n > (unsigned long long)br->cfg.max_body) {
                        char why[96];
                        snprintf(why, sizeof(why),
                                 "body larger than the limit of %lld bytes",
                                 br->cfg.max_body);
                        *ret = bridge_refuse(br, conn, MHD_HTTP_CONTENT_TOO_LARGE, why);
                        return MHD_HTTP_CONTENT_TOO_LARGE;
                }
        }
        sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, BRIDGE_SIG_HEADER);
        sr  = bridge_hdr_lines(conn, BRIDGE_SIG_HEADER) > 1 ? DSIG_MALFORMED
                                                            : dsig_parse(sig, digest);
        if (sr != DSIG_OK) {
                *ret =
                    bridge_refuse(br, conn, MHD_HTTP_UNAUTHORIZED, dsig_result_str(sr));
                return MHD_HTTP_UNAUTHORIZED;
        }
        return 0;
}

static void bridge_hdr(rd_kafka_headers_t *h, const char *name, const char *value)
{
        if (value)
                rd_kafka_header_add(h, name, -1, value, -1);
}

/* The body is complete: verify, validate, publish (suspending the request). */
static enum MHD_Result bridge_process(struct bridge *br, struct bridge_req *req)
{
        struct MHD_Connection *conn = req->conn;
        const char *sig, *ct, *key;
        char hashkey[DPAYLOAD_HASHKEY_SIZE], received[40];
        struct dsecrets_set *set;
        enum dsig_result sr;
        struct dpayload p;
        rd_kafka_headers_t *h;

        sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, BRIDGE_SIG_HEADER);
        set = dsecrets_acquire(br->secrets);
        sr  = dsig_verify(set, sig, req->body.data, req->body.len);
        dsecrets_release(set);
        if (sr != DSIG_OK) {
                atomic_store(&req->state, BRIDGE_REQ_DONE);
                return bridge_refuse(br, conn, MHD_HTTP_UNAUTHORIZED,
                                     dsig_result_str(sr));
        }

        dpayload_parse(&p, req->body.data ? req->body.data : "", req->body.len);
        if (p.valid && br->cfg.max_event_age_s > 0 &&
            req->received_ms - p.created_at_ms > br->cfg.max_event_age_s * 1000) {
                char why[160];
                snprintf(why, sizeof(why),
                         "event too old: created_at is more than %lld s ago",
                         br->cfg.max_event_age_s);
                dpayload_free(&p);
                atomic_store(&req->state, BRIDGE_REQ_DONE);
                return bridge_refuse(br, conn, MHD_HTTP_UNPROCESSABLE_CONTENT, why);
        }

        if (atomic_load(&br->refusing)) {
                dpayload_free(&p);
                atomic_store(&req->state, BRIDGE_REQ_DONE);
                return bridge_refuse(br, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                     "shutting down; retry");
        }
        key = dpayload_key(&p, req->body.data ? req->body.data : "", req->body.len,
                           hashkey);
        ct  = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                          MHD_HTTP_HEADER_CONTENT_TYPE);
        dtime_format_ms(received, sizeof(received), req->received_ms);
        h = rd_kafka_headers_new(8);
        bridge_hdr(h, DWIRE_H_EVENT, p.event);
        bridge_hdr(h, DWIRE_H_EVENT_ID, p.id);
        bridge_hdr(h, DWIRE_H_WEBHOOK_ID, p.webhook_id);
        bridge_hdr(h, DWIRE_H_SIGNATURE, sig);
        bridge_hdr(h, DWIRE_H_RECEIVED_AT, received);
        bridge_hdr(h, DWIRE_H_CONTENT_TYPE, ct ? ct : "application/json");
        if (!p.valid) {
                bridge_hdr(h, DWIRE_H_INVALID, p.reason);
                req->invalid = 1;
                snprintf(req->reason, sizeof(req->reason), "%s", p.reason);
                atomic_fetch_add(&br->m.captured_invalid, 1);
        }
        if (p.id)
                req->event_id = strdup(p.id);

        /* Suspend first, then produce: the report may arrive at once on the poll
         * thread and resume the connection. */
        bridge_guard_phase(conn, BRIDGE_PHASE_WAITING);
        MHD_suspend_connection(conn);
        atomic_store(&req->state, BRIDGE_REQ_WAITING);
        if (bridge_kafka_produce(br, req, key, h)) {
                dlog_warn("%s", req->error);
                bridge_req_answer(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL);
        }
        dpayload_free(&p);
        return MHD_YES;
}

/* Called again after the connection was resumed: queue the answer. */
static enum MHD_Result bridge_answer(struct bridge *br, struct bridge_req *req)
{
        char body[1024], esc[512], eid[300];

        atomic_store(&req->state, BRIDGE_REQ_DONE);
        if (req->status == MHD_HTTP_OK) {
                const char *id = req->event_id ? req->event_id : "";
                dlog_json_escape(eid, sizeof(eid), id, strlen(id));
                snprintf(body, sizeof(body),
                         "{\"status\":\"accepted\",\"event_id\":\"%s\","
                         "\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld}\n",
                         eid, br->cfg.raw_topic, (int)req->partition,
                         (long long)req->offset);
                return bridge_respond(br, req->conn, MHD_HTTP_OK, body);
        }
        if (req->status == MHD_HTTP_ACCEPTED) {
                dlog_json_escape(esc, sizeof(esc), req->reason, strlen(req->reason));
                snprintf(body, sizeof(body),
                         "{\"status\":\"captured\",\"reason\":\"%s\","
                         "\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld}\n",
                         esc, br->cfg.raw_topic, (int)req->partition,
                         (long long)req->offset);
                dlog_info("captured invalid signed payload at %s/%d@%lld: %s",
                          br->cfg.raw_topic, (int)req->partition,
                          (long long)req->offset, req->reason);
                return bridge_respond(br, req->conn, MHD_HTTP_ACCEPTED, body);
        }
        return bridge_refuse(br, req->conn, req->status,
                             req->error[0] ? req->error : "Kafka unavailable");
}

static enum MHD_Result bridge_access(void *cls, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     const char *version, const char *upload_data,
                                     size_t *upload_data_size, void **con_cls)
{
        struct bridge *br      = cls;
        struct bridge_req *req = *con_cls;
        (void)version;

        if (!req) {
                enum MHD_Result ret = MHD_YES;
                req                 = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                atomic_init(&req->refcnt, 1);
                atomic_init(&req->state, BRIDGE_REQ_RECEIVING);
                req->br          = br;
                req->conn        = conn;
                req->received_ms = dtime_now_ms();
                dbuf_init(&req->body, (size_t)br->cfg.max_body);
                *con_cls = req;
                atomic_fetch_add(&br->m.inflight, 1);
                if (bridge_check_headers(br, conn, url, method, &ret))
                        atomic_store(&req->state, BRIDGE_REQ_DONE);
                return ret;
        }

        switch (atomic_load(&req->state)) {
        case BRIDGE_REQ_RECEIVING:
                if (*upload_data_size) {
                        if (dbuf_append(&req->body, upload_data, *upload_data_size)) {
                                atomic_fetch_add(&br->m.cut_too_large, 1);
                                bridge_metrics_count(&br->m,
                                                     MHD_HTTP_CONTENT_TOO_LARGE);
                                dlog_info("closing a connection: body larger "
                                          "than %lld bytes",
                                          br->cfg.max_body);
                                return MHD_NO;
                        }
                        *upload_data_size = 0;
                        return MHD_YES;
                }
                return bridge_process(br, req);
        case BRIDGE_REQ_ANSWERED:
                return bridge_answer(br, req);
        default:
                /* Already answered (or waiting): swallow any further body. */
                *upload_data_size = 0;
                return MHD_YES;
        }
}

static void bridge_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
        struct bridge *br      = cls;
        struct bridge_req *req = *con_cls;
        (void)toe;

        bridge_guard_phase(conn, BRIDGE_PHASE_IDLE);
        if (!req)
                return;
        *con_cls = NULL;
        atomic_fetch_sub(&br->m.inflight, 1);
        bridge_req_release(req);
}

/* Reads a PEM file for TLS. Returns a malloc'd NUL-terminated string or NULL. */
static char *bridge_read_pem(const char *path, char *err, size_t errsize)
{
        size_t len;
        char *pem = dfile_read(path, 1024 * 1024, &len, NULL, err, errsize);

        if (pem && !len) {
                snprintf(err, errsize, "%s is empty", path);
                free(pem);
                return NULL;
        }
        return pem;
}

int bridge_http_prepare(struct bridge *br, char *err, size_t errsize)
{
        char why[200];

        if (dnet_resolve_listen(br->cfg.listen, &br->listen_ss, &br->listen_len, why,
                                sizeof(why))) {
                snprintf(err, errsize, "DURO_BRIDGE_LISTEN=%s: %s", br->cfg.listen,
                         why);
                return -1;
        }
        /* Bind now, so that a port in use is reported before anything starts. */
        br->listen_fd = socket(br->listen_ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (br->listen_fd < 0 ||
            setsockopt(br->listen_fd, SOL_SOCKET, SO_REUSEADDR, &(int){1},
                       sizeof(int)) ||
            bind(br->listen_fd, (struct sockaddr *)&br->listen_ss, br->listen_len) ||
            listen(br->listen_fd, SOMAXCONN) ||
            fcntl(br->listen_fd, F_SETFL, fcntl(br->listen_fd, F_GETFL) | O_NONBLOCK)) {
                snprintf(err, errsize, "DURO_BRIDGE_LISTEN=%s: cannot listen: %s",
                         br->cfg.listen, strerror(errno));
                if (br->listen_fd >= 0)
                        close(br->listen_fd);
                br->listen_fd = -1;
                return -1;
        }
        if (!br->cfg.tls_cert && !br->cfg.tls_key)
                return 0;
        if (!br->cfg.tls_cert || !br->cfg.tls_key) {
                snprintf(
                    err, errsize,
                    "%s: TLS needs both DURO_BRIDGE_TLS_CERT and DURO_BRIDGE_TLS_KEY",
                    br->cfg.tls_cert ? "DURO_BRIDGE_TLS_KEY" : "DURO_BRIDGE_TLS_CERT");
                return -1;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                snprintf(err, errsize,
                         "DURO_BRIDGE_TLS_CERT: this libmicrohttpd has no TLS support");
                return -1;
        }
        br->tls_cert_pem = bridge_read_pem(br->cfg.tls_cert, why, sizeof(why));
        if (!br->tls_cert_pem) {
                snprintf(err, errsize, "DURO_BRIDGE_TLS_CERT: %s", why);
                return -1;
        }
        br->tls_key_pem = bridge_read_pem(br->cfg.tls_key, why, sizeof(why));
        if (!br->tls_key_pem) {
                snprintf(err, errsize, "DURO_BRIDGE_TLS_KEY: %s", why);
                return -1;
        }
        return 0;
}

/* libmicrohttpd's memory per connection: request line, headers, read buffer and the
 * answer's header. It zeroes the whole of it for every request on a kept-alive
 * connection (~10% of the bridge's CPU at its default of 32 KiB); webhook requests need
 * a few hundred bytes, and longer headers still get 431. */
#define BRIDGE_CONN_MEMORY (16 * 1024)

int bridge_http_start(struct bridge *br, char *err, size_t errsize)
{
        unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG;
        const union MHD_DaemonInfo *info;
        struct MHD_OptionItem opts[4];
        size_t o = 0;

        if (br->listen_ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        if (br->tls_cert_pem) {
                flags |= MHD_USE_TLS;
                opts[o++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
                                                    br->tls_cert_pem};
                opts[o++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
                                                    br->tls_key_pem};
        }
        opts[o++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

        /* The logger goes first, so that even the earliest messages reach dlog. */
        br->httpd = MHD_start_daemon(
            flags, 0, NULL, NULL, bridge_access, br, MHD_OPTION_EXTERNAL_LOGGER,
            dlog_vcallback, (void *)"libmicrohttpd: ", MHD_OPTION_LISTEN_SOCKET,
            (MHD_socket)br->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
            (unsigned int)br->cfg.threads, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned int)br->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned int)br->cfg.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)BRIDGE_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, bridge_completed,
            br, MHD_OPTION_NOTIFY_CONNECTION, bridge_guard_notify_cb, br,
            MHD_OPTION_UNESCAPE_CALLBACK, bridge_unescape_cb, NULL,
            MHD_OPTION_URI_LOG_CALLBACK, bridge_guard_uri_cb, br, MHD_OPTION_ARRAY,
            opts, MHD_OPTION_END);
        if (!br->httpd) {
                snprintf(
                    err, errsize,
                    "DURO_BRIDGE_TLS_CERT/DURO_BRIDGE_TLS_KEY: the HTTP server did "
                    "not start (a bad TLS certificate or key?)");
                return -1;
        }
        info          = MHD_get_daemon_info(br->httpd, MHD_DAEMON_INFO_BIND_PORT);
        br->http_port = info ? info->port : dnet_listen_port(br->cfg.listen);
        return 0;
}

/* Waits up to ms for fd to become readable; 1 when it is. */
static int bridge_wait_readable(int fd, int ms)
{
        struct pollfd pfd = {fd, POLLIN, 0};

        return poll(&pfd, 1, ms) > 0;
}

/* Makes the listening socket drop new handshakes: a socket filter that discards
 * TCP segments with SYN set and ACK clear (flags byte at offset 13 of the TCP header,
 * where a TCP socket's filter starts). Handshakes already begun complete, and
 * established connections are untouched; a client whose SYN is dropped retries it
 * about a second later and is then refused by the closed port. Without this, a client
 * could complete its handshake between the last accept() and close() and have its
 * request reset. 0 on success; -1 (errno set) where the kernel refuses the filter. */
static int bridge_drop_new_handshakes(int lfd)
{
        static struct sock_filter code[] = {
            BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
            BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),       /* SYN|ACK */
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), /* SYN only */
            BPF_STMT(BPF_RET | BPF_K, 0),                    /* drop */
            BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),          /* keep all */
        };
        struct sock_fprog prog = {sizeof(code) / sizeof(code[0]), code};

        return setsockopt(lfd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* How long to wait, once the backlog is empty, for handshakes begun before the
 * filter above went on: a round trip on the local network, with margin. */
#define BRIDGE_HANDSHAKE_GRACE_MS 50
/* The most the backlog may hold up shutdown: clients that are slow to send or to
 * close, or that keep reconnecting where new handshakes cannot be dropped, are then
 * cut off (reset) with the listener. */
#define BRIDGE_BACKLOG_MAX_MS 2000

/* Milliseconds left until deadline, at most cap; 0 once it has passed. */
static int bridge_ms_left(int64_t deadline, int cap)
{
        int64_t left = deadline - dtime_mono_ms();

        return left <= 0 ? 0 : left < cap ? (int)left : cap;
}

/* A connection still in the listen backlog when the listener closes would be reset
 * with its request unanswered: answer it 503 (plain HTTP only) and close it cleanly.
 * With settle set (new handshakes are dropped), the backlog counts as empty once no
 * connection has arrived for BRIDGE_HANDSHAKE_GRACE_MS; otherwise at the first
 * EAGAIN. Either way it stops after BRIDGE_BACKLOG_MAX_MS. Sets *cut when it stopped
 * for that deadline. Returns the number of connections answered. */
static int bridge_answer_backlog(struct bridge *br, int lfd, int settle, int *cut)
{
#define BRIDGE_BACKLOG_BODY                                                            \
        "{\"status\":\"error\",\"error\":\"shutting down; retry\"}\n"
        static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Retry-After: " BRIDGE_RETRY_AFTER "\r\n"
                                   "Connection: close\r\n"
                                   "Content-Length: %zu\r\n\r\n%s";
        char head[512];
        int hlen = snprintf(head, sizeof(head), resp, sizeof(BRIDGE_BACKLOG_BODY) - 1,
                            BRIDGE_BACKLOG_BODY);
        int64_t deadline = dtime_mono_ms() + BRIDGE_BACKLOG_MAX_MS;
        char buf[4096];
        int n = 0, fd;

        *cut = 0;
        fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
        for (;;) {
                if (dtime_mono_ms() >= deadline) {
                        *cut = 1;
                        break;
                }
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EAGAIN && settle &&
                            bridge_wait_readable(
                                lfd,
                                bridge_ms_left(deadline, BRIDGE_HANDSHAKE_GRACE_MS)))
                                continue;
                        break;
                }
                n++;
                if (!br->tls_cert_pem) {
                        /* Read what the client sent, so that close() sends FIN, not
                         * RST; then answer. */
                        if (bridge_wait_readable(fd, bridge_ms_left(deadline, 100)))
                                (void)!recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                        (void)!send(fd, head, (size_t)hlen, MSG_NOSIGNAL);
                        shutdown(fd, SHUT_WR);
                        while (
                            bridge_wait_readable(fd, bridge_ms_left(deadline, 200)) &&
                            recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                                ;
                        bridge_metrics_count(&br->m, MHD_HTTP_SERVICE_UNAVAILABLE);
                }
                close(fd);
        }
        return n;
}

void bridge_http_quiesce(struct bridge *br)
{
        MHD_socket s = MHD_quiesce_daemon(br->httpd);
        int n, settle, cut;

        if (s == MHD_INVALID_SOCKET)
                return;
        settle = bridge_drop_new_handshakes(s) == 0;
        if (!settle)
                dlog_warn(
                    "cannot drop new handshakes before closing the listener (%s): "
                    "a connection made at that moment may be reset",
                    strerror(errno));
        n = bridge_answer_backlog(br, s, settle, &cut);
        close(s);
        if (cut)
                dlog_warn(
                    "answered %d connection(s) left in the listen backlog; stopped "
                    "after %d ms, connections still there are reset",
                    n, BRIDGE_BACKLOG_MAX_MS);
        else if (n)
                dlog_info("answered %d connection(s) left in the listen backlog", n);
}

void bridge_http_stop(struct bridge *br)
{
        if (br->httpd)
                MHD_stop_daemon(br->httpd);
        br->httpd = NULL;
        free(br->tls_cert_pem);
        if (br->tls_key_pem) {
                memset(br->tls_key_pem, 0, strlen(br->tls_key_pem));
                free(br->tls_key_pem);
        }
        br->tls_cert_pem = br->tls_key_pem = NULL;
}
