/* bridge_kafka.c - the bridge's idempotent producer and the broker's health: produce
 * without blocking the HTTP thread, hand each delivery report to the request's
 * completion, and probe the broker for /readyz (see bridge.h). */
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkafka.h"
#include "dlog.h"
#include "dtime.h"
#include "dtopics.h"

/* The producer's default linger.ms: each webhook waits for its own ack, so linger adds
 * to every answer; 0.1 ms still lets concurrent requests share a produce request. */
#define BRIDGE_LINGER_MS "0.1"

#define BRIDGE_HEALTH_INTERVAL_MS  1000
#define BRIDGE_METADATA_TIMEOUT_MS 2000

/* The delivery report (the Kafka poll thread): completes the record's request. */
static void bridge_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        struct bridge *br      = opaque;
        struct bridge_req *req = msg->_private;
        (void)rk;

        if (!req)
                return;
        dmetrics_hist_observe_us(
            &br->m.ack_latency,
            (unsigned long long)(dtime_mono_us() - req->produced_us));
        if (msg->err) {
                atomic_fetch_add(&br->m.producer_errors, 1);
                dlog_warn_trace(req->trace_id,
                                "delivery to %s failed: %s (persisted: %d)",
                                br->cfg.raw_topic, rd_kafka_err2str(msg->err),
                                (int)rd_kafka_message_status(msg));
                bridge_req_complete(req, BRIDGE_FAILED, 0, 0,
                                    rd_kafka_err2str(msg->err));
        } else {
                bridge_req_complete(req, BRIDGE_DELIVERED, msg->partition, msg->offset,
                                    NULL);
        }
}

/* librdkafka's errors (the Kafka poll thread): a fatal one makes main exit, and
 * "all brokers down" marks the bridge not ready until the next probe succeeds. */
static void bridge_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        struct bridge *br = opaque;

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char fatal[256];
                rd_kafka_resp_err_t ferr =
                    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                dlog_error("fatal producer error: %s: %s", rd_kafka_err2name(ferr),
                           fatal);
                atomic_store(&br->fatal, 1);
                return;
        }
        if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
                atomic_store(&br->broker_ok, 0);
        dlog_warn("producer: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                  reason);
}

/* The Kafka poll thread: serves the delivery reports and the error callback. */
static void *bridge_poll_main(void *arg)
{
        struct bridge *br = arg;

        while (atomic_load(&br->kafka_run))
                rd_kafka_poll(br->rk, 50);
        return NULL;
}

/* Reads min.insync.replicas of the raw topic through the Admin API. Returns the value,
 * or -1 when it could not be read. */
