/* enricher.h - duro-enricher's shared types, and the functions its files call in one
 * another, grouped by the file that defines them.
 *
 * Modules: docs/architecture.md.
 *
 * Each function says the thread that calls it:
 *   main thread: start-up, the batch cycle, every transactional call and every call on
 *     the consumers (so also librdkafka's callbacks, which are served inside them);
 *   the pull-ahead thread: the GraphQL pull of the batch taken ahead, while the main
 *     thread commits the previous batch (enricher_cycle.c starts and joins it);
 *   the admin thread: libmicrohttpd's, answering /readyz and /metrics (dadmin.h);
 *   any thread: safe from all of them. */
#ifndef ENRICHER_H
#define ENRICHER_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "dconf.h"
#include "devtable.h"
#include "dgql.h"
#include "dmetrics.h"
#include "dsecrets.h"
#include "dtopics.h"
#include "dtrace.h"
#include "dwire.h"

struct dkafka_rec;
struct enricher_force; /* enricher_txn.c */
struct enricher_pull;  /* enricher_pull.c */

/* The settings (enricher_main.c's table); strings are owned, freed by dconf_free(). */
struct enricher_config {
        char *bootstrap;
        char *raw_topic;
        char *dlq_topic;
        char *group;
        char *admin_listen;
        char *transactional_id;
        char *group_instance_id;
        char *assignment; /* DURO_ASSIGNMENT: eager, cooperative, consumer */
        char *topic_template;
        char *queries_dir;
        char *event_table; /* DURO_EVENT_TABLE; NULL: the installed one */
        char *api_url;
        char *api_key;      /* DURO_API_KEY (environment only) */
        char *api_key_file; /* DURO_API_KEY_FILE */
        char *api_org;
        char *api_lib;
        long long dedupe_window_s;
        long long batch_max;
        long long batch_wait_ms;
        int pull_ahead;
        long long gql_max_ids;
        long long gql_concurrency;
        long long gql_rate;
        long long gql_timeout_ms;
        long long gql_max_attempts;
        long long not_found_grace_ms;
        int cloudevents;      /* DURO_CLOUDEVENTS: ce_* headers (dce.h) */
        char *ce_source;      /* DURO_CE_SOURCE; NULL: from the API URL */
        int state_topics;     /* DURO_STATE_TOPICS */
        char *state_template; /* DURO_STATE_TOPIC_TEMPLATE: {kind} */
        char *progress_topic; /* DURO_PROGRESS_TOPIC */
        int progress_ignore;  /* DURO_PROGRESS_IGNORE */
        int log_level;
        struct dtopics_config topics;
};

/* A dedupe key as the set stores it: the first 128 bits of its SHA-256. Made once per
 * record (enricher_dedupe_id_of), then looked up and added as often as needed. */
struct enricher_dedupe_id {
        uint64_t d[2];
};

/* The dedupe set of one input partition: 128-bit digests of dedupe keys with the raw
 * record timestamp, in an open-addressing table; pruned by stream time. It owns slots
 * (enricher_dedupe_clear frees them). */
struct enricher_dedupe {
        struct enricher_dedupe_slot *slots;
        size_t cap; /* power of two, 0 when empty */
        size_t n;
        int64_t stream_ms; /* newest record timestamp added */
        int64_t window_ms;
};

/* Where an assigned partition's dedupe set stands (enricher_rebuild.c moves it on). */
enum enricher_part_state {
        ENRICHER_PART_NEW     = 0, /* nothing known yet */
        ENRICHER_PART_READING = 1, /* being read from the raw partition */
        ENRICHER_PART_READY   = 2, /* complete up to next_offset */
};

/* An assigned input partition (the table e->parts of enricher_parts.c, which owns it
 * and its dedupe set). Its records are processed only when enricher_part_ready(): its
 * committed offset read for this assignment, and its set complete. */
