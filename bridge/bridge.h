/* bridge.h - duro-bridge internals shared by its modules: the configuration, the
 * process state, the metrics, a webhook request, and each module's calls (with the
 * thread that makes each call).
 *
 * Modules: docs/architecture.md. */
#ifndef BRIDGE_H
#define BRIDGE_H

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dbuf.h"
#include "dconf.h"
#include "devtable.h"
#include "dmetrics.h"
#include "dsecrets.h"
#include "dtopics.h"
#include "dtrace.h"

struct bridge_config {
        char *bootstrap;
        char *raw_topic;
        char *listen;
        char *admin_listen;
        char *webhook_path;
        char *secret;       /* DURO_WEBHOOK_SECRET (environment only) */
        char *secrets_file; /* DURO_WEBHOOK_SECRETS_FILE */
        char *tls_cert;
        char *tls_key;
        char *event_table; /* DURO_EVENT_TABLE; NULL: the installed one */
        long long max_body;
        long long ack_timeout_ms;
        long long max_event_age_s;
        long long max_connections;
        long long drain_delay_ms;
        long long idle_timeout_s;
        long long request_timeout_ms;
        long long threads;
        int log_level;
        struct dtopics_config topics;
};

/* The Retry-After of every 503 (answers and the listen backlog's). */
#define BRIDGE_RETRY_AFTER "5"

/* HTTP answers counted by status (bridge_metrics.c lists them); the last slot
 * counts the rest. */
#define BRIDGE_NSTATUS 12

struct bridge_metrics {
        atomic_ullong requests[BRIDGE_NSTATUS];
        struct dmetrics_hist ack_latency; /* produce to delivery report */
        atomic_ullong producer_errors;    /* failed deliveries and produce calls */
        atomic_ullong late_reports;       /* reports after the request was answered */
        atomic_ullong captured_invalid;   /* signed-but-invalid bodies published */
        atomic_ullong cut_too_large;      /* connections closed: chunked body too big */
        atomic_ullong cut_deadline;       /* connections closed: request deadline */
        atomic_ullong cut_idle;           /* connections closed: idle too long */
        atomic_ullong secrets_reloads;
        atomic_ullong secrets_reload_errors;
        /* requests whose traceparent / tracestate was ignored as invalid */
        atomic_ullong trace_ignored_parent, trace_ignored_state;
        atomic_llong inflight; /* requests not yet completed */
};

/* An intrusive doubly linked list (the pending requests, the guarded connections).
 * The caller holds the list's lock. */
struct bridge_link {
        struct bridge_link *prev, *next;
};
struct bridge_list {
        struct bridge_link *head, *tail;
};
/* The struct of the given type whose member `link` is l. */
#define BRIDGE_LIST_ENTRY(l, type) ((type *)(void *)((char *)(l)-offsetof(type, link)))

static inline void bridge_list_append(struct bridge_list *l, struct bridge_link *n)
{
        n->prev = l->tail;
        n->next = NULL;
        if (l->tail)
                l->tail->next = n;
        else
                l->head = n;
        l->tail = n;
}

static inline void bridge_list_unlink(struct bridge_list *l, struct bridge_link *n)
{
        if (n->prev)
                n->prev->next = n->next;
        else
                l->head = n->next;
        if (n->next)
                n->next->prev = n->prev;
        else
                l->tail = n->prev;
        n->prev = n->next = NULL;
}

/* One reason of the refusal log (bridge_refusal.c): refusals with this status and why
 * in the current interval, the first logged, the rest counted. */
#define BRIDGE_REFUSAL_REASONS 32
#define BRIDGE_REFUSAL_LOG_MS  10000
struct bridge_refusal {
        unsigned status; /* 0: the slot of every reason past the table */
        char why[96];
        int logged;
        unsigned long long counted;
};

struct bridge_refusals {
        pthread_mutex_t lock;
        struct bridge_refusal by[BRIDGE_REFUSAL_REASONS];
        size_t n;
        int64_t since_ms; /* monotonic: the interval's start */
};

struct bridge {
        struct bridge_config cfg;
        struct dconf_props props;
        struct dsecrets *secrets;
        struct devtable events; /* the event table: keys and kinds of raw records */
        struct bridge_metrics m;

        /* the process (bridge_main.c) */
        atomic_int draining; /* shutting down: not ready, answers close */
        atomic_int refusing; /* shutting down: answer 503 instead of producing */
        /* Requests between their check of refusing and their suspension (the HTTP
         * threads), and requests suspended until their record's outcome resumes them
         * (bridge_req_complete): libmicrohttpd must not stop while one is. */
        atomic_int entering;
        atomic_llong suspended;

        /* the refusal log (bridge_refusal.c) */
        struct bridge_refusals refusals;

        /* requests waiting for their record (bridge_req.c) */
        pthread_mutex_t pending_lock;
        struct bridge_list pending; /* by ack deadline */

