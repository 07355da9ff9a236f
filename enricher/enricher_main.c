/* enricher_main.c - duro-enricher's start-up (the settings table, the API key, the
 * GraphQL queries, the transactional producer, the consumer group), the loop of batch
 * cycles, the signal thread (SIGHUP re-reads the API key file), the watchdog thread
 * on hung Kafka calls (transactional calls, and closing the clients at shutdown), and
 * shutdown. */
#include "enricher.h"

#include <curl/curl.h>
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
#include "dce.h"
#include "dschema.h"
#include "dkafka.h"
#include "dlog.h"
#include "dnet.h"
#include "dstartup.h"
#include "dtime.h"

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
    ENRICHER_OPT("DURO_ASSIGNMENT", "assignment", DCONF_STRING, "eager", 0, 0,
                 assignment,
                 "the group's rebalance protocol: eager (range,roundrobin), "
                 "cooperative (cooperative-sticky, librdkafka 2.10+) or consumer "
                 "(KIP-848, librdkafka 2.12+); every member of the group the same"),
    ENRICHER_OPT("DURO_TRANSACTIONAL_ID", "transactional-id", DCONF_STRING, NULL, 0, 0,
                 transactional_id,
                 "transactional.id (default <group>-<host name>-<admin port>)"),
    ENRICHER_OPT("DURO_GROUP_INSTANCE_ID", "group-instance-id", DCONF_STRING, NULL, 0,
                 0, group_instance_id,
                 "static group membership id (default: the transactional.id; none "
                 "under DURO_ASSIGNMENT=consumer)"),
    ENRICHER_OPT("DURO_TOPIC_TEMPLATE", "topic-template", DCONF_STRING,
                 "duro.events.{event}", 0, 0, topic_template,
                 "output topic; {event} is the event name in lower case"),
    ENRICHER_OPT("DURO_CLOUDEVENTS", "cloudevents", DCONF_BOOL, "true", 0, 0,
                 cloudevents,
                 "CloudEvents headers (binary mode, ce_*) on output, state and DLQ "
                 "records"),
    ENRICHER_OPT("DURO_CE_SOURCE", "ce-source", DCONF_STRING, NULL, 0, 0, ce_source,
                 "ce_source of every record (default: the API URL's scheme and host, "
                 "/webhooks/<webhook id>)"),
    ENRICHER_OPT(
        "DURO_STATE_TOPICS", "state-topics", DCONF_BOOL, "true", 0, 0, state_topics,
        "write the state topics (compacted: each resource's current document)"),
    ENRICHER_OPT("DURO_STATE_TOPIC_TEMPLATE", "state-topic-template", DCONF_STRING,
                 "duro.state.{kind}", 0, 0, state_template,
                 "state topic; {kind} is item or change_order"),
    ENRICHER_OPT("DURO_PROGRESS_TOPIC", "progress-topic", DCONF_STRING,
                 "duro.enricher.progress", 0, 0, progress_topic,
                 "progress topic (compacted, one partition): where to resume when the "
                 "committed offsets expired"),
    ENRICHER_OPT(
        "DURO_PROGRESS_IGNORE", "progress-ignore", DCONF_BOOL, "false", 0, 0,
        progress_ignore,
        "a partition without a committed offset starts over from the beginning "
        "even when the progress topic knows better (a deliberate reset)"),
    ENRICHER_OPT("DURO_QUERIES_DIR", "queries-dir", DCONF_STRING, NULL, 0, 0,
                 queries_dir, "folder of the GraphQL queries (default: installed)"),
    ENRICHER_OPT("DURO_EVENT_TABLE", "event-table", DCONF_STRING, NULL, 0, 0,
                 event_table,
                 "event table file: each event's resource kind, id fields, "
                 "deletes and shared topic (default: installed)"),
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

