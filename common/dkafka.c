/* dkafka.c - librdkafka configuration and logging (see dkafka.h). */
#include "dkafka.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "dlog.h"
#include "dtime.h"

/* Properties that would break the delivery guarantees, with aliases. */
static const char *const dkafka_refused[] = {
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "isolation.level",
    "enable.auto.commit",
    "transactional.id",
    "partitioner",
    "allow.auto.create.topics",
    "enable.auto.offset.store",
    "enable.gapless.guarantee",
    "partition.assignment.strategy",
    "group.id",
    "group.instance.id",
    NULL,
};

int dkafka_prop_is_secret(const char *name)
{
        return strstr(name, "password") || strstr(name, "secret") ||
               !strcmp(name, "ssl.key.pem") || !strcmp(name, "ssl_key") ||
               !strcmp(name, "sasl.oauthbearer.config") ||
               !strcmp(name, "sasl.oauthbearer.extensions");
}

int dkafka_check_props(const struct dconf_props *props, char *err, size_t errsize)
{
        for (size_t i = 0; i < props->n; i++) {
                const struct dconf_prop *p = &props->v[i];
                for (const char *const *r = dkafka_refused; *r; r++) {
                        if (!strcmp(p->name, *r)) {
                                snprintf(err, errsize,
                                         "%s %s: refused, the bridge sets it to "
                                         "keep its delivery guarantees",
                                         p->origin, p->name);
                                return -1;
                        }
                }
                if (p->from_flag && dkafka_prop_is_secret(p->name)) {
                        snprintf(err, errsize,
                                 "-X %s: secret properties are refused on the "
                                 "command line; use DURO_RDKAFKA_%s",
                                 p->name, "<PROP> in the environment");
                        return -1;
                }
        }
        return 0;
}

int dkafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *err, size_t errsize)
{
        char rderr[256];

        if (rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        if (dkafka_prop_is_secret(name))
                snprintf(err, errsize, "librdkafka property %s: rejected", name);
        else
                snprintf(err, errsize, "librdkafka property %s=%s: %s", name, value,
                         rderr);
        return -1;
}

static void dkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                          const char *buf)
{
        enum dlog_level l = level <= LOG_ERR       ? DLOG_ERROR
                            : level <= LOG_WARNING ? DLOG_WARN
                            : level <= LOG_INFO    ? DLOG_INFO
                                                   : DLOG_DEBUG;
        DLOG(l, "librdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int dkafka_props_has(const struct dconf_props *props, enum dconf_scope scope,
                     const char *name)
{
        for (size_t i = 0; i < props->n; i++)
                if ((props->v[i].scope == DCONF_SCOPE_ALL ||
                     props->v[i].scope == scope) &&
                    !strcmp(props->v[i].name, name))
                        return 1;
        return 0;
}

rd_kafka_conf_t *dkafka_conf_new(const char *bootstrap, const char *client_id,
                                 const struct dconf_props *props,
                                 enum dconf_scope scope, char *err, size_t errsize)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        rd_kafka_conf_set_log_cb(conf, dkafka_log_cb);
        if (dkafka_conf_set(conf, "bootstrap.servers", bootstrap, err, errsize) ||
            dkafka_conf_set(conf, "client.id", client_id, err, errsize) ||
            /* Back to a restarted broker within a second, not librdkafka's 10 s. */
            dkafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", err, errsize))
                goto fail;
        for (size_t i = 0; i < props->n; i++) {
                const struct dconf_prop *p = &props->v[i];
                if (p->scope != DCONF_SCOPE_ALL && p->scope != scope)
                        continue;
                if (dkafka_conf_set(conf, p->name, p->value, err, errsize)) {
                        size_t l = strlen(err);
                        snprintf(err + l, errsize - l, " (from %s)", p->origin);
                        goto fail;
                }
        }
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

const char *dkafka_header(const rd_kafka_message_t *m, const char *name, char *buf,
                          size_t size)
{
        rd_kafka_headers_t *h = NULL;
        const void *v         = NULL;
        size_t len            = 0;

        buf[0] = '\0';
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len) || !v)
                return NULL;
        if (len >= size)
                len = size - 1;
        memcpy(buf, v, len);
        buf[len] = '\0';
        return buf;
}

int dkafka_conf_transactional(rd_kafka_conf_t *conf, const char *transactional_id,
                              char *err, size_t errsize)
{
        return dkafka_conf_set(conf, "transactional.id", transactional_id, err,
                               errsize) ||
                       dkafka_conf_set(conf, "enable.idempotence", "true", err,
                                       errsize) ||
                       dkafka_conf_set(conf, "acks", "all", err, errsize) ||
                       dkafka_conf_set(conf, "partitioner", "murmur2_random", err,
                                       errsize) ||
                       dkafka_conf_set(conf, "allow.auto.create.topics", "false", err,
                                       errsize)
                   ? -1
                   : 0;
}

rd_kafka_resp_err_t dkafka_produce(rd_kafka_t *rk, const struct dkafka_rec *r,
                                   long wait_ms)
{
        int64_t deadline = wait_ms < 0 ? INT64_MAX : dtime_mono_ms() + wait_ms;
        rd_kafka_vu_t vu[6];
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;

        memset(vu, 0, sizeof(vu));
        vu[0].vtype      = RD_KAFKA_VTYPE_TOPIC;
        vu[0].u.cstr     = r->topic;
        vu[1].vtype      = RD_KAFKA_VTYPE_KEY;
        vu[1].u.mem.ptr  = (void *)r->key;
        vu[1].u.mem.size = r->key ? r->key_len : 0;
        vu[2].vtype      = RD_KAFKA_VTYPE_VALUE;
        vu[2].u.mem.ptr  = r->value;
        vu[2].u.mem.size = r->value ? r->value_len : 0;
        vu[3].vtype      = RD_KAFKA_VTYPE_HEADERS;
        vu[3].u.headers  = r->headers;
        vu[4].vtype      = RD_KAFKA_VTYPE_OPAQUE;
        vu[4].u.ptr      = r->opaque;
        vu[5].vtype      = RD_KAFKA_VTYPE_MSGFLAGS;
        vu[5].u.i        = r->msgflags;
        for (;;) {
                error = rd_kafka_produceva(rk, vu, 6);
                err   = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
                if (error)
                        rd_kafka_error_destroy(error);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || dtime_mono_ms() >= deadline)
                        return err;
                /* Serves delivery reports, which makes room in the queue. */
                rd_kafka_poll(rk, 100);
        }
}
