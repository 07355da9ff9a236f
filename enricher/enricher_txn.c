/* enricher_txn.c - a batch's Kafka transaction: begin, produce what enricher_out.c
 * builds (outputs and DLQ records, then the state records, then the progress records),
 * send the offsets, commit; every transactional call retried through one
 * helper with the watchdog armed. An abortable error aborts (the cycle redoes the
 * batch); a record that a topic rejects for good joins the forced-DLQ list and goes to
 * the DLQ on the redo. After the commit: the bookkeeping of what was committed. */
#include "enricher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkafka.h"
#include "dlog.h"
#include "dtime.h"

/* A (partition, offset) to send to the DLQ on the redo, after a permanent produce
 * error. */
struct enricher_force {
        int32_t partition;
        int64_t offset;
        char message[200];
};

enum txn_call {
        TXN_INIT         = 0,
        TXN_BEGIN        = 1,
        TXN_SEND_OFFSETS = 2,
        TXN_COMMIT       = 3,
        TXN_ABORT        = 4,
};

static const char *const txn_call_names[] = {"init_transactions", "begin_transaction",
                                             "send_offsets_to_transaction",
                                             "commit_transaction", "abort_transaction"};

static rd_kafka_error_t *txn_call_once(struct enricher *e, enum txn_call c,
                                       const rd_kafka_topic_partition_list_t *offsets,
                                       const rd_kafka_consumer_group_metadata_t *cgmd)
{
        switch (c) {
        case TXN_INIT:
                return rd_kafka_init_transactions(e->producer, -1);
        case TXN_BEGIN:
                return rd_kafka_begin_transaction(e->producer);
        case TXN_SEND_OFFSETS:
                return rd_kafka_send_offsets_to_transaction(e->producer, offsets, cgmd,
                                                            -1);
        case TXN_COMMIT:
                return rd_kafka_commit_transaction(e->producer, -1);
        case TXN_ABORT:
                return rd_kafka_abort_transaction(e->producer, -1);
        }
        return NULL;
}

/* Runs the transactional call c with the watchdog armed (e->kafka_call_since), again
 * for as long as its error is retriable (init_transactions: while running, with a
 * warning). offsets: send_offsets_to_transaction's. Returns NULL or the error. */
static rd_kafka_error_t *txn_call(struct enricher *e, enum txn_call c,
                                  const rd_kafka_topic_partition_list_t *offsets)
{
        rd_kafka_consumer_group_metadata_t *cgmd = NULL;
        rd_kafka_error_t *error;

        if (c == TXN_SEND_OFFSETS)
                cgmd = rd_kafka_consumer_group_metadata(e->consumer);
        for (;;) {
                atomic_store(&e->kafka_call_since, dtime_mono_ms());
                error = txn_call_once(e, c, offsets, cgmd);
                atomic_store(&e->kafka_call_since, 0);
                if (!error || !rd_kafka_error_is_retriable(error))
                        break;
                if (c == TXN_INIT) {
                        if (!atomic_load(&e->run))
                                break;
                        dlog_warn("init_transactions: %s; retrying",
                                  rd_kafka_error_string(error));
                }
                rd_kafka_error_destroy(error);
        }
        if (cgmd)
                rd_kafka_consumer_group_metadata_destroy(cgmd);
        return error;
}