static int enricher_load_queries(struct enricher *e, char *err, size_t errsize)
{
        if (!e->cfg.queries_dir) {
                const char *dir = dschema_queries_dir();
                if (!dir) {
                        snprintf(err, errsize,
                                 "DURO_QUERIES_DIR: not set and no installed "
                                 "GraphQL documents found");
                        return -1;
                }
                e->cfg.queries_dir = strdup(dir);
                if (!e->cfg.queries_dir) {
                        snprintf(err, errsize, "out of memory");
                        return -1;
                }
        }
        static const char *const vars[] = {"ids", "after", NULL};

        e->q_components = dschema_read_query(e->cfg.queries_dir, "components.graphql",
                                             vars, &e->q_components_op, err, errsize);
        if (!e->q_components)
                return -1;
        e->q_change_orders =
            dschema_read_query(e->cfg.queries_dir, "change_orders.graphql", vars,
                               &e->q_change_orders_op, err, errsize);
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
        /* Static membership by default, but under KIP-848's protocol: there a member
         * killed without leaving keeps its instance id until its session expires, and
         * its restart is refused (UNRELEASED_INSTANCE_ID, fatal) until then. */
        if (!e->cfg.group_instance_id && strcmp(e->cfg.assignment, "consumer"))
                e->cfg.group_instance_id = strdup(e->cfg.transactional_id);
        if (!e->cfg.transactional_id ||
            (!e->cfg.group_instance_id && strcmp(e->cfg.assignment, "consumer"))) {
                snprintf(err, errsize, "out of memory");
                return -1;
        }
        return 0;
}

/* The group member: librdkafka prefetches up to 64 MiB of the backlog by default, and
 * the enricher's memory grew with it; 2 MiB keeps the cycle fed as well
 * (docs/benchmarks.md) and the memory bounded whatever the backlog.
 * The rebuild reader: librdkafka 2.0.2 stops fetching for a whole second once the
 * prefetch queue passes either bound, so a reader slower than the broker gets one
 * queue's worth a second (2 MiB: 15 k records/s); its bounds hold more than a second
 * of reading (about 150 MiB at most, only while a rebuild reads).
 * Either is overridable like any consumer property. */
static int enricher_bound_prefetch(struct enricher *e, rd_kafka_conf_t *conf,
                                   int member, char *err, size_t errsize)
{
        if (!dkafka_props_has(&e->props, DCONF_SCOPE_CONSUMER,
                              "queued.max.messages.kbytes") &&
            dkafka_conf_set(conf, "queued.max.messages.kbytes",
                            member ? "2048" : "153600", err, errsize))
                return -1;
        if (member ||
            dkafka_props_has(&e->props, DCONF_SCOPE_CONSUMER, "queued.min.messages"))
                return 0;
        return dkafka_conf_set(conf, "queued.min.messages", "1000000", err, errsize);
}

/* The client of type made from conf (which it takes), with e as its callbacks'
 * opaque; NULL with err set ("cannot create the <what>: ..."). */
static rd_kafka_t *enricher_kafka_new(struct enricher *e, rd_kafka_type_t type,
                                      rd_kafka_conf_t *conf, const char *what,
                                      char *err, size_t errsize)
{
        char rderr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set_opaque(conf, e);
        rk = rd_kafka_new(type, conf, rderr, sizeof(rderr));
        if (!rk) {
                snprintf(err, errsize, "cannot create the %s: %s", what, rderr);
                rd_kafka_conf_destroy(conf);
        }
        return rk;
}

/* The transactional producer, its transactions initialised, and the topics created
 * when provisioning is on. */
static int enricher_producer_start(struct enricher *e, char *err, size_t errsize)
{
        char val[64];
        size_t sz = sizeof(val);
        rd_kafka_conf_t *pc;

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
        rd_kafka_conf_set_dr_msg_cb(pc, enricher_txn_dr_cb);
        rd_kafka_conf_set_error_cb(pc, enricher_error_cb);
        e->producer =
            enricher_kafka_new(e, RD_KAFKA_PRODUCER, pc, "producer", err, errsize);
        if (!e->producer || enricher_txn_init(e, err, errsize))
                return -1;
        if (enricher_topics_create_all(e, err, errsize))
                return -1;
        return enricher_state_start(e, err, errsize);
}

/* A consumer: client_id, the n properties kv, the prefetch bound, and, for the group
 * member, the rebalance and error callbacks. NULL with err set. */