struct enricher_part {
        int32_t partition;
        int64_t next_offset; /* first offset not yet committed; -1 unknown */
        struct enricher_dedupe dd;
        enum enricher_part_state state;
        int checked; /* its committed offset read since it was (re)assigned */
        /* READING: the set holds [rb_start, rb_pos) of [rb_start, rb_end) */
        int64_t rb_start, rb_end, rb_pos;
        int64_t rb_began_ms; /* monotonic */
        int64_t rb_heard_ms; /* monotonic: the reader last gave something */
        uint64_t rb_records;
        /* a position the idle commit found the group's committed offset not to match
         * (-1: none): not asked about again until the position moves */
        int64_t idle_refused_pos;
};

enum enricher_status {
        ENRICHER_ST_PENDING     = 0,
        ENRICHER_ST_FOUND       = 1,
        ENRICHER_ST_NOT_FOUND   = 2,
        ENRICHER_ST_DELETED     = 3,
        ENRICHER_ST_UNSUPPORTED = 4,
        ENRICHER_ST_ERROR       = 5, /* resource-error: goes to the DLQ */
};

/* A record's fate in its batch. */
enum enricher_action {
        ENRICHER_ACT_DUPLICATE = 0, /* dropped; its offset still advances */
        ENRICHER_ACT_OUTPUT    = 1,
        ENRICHER_ACT_DLQ       = 2,
};

/* An id to resolve through GraphQL (one per distinct kind+id in a batch). The batch
 * owns id, doc_text and doc (enricher_batch_free frees them). */
struct enricher_item {
        enum dwire_kind kind;
        char *id;
        int grace; /* 1: re-ask after the grace period when missing */
        int grace_done;
        enum enricher_status status;
        char *doc_text; /* the document when FOUND, compact JSON, written once */
        size_t doc_len;
        json_t *doc; /* the document when FOUND and doc_text could not be made */
        char error[200];
        int attempts;
};

/* A record of a batch. The batch owns msg, payload, dedupe_key and topic
 * (enricher_batch_free frees them); the other pointers borrow from payload or from the
 * batch's items. */
struct enricher_rec {
        rd_kafka_message_t *msg;
        enum enricher_action action;
        char *dedupe_key;
        struct enricher_dedupe_id dedupe_id; /* of dedupe_key */
        json_t *payload;                     /* NULL when not parseable */
        const char *event, *event_id, *webhook_id, *created_at;
        enum dwire_kind kind;
        const char *resource_id;            /* borrowed from payload, or key_id */
        char *key_id;                       /* the raw key, when its kind was stamped */
        const struct devtable_entry *entry; /* in e->events; NULL when none */
        struct dtrace trace; /* the raw record's trace, or one started for it: every
                                record written for it continues it */
        size_t item_index;   /* of the batch's item, when pending */
        struct enricher_item *item; /* set once the pull is done */
        enum enricher_status status;
        enum dwire_dlq_class dlq_class;
        char dlq_message[256];
        int attempts;
        char *topic; /* output topic */
        int failed;  /* delivery report error seen in this transaction */
        rd_kafka_resp_err_t failed_err;
        int exempt; /* a snapshot's ping: never looked up in nor added to the dedupe
                       sets (enricher_dedupe_exempt) */
        /* its resource's state record (when it is the batch's last event for it):
         * what the transaction's delivery report said of that record */
        int state_failed;
        rd_kafka_resp_err_t state_err;
};

/* A batch: the records taken together, the ids they name, and what the cycle, the
 * consumer and the transaction code keep of it. Made and freed by enricher_batch.c:
 * it owns recs (and what each record owns), items (and what each owns), slots, seen,
 * offsets and pull. The main thread handles it, but for its pull while the pull-ahead
 * thread runs that. */
