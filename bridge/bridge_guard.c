/* bridge_guard.c - cuts off slow clients. libmicrohttpd's own timeout is an idle
 * timeout, reset by every byte, so a client that trickles a request never reaches it.
 * The guard tracks each connection's phase and when it began, and a sweep (on the
 * HTTP timer thread) shuts down the socket of a connection that overstays:
 *   idle     (waiting for a request line): DURO_BRIDGE_IDLE_TIMEOUT_S;
 *   request  (request line seen, headers and body arriving):
 *            DURO_BRIDGE_REQUEST_TIMEOUT_MS;
 *   waiting  (suspended for Kafka, bounded by the ack timeout) and answering: exempt.
 * libmicrohttpd then sees the socket closed and cleans the connection up. */
#include "bridge.h"

#include <stdlib.h>
#include <sys/socket.h>

#include "dlog.h"
#include "dtime.h"

struct bridge_conn {
        struct bridge_link link; /* in br->guarded */
        int fd;
        atomic_int phase;
        atomic_llong since_ms; /* monotonic start of the phase */
        int cut;
};

void bridge_guard_init(struct bridge *br)
{
        pthread_mutex_init(&br->guard_lock, NULL);
        br->guarded.head = br->guarded.tail = NULL;
}

void bridge_guard_destroy(struct bridge *br)
{
        pthread_mutex_destroy(&br->guard_lock);
}

static struct bridge_conn *bridge_guard_of(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return ci ? ci->socket_context : NULL;
}

void bridge_guard_phase(struct MHD_Connection *conn, enum bridge_phase phase)
{
        struct bridge_conn *c = bridge_guard_of(conn);

        if (!c)
                return;
        atomic_store(&c->since_ms, dtime_mono_ms());
        atomic_store(&c->phase, (int)phase);
}

void *bridge_guard_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
        (void)cls;
        (void)uri;
        bridge_guard_phase(conn, BRIDGE_PHASE_REQUEST);
        return NULL; /* the access handler allocates the request context */
}

void bridge_guard_notify_cb(void *cls, struct MHD_Connection *conn,
                            void **socket_context,
                            enum MHD_ConnectionNotificationCode toe)
{
        struct bridge *br = cls;
        struct bridge_conn *c;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                c = calloc(1, sizeof(*c));
                if (!c || !ci) {
                        free(c);
                        return;
                }
                c->fd = ci->connect_fd;
                atomic_init(&c->phase, BRIDGE_PHASE_IDLE);
                atomic_init(&c->since_ms, dtime_mono_ms());
                pthread_mutex_lock(&br->guard_lock);
                bridge_list_append(&br->guarded, &c->link);
                pthread_mutex_unlock(&br->guard_lock);
                *socket_context = c;
                return;
        }
        /* MHD_CONNECTION_NOTIFY_CLOSED: the socket is still open here, so the sweep
         * (which holds the lock) never shuts down a reused descriptor. */
        c = *socket_context;
        if (!c)
                return;
        pthread_mutex_lock(&br->guard_lock);
        bridge_list_unlink(&br->guarded, &c->link);
        pthread_mutex_unlock(&br->guard_lock);
        *socket_context = NULL;
        free(c);
}

void bridge_guard_sweep(struct bridge *br)
{
        int64_t now  = dtime_mono_ms();
        int cut_idle = 0, cut_req = 0;

        pthread_mutex_lock(&br->guard_lock);
        for (struct bridge_link *l = br->guarded.head; l; l = l->next) {
                struct bridge_conn *c = BRIDGE_LIST_ENTRY(l, struct bridge_conn);
                int phase             = atomic_load(&c->phase);
                long long age         = now - atomic_load(&c->since_ms);
                long long over        = -1;

                if (c->cut)
                        continue;
                if (phase == BRIDGE_PHASE_IDLE)
                        over = age - br->cfg.idle_timeout_s * 1000;
                else if (phase == BRIDGE_PHASE_REQUEST)
                        over = age - br->cfg.request_timeout_ms;
                if (over <= 0)
                        continue;
                shutdown(c->fd, SHUT_RDWR);
                c->cut = 1;
                if (phase == BRIDGE_PHASE_IDLE)
                        cut_idle++;
                else
                        cut_req++;
        }
        pthread_mutex_unlock(&br->guard_lock);
        if (cut_idle)
                atomic_fetch_add(&br->m.cut_idle, (unsigned long long)cut_idle);
        if (cut_req) {
                atomic_fetch_add(&br->m.cut_deadline, (unsigned long long)cut_req);
                dlog_info("closed %d connection(s) that did not send a whole "
                          "request within %lld ms",
                          cut_req, br->cfg.request_timeout_ms);
        }
}