static int bridge_topic_min_isr(struct bridge *br)
{
        rd_kafka_ConfigResource_t *res =
            rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, br->cfg.raw_topic);
        rd_kafka_queue_t *q = rd_kafka_queue_new(br->rk);
        rd_kafka_AdminOptions_t *opts =
            rd_kafka_AdminOptions_new(br->rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
        rd_kafka_event_t *ev;
        int isr = -1;

        rd_kafka_AdminOptions_set_request_timeout(opts, BRIDGE_METADATA_TIMEOUT_MS,
                                                  NULL, 0);
        rd_kafka_DescribeConfigs(br->rk, &res, 1, opts, q);
        ev = rd_kafka_queue_poll(q, BRIDGE_METADATA_TIMEOUT_MS + 1000);
        if (ev && !rd_kafka_event_error(ev)) {
                const rd_kafka_DescribeConfigs_result_t *r =
                    rd_kafka_event_DescribeConfigs_result(ev);
                size_t nres = 0, ncfg = 0;
                const rd_kafka_ConfigResource_t **rs =
                    r ? rd_kafka_DescribeConfigs_result_resources(r, &nres) : NULL;
                if (rs && nres == 1 && !rd_kafka_ConfigResource_error(rs[0])) {
                        const rd_kafka_ConfigEntry_t **ce =
                            rd_kafka_ConfigResource_configs(rs[0], &ncfg);
                        for (size_t i = 0; i < ncfg; i++) {
                                const char *v = rd_kafka_ConfigEntry_value(ce[i]);
                                if (!strcmp(rd_kafka_ConfigEntry_name(ce[i]),
                                            "min.insync.replicas") &&
                                    v)
                                        isr = atoi(v);
                        }
                }
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_ConfigResource_destroy(res);
        rd_kafka_queue_destroy(q);
        return isr;
}

/* One health probe: a metadata request for the raw topic. */
static void bridge_health_probe(struct bridge *br)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        char reason[200] = "";
        int ok = 0, replicas = -1;

        err = rd_kafka_metadata(br->rk, 0, br->rkt, &md, BRIDGE_METADATA_TIMEOUT_MS);
        if (err) {
                snprintf(reason, sizeof(reason), "Kafka unreachable: %s",
                         rd_kafka_err2str(err));
        } else if (md->topic_cnt != 1 || md->topics[0].err) {
                snprintf(reason, sizeof(reason), "raw topic %s: %s", br->cfg.raw_topic,
                         md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err)
                                            : "no metadata");
        } else if (md->topics[0].partition_cnt < 1) {
                snprintf(reason, sizeof(reason), "raw topic %s has no partitions",
                         br->cfg.raw_topic);
        } else {
                ok       = 1;
                replicas = md->topics[0].partitions[0].replica_cnt;
        }
        if (md)
                rd_kafka_metadata_destroy(md);
        pthread_mutex_lock(&br->health_lock);
        snprintf(br->health_reason, sizeof(br->health_reason), "%s", reason);
        pthread_mutex_unlock(&br->health_lock);
        if (ok != atomic_exchange(&br->broker_ok, ok)) {
                if (ok)
                        dlog_info("Kafka reachable, raw topic %s present",
                                  br->cfg.raw_topic);
                else
                        dlog_warn("not ready: %s", reason);
        }
        if (ok && !br->replication_checked) {
                int isr                 = bridge_topic_min_isr(br);
                br->replication_checked = 1;
                if (replicas < 3 || (isr >= 0 && isr < 2))
                        dlog_warn("raw topic %s has replication factor %d and "
                                  "min.insync.replicas %d: an acknowledged "
                                  "webhook is only as durable as that (want at "
                                  "least 3 and 2)",
                                  br->cfg.raw_topic, replicas, isr);
        }
}

/* The health thread: one probe a second until the producer stops. */
static void *bridge_health_main(void *arg)
{
        struct bridge *br = arg;

        pthread_mutex_lock(&br->health_lock);
        while (atomic_load(&br->kafka_run)) {
                struct timespec ts;
                pthread_mutex_unlock(&br->health_lock);
                bridge_health_probe(br);
                pthread_mutex_lock(&br->health_lock);
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += BRIDGE_HEALTH_INTERVAL_MS / 1000;
                if (atomic_load(&br->kafka_run))
                        pthread_cond_timedwait(&br->health_cond, &br->health_lock, &ts);
        }
        pthread_mutex_unlock(&br->health_lock);
        return NULL;
}

int bridge_kafka_ready(struct bridge *br, char *reason, size_t reasonsize)
{
        if (atomic_load(&br->fatal)) {
                snprintf(reason, reasonsize, "fatal producer error");
                return 0;
        }
        if (!atomic_load(&br->broker_ok)) {
                pthread_mutex_lock(&br->health_lock);
                if (br->health_reason[0])
                        snprintf(reason, reasonsize, "%s", br->health_reason);
                else
                        snprintf(reason, reasonsize,
                                 "no metadata for raw topic %s from Kafka yet",
                                 br->cfg.raw_topic);
                pthread_mutex_unlock(&br->health_lock);
                return 0;
        }
        return 1;
}