int enricher_txn_init(struct enricher *e, char *err, size_t errsize)
{
        rd_kafka_error_t *error = txn_call(e, TXN_INIT, NULL);

        if (!error)
                return 0;
        snprintf(err, errsize, "init_transactions: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
}

static enum enricher_txn_result txn_abort(struct enricher *e, const char *why)
{
        rd_kafka_error_t *error;

        dlog_warn("aborting the transaction: %s", why);
        error = txn_call(e, TXN_ABORT, NULL);
        if (error) {
                dlog_error("abort_transaction: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return ENRICHER_TXN_FATAL;
        }
        atomic_fetch_add(&e->m.txn_aborted, 1);
        if (!atomic_load(&e->ready.state_down))
                enricher_state_check_now(e);
        return ENRICHER_TXN_REDO;
}

/* Classifies (and destroys) an error of the transactional call c: abort, or fatal. */
static enum enricher_txn_result txn_failed(struct enricher *e, rd_kafka_error_t *error,
                                           enum txn_call c)
{
        char why[400];

        snprintf(why, sizeof(why), "%s: %s", txn_call_names[c],
                 rd_kafka_error_string(error));
        if (rd_kafka_error_txn_requires_abort(error)) {
                rd_kafka_error_destroy(error);
                return txn_abort(e, why);
        }
        dlog_error("fatal transactional error: %s", why);
        rd_kafka_error_destroy(error);
        return ENRICHER_TXN_FATAL;
}

/* 1 when a topic will refuse the record whatever is tried again. */
static int txn_is_permanent(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
                return 1;
        default:
                return 0;
        }
}

/* Puts r on the forced-DLQ list after err. Returns 0, or -1 when that cannot help
 * (r was a DLQ record already: the DLQ itself refuses) or out of memory. */
static int txn_force_add(struct enricher *e, const struct enricher_rec *r,
                         rd_kafka_resp_err_t err)
{
        struct enricher_force *nf;

        if (r->action == ENRICHER_ACT_DLQ) {
                dlog_error("the DLQ topic %s rejects records: %s", e->cfg.dlq_topic,
                           rd_kafka_err2str(err));
                return -1;
        }
        for (size_t i = 0; i < e->nforce; i++)
                if (e->force[i].partition == r->msg->partition &&
                    e->force[i].offset == r->msg->offset)
                        return 0; /* its output and its state both refused: once */
        nf = realloc(e->force, (e->nforce + 1) * sizeof(*nf));
        if (!nf)
                return -1;
        e->force                = nf;
        nf[e->nforce].partition = r->msg->partition;
        nf[e->nforce].offset    = r->msg->offset;
        snprintf(nf[e->nforce].message, sizeof(nf[0].message), "%s: %s",
                 r->topic ? r->topic : "?", rd_kafka_err2str(err));
        e->nforce++;
        dlog_warn_trace(r->trace.trace_id,
                        "%s [%d] at %lld: %s rejects it (%s); it goes to the DLQ",
                        e->cfg.raw_topic, (int)r->msg->partition,
                        (long long)r->msg->offset, r->topic ? r->topic : "?",
                        rd_kafka_err2str(err));
        return 0;
}

static int txn_force_is(const struct enricher_force *f, const rd_kafka_message_t *m)
{
        return f->partition == m->partition && f->offset == m->offset;
}

int enricher_txn_forced(const struct enricher *e, const rd_kafka_message_t *m,
                        char *msg, size_t size)
{
        for (size_t i = 0; i < e->nforce; i++)
                if (txn_force_is(&e->force[i], m)) {
                        snprintf(msg, size, "%s", e->force[i].message);
                        return 1;
                }
        return 0;
}

void enricher_txn_destroy(struct enricher *e)
{
        free(e->force);
        e->force  = NULL;
        e->nforce = 0;
}

/* 1 when err says the topic is not there for us (missing or not authorised). */
static int txn_is_gone(rd_kafka_resp_err_t err)
{
        return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
               err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
               err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
               err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
}

void enricher_txn_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        struct enricher_rec *r = msg->_private;
        struct enricher *e     = opaque;
        (void)rk;

        if (!msg->err || msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
            msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
                return;
        if (e && enricher_state_is_ours(e, rd_kafka_topic_name(msg->rkt))) {
                /* a state record (r: its resource's last event) or a progress one */
                if (txn_is_gone(msg->err))
                        atomic_store(&e->state_gone, 1);
                if (r) {
                        r->state_failed = 1;
                        r->state_err    = msg->err;
                }
                return;
        }
        if (!r)
                return;
        r->failed     = 1;
        r->failed_err = msg->err;
}

/* A state or the progress topic is gone: not ready, and the batch waits for it
 * (enricher_cycle.c) after this abort. */
static enum enricher_txn_result txn_state_gone(struct enricher *e, const char *topic,
                                               rd_kafka_resp_err_t err)
{
        char why[300];

        snprintf(why, sizeof(why), "topic %s refuses records (%s)", topic ? topic : "?",
                 rd_kafka_err2str(err));
        enricher_ready_state_down(e, why);
        return txn_abort(e, why);
}

/* r's state record was refused for good (too large, invalid): every event of its
 * resource in b goes to the DLQ on the redo, with no output and no state record.
 * Returns 0, or -1 when out of memory. */
static int txn_force_resource(struct enricher *e, const struct enricher_batch *b,
                              const struct enricher_rec *r, rd_kafka_resp_err_t err)
{
        for (size_t i = 0; i < b->n; i++) {
                const struct enricher_rec *o = &b->recs[i];
                if (o->action == ENRICHER_ACT_OUTPUT && o->kind == r->kind &&
                    o->resource_id && !strcmp(o->resource_id, r->resource_id) &&
                    txn_force_add(e, o, err))
                        return -1;
        }
        return 0;
}

/* Produces one record of the transaction. Returns 0, or the immediate error. */
static rd_kafka_resp_err_t txn_produce(struct enricher *e, struct enricher_rec *r)
{
        struct dkafka_rec out;
        rd_kafka_resp_err_t err;

        if (enricher_out_record(e, r, &out))
                return RD_KAFKA_RESP_ERR__FAIL;
        err = dkafka_produce(e->producer, &out, -1);
        if (err)
                enricher_out_release(&out);
        return err;
}

/* Produces the progress records of b: per partition of its offsets, the next offset
 * and the last record's timestamp (the offset's metadata). Returns 0 or the error. */
static rd_kafka_resp_err_t txn_produce_progress(struct enricher *e,
                                                const struct enricher_batch *b)
{
        for (int k = 0; b->offsets && k < b->offsets->cnt; k++) {
                const rd_kafka_topic_partition_t *tp = &b->offsets->elems[k];
                char key[512], value[DWIRE_PROGRESS_VALUE_SIZE];
                struct dkafka_rec out = {0};
                int64_t last_ts       = -1;
                rd_kafka_resp_err_t err;
                int n;
                if (dwire_offset_meta_parse(tp->metadata, tp->metadata_size, &last_ts))
                        last_ts = -1;
                n = snprintf(key, sizeof(key), "%s:%s:%d", e->cfg.group, tp->topic,
                             (int)tp->partition);
                out.topic   = e->cfg.progress_topic;
                out.key     = key;
                out.key_len = (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1;
                out.value   = value;
                out.value_len =
                    (size_t)dwire_progress_format(value, tp->offset, last_ts);
                out.headers = rd_kafka_headers_new(1);
                rd_kafka_header_add(out.headers, DWIRE_H_CONTENT_TYPE, -1,
                                    DWIRE_CONTENT_JSON, -1);
                out.msgflags = RD_KAFKA_MSG_F_COPY;
                err          = dkafka_produce(e->producer, &out, -1);
                if (err) {
                        rd_kafka_headers_destroy(out.headers);
                        return err;
                }
        }
        return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Produces b's state records, after its outputs. Returns 0, or how the transaction
 * ends. */
static int txn_produce_state(struct enricher *e, struct enricher_batch *b,
                             enum enricher_txn_result *result)
{
        for (size_t i = 0; i < b->nstate; i++) {
                struct enricher_rec *r = &b->recs[b->state_recs[i]];
                struct dkafka_rec out;
                rd_kafka_resp_err_t err;
                r->state_failed = 0;
                if (enricher_out_state(e, r, &out)) {
                        *result = txn_abort(e, "out of memory");
                        return -1;
                }
                err = dkafka_produce(e->producer, &out, -1);
                if (!err) {
                        continue;
                }
                enricher_out_release(&out);
                if (txn_is_gone(err))
                        *result = txn_state_gone(e, out.topic, err);
                else if (txn_is_permanent(err))
                        *result = txn_force_resource(e, b, r, err)
                                      ? ENRICHER_TXN_FATAL
                                      : txn_abort(e, rd_kafka_err2str(err));
                else
                        *result = txn_abort(e, rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

/* Produces b's records in offset order. Returns 0, or how the transaction ends. */
static int txn_produce_all(struct enricher *e, struct enricher_batch *b,
                           enum enricher_txn_result *result)
{
        rd_kafka_resp_err_t err;

        for (size_t i = 0; i < b->n; i++) {
                struct enricher_rec *r = &b->recs[i];
                if (r->action == ENRICHER_ACT_DUPLICATE)
                        continue;
                r->failed = 0;
                err       = txn_produce(e, r);
                if (err) {
                        if (txn_is_permanent(err) && txn_force_add(e, r, err))
                                *result = ENRICHER_TXN_FATAL;
                        else
                                *result = txn_abort(e, rd_kafka_err2str(err));
                        return -1;
                }
        }
        if (txn_produce_state(e, b, result))
                return -1;
        err = txn_produce_progress(e, b);
        if (err) {
                *result = txn_is_gone(err)
                              ? txn_state_gone(e, e->cfg.progress_topic, err)
                              : txn_abort(e, rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

enum enricher_txn_result enricher_txn_run(struct enricher *e, struct enricher_batch *b)
{
        enum enricher_txn_result result;
        rd_kafka_error_t *error;

        atomic_store(&e->state_gone, 0);
        if ((error = txn_call(e, TXN_BEGIN, NULL)))
                return txn_failed(e, error, TXN_BEGIN);
        if (txn_produce_all(e, b, &result))
                return result;
        b->t_produced = dtime_mono_ms();
        if ((error = txn_call(e, TXN_SEND_OFFSETS, b->offsets)))
                return txn_failed(e, error, TXN_SEND_OFFSETS);
        b->t_offsets = dtime_mono_ms();
        if ((error = txn_call(e, TXN_COMMIT, NULL))) {
                /* A state or the progress topic gone: the batch waits for it. */
                if (atomic_load(&e->state_gone)) {
                        rd_kafka_error_destroy(error);
                        return txn_state_gone(e, "a state or the progress topic",
                                              RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
                }
                /* A resource whose state record a topic rejected for good: all its
                 * events go to the DLQ on the redo. */
                for (size_t i = 0; i < b->nstate; i++) {
                        const struct enricher_rec *r = &b->recs[b->state_recs[i]];
                        if (r->state_failed && txn_is_permanent(r->state_err) &&
                            txn_force_resource(e, b, r, r->state_err)) {
                                rd_kafka_error_destroy(error);
                                return ENRICHER_TXN_FATAL;
                        }
                }
                /* A record a topic rejected for good goes to the DLQ on the redo. */
                for (size_t i = 0; i < b->n; i++)
                        if (b->recs[i].failed &&
                            txn_is_permanent(b->recs[i].failed_err) &&
                            txn_force_add(e, &b->recs[i], b->recs[i].failed_err)) {
                                rd_kafka_error_destroy(error);
                                return ENRICHER_TXN_FATAL;
                        }
                return txn_failed(e, error, TXN_COMMIT);
        }
        atomic_fetch_add(&e->m.txn_committed, 1);
        return ENRICHER_TXN_COMMITTED;
}

/* The metrics of one committed record. */
static void txn_count(struct enricher *e, const struct enricher_rec *r, int64_t now,
                      int64_t ts)
{
        switch (r->action) {
        case ENRICHER_ACT_DUPLICATE:
                atomic_fetch_add(&e->m.deduplicated, 1);
                break;
        case ENRICHER_ACT_OUTPUT:
                enricher_metrics_produced(&e->m, r->topic);
                if (now > ts)
                        dmetrics_hist_observe_us(&e->m.event_latency,
                                                 (unsigned long long)(now - ts) *
                                                     1000ULL);
                break;
        case ENRICHER_ACT_DLQ:
                atomic_fetch_add(&e->m.dlq[r->dlq_class], 1);
                dlog_info_trace(r->trace.trace_id,
                                "%s [%d] at %lld to the DLQ (%s): %s", e->cfg.raw_topic,
                                (int)r->msg->partition, (long long)r->msg->offset,
                                dwire_dlq_class_name(r->dlq_class), r->dlq_message);
                break;
        }
}

void enricher_txn_committed(struct enricher *e, const struct enricher_batch *b)
{
        int64_t now = dtime_now_ms();

        for (size_t i = 0; i < b->n; i++) {
                const struct enricher_rec *r = &b->recs[i];
                struct enricher_part *part   = enricher_part_find(e, r->msg->partition);
                int64_t ts                   = rd_kafka_message_timestamp(r->msg, NULL);
                if (!part)
                        continue;
                if (!r->exempt)
                        enricher_dedupe_add_id(&part->dd, &r->dedupe_id, ts);
                txn_count(e, r, now, ts);
                /* Forced DLQ entries are done with once committed. */
                for (size_t k = 0; k < e->nforce;)
                        if (txn_force_is(&e->force[k], r->msg))
                                e->force[k] = e->force[--e->nforce];
                        else
                                k++;
        }
        /* The committed positions: a set kept over a rebalance is checked against
         * them. */
        for (int k = 0; b->offsets && k < b->offsets->cnt; k++) {
                struct enricher_part *part =
                    enricher_part_find(e, b->offsets->elems[k].partition);
                if (part && b->offsets->elems[k].offset > part->next_offset)
                        part->next_offset = b->offsets->elems[k].offset;
        }
        for (size_t i = 0; i < b->nstate; i++) {
                if (enricher_state_tombstone(&b->recs[b->state_recs[i]]))
                        atomic_fetch_add(&e->m.state_tombstones, 1);
                else
                        atomic_fetch_add(&e->m.state_documents, 1);
        }
        atomic_fetch_add(&e->m.state_skipped_not_found, b->state_skipped);
        enricher_parts_count(e);
        if (b->n) /* not the idle commit past transaction markers */
                dmetrics_hist_observe_us(&e->m.batch_size,
                                         (unsigned long long)b->n * 1000000ULL);
}
