/* enricher_topics.c - the topics the enricher writes to: whether an output topic
 * exists (asked of the cluster, then cached), and, with DURO_CREATE_TOPICS, creating
 * the missing ones: the raw topic, the DLQ and the known events' outputs at start-up,
 * an output topic when a record first needs it. */
#include "enricher.h"

#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "dtime.h"
#include "dtopics.h"

#define TOPICS_RECHECK_MS 5000

/* Creates topic when missing. Returns 0 or -1 with err set. */
static int topics_create(struct enricher *e, const char *topic, long long retention_ms,
                         char *err, size_t errsize)
{
        int created = 0;

        return dtopics_ensure(e->producer, topic, &e->cfg.topics, retention_ms,
                              &created, err, errsize);
}

/* Asks the cluster whether topic exists (1 too when it does not answer: let the
 * transaction find out); creates it when missing and provisioning is on. */
static int topics_ask(struct enricher *e, const char *topic)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(e->producer, topic, NULL);
        int exists            = 0;

        if (rkt && !rd_kafka_metadata(e->producer, 0, rkt, &md, 5000)) {
                exists = md->topic_cnt == 1 && !md->topics[0].err &&
                         md->topics[0].partition_cnt > 0;
                rd_kafka_metadata_destroy(md);
        } else {
                exists = 1;
        }
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (!exists && e->cfg.topics.create) {
                char err[300];
                if (topics_create(e, topic, 0, err, sizeof(err)))
                        dlog_error("%s", err);
                else
                        exists = 1;
        }
        return exists;
}

int enricher_topics_exists(struct enricher *e, const char *topic)
{
        size_t i;
        int exists;

        for (i = 0; i < e->ntopics; i++)
                if (!strcmp(e->topics[i].topic, topic))
                        break;
        if (i < e->ntopics &&
            (e->topics[i].exists ||
             dtime_mono_ms() - e->topics[i].checked_ms < TOPICS_RECHECK_MS))
                return e->topics[i].exists;
        exists = topics_ask(e, topic);
        if (i == e->ntopics && i < ENRICHER_MAX_TOPICS) {
                e->topics[i].topic = strdup(topic);
                if (!e->topics[i].topic)
                        return exists;
                e->ntopics++;
        }
        if (i < e->ntopics) {
                e->topics[i].exists     = exists;
                e->topics[i].checked_ms = dtime_mono_ms();
        }
        if (!exists)
                dlog_warn("output topic %s does not exist", topic);
        return exists;
}

int enricher_topics_create_all(struct enricher *e, char *err, size_t errsize)
{
        if (!e->cfg.topics.create)
                return 0;
        if (topics_create(e, e->cfg.raw_topic, e->cfg.topics.raw_retention_ms, err,
                          errsize) ||
            topics_create(e, e->cfg.dlq_topic, 0, err, errsize))
                return -1;
        /* Every exact event of the table with a topic of its own; patterns and
         * events sharing another's topic add none. */
        for (size_t i = 0; i < e->events.n; i++) {
                const struct devtable_entry *en = &e->events.e[i];
                char *t;
                if (en->pattern || en->topic_of)
                        continue;
                t     = enricher_out_topic(e->cfg.topic_template, en->name);
                int r = t ? topics_create(e, t, 0, err, errsize) : -1;
                free(t);
                if (r)
                        return -1;
        }
        return 0;
}

void enricher_topics_free(struct enricher *e)
{
        for (size_t i = 0; i < e->ntopics; i++)
                free(e->topics[i].topic);
        e->ntopics = 0;
}
