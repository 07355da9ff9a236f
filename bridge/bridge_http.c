/* bridge_http.c - the webhook requests: checks each in order (path, method, type,
 * size, signature, then the body), publishes what passes and answers once its record
 * is complete; a request waiting for Kafka is suspended, never parked on a thread.
 * Also the HTTP timer thread (request deadlines, slow clients). See bridge.h. */
#include "bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dlog.h"
#include "dnet.h"
#include "dpayload.h"
#include "dsig.h"
#include "dtime.h"
#include "dwire.h"

#define BRIDGE_SIG_HEADER "X-Duro-Signature"

/* How often the timer thread expires request deadlines and sweeps slow clients. */
#define BRIDGE_EXPIRE_MS 50
#define BRIDGE_SWEEP_MS  250

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
        bridge_refusal_log(br, status, peer, why);
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
static size_t bridge_unescape_cb(void *cls, struct MHD_Connection *c, char *s)
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

/* Publishes the checked body with its headers, suspending the request until its
 * record is complete. */
static void bridge_publish(struct bridge *br, struct bridge_req *req,
                           const struct dpayload *p, const char *sig)
{
        struct MHD_Connection *conn = req->conn;
        char hashkey[DPAYLOAD_HASHKEY_SIZE], received[40], why[160];
        char tstate[DTRACE_STATE_MAX + 1], tparent[DTRACE_PARENT_SIZE];
        const char *ct, *key;
        rd_kafka_headers_t *h;
        struct dtrace trace;

        key = dpayload_key(p, req->body.data ? req->body.data : "", req->body.len,
                           hashkey);
        ct  = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                          MHD_HTTP_HEADER_CONTENT_TYPE);
        dtime_format_ms(received, sizeof(received), req->received_ms);
        h = rd_kafka_headers_new(8);
        bridge_hdr(h, DWIRE_H_EVENT, p->event);
        bridge_hdr(h, DWIRE_H_EVENT_ID, p->id);
        bridge_hdr(h, DWIRE_H_WEBHOOK_ID, p->webhook_id);
        bridge_hdr(h, DWIRE_H_SIGNATURE, sig);
        bridge_hdr(h, DWIRE_H_RECEIVED_AT, received);
        bridge_hdr(h, DWIRE_H_CONTENT_TYPE, ct ? ct : DWIRE_CONTENT_JSON);
        bridge_hdr(h, DWIRE_H_RESOURCE_KIND, dwire_kind_name(p->kind));
        if (!bridge_trace_read(br, conn, &trace, tstate, sizeof(tstate))) {
                dtrace_format(&trace, tparent);
                bridge_hdr(h, DWIRE_H_TRACEPARENT, tparent);
                if (*tstate)
                        bridge_hdr(h, DWIRE_H_TRACESTATE, tstate);
                memcpy(req->trace_id, trace.trace_id, sizeof(req->trace_id));
        }
        if (!p->valid) {
                bridge_hdr(h, DWIRE_H_INVALID, p->reason);
                req->invalid = 1;
                snprintf(req->reason, sizeof(req->reason), "%s", p->reason);
                atomic_fetch_add(&br->m.captured_invalid, 1);
        }
        if (p->id)
                req->event_id = strdup(p->id);

        /* Suspend first, then produce: the report may arrive at once on the poll
         * thread and resume the connection. */
        bridge_guard_phase(conn, BRIDGE_PHASE_WAITING);
        atomic_fetch_add(&br->suspended, 1);
        MHD_suspend_connection(conn);
        bridge_req_wait(req);
        if (bridge_kafka_produce(br, req, key, h, why, sizeof(why))) {
                dlog_warn_trace(req->trace_id, "%s", why);
                bridge_req_complete(req, BRIDGE_REFUSED, 0, 0, why);
        }
}

/* The body is complete: verify, validate, publish (suspending the request). */
static enum MHD_Result bridge_process(struct bridge *br, struct bridge_req *req)
{
        struct MHD_Connection *conn = req->conn;
        struct dsecrets_set *set;
        enum dsig_result sr;
        struct dpayload p;
        const char *sig;

        sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, BRIDGE_SIG_HEADER);
        set = dsecrets_acquire(br->secrets);
        sr  = dsig_verify(set, sig, req->body.data, req->body.len);
        dsecrets_release(set);
        if (sr != DSIG_OK) {
                atomic_store(&req->state, BRIDGE_REQ_DONE);
                return bridge_refuse(br, conn, MHD_HTTP_UNAUTHORIZED,
                                     dsig_result_str(sr));
        }

        dpayload_parse(&p, &br->events, req->body.data ? req->body.data : "",
                       req->body.len);
        /* Before the capture of an invalid body too, so that none is replayed once the
         * dedupe window has passed. */
        if (p.created_at_ok && br->cfg.max_event_age_s > 0 &&
            req->received_ms - p.created_at_ms > br->cfg.max_event_age_s * 1000) {
                char why[160];
                snprintf(why, sizeof(why),
                         "event too old: created_at is more than %lld s ago",
                         br->cfg.max_event_age_s);
                dpayload_free(&p);
                atomic_store(&req->state, BRIDGE_REQ_DONE);
                return bridge_refuse(br, conn, MHD_HTTP_UNPROCESSABLE_CONTENT, why);
        }

        /* Counted in entering from the check to the suspension: the shutdown sets
         * refusing, then waits for entering to be 0, so that every request it does
         * not see suspended saw refusing (both sequentially consistent). */
        atomic_fetch_add(&br->entering, 1);
        if (atomic_load(&br->refusing)) {
                atomic_fetch_sub(&br->entering, 1);
                dpayload_free(&p);
                atomic_store(&req->state, BRIDGE_REQ_DONE);
                return bridge_refuse(br, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                     "shutting down; retry");
        }
        bridge_publish(br, req, &p, sig);
        atomic_fetch_sub(&br->entering, 1);
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
                dlog_info_trace(req->trace_id,
                                "captured invalid signed payload at %s/%d@%lld: %s",
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
                req                 = bridge_req_new(br, conn);
                if (!req)
                        return MHD_NO;
                *con_cls = req;
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
        struct bridge_req *req = *con_cls;
        (void)cls;
        (void)toe;

        bridge_guard_phase(conn, BRIDGE_PHASE_IDLE);
        if (!req)
                return;
        *con_cls = NULL;
        bridge_req_end(req);
}

/* The HTTP timer thread: expires the ack deadlines of requests waiting for Kafka, and
 * a few times a second cuts off the connections past their phase deadline. */
static void *bridge_timer_main(void *arg)
{
        struct bridge *br  = arg;
        int64_t next_sweep = 0;
        struct timespec ts;

        pthread_mutex_lock(&br->timer_lock);
        while (br->timer_run) {
                pthread_mutex_unlock(&br->timer_lock);
                bridge_req_expire(br, dtime_mono_ms());
                bridge_refusal_summary(br, 0);
                if (dtime_mono_ms() >= next_sweep) {
                        bridge_guard_sweep(br);
                        next_sweep = dtime_mono_ms() + BRIDGE_SWEEP_MS;
                }
                pthread_mutex_lock(&br->timer_lock);
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += BRIDGE_EXPIRE_MS * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                if (br->timer_run)
                        pthread_cond_timedwait(&br->timer_cond, &br->timer_lock, &ts);
        }
        pthread_mutex_unlock(&br->timer_lock);
        return NULL;
}

/* Starts the timer thread, its clock the monotonic one. 0, or an errno value. */
static int bridge_timer_start(struct bridge *br)
{
        pthread_condattr_t ca;
        int rc;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&br->timer_cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&br->timer_lock, NULL);
        br->timer_run = 1;
        rc            = pthread_create(&br->timer_thread, NULL, bridge_timer_main, br);
        if (rc) {
                pthread_cond_destroy(&br->timer_cond);
                pthread_mutex_destroy(&br->timer_lock);
        }
        return rc;
}

static void bridge_timer_stop(struct bridge *br)
{
        pthread_mutex_lock(&br->timer_lock);
        br->timer_run = 0;
        pthread_cond_signal(&br->timer_cond);
        pthread_mutex_unlock(&br->timer_lock);
        pthread_join(br->timer_thread, NULL);
        pthread_cond_destroy(&br->timer_cond);
        pthread_mutex_destroy(&br->timer_lock);
}

/* libmicrohttpd's memory per connection: request line, headers, read buffer and the
 * answer's header. It zeroes the whole of it for every request on a kept-alive
 * connection, a cost that shows at its default of 32 KiB (docs/benchmarks.md);
 * webhook requests need a few hundred bytes, and longer headers still get 431. */
#define BRIDGE_CONN_MEMORY (16 * 1024)

/* Starts libmicrohttpd on the bound socket. */
static int bridge_daemon_start(struct bridge *br)
{
        unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG;
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
        return br->httpd ? 0 : -1;
}

int bridge_http_start(struct bridge *br, char *err, size_t errsize)
{
        const union MHD_DaemonInfo *info;
        int rc;

        if (bridge_daemon_start(br)) {
                snprintf(
                    err, errsize,
                    "DURO_BRIDGE_TLS_CERT/DURO_BRIDGE_TLS_KEY: the HTTP server did "
                    "not start (a bad TLS certificate or key?)");
                return -1;
        }
        rc = bridge_timer_start(br);
        if (rc) {
                snprintf(err, errsize, "cannot start the HTTP timer thread: %s",
                         strerror(rc));
                MHD_stop_daemon(br->httpd);
                br->httpd = NULL;
                return -1;
        }
        info          = MHD_get_daemon_info(br->httpd, MHD_DAEMON_INFO_BIND_PORT);
        br->http_port = info ? info->port : dnet_listen_port(br->cfg.listen);
        return 0;
}

void bridge_http_stop(struct bridge *br)
{
        if (!br->httpd)
                return;
        bridge_timer_stop(br);
        MHD_stop_daemon(br->httpd);
        br->httpd = NULL;
        bridge_refusal_summary(br, 1);
}