struct enricher_batch {
        struct enricher_rec *recs;
        size_t n, cap;
        struct enricher_item *items;
        size_t nitems, items_cap;
        size_t *slots;               /* hash index of items: index + 1, 0 when free */
        size_t nslots;               /* a power of two, at least twice nitems */
        struct enricher_dedupe seen; /* keys first seen in this batch */
        /* to commit: first unprocessed offset per partition, fixed before the next
         * batch is taken (enricher_consume_offsets) */
        rd_kafka_topic_partition_list_t *offsets;
        struct enricher_pull *pull; /* while the pull runs */
        int64_t pull_start_ms;
        /* pulling ahead, while the previous batch commits (enricher_cycle.c, which
         * joins the thread before the batch is freed) */
        pthread_t thread;
        int threaded;
        atomic_int stop;
        int64_t t_produced, t_offsets; /* monotonic ms, for the debug timing line */
        int64_t first_ms; /* monotonic ms when its first record was taken */
        int sorted;       /* classified and its pull begun (else still being taken) */
        /* the state records (enricher_state.c): the index of each resource's last
         * event, and the live not_found answers that write none */
        size_t *state_recs;
        size_t nstate;
        size_t state_skipped;
};

/* The consumer lag of one partition, as /metrics shows it. */
struct enricher_lag {
        int32_t partition;
        int64_t lag;
};

#define ENRICHER_MAX_LAG 256

/* What /metrics shows (enricher_metrics.c owns it: enricher_metrics_init and
 * enricher_metrics_destroy, which frees the produced topics and the lock). Counters
 * are atomics, counted where the event happens; lock guards produced and lag. */
struct enricher_metrics {
        atomic_ullong consumed;
        atomic_ullong deduplicated;
        atomic_ullong dlq[DWIRE_NDLQ_CLASSES]; /* by enum dwire_dlq_class */
        atomic_ullong txn_committed;
        atomic_ullong txn_aborted;
        atomic_ullong pulled_ahead; /* batches taken while the previous one committed */
        atomic_ullong dedupe_size;
        /* the dedupe rebuilds (enricher_rebuild.c): partitions whose set was kept over
         * a rebalance, found empty, or read; the records read and the time it took */
        atomic_ullong rebuild_kept, rebuild_empty, rebuild_read;
        atomic_ullong rebuild_records, rebuild_ms;
        atomic_ullong rebuilding; /* partitions not ready yet (a gauge) */
        /* the state topics (enricher_state.c): documents and tombstones written, and
         * live not_found answers that wrote nothing */
        atomic_ullong state_documents, state_tombstones, state_skipped_not_found;
        struct dmetrics_hist batch_size;
        struct dmetrics_hist event_latency; /* raw record timestamp to commit */
        pthread_mutex_t lock;
        struct {
                char *topic;
                unsigned long long n;
        } produced[64];
        size_t nproduced;
        struct enricher_lag lag[ENRICHER_MAX_LAG];
        size_t nlag;
};

/* Whether the Duro API answers, for /readyz (enricher_ready.c owns it: init and
 * destroy). lock guards reason. */
struct enricher_ready {
        pthread_mutex_t lock;
        atomic_int api_down; /* outage or the key refused */
        char reason[200];
        atomic_int state_down; /* a state or the progress topic missing or refused */
        char state_reason[300];
};

/* An output topic's entry in the cache of enricher_topics.c (which owns topic). */
#define ENRICHER_MAX_TOPICS 128
struct enricher_topic {
        char *topic;
        int exists;
        int64_t checked_ms; /* monotonic */
};

/* The enricher: one, made by main. Each member is kept by the file named beside it,
 * which frees what it owns. */
