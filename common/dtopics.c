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

static int dtopics_set_configs(rd_kafka_NewTopic_t *nt, const char *configs, char *err,
                               size_t errsize)
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
        char rderr[256], num[32];
        rd_kafka_NewTopic_t *nt;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        int rc = -1;

        *created = 0;
        nt = rd_kafka_NewTopic_new(topic, (int)cfg->partitions, (int)cfg->replication,
                                   rderr, sizeof(rderr));
        if (!nt) {
                snprintf(err, errsize, "topic %s: %s", topic, rderr);
                return -1;
        }
        if (retention_ms > 0) {
                snprintf(num, sizeof(num), "%lld", retention_ms);
                rd_kafka_NewTopic_set_config(nt, "retention.ms", num);
        }
        if (dtopics_set_configs(nt, cfg->configs, err, errsize)) {
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
                        dlog_info("created topic %s (%lld partitions)", topic,
                                  cfg->partitions);
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
