/* enricher_main.c - duro-enricher: start-up (configuration table, API key, GraphQL
 * queries, the transactional producer, the consumer group), the main loop of batch
 * cycles with signals (SIGHUP re-reads the API key file), the watchdog on hung
 * transactional calls, and shutdown (DESIGN §4). */
#include "enricher.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dadmin.h"
#include "dstartup.h"
#include "dbuf.h"
#include "dfile.h"
#include "dkafka.h"
#include "dlog.h"
#include "dnet.h"
#include "dtime.h"
#include "dtopics.h"

#define ENRICHER_OPT(env, flag, type, def, min, max, field, help)                      \
        {                                                                              \
                env, flag, type, def, min, max,                                        \
                    offsetof(struct enricher_config, field), 0, help                   \
        }

static const struct dconf_opt enricher_opts[] = {
    ENRICHER_OPT("KAFKA_BOOTSTRAP_SERVERS", "bootstrap-servers", DCONF_STRING,
                 "127.0.0.1:9092", 0, 0, bootstrap, "Kafka bootstrap servers"),
    ENRICHER_OPT("DURO_RAW_TOPIC", "raw-topic", DCONF_STRING, "duro.webhooks.raw", 0, 0,
                 raw_topic, "topic of the raw webhooks"),
    ENRICHER_OPT("DURO_DLQ_TOPIC", "dlq-topic", DCONF_STRING, "duro.webhooks.dlq", 0, 0,
                 dlq_topic, "dead-letter topic"),
    ENRICHER_OPT("DURO_ENRICHER_GROUP", "group", DCONF_STRING, "duro-enricher", 0, 0,
                 group, "consumer group"),
    ENRICHER_OPT("DURO_ENRICHER_ADMIN_LISTEN", "admin-listen", DCONF_LISTEN,
                 "0.0.0.0:9091", 0, 0, admin_listen,
                 "admin listener (/healthz, /readyz, /metrics)"),
    ENRICHER_OPT("DURO_TRANSACTIONAL_ID", "transactional-id", DCONF_STRING, NULL, 0, 0,
                 transactional_id,
                 "transactional.id (default <group>-<host name>-<admin port>)"),
    ENRICHER_OPT("DURO_GROUP_INSTANCE_ID", "group-instance-id", DCONF_STRING, NULL, 0,
                 0, group_instance_id,
                 "static group membership id (default: the transactional.id)"),
    ENRICHER_OPT("DURO_TOPIC_TEMPLATE", "topic-template", DCONF_STRING,
                 "duro.events.{event}", 0, 0, topic_template,
                 "output topic; {event} is the event name in lower case"),
    ENRICHER_OPT("DURO_QUERIES_DIR", "queries-dir", DCONF_STRING, NULL, 0, 0,
                 queries_dir, "folder of the GraphQL queries (default: installed)"),
    ENRICHER_OPT("DURO_API_URL", "api-url", DCONF_STRING,
                 "https://api.durohub.com/graphql", 0, 0, api_url,
                 "Duro GraphQL endpoint"),
    {"DURO_API_KEY", NULL, DCONF_STRING, NULL, 0, 0,
     offsetof(struct enricher_config, api_key), DCONF_F_SECRET, "Duro API key"},
    ENRICHER_OPT("DURO_API_KEY_FILE", "api-key-file", DCONF_STRING, NULL, 0, 0,
                 api_key_file,
                 "file holding the API key (re-read on SIGHUP and when it changes)"),
    ENRICHER_OPT("DURO_API_ORGANIZATION", "api-organization", DCONF_STRING, NULL, 0, 0,
                 api_org, "x-organization header"),
    ENRICHER_OPT("DURO_API_LIBRARY", "api-library", DCONF_STRING, NULL, 0, 0, api_lib,
                 "x-library header"),
    ENRICHER_OPT("DURO_DEDUPE_WINDOW_S", "dedupe-window-s", DCONF_INT, "90000", 1,
                 100LL * 365 * 86400, dedupe_window_s, "dedupe window in stream time"),
    ENRICHER_OPT("DURO_BATCH_MAX", "batch-max", DCONF_INT, "500", 1, 100000, batch_max,
                 "records per batch at most"),
    ENRICHER_OPT("DURO_BATCH_WAIT_MS", "batch-wait-ms", DCONF_INT, "100", 0, 60000,
                 batch_wait_ms, "longest wait to fill a batch"),
    ENRICHER_OPT("DURO_PULL_AHEAD", "pull-ahead", DCONF_BOOL, "true", 0, 0, pull_ahead,
                 "pull the next batch while the current batch's transaction commits"),
    ENRICHER_OPT("DURO_GRAPHQL_MAX_IDS", "graphql-max-ids", DCONF_INT, "100", 1, 10000,
                 gql_max_ids, "ids per GraphQL request at most"),
    ENRICHER_OPT("DURO_GRAPHQL_CONCURRENCY", "graphql-concurrency", DCONF_INT, "4", 1,
                 256, gql_concurrency, "GraphQL requests in flight at most"),
    ENRICHER_OPT("DURO_GRAPHQL_RATE", "graphql-rate", DCONF_INT, "20", 0, 100000,
                 gql_rate, "GraphQL requests per second at most (0: no limit)"),
    ENRICHER_OPT("DURO_GRAPHQL_TIMEOUT_MS", "graphql-timeout-ms", DCONF_INT, "10000",
                 100, 600000, gql_timeout_ms, "timeout of one GraphQL request"),
    ENRICHER_OPT("DURO_GRAPHQL_MAX_ATTEMPTS", "graphql-max-attempts", DCONF_INT, "5", 1,
                 100, gql_max_attempts,
                 "failures of a request for one id before it is blamed"),
    ENRICHER_OPT("DURO_NOT_FOUND_GRACE_MS", "not-found-grace-ms", DCONF_INT, "2000", 0,
                 600000, not_found_grace_ms,
                 "wait before asking again for a missing resource"),
    DTOPICS_OPTS(struct enricher_config, topics,
                 "create missing topics (raw, DLQ, outputs) at start and on demand"),
    ENRICHER_OPT("DURO_LOG_LEVEL", "log-level", DCONF_LOGLEVEL, "info", 0, 0, log_level,
                 "debug, info, warn or error"),
};
#define ENRICHER_NOPTS (sizeof(enricher_opts) / sizeof(enricher_opts[0]))

