/* enricher_consume.c - the consumer side of a batch: taking raw records (a record of a
 * partition whose dedupe set is not complete is put back, its partition paused),
 * putting them back (seeking a partition to an offset, rewinding a batch), pausing
 * every partition while the Duro API is down and resuming the ready ones after it, and
 * the offsets a batch commits, with the last record's timestamp as their metadata, and
 * when idle the positions past trailing transaction markers. */
#include "enricher.h"

#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "dtime.h"
#include "dwire.h"

/* Seeks the partitions of l (offsets set); what says what failed in the warning. */
static void consume_seek_failed(struct enricher *e)
{
        e->seek_failed = 1;
        /* Incremental: no new assignment resets the position to the committed offset;
         * a restart does. */
        if (e->incremental && !atomic_exchange(&e->fatal, 1))
                dlog_error("a seek failed under incremental assignment: stopping, to "
                           "start again at the committed offsets");
}

static void consume_seek_list(struct enricher *e, rd_kafka_topic_partition_list_t *l,
                              const char *what)
{
        rd_kafka_error_t *error;

        if (l->cnt && (error = rd_kafka_seek_partitions(e->consumer, l, -1))) {
                dlog_warn("%s failed: %s", what, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                consume_seek_failed(e);
        }
        for (int k = 0; k < l->cnt; k++)
                if (l->elems[k].err) {
                        dlog_warn("%s of %s [%d] failed: %s", what, l->elems[k].topic,
                                  (int)l->elems[k].partition,
                                  rd_kafka_err2str(l->elems[k].err));
                        consume_seek_failed(e);
                }
        rd_kafka_topic_partition_list_destroy(l);
}

void enricher_consume_seek(struct enricher *e, int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

        if (enricher_part_find(e, partition))
                rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic, partition)
                    ->offset = offset;
        consume_seek_list(e, l, "seek back");
}

void enricher_consume_rewind(struct enricher *e, const struct enricher_batch *b)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);

        for (size_t i = 0; i < b->n; i++) {
                const rd_kafka_message_t *m = b->recs[i].msg;
                int found                   = 0;
                for (int k = 0; k < l->cnt; k++)
                        found |= l->elems[k].partition == m->partition;
                if (!found && enricher_part_find(e, m->partition))
                        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic,
                                                          m->partition)
                            ->offset = m->offset;
        }
        consume_seek_list(e, l, "seek back");
}

static void consume_set_paused(struct enricher *e, int pause);

void enricher_consume_dropped(struct enricher *e, const struct enricher_batch *b)
{
        if (e->rebalanced && !e->incremental)
                return; /* eager: the new assignment starts at the committed offsets */
        if (e->rebalanced && e->paused)
                consume_set_paused(e, 0); /* the wait that paused them is over */
        enricher_consume_rewind(e, b);
}

/* What the poll in enricher_consume_take returned, other than a record to keep. */
enum consume_polled {
        CONSUME_RECORD  = 0,
        CONSUME_NOTHING = 1, /* none yet (or an error, logged) */
        CONSUME_DROP    = 2, /* the batch belongs to the old assignment */
};

/* After a rebalance: whatever was taken before belongs to the old assignment; m (the
 * poll's result, or NULL) is put back. */
static void consume_rebalanced(struct enricher *e, struct enricher_batch *b,
                               rd_kafka_message_t *m)
{
        if (m && !m->err)
                enricher_consume_seek(e, m->partition, m->offset);
        /* incremental: the partitions that stay go on from where they were */
        if (e->incremental)
                enricher_consume_rewind(e, b);
        enricher_batch_drop_recs(b);
        if (m)
                rd_kafka_message_destroy(m);
}

/* The group consumer cannot go on (a consumer's fatal errors come as poll results,
 * not through the error callback): the loop ends the process, whose restart joins
 * anew. */
static void consume_fatal(struct enricher *e)
{
        char why[256];
        rd_kafka_resp_err_t err = rd_kafka_fatal_error(e->consumer, why, sizeof(why));

        if (atomic_exchange(&e->fatal, 1))
                return;
        dlog_error("fatal consumer error: %s: %s", rd_kafka_err2name(err), why);
}

