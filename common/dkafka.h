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

#endif