static const struct dstartup_prog enricher_prog = {
    "duro-enricher",
    "duro-enricher [options]",
    enricher_opts,
    ENRICHER_NOPTS,
    offsetof(struct enricher_config, log_level),
    offsetof(struct enricher_config, topics),
    0};

static long long enricher_watchdog_ms = 90000;

/* Reads dir/name into a malloc'd string. */
static char *enricher_read_query(const char *dir, const char *name, char *err,
                                 size_t errsize)
{
        char path[4096], why[4400];
        size_t len;
        char *q;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        q = dfile_read(path, 1024 * 1024, &len, NULL, why, sizeof(why));
        if (!q) {
                snprintf(err, errsize, "DURO_QUERIES_DIR=%s: %s", dir, why);
                return NULL;
        }
        if (!len) {
                snprintf(err, errsize, "%s is empty", path);
                free(q);
                return NULL;
        }
        return q;
}

static int enricher_load_queries(struct enricher *e, char *err, size_t errsize)
{
        static const char *const defaults[] = {DURO_QUERIES_INSTALLED,
                                               DURO_QUERIES_SOURCE};
        struct stat st;

        if (!e->cfg.queries_dir) {
                for (size_t i = 0; i < 2 && !e->cfg.queries_dir; i++)
                        if (stat(defaults[i], &st) == 0)
                                e->cfg.queries_dir = strdup(defaults[i]);
                if (!e->cfg.queries_dir) {
                        snprintf(err, errsize,
                                 "DURO_QUERIES_DIR: not set and %s missing",
                                 defaults[0]);
                        return -1;
                }
        }
        e->q_components =
            enricher_read_query(e->cfg.queries_dir, "components.graphql", err, errsize);
        if (!e->q_components)
                return -1;
        e->q_change_orders = enricher_read_query(e->cfg.queries_dir,
                                                 "change_orders.graphql", err, errsize);
        return e->q_change_orders ? 0 : -1;
}