struct enricher {
        struct enricher_config cfg;                 /* enricher_main.c */
        struct dconf_props props;                   /* enricher_main.c */
        struct dsecrets *api_key;                   /* enricher_main.c */
        struct dgql *gql;                           /* enricher_main.c */
        char *q_components, *q_change_orders;       /* query texts; enricher_main.c */
        char *q_components_op, *q_change_orders_op; /* their operation names */
        struct devtable events; /* the event table (enricher_main.c); read-only */
        rd_kafka_t *consumer;   /* enricher_main.c */
        rd_kafka_t *producer;   /* enricher_main.c */
        rd_kafka_t *reader;     /* the dedupe rebuilds' consumer; enricher_main.c */
        int64_t window_ms;      /* the dedupe window; enricher_main.c */
        struct enricher_part *parts; /* enricher_parts.c */
        size_t nparts;
        /* the partitions of the assignment an eager rebalance revoked, kept until the
         * next assignment takes back theirs (enricher_parts.c) */
        struct enricher_part *kept;
        size_t nkept;
        int32_t reading;        /* the partition the reader is assigned, -1 none */
        int64_t check_after_ms; /* retry reading committed offsets (monotonic) */
        /* set by the rebalance callback, cleared by the cycle before it waits */
        int rebalanced;
        int paused; /* enricher_consume.c; cleared by the rebalance callback */
        struct enricher_force *force; /* to send to the DLQ on the redo; txn.c */
        size_t nforce;
        struct enricher_topic topics[ENRICHER_MAX_TOPICS]; /* enricher_topics.c */
        size_t ntopics;
        struct enricher_metrics m;    /* enricher_metrics.c */
        struct enricher_ready ready;  /* enricher_ready.c */
        struct enricher_batch *ahead; /* taken, its pull running; enricher_cycle.c */
        int64_t idle_since_ms; /* monotonic: when the cycles began taking nothing, 0
                                  while records come; enricher_cycle.c */
        /* DURO_ASSIGNMENT (enricher_main.c): a rebalance adds or takes away partitions
         * (cooperative, consumer) rather than revoking all and assigning anew (eager);
         * consumer: KIP-848's group.protocol */
        int incremental, protocol_consumer;
        char *ce_base;   /* the default ce_source's base: DURO_API_URL's scheme and host
                            (enricher_main.c) */
        int seek_failed; /* a put-back seek failed since the last assignment: the
                            positions are not to be trusted (no idle commit) */
        char *
            state_topic[DWIRE_NKINDS]; /* by kind, NULL for unknown; enricher_state.c */
        long long
            state_max_bytes[DWIRE_NKINDS]; /* their max.message.bytes, -1 unknown */
        int state_started; /* the start-up check passed (no creating after it) */
        /* a state or the progress topic refused a record as missing or not authorised
         * (the delivery report callback sets it; enricher_txn.c clears it at begin) */
        atomic_int state_gone;
        /* per kind, the last id Duro returned: what a probe asks for (enricher_pull.c,
         * on the thread running the pull; two pulls never run at once) */
        char probe_ids[DWIRE_NKINDS][128];
        /* Shared with the other threads: */
        atomic_int run;        /* 0: stop (the signal thread, or main) */
        atomic_int reload_key; /* SIGHUP seen (the signal thread) */
        atomic_int fatal;      /* a fatal Kafka error (the error callback) */
        /* monotonic ms when the Kafka call running began, 0 when none: a
         * transactional call (enricher_txn.c) or, at shutdown, closing a client
         * (enricher_main.c); the watchdog thread and /metrics read it */
        atomic_llong kafka_call_since;
        /* 1 once shutdown has closed every Kafka client: the watchdog's end (run goes
         * to 0 at the signal, before the last calls that may hang) */
        atomic_int closed;
};

/* enricher_state.c - main thread. */
/* The state topic names (from DURO_STATE_TOPIC_TEMPLATE) and, at start-up, checks
 * that they and the progress topic exist and are compacted (created first when
 * provisioning is on); warns when a state topic's partitions differ from the output
 * topics'. Returns 0 or -1 with err naming the topic. */
int enricher_state_start(struct enricher *e, char *err, size_t errsize);
void enricher_state_free(struct enricher *e);
/* Chooses b's state records: per (kind, id) among its outputs, the last event; a live
 * not_found writes none (counted in b->state_skipped). Returns 0 or -1. */
int enricher_state_plan(const struct enricher *e, struct enricher_batch *b);
/* 1 when r (a resource's last event in its batch) leaves a tombstone: a delete, or
 * a snapshot's ping answered not_found. */
int enricher_state_tombstone(const struct enricher_rec *r);
/* 1 when topic is one of the state topics or the progress topic. */
int enricher_state_is_ours(const struct enricher *e, const char *topic);
/* While a state or the progress topic is missing or refused: checks it again (at most
 * once a second). Returns 1 while it still is (the caller waits, paused), 0 once all
 * are back. */