/* Polls for up to wait ms; a record is added to b. */
static enum consume_polled consume_poll(struct enricher *e, struct enricher_batch *b,
                                        long wait)
{
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->consumer, (int)wait);

        if (e->rebalanced) {
                consume_rebalanced(e, b, m);
                return CONSUME_DROP;
        }
        if (!m)
                return CONSUME_NOTHING;
        if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                        consume_fatal(e);
                else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        dlog_warn("consumer: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                return CONSUME_NOTHING;
        }
        if (!enricher_part_ready(enricher_part_find(e, m->partition))) {
                /* Its dedupe set is not complete (a rebalance resumed it, or the
                 * pause came after a fetch): not before it is. */
                enricher_consume_seek(e, m->partition, m->offset);
                if (enricher_part_find(e, m->partition))
                        enricher_parts_pause(e, m->partition, 1);
                rd_kafka_message_destroy(m);
                return CONSUME_NOTHING;
        }
        if (enricher_batch_add(b, m)) {
                /* m is the next record of its partition: read it again */
                enricher_consume_rewind(e, b);
                enricher_consume_seek(e, m->partition, m->offset);
                rd_kafka_message_destroy(m);
                enricher_batch_drop_recs(b);
                return CONSUME_DROP;
        }
        if (b->n == 1)
                b->first_ms = dtime_mono_ms();
        return CONSUME_RECORD;
}

size_t enricher_consume_take(struct enricher *e, struct enricher_batch *b, int nowait)
{
        e->rebalanced = 0;
        while (b->n < (size_t)e->cfg.batch_max && atomic_load(&e->run)) {
                long wait = nowait ? 0 : 100;
                if (b->n && !nowait) {
                        wait = (long)(b->first_ms + e->cfg.batch_wait_ms -
                                      dtime_mono_ms());
                        if (wait <= 0)
                                break;
                }
                switch (consume_poll(e, b, wait)) {
                case CONSUME_RECORD:
                        break;
                case CONSUME_NOTHING:
                        if (!b->n || nowait)
                                return b->n;
                        break;
                case CONSUME_DROP:
                        return 0;
                }
        }
        return b->n;
}

/* Pauses every assigned partition, or resumes those whose dedupe set is ready. */
static void consume_set_paused(struct enricher *e, int pause)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);

        for (size_t i = 0; i < e->nparts; i++)
                if (pause || enricher_part_ready(&e->parts[i]))
                        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic,
                                                          e->parts[i].partition);
        if (pause)
                rd_kafka_pause_partitions(e->consumer, l);
        else
                rd_kafka_resume_partitions(e->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
        e->paused = pause;
}

void enricher_consume_pause(struct enricher *e)
{
        if (!e->paused)
                consume_set_paused(e, 1);
}

void enricher_consume_serve_paused(struct enricher *e, int timeout_ms)
{
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->consumer, timeout_ms);

        if (m && m->err == RD_KAFKA_RESP_ERR__FATAL)
                consume_fatal(e);
        if (m)
                rd_kafka_message_destroy(m);
}

void enricher_consume_resume(struct enricher *e, const struct enricher_batch *b)
{
        consume_set_paused(e, 0);
        consume_seek_list(e, enricher_batch_next_offsets(e, b), "seek after pause");
}

/* Gives each offset of l the metadata the dedupe rebuild starts from: the timestamp
 * of b's last record of that partition. */
static void consume_offsets_meta(const struct enricher_batch *b,
                                 rd_kafka_topic_partition_list_t *l)
{
        for (int k = 0; k < l->cnt; k++) {
                rd_kafka_topic_partition_t *tp = &l->elems[k];
                const rd_kafka_message_t *last = NULL;
                char meta[DWIRE_OFFSET_META_SIZE];
                int len;
                for (size_t i = 0; i < b->n; i++) {
                        const rd_kafka_message_t *m = b->recs[i].msg;
                        if (m->partition == tp->partition &&
                            (!last || m->offset > last->offset))
                                last = m;
                }
                if (!last)
                        continue;
                len = dwire_offset_meta_format(meta,
                                               rd_kafka_message_timestamp(last, NULL));
                free(tp->metadata);
                tp->metadata_size = 0;
                if ((tp->metadata = malloc((size_t)len)) != NULL) {
                        memcpy(tp->metadata, meta, (size_t)len);
                        tp->metadata_size = (size_t)len;
                }
        }
}