static void enricher_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        struct enricher *e = opaque;

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[256];
                rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, why, sizeof(why));
                dlog_error("fatal Kafka error (%s): %s: %s", rd_kafka_name(rk),
                           rd_kafka_err2name(ferr), why);
                atomic_store(&e->fatal, 1);
                return;
        }
        dlog_warn("%s: %s: %s", rd_kafka_name(rk),
                  rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int enricher_default_ids(struct enricher *e, char *err, size_t errsize)
{
        char host[256], id[600];
        int port = dnet_listen_port(e->cfg.admin_listen);

        if (!e->cfg.transactional_id) {
                if (port == 0) {
                        snprintf(err, errsize,
                                 "DURO_TRANSACTIONAL_ID: required when "
                                 "DURO_ENRICHER_ADMIN_LISTEN has port 0");
                        return -1;
                }
                if (gethostname(host, sizeof(host)))
                        snprintf(host, sizeof(host), "localhost");
                host[sizeof(host) - 1] = '\0';
                snprintf(id, sizeof(id), "%s-%s-%d", e->cfg.group, host, port);
                e->cfg.transactional_id = strdup(id);
        }
        if (!e->cfg.group_instance_id)
                e->cfg.group_instance_id = strdup(e->cfg.transactional_id);
        if (!e->cfg.transactional_id || !e->cfg.group_instance_id) {
                snprintf(err, errsize, "out of memory");
                return -1;
        }
        return 0;
}

int enricher_create_topic(struct enricher *e, const char *topic, long long retention_ms,
                          char *err, size_t errsize)
{
        int created = 0;

        return dtopics_ensure(e->producer, topic, &e->cfg.topics, retention_ms,
                              &created, err, errsize);
}

/* librdkafka prefetches up to 64 MiB of the backlog by default (and the enricher's RSS
 * grew with it: 67 MiB over a 60,000-record backlog, 45 MiB with 2 MiB); 2 MiB keeps
 * the cycle fed as well (same throughput in the benchmark), and the memory bounded
 * whatever the backlog. Overridable like any consumer property. */
static int enricher_bound_prefetch(struct enricher *e, rd_kafka_conf_t *conf, char *err,
                                   size_t errsize)
{
        if (dkafka_props_has(&e->props, DCONF_SCOPE_CONSUMER,
                             "queued.max.messages.kbytes"))
                return 0;
        return dkafka_conf_set(conf, "queued.max.messages.kbytes", "2048", err,
                               errsize);
}

static int enricher_kafka_start(struct enricher *e, char *err, size_t errsize)
{
        rd_kafka_conf_t *pc, *cc, *rc;
        char rderr[512], val[64];
        size_t sz = sizeof(val);
        rd_kafka_error_t *error;
        rd_kafka_topic_partition_list_t *sub;

        pc = dkafka_conf_new(e->cfg.bootstrap, "duro-enricher", &e->props,
                             DCONF_SCOPE_PRODUCER, err, errsize);
        if (!pc)
                return -1;
        if (dkafka_conf_transactional(pc, e->cfg.transactional_id, err, errsize) ||
            (!dkafka_props_has(&e->props, DCONF_SCOPE_PRODUCER, "linger.ms") &&
             dkafka_conf_set(pc, "linger.ms", "5", err, errsize))) {
                rd_kafka_conf_destroy(pc);
                return -1;
        }
        if (rd_kafka_conf_get(pc, "transaction.timeout.ms", val, &sz) ==
            RD_KAFKA_CONF_OK)
                enricher_watchdog_ms = atoll(val) + 30000;
        rd_kafka_conf_set_dr_msg_cb(pc, enricher_dr_cb);
        rd_kafka_conf_set_error_cb(pc, enricher_error_cb);
        rd_kafka_conf_set_opaque(pc, e);
        e->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, rderr, sizeof(rderr));
        if (!e->producer) {
                snprintf(err, errsize, "cannot create the producer: %s", rderr);
                rd_kafka_conf_destroy(pc);
                return -1;
        }
        for (;;) {
                atomic_store(&e->txn_call_since, dtime_mono_ms());
                error = rd_kafka_init_transactions(e->producer, -1);
                atomic_store(&e->txn_call_since, 0);
                if (!error)
                        break;
                if (rd_kafka_error_is_retriable(error) && atomic_load(&e->run)) {
                        dlog_warn("init_transactions: %s; retrying",
                                  rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                        continue;
                }
                snprintf(err, errsize, "init_transactions: %s",
                         rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return -1;
        }
        if (e->cfg.topics.create) {
                static const char *const events[] = {
                    "ITEM_CREATE",         "ITEM_UPDATE",
                    "ITEM_DELETE",         "CO_OPEN",
                    "CO_UPDATE",           "CO_DELETE",
                    "CO_STAGE_TRANSITION", "CO_STAGE_REVIEWER_DECISION",
                    "CO_RESOLUTION"};
                if (enricher_create_topic(e, e->cfg.raw_topic,
                                          e->cfg.topics.raw_retention_ms, err,
                                          errsize) ||
                    enricher_create_topic(e, e->cfg.dlq_topic, 0, err, errsize))
                        return -1;
                for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
                        char *t = enricher_out_topic(e->cfg.topic_template, events[i]);
                        int r   = t ? enricher_create_topic(e, t, 0, err, errsize) : -1;
                        free(t);
                        if (r)
                                return -1;
                }
        }

        cc = dkafka_conf_new(e->cfg.bootstrap, "duro-enricher", &e->props,
                             DCONF_SCOPE_CONSUMER, err, errsize);
        if (!cc)
                return -1;
        if (dkafka_conf_set(cc, "group.id", e->cfg.group, err, errsize) ||
            dkafka_conf_set(cc, "group.instance.id", e->cfg.group_instance_id, err,
                            errsize) ||
            dkafka_conf_set(cc, "isolation.level", "read_committed", err, errsize) ||
            dkafka_conf_set(cc, "enable.auto.commit", "false", err, errsize) ||
            dkafka_conf_set(cc, "enable.auto.offset.store", "false", err, errsize) ||
            dkafka_conf_set(cc, "auto.offset.reset", "earliest", err, errsize) ||
            dkafka_conf_set(cc, "partition.assignment.strategy", "range,roundrobin",
                            err, errsize) ||
            enricher_bound_prefetch(e, cc, err, errsize)) {
                rd_kafka_conf_destroy(cc);
                return -1;
        }
        rd_kafka_conf_set_rebalance_cb(cc, enricher_rebalance_cb);
        rd_kafka_conf_set_error_cb(cc, enricher_error_cb);
        rd_kafka_conf_set_opaque(cc, e);
        e->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, rderr, sizeof(rderr));
        if (!e->consumer) {
                snprintf(err, errsize, "cannot create the consumer: %s", rderr);
                rd_kafka_conf_destroy(cc);
                return -1;
        }
        rd_kafka_poll_set_consumer(e->consumer);

        rc = dkafka_conf_new(e->cfg.bootstrap, "duro-enricher-rebuild", &e->props,
                             DCONF_SCOPE_CONSUMER, err, errsize);
        if (!rc)
                return -1;
        if (dkafka_conf_set(rc, "group.id", e->cfg.group, err, errsize) ||
            dkafka_conf_set(rc, "isolation.level", "read_committed", err, errsize) ||
            dkafka_conf_set(rc, "enable.auto.commit", "false", err, errsize) ||
            dkafka_conf_set(rc, "enable.partition.eof", "true", err, errsize) ||
            dkafka_conf_set(rc, "fetch.wait.max.ms", "10", err, errsize) ||
            enricher_bound_prefetch(e, rc, err, errsize)) {
                rd_kafka_conf_destroy(rc);
                return -1;
        }
        e->reader = rd_kafka_new(RD_KAFKA_CONSUMER, rc, rderr, sizeof(rderr));
        if (!e->reader) {
                snprintf(err, errsize, "cannot create the rebuild reader: %s", rderr);
                rd_kafka_conf_destroy(rc);
                return -1;
        }
        rd_kafka_poll_set_consumer(e->reader);

        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, e->cfg.raw_topic, RD_KAFKA_PARTITION_UA);
        if (rd_kafka_subscribe(e->consumer, sub)) {
                snprintf(err, errsize, "cannot subscribe to %s", e->cfg.raw_topic);
                rd_kafka_topic_partition_list_destroy(sub);
                return -1;
        }
        rd_kafka_topic_partition_list_destroy(sub);
        return 0;
}