int enricher_state_still_down(struct enricher *e);
/* Looks for the state and progress topics now (after an aborted transaction: a topic
 * deleted under it need not have said so). Returns 1 when one is missing or refused
 * (then not ready, and the next batch waits), 0 otherwise. */
int enricher_state_check_now(struct enricher *e);

/* enricher_progress.c - main thread. */
/* Reads the progress topic for the n raw partitions parts: next[i] and last_ts[i] get
 * where partition parts[i] resumes and its last record's timestamp (-1 when the topic
 * has nothing for it). Returns 0, or -1 when the topic could not be read to its end
 * (what was found is filled in all the same). */
int enricher_progress_read(struct enricher *e, const int32_t *parts, size_t n,
                           int64_t *next, int64_t *last_ts);

/* enricher_cycle.c - main thread. */
/* Runs one batch: take, dedupe, pull, one transaction. Returns 0, or -1 after a fatal
 * transactional error. */
int enricher_cycle_run(struct enricher *e);
/* At shutdown: drops the batch pulled ahead (not committed, so it is read again). */
void enricher_cycle_drop_ahead(struct enricher *e);

/* enricher_batch.c - main thread. */
/* An empty batch, or NULL when out of memory. */
struct enricher_batch *enricher_batch_new(void);
/* Frees b and all it owns; its pull-ahead thread must have been joined. */
void enricher_batch_free(struct enricher_batch *b);
/* Adds the record m (the batch takes it). Returns 0, or -1 when out of memory (m is
 * still the caller's). */
int enricher_batch_add(struct enricher_batch *b, rd_kafka_message_t *m);
/* Releases the records taken so far (the batch stays usable, empty). */
void enricher_batch_drop_recs(struct enricher_batch *b);
/* Parses each record, drops duplicates (keys already committed, or seen earlier in
 * this batch or in prev), routes invalid and forced ones to the DLQ, and gathers the
 * ids to pull as items. prev, when not NULL, is the batch before this one, whose
 * transaction has not committed yet (if it aborts, this batch is dropped too).
 * Returns 0 or -1 (out of memory, or a record of a partition not assigned). */
int enricher_batch_classify(struct enricher *e, struct enricher_batch *b,
                            const struct enricher_batch *prev);
/* After the pull: copies each item's outcome to its records. */
void enricher_batch_apply_items(struct enricher_batch *b);
/* Gives each output record its topic; one whose topic does not exist goes to the
 * DLQ. */
void enricher_batch_route_topics(struct enricher *e, struct enricher_batch *b);
/* For each partition of b, the offset just after its last record (a new list, the
 * caller destroys it). */
rd_kafka_topic_partition_list_t *
enricher_batch_next_offsets(const struct enricher *e, const struct enricher_batch *b);

/* enricher_consume.c - main thread. */
/* Takes records into b: waits up to DURO_BATCH_WAIT_MS from its first record to fill
 * it, or, with nowait, takes only what the consumer already holds. Returns the number
 * of records, 0 when none (or the records taken were dropped by a rebalance). */
size_t enricher_consume_take(struct enricher *e, struct enricher_batch *b, int nowait);
/* Seeks every partition of b that is still assigned back to the first offset b holds
 * for it, so that nothing taken but not committed is skipped. */
void enricher_consume_rewind(struct enricher *e, const struct enricher_batch *b);
/* b is dropped uncommitted (shutdown, a failed step, a rebalance): its records go
 * back (enricher_consume_rewind), but after an eager rebalance, whose assignment
 * starts at the committed offsets; after an incremental one the partitions a wait
 * paused are resumed. */
void enricher_consume_dropped(struct enricher *e, const struct enricher_batch *b);
/* Pauses every assigned partition (staying in the group) unless paused already. */
void enricher_consume_pause(struct enricher *e);
/* While paused: serves the group's callbacks; a record returned is dropped (the
 * resume seeks past b). */
