/* dtopics.c - opt-in topic provisioning through the Admin API (see dtopics.h). */
#include "dtopics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"

#define DTOPICS_TIMEOUT_MS 15000

int dtopics_check_configs(const char *configs, char *why, size_t whysize)
{
        const char *p = configs;

        if (!configs || !*configs)
                return 0;
        while (*p) {
                size_t n       = strcspn(p, ",");
                const char *eq = memchr(p, '=', n);
                if (!eq || eq == p || eq == p + n - 1) {
                        snprintf(why, whysize,
                                 "expected name=value[,name=value...] near "
                                 "\"%.*s\"",
                                 (int)n, p);
                        return -1;
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return 0;
}

/* Sets the "k=v,..." configs on nt; skip_policy leaves out cleanup.policy. */
static int dtopics_set_configs(rd_kafka_NewTopic_t *nt, const char *configs,
                               int skip_policy, char *err, size_t errsize)
{
        const char *p = configs;

        while (p && *p) {
                size_t n       = strcspn(p, ",");
                const char *eq = memchr(p, '=', n);
                char name[256], value[512];
                if (!eq)
                        break;
                snprintf(name, sizeof(name), "%.*s", (int)(eq - p), p);
                snprintf(value, sizeof(value), "%.*s", (int)(p + n - eq - 1), eq + 1);
                if (skip_policy && !strcmp(name, "cleanup.policy")) {
                        p += n + (p[n] == ',');
                        continue;
                }
                if (rd_kafka_NewTopic_set_config(nt, name, value)) {
                        snprintf(err, errsize, "DURO_TOPIC_CONFIGS: %s rejected", name);
                        return -1;
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return 0;
}

int dtopics_ensure(rd_kafka_t *rk, const char *topic, const struct dtopics_config *cfg,
                   long long retention_ms, int *created, char *err, size_t errsize)
{
        struct dtopics_spec spec = {.retention_ms = retention_ms};

        return dtopics_ensure_spec(rk, topic, cfg, &spec, created, err, errsize);
}

int dtopics_ensure_spec(rd_kafka_t *rk, const char *topic,
                        const struct dtopics_config *cfg,
                        const struct dtopics_spec *spec, int *created, char *err,
                        size_t errsize)
{
        char rderr[256], num[32];
        rd_kafka_NewTopic_t *nt;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        int rc = -1;

        *created = 0;
        nt       = rd_kafka_NewTopic_new(
                  topic, spec->partitions > 0 ? spec->partitions : (int)cfg->partitions,
                  (int)cfg->replication, rderr, sizeof(rderr));
        if (!nt) {
                snprintf(err, errsize, "topic %s: %s", topic, rderr);
                return -1;
        }
        if (spec->retention_ms > 0) {
                snprintf(num, sizeof(num), "%lld", spec->retention_ms);
                rd_kafka_NewTopic_set_config(nt, "retention.ms", num);
        }
        if (spec->segment_ms > 0) {
                snprintf(num, sizeof(num), "%lld", spec->segment_ms);
                rd_kafka_NewTopic_set_config(nt, "segment.ms", num);
        }
        if (spec->compact)
                rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
        if (dtopics_set_configs(nt, cfg->configs, spec->compact, err, errsize)) {
                rd_kafka_NewTopic_destroy(nt);
                return -1;
        }
        q    = rd_kafka_queue_new(rk);
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_operation_timeout(opts, DTOPICS_TIMEOUT_MS, NULL, 0);
        rd_kafka_AdminOptions_set_request_timeout(opts, DTOPICS_TIMEOUT_MS, NULL, 0);
        rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
        ev = rd_kafka_queue_poll(q, DTOPICS_TIMEOUT_MS + 5000);
        if (!ev) {
                snprintf(err, errsize, "creating topic %s: no answer from Kafka",
                         topic);
        } else if (rd_kafka_event_error(ev)) {
                snprintf(err, errsize, "creating topic %s: %s", topic,
                         rd_kafka_event_error_string(ev));
        } else {
                const rd_kafka_CreateTopics_result_t *res =
                    rd_kafka_event_CreateTopics_result(ev);
                size_t n = 0;
                const rd_kafka_topic_result_t **tr =
                    res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
                rd_kafka_resp_err_t e = n == 1 ? rd_kafka_topic_result_error(tr[0])
                                               : RD_KAFKA_RESP_ERR__FAIL;
                if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                        dlog_info("created topic %s (%d partitions%s)", topic,
                                  spec->partitions > 0 ? spec->partitions
                                                       : (int)cfg->partitions,
                                  spec->compact ? ", compacted" : "");
                        *created = 1;
                        rc       = 0;
                } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                        rc = 0;
                } else if (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                           e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
                        snprintf(
                            err, errsize,
                            "creating topic %s: not permitted (%s): grant CREATE on "
                            "the topic or cluster, or create it beforehand and turn "
                            "DURO_CREATE_TOPICS off",
                            topic, rd_kafka_err2name(e));
                } else {
                        snprintf(err, errsize, "creating topic %s: %s", topic,
                                 n == 1 && rd_kafka_topic_result_error_string(tr[0])
                                     ? rd_kafka_topic_result_error_string(tr[0])
                                     : rd_kafka_err2str(e));
                }
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        return rc;
}

int dtopics_partitions(rd_kafka_t *rk, const char *topic, char *err, size_t errsize)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt              = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t e;
        int n = -1;

        if (!rkt) {
                snprintf(err, errsize, "topic %s: cannot name it", topic);
                return -1;
        }
        e = rd_kafka_metadata(rk, 0, rkt, &md, DTOPICS_TIMEOUT_MS);
        if (e)
                snprintf(err, errsize, "topic %s: no metadata (%s)", topic,
                         rd_kafka_err2str(e));
        else if (md->topic_cnt != 1 || md->topics[0].err)
                snprintf(err, errsize, "topic %s: %s", topic,
                         md->topic_cnt == 1 &&
                                 md->topics[0].err ==
                                     RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
                             ? "not authorised"
                             : "does not exist");
        else if (md->topics[0].partition_cnt < 1)
                snprintf(err, errsize, "topic %s: does not exist", topic);
        else
                n = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return n;
}

/* Describes topic's configs and copies the value of each of names[0..n) into vals[i]
 * (malloc'd; NULL when the broker did not say). Returns 0, or -1 with err naming the
 * topic. Blocks up to about 20 s. */
static int dtopics_describe(rd_kafka_t *rk, const char *topic, const char *const *names,
                            char **vals, size_t n, char *err, size_t errsize)
{
        rd_kafka_ConfigResource_t *cr;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        int rc = -1;

        for (size_t k = 0; k < n; k++)
                vals[k] = NULL;
        cr   = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
        q    = rd_kafka_queue_new(rk);
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
        rd_kafka_AdminOptions_set_request_timeout(opts, DTOPICS_TIMEOUT_MS, NULL, 0);
        rd_kafka_DescribeConfigs(rk, &cr, 1, opts, q);
        ev = rd_kafka_queue_poll(q, DTOPICS_TIMEOUT_MS + 5000);
        if (!ev) {
                snprintf(err, errsize, "topic %s: no answer describing its configs",
                         topic);
        } else if (rd_kafka_event_error(ev)) {
                snprintf(err, errsize, "topic %s: describing its configs: %s", topic,
                         rd_kafka_event_error_string(ev));
        } else {
                const rd_kafka_DescribeConfigs_result_t *res =
                    rd_kafka_event_DescribeConfigs_result(ev);
                size_t nr = 0, nc = 0;
                const rd_kafka_ConfigResource_t **rs =
                    res ? rd_kafka_DescribeConfigs_result_resources(res, &nr) : NULL;
                const rd_kafka_ConfigEntry_t **ce =
                    nr == 1 && !rd_kafka_ConfigResource_error(rs[0])
                        ? rd_kafka_ConfigResource_configs(rs[0], &nc)
                        : NULL;
                for (size_t i = 0; i < nc; i++) {
                        const char *name = rd_kafka_ConfigEntry_name(ce[i]);
                        const char *v    = rd_kafka_ConfigEntry_value(ce[i]);
                        for (size_t k = 0; v && k < n; k++)
                                if (!strcmp(name, names[k]) && !vals[k])
                                        vals[k] = strdup(v);
                }
                if (nr != 1 || rd_kafka_ConfigResource_error(rs[0]))
                        snprintf(
                            err, errsize, "topic %s: describing its configs: %s", topic,
                            nr == 1
                                ? rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[0]))
                                : "no answer");
                else
                        rc = 0;
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
        rd_kafka_ConfigResource_destroy(cr);
        return rc;
}

int dtopics_check_compacted(rd_kafka_t *rk, const char *topic, int *partitions,
                            long long *max_bytes, char *err, size_t errsize)
{
        static const char *const names[] = {"cleanup.policy", "max.message.bytes"};
        char *vals[2];
        int rc = -1;

        if ((*partitions = dtopics_partitions(rk, topic, err, errsize)) < 0)
                return -1;
        if (dtopics_describe(rk, topic, names, vals, 2, err, errsize))
                return -1;
        if (max_bytes)
                *max_bytes = vals[1] ? atoll(vals[1]) : -1;
        if (!vals[0] || strcmp(vals[0], "compact"))
                snprintf(err, errsize,
                         "topic %s: not compacted (cleanup.policy=%s, want compact: "
                         "with delete too, retention would drop what is current)",
                         topic, vals[0] ? vals[0] : "?");
        else
                rc = 0;
        free(vals[0]);
        free(vals[1]);
        return rc;
}

int dtopics_retention_ms(rd_kafka_t *rk, const char *topic, long long *ms, char *err,
                         size_t errsize)
{
        static const char *const names[] = {"retention.ms"};
        char *v;

        if (dtopics_describe(rk, topic, names, &v, 1, err, errsize))
                return -1;
        if (!v) {
                snprintf(err, errsize,
                         "topic %s: the broker did not say its retention.ms", topic);
                return -1;
        }
        *ms = atoll(v);
        free(v);
        return 0;
}