/* Exits the process when a transactional call hangs (a known librdkafka issue): the
 * orchestrator restarts it, and init_transactions fences the stuck transaction. */
static void *enricher_watchdog(void *arg)
{
        struct enricher *e = arg;

        while (atomic_load(&e->run)) {
                long long since    = atomic_load(&e->txn_call_since);
                struct timespec ts = {1, 0};
                if (since && dtime_mono_ms() - since > enricher_watchdog_ms) {
                        dlog_error("watchdog: a transactional call has hung for more "
                                   "than %lld ms; exiting",
                                   enricher_watchdog_ms);
                        _exit(3);
                }
                nanosleep(&ts, NULL);
        }
        return NULL;
}

/* Takes SIGTERM/SIGINT (stop) and SIGHUP (re-read the key) for the whole process, so
 * that a batch waiting on the API notices them too. */
static void *enricher_signals(void *arg)
{
        struct enricher *e = arg;
        sigset_t set;
        int sig;

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        while (atomic_load(&e->run) && !sigwait(&set, &sig)) {
                if (sig == SIGHUP) {
                        atomic_store(&e->reload_key, 1);
                        continue;
                }
                dlog_info("received %s: finishing",
                          sig == SIGTERM ? "SIGTERM" : "SIGINT");
                atomic_store(&e->run, 0);
        }
        return NULL;
}

