/* dkafka.h - librdkafka set-up shared by both programs: configuration objects built
 * from KAFKA_BOOTSTRAP_SERVERS and the passthrough properties (with the guarantee-
 * breaking ones refused), and librdkafka's log routed into dlog. */
#ifndef DKAFKA_H
#define DKAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "dconf.h"

/* Checks the passthrough properties: refuses the guarantee-breaking ones and secret
 * properties given with -X. Returns 0 or -1 with a one-line err naming it. */
int dkafka_check_props(const struct dconf_props *props, char *err, size_t errsize);

/* 1 when the property holds a secret (a password, a key, a client secret). */
int dkafka_prop_is_secret(const char *name);

/* Sets name=value on conf. On failure err names the property and, unless it is a
 * secret, the value. Returns 0 or -1. */
int dkafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *err, size_t errsize);

/* New configuration: bootstrap.servers, client.id, the log callback, then every
 * passthrough property whose scope is DCONF_SCOPE_ALL or scope. Returns NULL with err
 * set when a property is rejected by librdkafka. The caller owns the result. */
rd_kafka_conf_t *dkafka_conf_new(const char *bootstrap, const char *client_id,
                                 const struct dconf_props *props,
                                 enum dconf_scope scope, char *err, size_t errsize);

/* 1 when the user gave this property (any scope that applies). */
int dkafka_props_has(const struct dconf_props *props, enum dconf_scope scope,
                     const char *name);

/* Copies the last header called name of m into buf (NUL-terminated, truncated to
 * fit). Returns buf, or NULL (buf = "") when m has no such header. */
const char *dkafka_header(const rd_kafka_message_t *m, const char *name, char *buf,
                          size_t size);

/* Sets what every transactional producer of the project needs to write exactly once:
 * transactional.id, enable.idempotence, acks=all, partitioner murmur2_random (the
 * Java client's, so keys land where Kafka Streams expects them) and
 * allow.auto.create.topics=false. Returns 0 or -1 with err set. */
int dkafka_conf_transactional(rd_kafka_conf_t *conf, const char *transactional_id,
                              char *err, size_t errsize);

/* One record to produce, as rd_kafka_produceva() takes it. */
struct dkafka_rec {
        const char *topic;
        const void *key; /* NULL: no key */
        size_t key_len;
        void *value; /* NULL: a null value (a tombstone) */
        size_t value_len;
        rd_kafka_headers_t *headers; /* librdkafka takes them when the call succeeds */
        void *opaque;                /* the delivery report's msg->_private */
        int msgflags;                /* RD_KAFKA_MSG_F_COPY or RD_KAFKA_MSG_F_FREE */
};

/* Produces r. While librdkafka's queue is full it serves rk's delivery reports
 * (rd_kafka_poll, so call it from the thread that may run them) and tries again, for
 * up to wait_ms in all (-1: for as long as it takes; 0: once). Returns 0, or the
 * error, in which case the headers (and a value with F_FREE) are still the
 * caller's. */
rd_kafka_resp_err_t dkafka_produce(rd_kafka_t *rk, const struct dkafka_rec *r,
                                   long wait_ms);

#endif
