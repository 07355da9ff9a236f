/* dtopics.h - opt-in topic provisioning (DURO_CREATE_TOPICS): creates missing topics
 * through librdkafka's Admin API with the configured partitions, replication and topic
 * configs. Idempotent: a topic that exists is left as it is. */
#ifndef DTOPICS_H
#define DTOPICS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "dconf.h"

/* The provisioning settings both programs share: a member of each program's
 * configuration struct, filled by the table rows DTOPICS_OPTS gives. */
struct dtopics_config {
        int create;                 /* DURO_CREATE_TOPICS */
        long long partitions;       /* DURO_TOPIC_PARTITIONS */
        long long replication;      /* DURO_TOPIC_REPLICATION, -1 = broker default */
        long long raw_retention_ms; /* DURO_RAW_RETENTION_MS, for the raw topic */
        char *configs;              /* DURO_TOPIC_CONFIGS "k=v,k=v" or NULL */
};

/* The dconf table rows of the struct dtopics_config that is member m of the
 * configuration struct type; create_help says what DURO_CREATE_TOPICS creates. */
#define DTOPICS_OPT(env, flag, type_, def, min, max, t, m, field, help)                \
        {                                                                              \
                env, flag, type_, def, min, max, offsetof(t, m.field), 0, help         \
        }
#define DTOPICS_OPTS(t, m, create_help)                                                \
        DTOPICS_OPT("DURO_CREATE_TOPICS", "create-topics", DCONF_BOOL, "false", 0, 0,  \
                    t, m, create, create_help),                                        \
            DTOPICS_OPT("DURO_TOPIC_PARTITIONS", "topic-partitions", DCONF_INT, "12",  \
                        1, 100000, t, m, partitions, "partitions of created topics"),  \
            DTOPICS_OPT("DURO_TOPIC_REPLICATION", "topic-replication", DCONF_INT,      \
                        "-1", -1, 100, t, m, replication,                              \
                        "replication of created topics (-1: broker default)"),         \
            DTOPICS_OPT("DURO_RAW_RETENTION_MS", "raw-retention-ms", DCONF_INT,        \
                        "604800000", 1, INT64_MAX / 2, t, m, raw_retention_ms,         \
                        "retention.ms of a created raw topic"),                        \
            DTOPICS_OPT("DURO_TOPIC_CONFIGS", "topic-configs", DCONF_STRING, NULL, 0,  \
                        0, t, m, configs, "k=v,... topic configs of created topics")

/* Checks the "k=v,k=v" syntax. Returns 0 or -1 with why set. */
int dtopics_check_configs(const char *configs, char *why, size_t whysize);

/* Creates topic on the cluster of rk when it is missing (and logs that it did).
 * retention_ms > 0 adds retention.ms. Returns 0 (created or already there) or -1 with
 * err set (for a permission problem it says so). Blocks up to about 20 s. */
int dtopics_ensure(rd_kafka_t *rk, const char *topic, const struct dtopics_config *cfg,
                   long long retention_ms, int *created, char *err, size_t errsize);

/* What a topic needs beyond the shared settings. */
struct dtopics_spec {
        long long retention_ms; /* > 0: retention.ms */
        int partitions;         /* > 0: instead of DURO_TOPIC_PARTITIONS */
        int compact; /* cleanup.policy=compact (DURO_TOPIC_CONFIGS' is ignored) */
        long long segment_ms; /* > 0: segment.ms */
};

/* dtopics_ensure() with spec. */
int dtopics_ensure_spec(rd_kafka_t *rk, const char *topic,
                        const struct dtopics_config *cfg,
                        const struct dtopics_spec *spec, int *created, char *err,
                        size_t errsize);

/* The partition count of topic (its metadata), or -1 with err saying why (missing, not
 * authorised, no answer). */
int dtopics_partitions(rd_kafka_t *rk, const char *topic, char *err, size_t errsize);

/* Checks that topic exists and is compacted (cleanup.policy holds "compact");
 * *partitions gets its partition count, *max_bytes (when not NULL) its
 * max.message.bytes (-1 when not said). Returns 0, or -1 with err naming the topic and
 * what is wrong (missing, not compacted, not authorised, no answer). Blocks up to about
 * 20 s. */
int dtopics_check_compacted(rd_kafka_t *rk, const char *topic, int *partitions,
                            long long *max_bytes, char *err, size_t errsize);

/* The retention.ms of topic into *ms (-1: kept for ever). Returns 0, or -1 with err
 * naming the topic (also when the broker does not say). Blocks up to about 20 s. */
int dtopics_retention_ms(rd_kafka_t *rk, const char *topic, long long *ms, char *err,
                         size_t errsize);

#endif
