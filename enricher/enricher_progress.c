/* enricher_progress.c - reading the progress topic (duro.enricher.progress): where
 * to resume a raw partition whose committed offset is gone (committed offsets expire
 * offsets.retention.minutes after the group became empty). Every transaction writes,
 * per raw partition, the next offset and the last record's timestamp there
 * (enricher_txn.c); this reads the latest record of each key of ours, read_committed,
 * with a short-lived consumer of its own. Committed offsets always win: this is
 * asked only for partitions that have none. */
#include "enricher.h"

#include <stdio.h>
#include <string.h>

#include "dkafka.h"
#include "dlog.h"
#include "dtime.h"
#include "dwire.h"

#define PROGRESS_READ_MS 30000 /* the whole read, at most */

/* The partition a progress key of ours names, or -1 when the key is not ours. */
static int32_t progress_partition(const struct enricher *e, const void *key, size_t len)
{
        size_t g = strlen(e->cfg.group), t = strlen(e->cfg.raw_topic);
        const char *k = key;
        char num[16];
        char *end;
        long p;

        if (!key || len <= g + t + 2 || memcmp(k, e->cfg.group, g) || k[g] != ':' ||
            memcmp(k + g + 1, e->cfg.raw_topic, t) || k[g + 1 + t] != ':' ||
            len - (g + t + 2) >= sizeof(num))
                return -1;
        memcpy(num, k + g + t + 2, len - (g + t + 2));
        num[len - (g + t + 2)] = '\0';
        p                      = strtol(num, &end, 10);
        return *end || end == num || p < 0 || p > INT32_MAX ? -1 : (int32_t)p;
}

/* A consumer of the progress topic's one partition, from its start. */
static rd_kafka_t *progress_consumer(struct enricher *e, char *err, size_t errsize)
{
        static const char *const kv[][2] = {{"isolation.level", "read_committed"},
                                            {"enable.auto.commit", "false"},
                                            {"enable.partition.eof", "true"},
                                            {"auto.offset.reset", "earliest"}};
        rd_kafka_conf_t *conf =
            dkafka_conf_new(e->cfg.bootstrap, "duro-enricher-progress", &e->props,
                            DCONF_SCOPE_CONSUMER, err, errsize);
        rd_kafka_topic_partition_list_t *l;
        char rderr[256], group[600];
        rd_kafka_t *rk;

        if (!conf)
                return NULL;

        /* librdkafka wants a group for assign(); this one never joins or commits */
        snprintf(group, sizeof(group), "%s", e->cfg.group); /* as the dedupe reader's */
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
                if (dkafka_conf_set(conf, kv[i][0], kv[i][1], err, errsize)) {
                        rd_kafka_conf_destroy(conf);
                        return NULL;
                }
        if (dkafka_conf_set(conf, "group.id", group, err, errsize)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
        if (!rk) {
                snprintf(err, errsize, "progress reader: %s", rderr);
                return NULL;
        }
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, e->cfg.progress_topic, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_assign(rk, l)) {
                snprintf(err, errsize, "progress reader: cannot read %s",
                         e->cfg.progress_topic);
                rd_kafka_topic_partition_list_destroy(l);
                rd_kafka_destroy(rk);
                return NULL;
        }
        rd_kafka_topic_partition_list_destroy(l);
        return rk;
}

int enricher_progress_read(struct enricher *e, const int32_t *parts, size_t n,
                           int64_t *next, int64_t *last_ts)
{
        int64_t deadline = dtime_mono_ms() + PROGRESS_READ_MS;
        size_t records = 0, found = 0;
        char err[400];
        rd_kafka_t *rk;
        int rc = -1;

        for (size_t i = 0; i < n; i++)
                next[i] = last_ts[i] = -1;
        if (!(rk = progress_consumer(e, err, sizeof(err)))) {
                dlog_warn("%s", err);
                return -1;
        }
        while (dtime_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                int32_t p;
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_message_destroy(m);
                        rc = 0;
                        break;
                }
                if (m->err) { /* transient ones pass; the deadline bounds the rest */
                        dlog_warn("progress reader: %s", rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        continue;
                }
                records++;
                p = progress_partition(e, m->key, m->key_len);
                for (size_t i = 0; p >= 0 && i < n; i++) {
                        int64_t nx, ts;
                        if (parts[i] != p)
                                continue;
                        if (!m->payload) { /* a tombstone: forgotten */
                                next[i] = last_ts[i] = -1;
                        } else if (!dwire_progress_parse(m->payload, m->len, &nx,
                                                         &ts)) {
                                next[i]    = nx;
                                last_ts[i] = ts;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        if (rc)
                dlog_warn("progress reader: %s not read to its end within %d s",
                          e->cfg.progress_topic, PROGRESS_READ_MS / 1000);
        for (size_t i = 0; i < n; i++)
                found += next[i] >= 0;
        dlog_info("progress topic %s read: %zu records, %zu of %zu partitions found",
                  e->cfg.progress_topic, records, found, n);
        return rc;
}
