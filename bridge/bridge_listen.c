/* bridge_listen.c - the webhook listener's socket: resolve and bind the address, read
 * the TLS files, and at shutdown close it without resetting a client: drop new
 * handshakes, answer the listen backlog, close (see bridge.h). */
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dfile.h"
#include "dlog.h"
#include "dnet.h"
#include "dtime.h"

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

/* Resolves and binds the listen address: a port in use is reported before anything
 * starts. */
static int bridge_listen_bind(struct bridge *br, char *err, size_t errsize)
{
        char why[200];

        if (dnet_resolve_listen(br->cfg.listen, &br->listen_ss, &br->listen_len, why,
                                sizeof(why))) {
                snprintf(err, errsize, "DURO_BRIDGE_LISTEN=%s: %s", br->cfg.listen,
                         why);
                return -1;
        }
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
        return 0;
}

/* Reads the TLS certificate and key, when they are set. */
static int bridge_listen_tls(struct bridge *br, char *err, size_t errsize)
{
        char why[200];

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

int bridge_listen_open(struct bridge *br, char *err, size_t errsize)
{
        br->listen_fd = -1;
        if (bridge_listen_bind(br, err, errsize))
                return -1;
        return bridge_listen_tls(br, err, errsize);
}

void bridge_listen_free(struct bridge *br)
{
        free(br->tls_cert_pem);
        if (br->tls_key_pem) {
                memset(br->tls_key_pem, 0, strlen(br->tls_key_pem));
                free(br->tls_key_pem);
        }
        br->tls_cert_pem = br->tls_key_pem = NULL;
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

void bridge_listen_close(struct bridge *br)
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
