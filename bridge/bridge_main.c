/* bridge_main.c - duro-bridge: start-up (configuration table, secrets, producer,
 * listeners), the signal loop (SIGHUP and secrets-file changes reload the secrets),
 * and the graceful shutdown (not ready, drain delay, close the listener,
 * finish the requests in flight, stop). */
#include "bridge.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "dadmin.h"
#include "dstartup.h"
#include "dkafka.h"
#include "dlog.h"
#include "dtime.h"
#include "dtopics.h"

#define BRIDGE_OPT(env, flag, type, def, min, max, field, help)                        \
        {                                                                              \
                env, flag, type, def, min, max, offsetof(struct bridge_config, field), \
                    0, help                                                            \
        }

static const struct dconf_opt bridge_opts[] = {
    BRIDGE_OPT("KAFKA_BOOTSTRAP_SERVERS", "bootstrap-servers", DCONF_STRING,
               "127.0.0.1:9092", 0, 0, bootstrap, "Kafka bootstrap servers"),
    BRIDGE_OPT("DURO_RAW_TOPIC", "raw-topic", DCONF_STRING, "duro.webhooks.raw", 0, 0,
               raw_topic, "topic the webhooks are published to"),
    BRIDGE_OPT("DURO_BRIDGE_LISTEN", "listen", DCONF_LISTEN, "0.0.0.0:8080", 0, 0,
               listen, "webhook listener address"),
    BRIDGE_OPT("DURO_BRIDGE_ADMIN_LISTEN", "admin-listen", DCONF_LISTEN, "0.0.0.0:9090",
               0, 0, admin_listen, "admin listener (/healthz, /readyz, /metrics)"),
    BRIDGE_OPT("DURO_WEBHOOK_PATH", "webhook-path", DCONF_STRING, "/webhooks/duro", 0,
               0, webhook_path, "webhook URL path"),
    {"DURO_WEBHOOK_SECRET", NULL, DCONF_STRING, NULL, 0, 0,
     offsetof(struct bridge_config, secret), DCONF_F_SECRET, "webhook signing secret"},
    BRIDGE_OPT("DURO_WEBHOOK_SECRETS_FILE", "secrets-file", DCONF_STRING, NULL, 0, 0,
               secrets_file,
               "file of active secrets, one per line (re-read on SIGHUP and "
               "when it changes)"),
    BRIDGE_OPT("DURO_EVENT_TABLE", "event-table", DCONF_STRING, NULL, 0, 0, event_table,
               "event table file: each event's resource kind and id fields "
               "(default: installed)"),
    BRIDGE_OPT("DURO_BRIDGE_MAX_BODY", "max-body", DCONF_INT, "65536", 1,
               16 * 1024 * 1024, max_body, "largest body accepted, bytes"),
    BRIDGE_OPT("DURO_BRIDGE_ACK_TIMEOUT_MS", "ack-timeout-ms", DCONF_INT, "10000", 100,
               300000, ack_timeout_ms, "longest wait for the broker's acknowledgement"),
    BRIDGE_OPT("DURO_BRIDGE_MAX_EVENT_AGE_S", "max-event-age-s", DCONF_INT, "86400", 0,
               365LL * 86400, max_event_age_s,
               "refuse events whose created_at is older (0 disables)"),
    BRIDGE_OPT("DURO_BRIDGE_MAX_CONNECTIONS", "max-connections", DCONF_INT, "1024", 1,
               65536, max_connections, "connection limit"),
    BRIDGE_OPT("DURO_BRIDGE_DRAIN_DELAY_MS", "drain-delay-ms", DCONF_INT, "5000", 0,
               600000, drain_delay_ms,
               "on SIGTERM, time between readiness going false and closing "
               "the listener"),
    BRIDGE_OPT("DURO_BRIDGE_IDLE_TIMEOUT_S", "idle-timeout-s", DCONF_INT, "30", 1, 3600,
               idle_timeout_s, "idle connection timeout"),
    BRIDGE_OPT("DURO_BRIDGE_REQUEST_TIMEOUT_MS", "request-timeout-ms", DCONF_INT,
               "15000", 100, 600000, request_timeout_ms,
               "deadline to receive a whole request body"),
    BRIDGE_OPT("DURO_BRIDGE_THREADS", "threads", DCONF_INT, "0", 0, 64, threads,
               "HTTP worker threads (0 = one per CPU, at most 8)"),
    BRIDGE_OPT("DURO_BRIDGE_TLS_CERT", "tls-cert", DCONF_STRING, NULL, 0, 0, tls_cert,
               "TLS certificate file (PEM) for the webhook listener"),
    BRIDGE_OPT("DURO_BRIDGE_TLS_KEY", "tls-key", DCONF_STRING, NULL, 0, 0, tls_key,
               "TLS private key file (PEM)"),
    DTOPICS_OPTS(struct bridge_config, topics,
                 "create the raw topic at start when missing"),
    BRIDGE_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "info", 0, 0, log_level,
               "debug, info, warn or error"),
};
#define BRIDGE_NOPTS (sizeof(bridge_opts) / sizeof(bridge_opts[0]))