        /* Kafka (bridge_kafka.c) */
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        pthread_t poll_thread;
        pthread_t health_thread;
        atomic_int kafka_run;
        pthread_mutex_t health_lock;
        pthread_cond_t health_cond;
        atomic_int broker_ok;    /* last metadata request answered, topic known */
        atomic_int fatal;        /* librdkafka raised a fatal error */
        char health_reason[200]; /* under health_lock */
        int replication_checked;

        /* slow-client guard (bridge_guard.c) */
        pthread_mutex_t guard_lock;
        struct bridge_list guarded;

        /* the listening socket (bridge_listen.c) */
        struct sockaddr_storage listen_ss;
        socklen_t listen_len;
        int listen_fd; /* handed to libmicrohttpd */
        char *tls_cert_pem, *tls_key_pem;

        /* HTTP (bridge_http.c) */
        struct MHD_Daemon *httpd;
        int http_port;
        pthread_t timer_thread;
        pthread_mutex_t timer_lock;
        pthread_cond_t timer_cond;
        int timer_run; /* under timer_lock */
};

enum bridge_req_state {
        BRIDGE_REQ_RECEIVING = 0, /* reading the body */
        BRIDGE_REQ_WAITING   = 1, /* suspended, produced, awaiting the report */
        BRIDGE_REQ_ANSWERED  = 2, /* result set, connection resumed */
        BRIDGE_REQ_DONE      = 3, /* response queued */
};

/* One webhook request. References: one held by the connection (dropped by
 * bridge_req_end when libmicrohttpd reports the request completed), one by the
 * record while it is in flight (dropped by bridge_req_complete once the record was
 * delivered, failed or refused). The body is handed to librdkafka without a copy and
 * lives as long as the request. */
struct bridge_req {
        struct bridge_link link; /* in br->pending while in_pending */
        atomic_int refcnt;
        atomic_int state;
        struct bridge *br;
        struct MHD_Connection *conn;
        struct dbuf body;
        int64_t received_ms; /* wall clock, for the record timestamp */
        int64_t produced_us; /* monotonic, when produced */
        int64_t deadline_ms; /* monotonic ack deadline */
        int in_pending;
        /* the answer, set by bridge_req_complete for the outcome that won */
        unsigned status;
        int invalid;
        char reason[160];
        char *event_id;
        char trace_id[33]; /* of its record's trace, for the log lines about it */
        int32_t partition;
        int64_t offset;
        char error[160];
};

/* What became of a request's record. */
enum bridge_outcome {
        BRIDGE_DELIVERED, /* the broker acknowledged it: 200, or 202 when invalid */
        BRIDGE_FAILED,    /* the delivery report is an error: 503 */
        BRIDGE_TIMED_OUT, /* no report by the ack deadline: 503 */
        BRIDGE_REFUSED,   /* the producer would not take it: 503 */
};

/* bridge_refusal.c: the refusal log, rate-limited. */
/* Main thread, before and after every other thread. */
void bridge_refusal_init(struct bridge *br);
void bridge_refusal_destroy(struct bridge *br);
/* Logs a refusal (status, why) of a request from peer, the first of its reason in an
 * interval, or counts it. Any thread. */
void bridge_refusal_log(struct bridge *br, unsigned status, const char *peer,
                        const char *why);
/* Logs the counts of the interval and starts the next one, once the interval has
 * passed, or at once when now (shutdown). The HTTP timer thread; the main thread at
 * shutdown. */
void bridge_refusal_summary(struct bridge *br, int now);

/* bridge_req.c: a webhook request's life. */
/* Create and destroy the pending list's lock. Main thread, before and after every
 * other thread. */
void bridge_req_init(struct bridge *br);
void bridge_req_destroy(struct bridge *br);
/* A new request on conn, holding the connection's reference; counted in flight.
 * NULL when out of memory. An HTTP worker thread (libmicrohttpd). */
struct bridge_req *bridge_req_new(struct bridge *br, struct MHD_Connection *conn);
/* libmicrohttpd reported the request completed: drops the connection's reference.
 * An HTTP worker thread (libmicrohttpd). */
void bridge_req_end(struct bridge_req *req);
/* The request waits for its record (its connection already suspended): sets the
 * ack deadline, takes the record's reference and joins the pending list. Call just
 * before bridge_kafka_produce. An HTTP worker thread (libmicrohttpd). */
void bridge_req_wait(struct bridge_req *req);
/* The one completion call: leaves the pending list, chooses the status for the
 * outcome, sets the answer (partition and offset for BRIDGE_DELIVERED, error text
 * for BRIDGE_FAILED and BRIDGE_REFUSED) and resumes the connection, once. Drops the
 * record's reference unless the outcome is BRIDGE_TIMED_OUT. Returns 1 for the
 * call that answered, 0 when another had (a late report is counted). Any thread. */
int bridge_req_complete(struct bridge_req *req, enum bridge_outcome outcome,
                        int32_t partition, int64_t offset, const char *error);