void enricher_consume_serve_paused(struct enricher *e, int timeout_ms);
/* Seeks partition, when still assigned, to offset (a record taken but not processed
 * goes back; a partition resumes where the progress topic says). */
void enricher_consume_seek(struct enricher *e, int32_t partition, int64_t offset);
/* Resumes the partitions and seeks each partition of b to just after its last record
 * (the pause discarded what was prefetched). */
void enricher_consume_resume(struct enricher *e, const struct enricher_batch *b);
/* Fixes b's offsets to commit (b->offsets): the first unprocessed offset per partition.
 * Called before the next batch is taken. */
void enricher_consume_offsets(struct enricher *e, struct enricher_batch *b);
/* When idle (every record delivered is committed): the ready partitions whose position
 * is past their committed offset, i.e. only control records (transaction markers) lie
 * between, with those positions and the committed metadata. A new list the caller
 * destroys, or NULL when there is none (or the committed offsets could not be read). */
rd_kafka_topic_partition_list_t *enricher_consume_idle_offsets(struct enricher *e);

/* enricher_parts.c - main thread. */
/* The state of an assigned partition (NULL when not assigned). */
struct enricher_part *enricher_part_find(struct enricher *e, int32_t partition);
/* 1 when part's records may be processed: its committed offset read for this
 * assignment and its dedupe set complete. part may be NULL (not assigned: 0). */
int enricher_part_ready(const struct enricher_part *part);
/* Forgets every partition, kept ones too, and frees their dedupe sets (shutdown). */
void enricher_parts_clear(struct enricher *e);
/* librdkafka's rebalance callback, on the main thread inside rd_kafka_consumer_poll:
 * replaces the partition table (a revoked partition's set is kept until the next
 * assignment, which may hand it back), pauses what it assigns until each set is ready,
 * and sets e->rebalanced. */
void enricher_parts_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t *parts, void *opaque);
/* Pauses (pause 1) or resumes one assigned partition on the consumer. */
void enricher_parts_pause(struct enricher *e, int32_t partition, int pause);
/* Republishes the dedupe gauges (keys held, partitions not ready). */
void enricher_parts_count(struct enricher *e);
/* Refreshes the consumer-lag gauge (at most once a second; at most a second's wait):
 * asks Kafka first, then publishes the numbers (enricher_metrics_set_lag). */
void enricher_parts_update_lag(struct enricher *e);

/* enricher_txn.c - main thread. */
enum enricher_txn_result {
        ENRICHER_TXN_COMMITTED = 0,
        ENRICHER_TXN_REDO      = 1, /* aborted: rewind and take the batch again */
        ENRICHER_TXN_FATAL     = -1,
};
/* init_transactions (retried while running). Returns 0 or -1 with err set. */
int enricher_txn_init(struct enricher *e, char *err, size_t errsize);
/* One transaction for b: its outputs and DLQ records in offset order, its offsets,
 * the commit. */
enum enricher_txn_result enricher_txn_run(struct enricher *e, struct enricher_batch *b);
/* After the commit: the dedupe sets, the committed positions, the metrics, the forced
 * DLQ entries done with. */
void enricher_txn_committed(struct enricher *e, const struct enricher_batch *b);
/* 1 (msg set) when the record at m's partition and offset was rejected for good by
 * its output topic and goes to the DLQ. */
int enricher_txn_forced(const struct enricher *e, const rd_kafka_message_t *m,
                        char *msg, size_t size);
/* librdkafka's delivery report callback, on the main thread inside rd_kafka_poll and
 * the transactional calls. */
void enricher_txn_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
/* Frees the forced-DLQ list (shutdown). */
void enricher_txn_destroy(struct enricher *e);

/* enricher_topics.c - main thread. */
/* 1 when the output topic exists (cached: found ones for good, missing ones for a few
 * seconds); creates it when missing and provisioning is on. */
int enricher_topics_exists(struct enricher *e, const char *topic);
/* With provisioning on: creates the raw topic, the DLQ and the outputs of the known
 * events when missing. Returns 0 or -1 with err set. */
