/* bridge.h - duro-bridge internals shared by its modules: configuration, the process
 * state, metrics, and the request context that ties an HTTP request to its Kafka
 * delivery report.
 *
 * Modules: bridge_main.c (start-up, signals, shutdown), bridge_http.c (the webhook
 * listener and its checks), bridge_kafka.c (producer, delivery reports, ack deadlines,
 * broker health), bridge_metrics.c (/metrics and /readyz). */
#ifndef BRIDGE_H
#define BRIDGE_H

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdint.h>

#include "dbuf.h"
#include "dconf.h"
#include "dmetrics.h"
#include "dsecrets.h"
#include "dtopics.h"

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

/* HTTP answers counted by status; BRIDGE_STATUS_OTHER catches the rest. */
#define BRIDGE_NSTATUS 12
extern const unsigned bridge_statuses[BRIDGE_NSTATUS];

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
        atomic_llong inflight; /* requests not yet completed */
};

struct bridge {
        struct bridge_config cfg;
        struct dconf_props props;
        struct dsecrets *secrets;
        struct bridge_metrics m;

        /* Kafka (bridge_kafka.c) */
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        pthread_t poll_thread;
        pthread_t health_thread;
        atomic_int poll_run;
        pthread_mutex_t pending_lock;
        struct bridge_req *pending_head, *pending_tail; /* by ack deadline */
        pthread_mutex_t health_lock;
        pthread_cond_t health_cond;
        atomic_int broker_ok;    /* last metadata request answered, topic known */
        atomic_int fatal;        /* librdkafka raised a fatal error */
        char health_reason[200]; /* under health_lock */
        int replication_checked;

        /* slow-client guard (bridge_guard.c) */
        pthread_mutex_t guard_lock;
        struct bridge_conn *guard_head;

        /* HTTP (bridge_http.c) */
        struct MHD_Daemon *httpd;
        int http_port;
        atomic_int draining;
        atomic_int refusing; /* shutting down: answer 503 instead of producing */
        struct sockaddr_storage listen_ss;
        socklen_t listen_len;
        int listen_fd; /* bound in bridge_http_prepare(), handed to libmicrohttpd */
        char *tls_cert_pem, *tls_key_pem;
};

enum bridge_req_state {
        BRIDGE_REQ_RECEIVING = 0, /* reading the body */
        BRIDGE_REQ_WAITING   = 1, /* suspended, produced, awaiting the report */
        BRIDGE_REQ_ANSWERED  = 2, /* result set, connection resumed */
        BRIDGE_REQ_DONE      = 3, /* response queued */
};

/* One webhook request. References: one held by the connection (dropped when MHD
 * reports the request completed), one by librdkafka while the record is in flight
 * (dropped in the delivery report). The body is handed to librdkafka without a
 * copy and lives as long as the context. */
struct bridge_req {
        atomic_int refcnt;
        atomic_int state;
        struct bridge *br;
        struct MHD_Connection *conn;
        struct dbuf body;
        int64_t received_ms; /* wall clock, for the record timestamp */
        int64_t produced_us; /* monotonic, when produced */
        int64_t deadline_ms; /* monotonic ack deadline */
        struct bridge_req *prev, *next;
        int in_pending;
        /* set by whoever answers (the delivery report or the deadline) */
        unsigned status;
        int invalid;
        char reason[160];
        char *event_id;
        int32_t partition;
        int64_t offset;
        char error[160];
};

/* bridge_http.c */
/* Resolves the listen address and reads the TLS files (before anything starts). */
int bridge_http_prepare(struct bridge *br, char *err, size_t errsize);
int bridge_http_start(struct bridge *br, char *err, size_t errsize);
/* Stops accepting connections: new handshakes are dropped, connections already in
 * the listen backlog are answered 503, then the listening socket is closed. */
void bridge_http_quiesce(struct bridge *br);
size_t bridge_unescape_cb(void *cls, struct MHD_Connection *c, char *s);
void bridge_http_stop(struct bridge *br);
void bridge_req_release(struct bridge_req *req);

/* bridge_guard.c: per-connection phase deadlines */
enum bridge_phase {
        BRIDGE_PHASE_IDLE      = 0, /* before a request line */
        BRIDGE_PHASE_REQUEST   = 1, /* receiving headers and body */
        BRIDGE_PHASE_WAITING   = 2, /* suspended for Kafka */
        BRIDGE_PHASE_ANSWERING = 3, /* response queued */
};
void bridge_guard_phase(struct MHD_Connection *conn, enum bridge_phase phase);
void *bridge_guard_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn);
void bridge_guard_notify_cb(void *cls, struct MHD_Connection *conn,
                            void **socket_context,
                            enum MHD_ConnectionNotificationCode toe);
/* Shuts down connections past their phase deadline. Call a few times a second. */
void bridge_guard_sweep(struct bridge *br);

/* bridge_kafka.c */
int bridge_kafka_start(struct bridge *br, char *err, size_t errsize);
/* Produces req's body (req must be WAITING and suspended). On success librdkafka holds
 * a reference. Returns 0, or -1 with req->error set (queue full or other). */
int bridge_kafka_produce(struct bridge *br, struct bridge_req *req, const char *key,
                         rd_kafka_headers_t *hdrs);
/* Sets the result and resumes the connection, once: returns 1 for the caller that
 * answered, 0 when somebody already had. */
int bridge_req_answer(struct bridge_req *req, unsigned status, const char *error);
void bridge_kafka_stop(struct bridge *br);
int bridge_kafka_ready(struct bridge *br, char *reason, size_t reasonsize);

/* cli/cli_webhooks.c (declared with the other commands in cli/cli.h): `duro-bridge
 * webhooks ...` (argv[0] is "webhooks"). */
int cli_webhooks_main(int argc, char **argv);

/* bridge_metrics.c */
void bridge_metrics_init(struct bridge_metrics *m);
void bridge_metrics_count(struct bridge_metrics *m, unsigned status);
int bridge_metrics_render(void *opaque, struct dbuf *out);
int bridge_ready(void *opaque, char *reason, size_t reasonsize);

#endif