static void enricher_reload_key(struct enricher *e, int force)
{
        char err[300];
        int r = dsecrets_reload(e->api_key, force, err, sizeof(err));

        if (r > 0)
                dlog_info("Duro API key reloaded");
        else if (r < 0)
                dlog_error("Duro API key not reloaded, the previous one stays: %s",
                           err);
}

int main(int argc, char **argv)
{
        static struct enricher e;
        struct dadmin *admin = NULL;
        struct dgql_config gc;
        pthread_t watchdog, sigthread;
        char err[512];
        sigset_t set;
        int exit_code = 0, rc;

        dlog_init("duro-enricher", DLOG_INFO);
        if (argc > 1 && !strcmp(argv[1], "dlq"))
                return cli_dlq_main(argc - 1, argv + 1);
        rc = dstartup_config(&enricher_prog, &e.cfg, argc, argv, &e.props);
        if (rc >= 0)
                return rc;
        if (enricher_default_ids(&e, err, sizeof(err)) ||
            enricher_load_queries(&e, err, sizeof(err))) {
                dlog_error("bad setting: %s", err);
                return 2;
        }
        if (!strstr(e.cfg.topic_template, "{event}")) {
                dlog_error("bad setting: DURO_TOPIC_TEMPLATE=%s: must contain {event}",
                           e.cfg.topic_template);
                return 2;
        }
        e.api_key = dstartup_secrets(&e.cfg.api_key, e.cfg.api_key_file, "DURO_API_KEY",
                                     "DURO_API_KEY_FILE", "Duro API key");
        if (!e.api_key)
                return 2;
        e.window_ms = e.cfg.dedupe_window_s * 1000;
        atomic_store(&e.run, 1);

        dstartup_block_signals(&set);
        json_object_seed(0);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        srand((unsigned)dtime_now_ms());

        memset(&gc, 0, sizeof(gc));
        gc.url          = e.cfg.api_url;
        gc.api_key      = e.api_key;
        gc.organization = e.cfg.api_org;
        gc.library      = e.cfg.api_lib;
        gc.timeout_ms   = (long)e.cfg.gql_timeout_ms;
        gc.concurrency  = (int)e.cfg.gql_concurrency;
        gc.rate_per_s   = (double)e.cfg.gql_rate;
        e.gql           = dgql_new(&gc, err, sizeof(err));
        if (!e.gql) {
                dlog_error("bad setting: DURO_API_URL: %s", err);
                return 2;
        }
        enricher_metrics_init(&e.m);
        admin = dadmin_start(e.cfg.admin_listen, enricher_ready,
                             enricher_metrics_render, &e, err, sizeof(err));
        if (!admin) {
                dlog_error("DURO_ENRICHER_ADMIN_LISTEN: %s", err);
                return 2;
        }
        pthread_create(&watchdog, NULL, enricher_watchdog, &e);
        pthread_create(&sigthread, NULL, enricher_signals, &e);
        if (enricher_kafka_start(&e, err, sizeof(err))) {
                dlog_error("%s", err);
                exit_code = 2;
                goto out;
        }
        dlog_info("running: group %s, transactional.id %s, %s -> %s (DLQ %s), admin on "
                  "port %d, GraphQL %s",
                  e.cfg.group, e.cfg.transactional_id, e.cfg.raw_topic,
                  e.cfg.topic_template, e.cfg.dlq_topic, dadmin_port(admin),
                  e.cfg.api_url);

        while (atomic_load(&e.run)) {
                enricher_reload_key(&e, atomic_exchange(&e.reload_key, 0));
                if (atomic_load(&e.fatal)) {
                        exit_code = 1;
                        break;
                }
                if (enricher_batch_cycle(&e)) {
                        exit_code = 1;
                        break;
                }
                enricher_update_lag(&e);
        }
out:
        atomic_store(&e.run, 0);
        enricher_batch_drop_ahead(&e);
        if (e.consumer) {
                rd_kafka_consumer_close(e.consumer);
                rd_kafka_destroy(e.consumer);
        }
        if (e.reader) {
                rd_kafka_consumer_close(e.reader);
                rd_kafka_destroy(e.reader);
        }
        if (e.producer)
                rd_kafka_destroy(e.producer);
        pthread_join(watchdog, NULL);
        pthread_kill(sigthread, SIGTERM); /* wakes sigwait if still waiting */
        pthread_join(sigthread, NULL);
        dadmin_stop(admin);
        dgql_destroy(e.gql);
        dsecrets_destroy(e.api_key);
        free(e.q_components);
        free(e.q_change_orders);
        for (size_t i = 0; i < e.ntopics; i++)
                free(e.topics[i].topic);
        for (size_t i = 0; i < e.m.nproduced; i++)
                free(e.m.produced[i].topic);
        for (size_t i = 0; i < e.nparts; i++)
                enricher_dedupe_clear(&e.parts[i].dd);
        free(e.parts);
        free(e.force);
        dconf_props_free(&e.props);
        dconf_free(enricher_opts, ENRICHER_NOPTS, &e.cfg);
        curl_global_cleanup();
        rd_kafka_wait_destroyed(5000);
        dlog_info("stopped");
        return exit_code;
}