int enricher_topics_create_all(struct enricher *e, char *err, size_t errsize);
/* Frees the cache (shutdown). */
void enricher_topics_free(struct enricher *e);

/* enricher_dedupe.c - a set is used by one thread at a time (the main thread, for the
 * partitions' sets and the batches'); the key and id functions are pure (any
 * thread). */
void enricher_dedupe_id_of(const char *key, struct enricher_dedupe_id *id);
int enricher_dedupe_has_id(const struct enricher_dedupe *d,
                           const struct enricher_dedupe_id *id);
int enricher_dedupe_add_id(struct enricher_dedupe *d,
                           const struct enricher_dedupe_id *id, int64_t ts_ms);
/* Asks the CPU for id's slot ahead of a look-up or an add (a hint only). */
void enricher_dedupe_prefetch(const struct enricher_dedupe *d,
                              const struct enricher_dedupe_id *id);
/* The same for a key not yet made into an id (add: the rebuild; has: the tests). */
int enricher_dedupe_has(const struct enricher_dedupe *d, const char *key);
int enricher_dedupe_add(struct enricher_dedupe *d, const char *key, int64_t ts_ms);
void enricher_dedupe_clear(struct enricher_dedupe *d);
/* The dedupe key of a raw record: its duro-event-id header when it has a non-empty
 * one, else event_id (the body's id; NULL when none), else sha256:<hex of the body>;
 * then "#<redrive id>" when it has a duro-redrive-id header. Caller frees. */
char *enricher_dedupe_key(const rd_kafka_message_t *msg, const char *event_id);
/* 1 when msg has a non-empty duro-event-id header (its key needs no parse). */
/* 1 when msg is a snapshot's ping (header duro-origin: snapshot): its event id is
 * unique per run and the run's progress forbids writing it twice, so it is kept out
 * of the dedupe sets (a library's worth of ids would crowd them for a window). */
int enricher_dedupe_exempt(const rd_kafka_message_t *msg);
int enricher_dedupe_key_in_headers(const rd_kafka_message_t *msg);
/* The id of enricher_dedupe_key(msg, event_id), made without allocating for a key
 * of usual length. Returns 0, or -1 when out of memory. */
int enricher_dedupe_record_id(const rd_kafka_message_t *msg, const char *event_id,
                              struct enricher_dedupe_id *id);
/* Makes room for n keys at once (a rebuild that knows how many records it reads).
 * Returns 0 or -1. */
int enricher_dedupe_reserve(struct enricher_dedupe *d, size_t n);

/* enricher_rebuild.c - main thread. */
/* Moves the assigned partitions' dedupe sets on, for about budget_ms: reads the
 * committed offsets of the partitions (re)assigned (a set kept over a rebalance stays
 * when its offset did not move), then reads the raw partitions of the sets to rebuild,
 * from the committed offset's timestamp minus the window up to that offset; a partition
 * is resumed when its set is ready. Returns 1 while there is reading to do (call again
 * soon), else 0. */
int enricher_rebuild_step(struct enricher *e, long budget_ms);
/* Stops the reader (shutdown). */
void enricher_rebuild_stop(struct enricher *e);

/* enricher_pull.c - a pull is used by one thread at a time: the main thread, or the
 * pull-ahead thread while it runs (dgql's callbacks run inside enricher_pull_step and
 * enricher_pull_free, on that thread). */
enum enricher_pull_result {
        ENRICHER_PULL_DONE   = 0,
        ENRICHER_PULL_AGAIN  = 1, /* still working: call again */
        ENRICHER_PULL_OUTAGE = 2, /* the API is down: pause, back off, retry */
        ENRICHER_PULL_AUTH   = 3, /* the key was refused: not ready until it works */
};
/* A pull of the pending items (borrowed: they must outlive it). Free with
 * enricher_pull_free(). */
struct enricher_pull *enricher_pull_new(struct enricher *e, struct enricher_item *items,
                                        size_t n);
