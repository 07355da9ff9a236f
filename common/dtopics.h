/* dtopics.h - opt-in topic provisioning (DURO_CREATE_TOPICS): creates missing topics
 * through librdkafka's Admin API with the configured partitions, replication and topic
 * configs. Idempotent: a topic that exists is left as it is. */
#ifndef DTOPICS_H
#define DTOPICS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

struct dtopics_config {
        int partitions;      /* DURO_TOPIC_PARTITIONS */
        int replication;     /* DURO_TOPIC_REPLICATION, -1 = broker default */
        const char *configs; /* DURO_TOPIC_CONFIGS "k=v,k=v" or NULL */
};

/* Checks the "k=v,k=v" syntax. Returns 0 or -1 with why set. */
int dtopics_check_configs(const char *configs, char *why, size_t whysize);

/* Creates topic on the cluster of rk when it is missing. retention_ms > 0 adds
 * retention.ms. Returns 0 (created or already there) or -1 with err set (for a
 * permission problem it says so). */
int dtopics_ensure(rd_kafka_t *rk, const char *topic, const struct dtopics_config *cfg,
                   long long retention_ms, int *created, char *err, size_t errsize);

#endif