static const struct dstartup_prog bridge_prog = {
    "duro-bridge",
    "duro-bridge [options]",
    bridge_opts,
    BRIDGE_NOPTS,
    offsetof(struct bridge_config, log_level),
    offsetof(struct bridge_config, topics),
    0};

/* Re-reads the secrets file when forced (SIGHUP) or when it changed. */
static void bridge_reload_secrets(struct bridge *br, int force)
{
        char err[300];
        int r = dsecrets_reload(br->secrets, force, err, sizeof(err));

        if (r > 0) {
                atomic_fetch_add(&br->m.secrets_reloads, 1);
                dlog_info("webhook secrets reloaded: %zu active",
                          dsecrets_count(br->secrets));
        } else if (r < 0) {
                atomic_fetch_add(&br->m.secrets_reload_errors, 1);
                dlog_error("webhook secrets not reloaded, the previous ones stay "
                           "active: %s",
                           err);
        }
}

/* Waits up to ms for a signal in set; returns it, or 0 on timeout. */
static int bridge_wait_signal(const sigset_t *set, long long ms)
{
        struct timespec ts = {.tv_sec  = (time_t)(ms / 1000),
                              .tv_nsec = (long)(ms % 1000) * 1000000};
        int sig            = sigtimedwait(set, NULL, &ts);

        return sig < 0 ? 0 : sig;
}

/* Waits (bounded by deadline) until no request is open. */
static void bridge_wait_inflight(struct bridge *br, int64_t deadline)
{
        while (atomic_load(&br->m.inflight) > 0 && dtime_mono_ms() < deadline) {
                struct timespec ts = {0, 10 * 1000000};
                nanosleep(&ts, NULL);
        }
}

/* Once refusing is set: until no request is suspended, by construction. The requests
 * that passed the refusing check before it was set suspend first (entering; only CPU
 * work lies between). From then on no request suspends, and each suspended one is
 * resumed within the ack timeout, by its record's report or the timer thread; what
 * is left after that (nothing, unless a thread stalls) is answered as timed out here,
 * so that libmicrohttpd never stops with a connection suspended. */
static void bridge_wait_unsuspended(struct bridge *br)
{
        int64_t deadline   = dtime_mono_ms() + br->cfg.ack_timeout_ms + 1000;
        struct timespec ts = {0, 1000000};

        while (atomic_load(&br->entering) > 0)
                nanosleep(&ts, NULL);
        while (atomic_load(&br->suspended) > 0 && dtime_mono_ms() < deadline)
                nanosleep(&ts, NULL);
        if (atomic_load(&br->suspended) > 0) {
                dlog_warn("%lld requests still waiting for Kafka at shutdown: 503",
                          (long long)atomic_load(&br->suspended));
                bridge_req_expire(br, INT64_MAX);
        }
}

static void bridge_shutdown(struct bridge *br, struct dadmin *admin,
                            const sigset_t *set)
{
        int64_t start = dtime_mono_ms(), deadline;
        long long left;

        atomic_store(&br->draining, 1);
        dlog_info("shutting down: not ready; closing the listener in %lld ms",
                  br->cfg.drain_delay_ms);
        while ((left = br->cfg.drain_delay_ms - (dtime_mono_ms() - start)) > 0) {
                int sig = bridge_wait_signal(set, left);
                if (sig == SIGTERM || sig == SIGINT) {
                        dlog_info("second signal: skipping the drain delay");
                        break;
                }
                if (sig == SIGHUP)
                        bridge_reload_secrets(br, 1);
        }
        bridge_listen_close(br);
        /* Requests on open connections are still published while the ones in flight
         * finish; then new ones are refused (503, not suspended). */
        deadline = dtime_mono_ms() + br->cfg.ack_timeout_ms +
                   br->cfg.request_timeout_ms + 1000;
        bridge_wait_inflight(br, deadline);
        atomic_store(&br->refusing, 1);
        bridge_wait_unsuspended(br);
        bridge_wait_inflight(br, dtime_mono_ms() + br->cfg.ack_timeout_ms);
        if (atomic_load(&br->m.inflight) > 0)
                dlog_error("%lld requests still open at shutdown",
                           (long long)atomic_load(&br->m.inflight));
        bridge_http_stop(br);
        bridge_listen_free(br);
        /* /metrics reads the producer: no scrape may run while it goes. */
        dadmin_stop(admin);
        bridge_kafka_stop(br);
}