static rd_kafka_t *enricher_consumer_new(struct enricher *e, const char *client_id,
                                         const char *const (*kv)[2], size_t n,
                                         int member, const char *what, char *err,
                                         size_t errsize)
{
        rd_kafka_conf_t *conf = dkafka_conf_new(e->cfg.bootstrap, client_id, &e->props,
                                                DCONF_SCOPE_CONSUMER, err, errsize);
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (kv[i][1] && /* NULL: left to librdkafka */
                    dkafka_conf_set(conf, kv[i][0], kv[i][1], err, errsize)) {
                        rd_kafka_conf_destroy(conf);
                        return NULL;
                }
        if (enricher_bound_prefetch(e, conf, member, err, errsize)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (member) {
                rd_kafka_conf_set_rebalance_cb(conf, enricher_parts_rebalance_cb);
                rd_kafka_conf_set_error_cb(conf, enricher_error_cb);
        }
        rk = enricher_kafka_new(e, RD_KAFKA_CONSUMER, conf, what, err, errsize);
        if (rk)
                rd_kafka_poll_set_consumer(rk);
        return rk;
}

/* The group member (subscribed once the reader exists too), and the assign-only
 * consumer the dedupe rebuilds read the raw partitions with. */
static int enricher_consumers_start(struct enricher *e, char *err, size_t errsize)
{
        const char *const member[][2] = {
            {"group.id", e->cfg.group},
            {"group.instance.id", e->cfg.group_instance_id},
            {"isolation.level", "read_committed"},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"auto.offset.reset", "earliest"},
            /* the protocol's own: DURO_ASSIGNMENT (enricher_assignment_check); the
             * classic one named where librdkafka knows group.protocol (2.4), since
             * its default is to change */
            {"group.protocol", e->protocol_consumer               ? "consumer"
                               : rd_kafka_version() >= 0x02040000 ? "classic"
                                                                  : NULL},
            {"partition.assignment.strategy", e->protocol_consumer ? NULL
                                              : e->incremental ? "cooperative-sticky"
                                                               : "range,roundrobin"},
        };
        const char *const reader[][2] = {
            {"group.id", e->cfg.group},
            {"isolation.level", "read_committed"},
            {"enable.auto.commit", "false"},
            {"enable.partition.eof", "true"},
            {"fetch.wait.max.ms", "10"},
            /* an offset retention deleted meanwhile: what is left, never the end */
            {"auto.offset.reset", "earliest"},
        };

        e->consumer = enricher_consumer_new(e, "duro-enricher", member,
                                            sizeof(member) / sizeof(member[0]), 1,
                                            "consumer", err, errsize);
        if (!e->consumer)
                return -1;
        e->reader = enricher_consumer_new(e, "duro-enricher-rebuild", reader,
                                          sizeof(reader) / sizeof(reader[0]), 0,
                                          "rebuild reader", err, errsize);
        return e->reader ? 0 : -1;
}

/* The three clients, then the subscription to the raw topic. */
static int enricher_kafka_start(struct enricher *e, char *err, size_t errsize)
{
        rd_kafka_topic_partition_list_t *sub;
        int rc;

        if (enricher_producer_start(e, err, errsize) ||
            enricher_consumers_start(e, err, errsize))
                return -1;
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, e->cfg.raw_topic, RD_KAFKA_PARTITION_UA);
        rc = rd_kafka_subscribe(e->consumer, sub) ? -1 : 0;
        if (rc)
                snprintf(err, errsize, "cannot subscribe to %s", e->cfg.raw_topic);
        rd_kafka_topic_partition_list_destroy(sub);
        return rc;
}

/* Exits the process when a Kafka call hangs (a known librdkafka issue), also after
 * SIGTERM (a commit, an abort or closing the consumer): the orchestrator restarts it,
 * and init_transactions fences the stuck transaction. Runs until every client is
 * closed. */
static void *enricher_watchdog(void *arg)
{
        struct enricher *e = arg;

        while (!atomic_load(&e->closed)) {
                long long since    = atomic_load(&e->kafka_call_since);
                struct timespec ts = {0, 200 * 1000000};
                if (since && dtime_mono_ms() - since > enricher_watchdog_ms) {
                        dlog_error("watchdog: a Kafka call has hung for more than %lld "
                                   "ms%s; exiting",
                                   enricher_watchdog_ms,
                                   atomic_load(&e->run) ? "" : " (shutting down)");
                        _exit(3);
                }
                nanosleep(&ts, NULL);
        }
        return NULL;
}