/* Every record delivered so far is in b (or committed) when this is called, so the
 * consumer's position can only be ahead of b's last record by control records
 * (transaction markers, e.g. from a redrive), and committing past them keeps the lag
 * honest. */
void enricher_consume_offsets(struct enricher *e, struct enricher_batch *b)
{
        rd_kafka_topic_partition_list_t *offsets = enricher_batch_next_offsets(e, b);
        rd_kafka_topic_partition_list_t *pos;

        pos = rd_kafka_topic_partition_list_copy(offsets);
        if (!rd_kafka_position(e->consumer, pos))
                for (int k = 0; k < pos->cnt; k++)
                        if (pos->elems[k].offset > offsets->elems[k].offset)
                                offsets->elems[k].offset = pos->elems[k].offset;
        rd_kafka_topic_partition_list_destroy(pos);
        consume_offsets_meta(b, offsets);
        b->offsets = offsets;
}

/* Only partitions ready, with a known committed offset, and a position past it (and
 * not one already found not to match the group's committed offset). */
static void consume_keep_moved(struct enricher *e, rd_kafka_topic_partition_list_t *l)
{
        for (int k = l->cnt - 1; k >= 0; k--) {
                const struct enricher_part *part =
                    enricher_part_find(e, l->elems[k].partition);
                if (!enricher_part_ready(part) || part->next_offset < 0 ||
                    l->elems[k].offset <= part->next_offset ||
                    l->elems[k].offset == part->idle_refused_pos)
                        rd_kafka_topic_partition_list_del_by_idx(l, k);
        }
}

rd_kafka_topic_partition_list_t *enricher_consume_idle_offsets(struct enricher *e)
{
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(e->nparts ? (int)e->nparts : 1);
        rd_kafka_topic_partition_list_t *com;
        rd_kafka_resp_err_t err;

        for (size_t i = 0; i < e->nparts; i++)
                if (enricher_part_ready(&e->parts[i]) && e->parts[i].next_offset >= 0)
                        rd_kafka_topic_partition_list_add(l, e->cfg.raw_topic,
                                                          e->parts[i].partition);
        if (!l->cnt || rd_kafka_position(e->consumer, l)) {
                rd_kafka_topic_partition_list_destroy(l);
                return NULL;
        }
        consume_keep_moved(e, l);
        if (!l->cnt) {
                rd_kafka_topic_partition_list_destroy(l);
                return NULL;
        }
        /* The metadata the dedupe rebuild starts from stays that of the last record.
         * A partition whose committed offset is not the one this process committed
         * (resumed from the progress topic: none yet) is left out, until it moves. */
        com = rd_kafka_topic_partition_list_copy(l);
        err = rd_kafka_committed(e->consumer, com, 5000);
        for (int k = com->cnt - 1; !err && k >= 0; k--) {
                rd_kafka_topic_partition_t *tp = &l->elems[k];
                struct enricher_part *part     = enricher_part_find(e, tp->partition);
                if (com->elems[k].err || com->elems[k].offset != part->next_offset) {
                        part->idle_refused_pos = tp->offset;
                        rd_kafka_topic_partition_list_del_by_idx(l, k);
                        continue;
                }
                if (com->elems[k].metadata_size) {
                        if (!(tp->metadata = malloc(com->elems[k].metadata_size)))
                                err = RD_KAFKA_RESP_ERR__FAIL; /* out of memory */
                        else
                                memcpy(tp->metadata, com->elems[k].metadata,
                                       com->elems[k].metadata_size);
                        tp->metadata_size =
                            tp->metadata ? com->elems[k].metadata_size : 0;
                }
        }
        rd_kafka_topic_partition_list_destroy(com);
        if (err || !l->cnt) {
                if (err)
                        dlog_debug("not committing past transaction markers now: %s",
                                   rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(l);
                return NULL;
        }
        return l;
}