/* Completes every pending request whose ack deadline is before now (monotonic ms;
 * INT64_MAX: all) as timed out. The HTTP timer thread, and the main thread at
 * shutdown. */
void bridge_req_expire(struct bridge *br, int64_t now);

/* bridge_trace.c: the request's W3C trace context. */
/* Reads conn's traceparent and tracestate into *t and state (state_size bytes, ""
 * when none): the request's when valid (the invalid ones are counted, never refused),
 * else a new trace. Returns 0, or -1 when there is no randomness for a new one. The
 * HTTP thread. */
int bridge_trace_read(struct bridge *br, struct MHD_Connection *conn, struct dtrace *t,
                      char *state, size_t state_size);

/* bridge_listen.c: the webhook listener's socket. */
/* Resolves and binds the listen address and reads the TLS files: every bad setting
 * is reported before anything starts. Main thread. */
int bridge_listen_open(struct bridge *br, char *err, size_t errsize);
/* Stops accepting connections: takes the socket back from libmicrohttpd, drops new
 * handshakes, answers 503 to the connections already in the listen backlog (for at
 * most 2 s), then closes the socket. Main thread. */
void bridge_listen_close(struct bridge *br);
/* Frees the TLS files' text (wiping the key). Main thread, after bridge_http_stop. */
void bridge_listen_free(struct bridge *br);

/* bridge_http.c: the webhook requests. */
/* Starts libmicrohttpd on the bound socket and the HTTP timer thread (request
 * deadlines, slow clients). Main thread. */
int bridge_http_start(struct bridge *br, char *err, size_t errsize);
/* Stops the timer thread and libmicrohttpd. Main thread. */
void bridge_http_stop(struct bridge *br);

/* bridge_guard.c: per-connection phase deadlines */
enum bridge_phase {
        BRIDGE_PHASE_IDLE      = 0, /* before a request line */
        BRIDGE_PHASE_REQUEST   = 1, /* receiving headers and body */
        BRIDGE_PHASE_WAITING   = 2, /* suspended for Kafka */
        BRIDGE_PHASE_ANSWERING = 3, /* response queued */
};
/* Create and destroy the guard's lock. Main thread, before and after libmicrohttpd
 * runs. */
void bridge_guard_init(struct bridge *br);
void bridge_guard_destroy(struct bridge *br);
/* An HTTP worker thread (libmicrohttpd). */
void bridge_guard_phase(struct MHD_Connection *conn, enum bridge_phase phase);
/* libmicrohttpd callbacks. An HTTP worker thread (libmicrohttpd). */
void *bridge_guard_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn);
void bridge_guard_notify_cb(void *cls, struct MHD_Connection *conn,
                            void **socket_context,
                            enum MHD_ConnectionNotificationCode toe);
/* Shuts down connections past their phase deadline. The HTTP timer thread, a few
 * times a second. */
void bridge_guard_sweep(struct bridge *br);

/* bridge_kafka.c: the producer and the broker's health. */
/* Create and destroy the health lock. Main thread, before the admin listener
 * starts and after it stopped. */
void bridge_kafka_init(struct bridge *br);
void bridge_kafka_destroy(struct bridge *br);
/* Creates the producer (and the raw topic when asked), starts the poll thread
 * (delivery reports) and the health thread. Main thread. */
int bridge_kafka_start(struct bridge *br, char *err, size_t errsize);
/* Produces req's body (req waiting, see bridge_req_wait). Its delivery report
 * completes it on the Kafka poll thread. Takes hdrs. Returns 0, or -1 with why set
 * (queue full or other). An HTTP worker thread (libmicrohttpd). */
int bridge_kafka_produce(struct bridge *br, struct bridge_req *req, const char *key,
                         rd_kafka_headers_t *hdrs, char *why, size_t whysize);
/* Flushes, stops the threads and destroys the producer. Main thread. */
void bridge_kafka_stop(struct bridge *br);
/* 1 when the broker answers and no fatal error was raised; else 0 and the reason.
 * Any thread. */
int bridge_kafka_ready(struct bridge *br, char *reason, size_t reasonsize);
/* Records not yet acknowledged. Any thread. */
int bridge_kafka_queue_depth(struct bridge *br);

/* cli/cli_webhooks.c (declared with the other commands in cli/cli.h): `duro-bridge
 * webhooks ...` (argv[0] is "webhooks"). */
int cli_webhooks_main(int argc, char **argv);

/* bridge_ready.c */
/* 1 when ready (not shutting down, Kafka ready); else 0 and the reason. Any thread
 * (the admin listener's). */
int bridge_ready(void *opaque, char *reason, size_t reasonsize);

/* bridge_metrics.c */
/* Main thread, before any other thread. */
void bridge_metrics_init(struct bridge_metrics *m);
/* Counts an answer by status. Any thread. */
void bridge_metrics_count(struct bridge_metrics *m, unsigned status);
/* Writes /metrics. The admin listener's thread. */
int bridge_metrics_render(void *opaque, struct dbuf *out);

#endif