int bridge_kafka_produce(struct bridge *br, struct bridge_req *req, const char *key,
                         rd_kafka_headers_t *hdrs, char *why, size_t whysize)
{
        rd_kafka_vu_t vu[7];
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;

        memset(vu, 0, sizeof(vu));
        req->produced_us = dtime_mono_us();
        vu[0].vtype      = RD_KAFKA_VTYPE_RKT;
        vu[0].u.rkt      = br->rkt;
        vu[1].vtype      = RD_KAFKA_VTYPE_PARTITION;
        vu[1].u.i32      = RD_KAFKA_PARTITION_UA;
        vu[2].vtype      = RD_KAFKA_VTYPE_KEY;
        vu[2].u.mem.ptr  = (void *)key;
        vu[2].u.mem.size = strlen(key);
        vu[3].vtype      = RD_KAFKA_VTYPE_VALUE;
        /* An empty body stays an empty value, never a null (tombstone) one. */
        vu[3].u.mem.ptr  = req->body.data ? req->body.data : (void *)"";
        vu[3].u.mem.size = req->body.len;
        vu[4].vtype      = RD_KAFKA_VTYPE_TIMESTAMP;
        vu[4].u.i64      = req->received_ms;
        vu[5].vtype      = RD_KAFKA_VTYPE_HEADERS;
        vu[5].u.headers  = hdrs;
        vu[6].vtype      = RD_KAFKA_VTYPE_OPAQUE;
        vu[6].u.ptr      = req;
        error            = rd_kafka_produceva(br->rk, vu, 7);
        err = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (error)
                rd_kafka_error_destroy(error);
        if (err) {
                atomic_fetch_add(&br->m.producer_errors, 1);
                rd_kafka_headers_destroy(hdrs);
                snprintf(why, whysize, "Kafka produce failed: %s",
                         err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? "producer queue full"
                                                              : rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

/* The producer's configuration: the passthrough properties, then the bridge's own
 * settings where the user gave none. NULL with err set. */
static rd_kafka_conf_t *bridge_kafka_conf(struct bridge *br, char *err, size_t errsize)
{
        const struct dconf_props *props = &br->props;
        rd_kafka_conf_t *conf;
        char num[32];
        long long mto;

        conf = dkafka_conf_new(br->cfg.bootstrap, "duro-bridge", props,
                               DCONF_SCOPE_PRODUCER, err, errsize);
        if (!conf)
                return NULL;
        /* message.timeout.ms stays below the ack timeout, so that the report of a
         * record that cannot be delivered comes back before the request times out. */
        mto = br->cfg.ack_timeout_ms > 2000 ? br->cfg.ack_timeout_ms - 1000
                                            : br->cfg.ack_timeout_ms / 2;
        if (mto < 1)
                mto = 1;
        if (dkafka_props_has(props, DCONF_SCOPE_PRODUCER, "message.timeout.ms") ||
            dkafka_props_has(props, DCONF_SCOPE_PRODUCER, "delivery.timeout.ms")) {
                size_t sz = sizeof(num);
                if (rd_kafka_conf_get(conf, "message.timeout.ms", num, &sz) ==
                        RD_KAFKA_CONF_OK &&
                    atoll(num) >= br->cfg.ack_timeout_ms) {
                        snprintf(err, errsize,
                                 "message.timeout.ms=%s: must be below "
                                 "DURO_BRIDGE_ACK_TIMEOUT_MS (%lld)",
                                 num, br->cfg.ack_timeout_ms);
                        goto fail;
                }
        } else {
                snprintf(num, sizeof(num), "%lld", mto);
                if (dkafka_conf_set(conf, "message.timeout.ms", num, err, errsize))
                        goto fail;
        }
        if (!dkafka_props_has(props, DCONF_SCOPE_PRODUCER, "linger.ms") &&
            !dkafka_props_has(props, DCONF_SCOPE_PRODUCER, "queue.buffering.max.ms") &&
            dkafka_conf_set(conf, "linger.ms", BRIDGE_LINGER_MS, err, errsize))
                goto fail;
        if (!dkafka_props_has(props, DCONF_SCOPE_PRODUCER, "socket.nagle.disable") &&
            dkafka_conf_set(conf, "socket.nagle.disable", "true", err, errsize))
                goto fail;
        if (dkafka_conf_set(conf, "enable.idempotence", "true", err, errsize) ||
            dkafka_conf_set(conf, "acks", "all", err, errsize) ||
            dkafka_conf_set(conf, "partitioner", "murmur2_random", err, errsize))
                goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, bridge_dr_cb);
        rd_kafka_conf_set_error_cb(conf, bridge_error_cb);
        rd_kafka_conf_set_opaque(conf, br);
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

void bridge_kafka_init(struct bridge *br)
{
        pthread_mutex_init(&br->health_lock, NULL);
        pthread_cond_init(&br->health_cond, NULL);
}

void bridge_kafka_destroy(struct bridge *br)
{
        pthread_cond_destroy(&br->health_cond);
        pthread_mutex_destroy(&br->health_lock);
}

/* Tells the poll and health threads to stop. */
static void bridge_kafka_halt(struct bridge *br)
{
        pthread_mutex_lock(&br->health_lock);
        atomic_store(&br->kafka_run, 0);
        pthread_cond_broadcast(&br->health_cond);
        pthread_mutex_unlock(&br->health_lock);
}

int bridge_kafka_start(struct bridge *br, char *err, size_t errsize)
{
        rd_kafka_conf_t *conf = bridge_kafka_conf(br, err, errsize);
        char rderr[512];
        int created = 0, rc;

        if (!conf)
                return -1;
        br->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
        if (!br->rk) {
                snprintf(err, errsize, "cannot create Kafka producer: %s", rderr);
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        if (br->cfg.topics.create &&
            dtopics_ensure(br->rk, br->cfg.raw_topic, &br->cfg.topics,
                           br->cfg.topics.raw_retention_ms, &created, err, errsize))
                goto fail;
        br->rkt = rd_kafka_topic_new(br->rk, br->cfg.raw_topic, NULL);
        if (!br->rkt) {
                snprintf(err, errsize, "raw topic %s: %s", br->cfg.raw_topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
                goto fail;
        }
        atomic_store(&br->kafka_run, 1);
        rc = pthread_create(&br->poll_thread, NULL, bridge_poll_main, br);
        if (!rc) {
                rc = pthread_create(&br->health_thread, NULL, bridge_health_main, br);
                if (rc) {
                        bridge_kafka_halt(br);
                        pthread_join(br->poll_thread, NULL);
                }
        }
        if (rc) {
                snprintf(err, errsize, "cannot start threads: %s", strerror(rc));
                rd_kafka_topic_destroy(br->rkt);
                goto fail;
        }
        return 0;
fail:
        rd_kafka_destroy(br->rk);
        br->rk  = NULL;
        br->rkt = NULL;
        return -1;
}

void bridge_kafka_stop(struct bridge *br)
{
        if (!br->rk)
                return;
        /* The poll thread keeps serving reports while flush waits. */
        if (rd_kafka_flush(br->rk, 5000))
                dlog_warn("%d records still unacknowledged at exit",
                          rd_kafka_outq_len(br->rk));
        bridge_kafka_halt(br);
        pthread_join(br->health_thread, NULL);
        pthread_join(br->poll_thread, NULL);
        /* Any report still queued releases its request here. */
        rd_kafka_poll(br->rk, 0);
        if (rd_kafka_outq_len(br->rk))
                rd_kafka_purge(br->rk,
                               RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(br->rk, 0);
        rd_kafka_topic_destroy(br->rkt);
        rd_kafka_destroy(br->rk);
        br->rk = NULL;
}

int bridge_kafka_queue_depth(struct bridge *br)
{
        return br->rk ? rd_kafka_outq_len(br->rk) : 0;
}