/* Works for up to budget_ms. */
enum enricher_pull_result enricher_pull_step(struct enricher_pull *p, long budget_ms);
/* After an OUTAGE or AUTH result: start the failed work again. */
void enricher_pull_retry(struct enricher_pull *p);
const char *enricher_pull_error(const struct enricher_pull *p);
void enricher_pull_free(struct enricher_pull *p);
/* Any thread (exposed for tests and fuzzing): parses one GraphQL answer's connection
 * for kind: calls found(opaque, id, node) for each node; sets *has_next and *cursor
 * (malloc'd or NULL). Returns 0, or -1 when the answer does not have the expected
 * shape. */
int enricher_pull_parse(json_t *data, enum dwire_kind kind,
                        void (*found)(void *opaque, const char *id, json_t *node),
                        void *opaque, int *has_next, char **cursor);

/* enricher_out.c - any thread (pure but for the clock). */
/* Output topic for an event name from the template ("{event}" replaced by the lower-
 * cased, sanitised name). Caller frees. */
char *enricher_out_topic(const char *tmpl, const char *event);
/* The output value of rec (caller frees): the envelope written as text around the
 * item's doc_text, so a document pulled once is serialised once however many events
 * name it. Strings are escaped as dlog_json_escape() does. NULL when out of memory. */
char *enricher_out_build(const struct enricher_rec *rec, const char *raw_topic,
                         const char *received_at, const char *enriched_at, size_t *len);
/* Fills out with the record to produce for r: its output record, or its DLQ record
 * (the raw record's key, value and headers, plus why). out->opaque is r. Returns 0, or
 * -1 when out of memory (logged). What out holds is the caller's until
 * dkafka_produce() takes it; enricher_out_release() frees it when the produce fails. */
/* Builds the state record of r, its resource's last event in the batch, into out: on
 * the kind's state topic, keyed by the resource id, the document (schema
 * duro.state.v1) or a tombstone (enricher_state_tombstone). Returns 0 or -1. */
int enricher_out_state(const struct enricher *e, const struct enricher_rec *r,
                       struct dkafka_rec *out);
int enricher_out_record(const struct enricher *e, struct enricher_rec *r,
                        struct dkafka_rec *out);
void enricher_out_release(struct dkafka_rec *out);

/* enricher_ready.c */
/* Main thread, before the admin thread starts / after it stops. */
void enricher_ready_init(struct enricher_ready *r);
void enricher_ready_destroy(struct enricher_ready *r);
/* Main thread: the Duro API is down or refuses the key (reason says which): not ready
 * until enricher_ready_api_up(). */
void enricher_ready_api_down(struct enricher *e, const char *reason);
void enricher_ready_api_up(struct enricher *e);
void enricher_ready_state_down(struct enricher *e, const char *reason);
void enricher_ready_state_up(struct enricher *e);
/* The admin thread (/readyz, and /metrics' gauge): returns 1 when ready, else 0 with
 * the reason (a dadmin_ready_fn). */
int enricher_ready(void *opaque, char *reason, size_t reasonsize);

/* enricher_metrics.c */
/* Main thread, before the admin thread starts / after it stops. */
void enricher_metrics_init(struct enricher_metrics *m);
void enricher_metrics_destroy(struct enricher_metrics *m);
/* Main thread: one more record committed to topic. */
void enricher_metrics_produced(struct enricher_metrics *m, const char *topic);
/* Main thread: replaces the lag gauge's samples with lag[0..n). */
void enricher_metrics_set_lag(struct enricher_metrics *m,
                              const struct enricher_lag *lag, size_t n);
/* The admin thread: /metrics (a dadmin_metrics_fn). */
int enricher_metrics_render(void *opaque, struct dbuf *out);

/* cli/cli_dlq.c, cli/cli_snapshot.c and cli/cli_reconcile.c (declared with the other
 * commands in cli/cli.h): `duro-enricher dlq ...`, `duro-enricher snapshot ...` and
 * `duro-enricher reconcile ...` (argv[0] is the command's word). */
int cli_dlq_main(int argc, char **argv);
int cli_snapshot_main(int argc, char **argv);
int cli_reconcile_main(int argc, char **argv);

#endif