static void bridge_setup_threads(struct bridge *br)
{
        long n;

        if (br->cfg.threads > 0)
                return;
        n               = sysconf(_SC_NPROCESSORS_ONLN);
        br->cfg.threads = n < 1 ? 1 : n > 8 ? 8 : n;
}

/* Everything that can fail on a bad setting is checked before Kafka starts. Returns 0,
 * or the exit status after logging the "bad setting: ..." line. */
static int bridge_start(struct bridge *br, struct dadmin **admin)
{
        char err[512];

        if (bridge_listen_open(br, err, sizeof(err))) {
                dlog_error("bad setting: %s", err);
                return 2;
        }
        *admin = dadmin_start(br->cfg.admin_listen, bridge_ready, bridge_metrics_render,
                              br, err, sizeof(err));
        if (!*admin) {
                dlog_error("bad setting: DURO_BRIDGE_ADMIN_LISTEN: %s", err);
                return 2;
        }
        if (bridge_kafka_start(br, err, sizeof(err))) {
                dlog_error("bad setting: %s", err);
                dadmin_stop(*admin);
                return 2;
        }
        if (bridge_http_start(br, err, sizeof(err))) {
                dlog_error("bad setting: %s", err);
                dadmin_stop(*admin);
                bridge_kafka_stop(br);
                return 2;
        }
        dlog_info("listening: webhooks on port %d%s at %s, admin on port %d; "
                  "publishing to %s via %s; %zu secret(s) active; %lld threads; "
                  "librdkafka %s",
                  br->http_port, br->tls_cert_pem ? " (TLS)" : "", br->cfg.webhook_path,
                  dadmin_port(*admin), br->cfg.raw_topic, br->cfg.bootstrap,
                  dsecrets_count(br->secrets), br->cfg.threads, rd_kafka_version_str());
        return 0;
}

/* Takes the signals until SIGTERM or SIGINT, or a fatal producer error. Returns the
 * exit status. */
static int bridge_run(struct bridge *br, const sigset_t *set)
{
        for (;;) {
                int sig = bridge_wait_signal(set, 1000);
                if (sig == SIGTERM || sig == SIGINT) {
                        dlog_info("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                        return 0;
                }
                if (sig == SIGHUP)
                        bridge_reload_secrets(br, 1);
                else
                        bridge_reload_secrets(br, 0);
                if (atomic_load(&br->fatal)) {
                        dlog_error("exiting after a fatal producer error; the "
                                   "orchestrator restarts the bridge");
                        return 1;
                }
        }
}

int main(int argc, char **argv)
{
        static struct bridge br;
        struct dadmin *admin = NULL;
        sigset_t set;
        int exit_code, rc;

        dlog_init("duro-bridge", DLOG_INFO);
        if (argc > 1 && !strcmp(argv[1], "webhooks"))
                return cli_webhooks_main(argc - 1, argv + 1);
        rc = dstartup_config(&bridge_prog, &br.cfg, argc, argv, &br.props);
        if (rc >= 0)
                return rc;
        if (br.cfg.webhook_path[0] != '/') {
                dlog_error("bad setting: DURO_WEBHOOK_PATH=%s: must start with /",
                           br.cfg.webhook_path);
                return 2;
        }

        {
                char err[700];
                if (devtable_load(&br.events, br.cfg.event_table, err, sizeof(err))) {
                        dlog_error("bad setting: %s", err);
                        return 2;
                }
        }
        br.secrets =
            dstartup_secrets(&br.cfg.secret, br.cfg.secrets_file, "DURO_WEBHOOK_SECRET",
                             "DURO_WEBHOOK_SECRETS_FILE", "webhook secret");
        if (!br.secrets)
                return 2;
        bridge_setup_threads(&br);

        /* Signals are taken synchronously by this thread; every thread started
         * from here on inherits the mask. */
        dstartup_block_signals(&set);
        json_object_seed(0);

        bridge_metrics_init(&br.m);
        bridge_req_init(&br);
        bridge_refusal_init(&br);
        bridge_guard_init(&br);
        bridge_kafka_init(&br);
        rc = bridge_start(&br, &admin);
        if (rc)
                return rc;
        exit_code = bridge_run(&br, &set);
        bridge_shutdown(&br, admin, &set);
        bridge_kafka_destroy(&br);
        bridge_guard_destroy(&br);
        bridge_req_destroy(&br);
        bridge_refusal_destroy(&br);
        dsecrets_destroy(br.secrets);
        devtable_free(&br.events);
        dconf_props_free(&br.props);
        dconf_free(bridge_opts, BRIDGE_NOPTS, &br.cfg);
        rd_kafka_wait_destroyed(5000);
        dlog_info("stopped");
        return exit_code;
}