/* Closes (when consumer) and destroys rk with the watchdog armed. */
static void enricher_close_client(struct enricher *e, rd_kafka_t *rk, int consumer)
{
        if (!rk)
                return;
        atomic_store(&e->kafka_call_since, dtime_mono_ms());
        if (consumer)
                rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        atomic_store(&e->kafka_call_since, 0);
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

/* DURO_ASSIGNMENT, against the librdkafka found at run time (not the one compiled
 * against): cooperative needs 2.10 (commits during a cooperative rebalance kept the
 * assignment only from then on), consumer 2.12 (KIP-848 GA), which also refuses the
 * classic protocol's properties. Returns 0 or -1 (logged). */
static int enricher_assignment_check(struct enricher *e)
{
        static const struct {
                const char *name;
                int incremental;
                int min_version; /* rd_kafka_version() */
                const char *min_name;
        } modes[] = {
            {"eager", 0, 0, ""},
            {"cooperative", 1, 0x020a0000, "2.10"},
            {"consumer", 1, 0x020c0000, "2.12"},
        };
        static const char *const classic_only[] = {
            "partition.assignment.strategy", "session.timeout.ms",
            "heartbeat.interval.ms", "group.protocol.type"};

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                if (strcmp(e->cfg.assignment, modes[i].name))
                        continue;
                if (rd_kafka_version() < modes[i].min_version) {
                        dlog_error(
                            "bad setting: DURO_ASSIGNMENT=%s needs librdkafka %s "
                            "or later; this one is %s",
                            modes[i].name, modes[i].min_name, rd_kafka_version_str());
                        return -1;
                }
                e->incremental       = modes[i].incremental;
                e->protocol_consumer = !strcmp(modes[i].name, "consumer");
                for (size_t k = 0; e->protocol_consumer &&
                                   k < sizeof(classic_only) / sizeof(classic_only[0]);
                     k++)
                        if (dkafka_props_has(&e->props, DCONF_SCOPE_CONSUMER,
                                             classic_only[k])) {
                                dlog_error("bad setting: %s: not with "
                                           "DURO_ASSIGNMENT=consumer (the broker's "
                                           "group.consumer.* settings govern)",
                                           classic_only[k]);
                                return -1;
                        }
                return 0;
        }
        dlog_error("bad setting: DURO_ASSIGNMENT=%s: eager, cooperative or consumer",
                   e->cfg.assignment);
        return -1;
}

/* The CloudEvents source: DURO_CE_SOURCE, a URI reference (no blank or control
 * character), or the default's base from DURO_API_URL. Returns 0 or -1 (logged). */
static int enricher_ce_check(struct enricher *e)
{
        const char *s = e->cfg.ce_source;

        if (s) {
                for (const unsigned char *c = (const unsigned char *)s; *c; c++)
                        if (*c <= 0x20 || *c == 0x7f) {
                                dlog_error("bad setting: DURO_CE_SOURCE: a URI "
                                           "reference has no blank or control "
                                           "character");
                                return -1;
                        }
                if (!*s) {
                        dlog_error("bad setting: DURO_CE_SOURCE: empty");
                        return -1;
                }
        }
        e->ce_base = dce_source_base(e->cfg.api_url);
        if (!e->ce_base && !s) {
                dlog_error("bad setting: DURO_API_URL=%s: no scheme://host for the "
                           "CloudEvents source (or set DURO_CE_SOURCE)",
                           e->cfg.api_url);
                return -1;
        }
        return 0;
}

/* The start-up steps before any thread: the settings, the ids, the queries, the API
 * key. Returns -1 to go on, or the exit status. */
static int enricher_configure(struct enricher *e, int argc, char **argv)
{
        char err[900];
        int rc = dstartup_config(&enricher_prog, &e->cfg, argc, argv, &e->props);

        if (rc >= 0)
                return rc;
        if (enricher_default_ids(e, err, sizeof(err)) ||
            enricher_load_queries(e, err, sizeof(err)) ||
            devtable_load(&e->events, e->cfg.event_table, err, sizeof(err))) {
                dlog_error("bad setting: %s", err);
                return 2;
        }
        if (e->cfg.state_topics && !strstr(e->cfg.state_template, "{kind}")) {
                dlog_error(
                    "bad setting: DURO_STATE_TOPIC_TEMPLATE=%s: must contain {kind}",
                    e->cfg.state_template);
                return 2;
        }
        if (!strstr(e->cfg.topic_template, "{event}")) {
                dlog_error("bad setting: DURO_TOPIC_TEMPLATE=%s: must contain {event}",
                           e->cfg.topic_template);
                return 2;
        }
        if (enricher_ce_check(e) || enricher_assignment_check(e))
                return 2;
        e->api_key =
            dstartup_secrets(&e->cfg.api_key, e->cfg.api_key_file, "DURO_API_KEY",
                             "DURO_API_KEY_FILE", "Duro API key");
        if (!e->api_key)
                return 2;
        e->window_ms = e->cfg.dedupe_window_s * 1000;
        return -1;
}

/* The GraphQL client. Returns 0 or -1 (logged). */
static int enricher_gql_start(struct enricher *e)
{
        struct dgql_config gc;
        char err[512];

        memset(&gc, 0, sizeof(gc));
        gc.url          = e->cfg.api_url;
        gc.api_key      = e->api_key;
        gc.organization = e->cfg.api_org;
        gc.library      = e->cfg.api_lib;
        gc.timeout_ms   = (long)e->cfg.gql_timeout_ms;
        gc.concurrency  = (int)e->cfg.gql_concurrency;
        gc.rate_per_s   = (double)e->cfg.gql_rate;
        e->gql          = dgql_new(&gc, err, sizeof(err));
        if (!e->gql) {
                dlog_error("bad setting: DURO_API_URL: %s", err);
                return -1;
        }
        return 0;
}

/* Batch cycles until told to stop. Returns the exit status. */
static int enricher_loop(struct enricher *e)
{
        while (atomic_load(&e->run)) {
                enricher_reload_key(e, atomic_exchange(&e->reload_key, 0));
                if (atomic_load(&e->fatal) || enricher_cycle_run(e))
                        return 1;
                enricher_parts_update_lag(e);
        }
        return 0;
}

/* Shutdown: the batch taken ahead dropped, the clients closed, the threads joined,
 * everything freed. */
static void enricher_stop(struct enricher *e, struct dadmin *admin, pthread_t watchdog,
                          pthread_t sigthread)
{
        atomic_store(&e->run, 0);
        enricher_cycle_drop_ahead(e);
        enricher_close_client(e, e->consumer, 1);
        if (e->reader)
                enricher_rebuild_stop(e);
        enricher_close_client(e, e->reader, 1);
        enricher_close_client(e, e->producer, 0);
        atomic_store(&e->closed, 1);
        pthread_join(watchdog, NULL);
        pthread_kill(sigthread, SIGTERM); /* wakes sigwait if still waiting */
        pthread_join(sigthread, NULL);
        dadmin_stop(admin);
        enricher_ready_destroy(&e->ready);
        enricher_metrics_destroy(&e->m);
        dgql_destroy(e->gql);
        dsecrets_destroy(e->api_key);
        free(e->q_components);
        free(e->q_change_orders);
        free(e->q_components_op);
        free(e->q_change_orders_op);
        devtable_free(&e->events);
        free(e->ce_base);
        enricher_state_free(e);
        enricher_topics_free(e);
        enricher_parts_clear(e);
        enricher_txn_destroy(e);
        dconf_props_free(&e->props);
        dconf_free(enricher_opts, ENRICHER_NOPTS, &e->cfg);
        curl_global_cleanup();
        rd_kafka_wait_destroyed(5000);
        dlog_info("stopped");
}

int main(int argc, char **argv)
{
        static struct enricher e;
        struct dadmin *admin;
        pthread_t watchdog, sigthread;
        char err[512];
        sigset_t set;
        int exit_code, rc;

        dlog_init("duro-enricher", DLOG_INFO);
        if (argc > 1 && !strcmp(argv[1], "dlq"))
                return cli_dlq_main(argc - 1, argv + 1);
        if (argc > 1 && !strcmp(argv[1], "snapshot"))
                return cli_snapshot_main(argc - 1, argv + 1);
        if (argc > 1 && !strcmp(argv[1], "reconcile"))
                return cli_reconcile_main(argc - 1, argv + 1);
        if ((rc = enricher_configure(&e, argc, argv)) >= 0)
                return rc;
        atomic_store(&e.run, 1);
        e.reading = -1;

        dstartup_block_signals(&set);
        json_object_seed(0);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        srand((unsigned)dtime_now_ms());
        if (enricher_gql_start(&e))
                return 2;
        enricher_metrics_init(&e.m);
        enricher_ready_init(&e.ready);
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
        } else {
                dlog_info("running: group %s (%s assignment), transactional.id %s, "
                          "%s -> %s (DLQ %s), admin on port %d, GraphQL %s; "
                          "librdkafka %s",
                          e.cfg.group, e.cfg.assignment, e.cfg.transactional_id,
                          e.cfg.raw_topic, e.cfg.topic_template, e.cfg.dlq_topic,
                          dadmin_port(admin), e.cfg.api_url, rd_kafka_version_str());
                exit_code = enricher_loop(&e);
        }
        enricher_stop(&e, admin, watchdog, sigthread);
        return exit_code;
}
