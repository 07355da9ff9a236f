/* enricher.h - duro-enricher internals shared by its modules.
 *
 * Modules: enricher_main.c (start-up, signals, watchdog, shutdown), enricher_batch.c
 * (the batch cycle of DESIGN §4: take, dedupe, pull, one transaction), enricher_pull.c
 * (resolving resource ids through GraphQL: batching, pagination, retries, grace
 * re-asks, splitting to pin a failure on one id), enricher_dedupe.c (the per-partition
 * dedupe set and its rebuild from the raw partition), enricher_out.c (output and DLQ
 * records), enricher_metrics.c (/metrics and /readyz). */
#ifndef ENRICHER_H
#define ENRICHER_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "dconf.h"
#include "dgql.h"
#include "dmetrics.h"
#include "dsecrets.h"
#include "dtopics.h"
#include "dwire.h"

struct enricher_config {
        char *bootstrap;
        char *raw_topic;
        char *dlq_topic;
        char *group;
        char *admin_listen;
        char *transactional_id;
        char *group_instance_id;
        char *topic_template;
        char *queries_dir;
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
        int log_level;
        struct dtopics_config topics;
};

/* The dedupe set of one input partition: 128-bit digests of dedupe keys with the raw
 * record timestamp, in an open-addressing table; pruned by stream time. */
/* A dedupe key as the set stores it: the first 128 bits of its SHA-256. Made once per
 * record (enricher_dedupe_id_of), then looked up and added as often as needed. */
struct enricher_dedupe_id {
        uint64_t d[2];
};

struct enricher_dedupe {
        struct enricher_dedupe_slot *slots;
        size_t cap; /* power of two, 0 when empty */
        size_t n;
        int64_t stream_ms; /* newest record timestamp added */
        int64_t window_ms;
};

struct enricher_part {
        int32_t partition;
        int64_t next_offset; /* first offset not yet committed; -1 unknown */
        struct enricher_dedupe dd;
        int rebuilt;
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

/* An id to resolve through GraphQL (one per distinct kind+id in a batch). */
struct enricher_item {
        enum dwire_kind kind;
        char *id;
        int grace; /* 1: re-ask after the grace period when missing */
        int grace_done;
        enum enricher_status status;
        char *doc_text; /* owned: the document when FOUND, compact JSON, written once */
        size_t doc_len;
        json_t *doc; /* owned: the document when FOUND and doc_text could not be made */
        char error[200];
        int attempts;
};

struct enricher_rec {
        rd_kafka_message_t *msg; /* owned */
        enum enricher_action action;
        char *dedupe_key;
        struct enricher_dedupe_id dedupe_id; /* of dedupe_key */
        json_t *payload;                     /* owned; NULL when not parseable */
        const char *event, *event_id, *webhook_id, *created_at; /* borrowed */
        enum dwire_kind kind;
        const char *resource_id;
        char raw_key_hash[72];
        size_t item_index;          /* of the batch's item, when pending */
        struct enricher_item *item; /* borrowed from the batch's items */
        enum enricher_status status;
        enum dwire_dlq_class dlq_class;
        char dlq_message[256];
        int attempts;
        char *topic; /* output topic */
        int failed;  /* delivery report error seen in this transaction */
        rd_kafka_resp_err_t failed_err;
};

/* A (partition, offset) to send to the DLQ on the redo, after a permanent produce
 * error. */
struct enricher_force {
        int32_t partition;
        int64_t offset;
        char message[200];
};

struct enricher_metrics {
        atomic_ullong consumed;
        atomic_ullong deduplicated;
        atomic_ullong dlq[DWIRE_NDLQ_CLASSES]; /* by enum dwire_dlq_class */
        atomic_ullong txn_committed;
        atomic_ullong txn_aborted;
        atomic_ullong pulled_ahead; /* batches taken while the previous one committed */
        atomic_ullong dedupe_size;
        struct dmetrics_hist batch_size;
        struct dmetrics_hist event_latency; /* raw record timestamp to commit */
        pthread_mutex_t lock;               /* produced per topic, lag */
        struct {
                char *topic;
                unsigned long long n;
        } produced[64];
        size_t nproduced;
        struct {
                int32_t partition;
                int64_t lag;
        } lag[256];
        size_t nlag;
};

struct batch;

struct enricher {
        struct enricher_config cfg;
        struct dconf_props props;
        struct dsecrets *api_key;
        struct dgql *gql;
        char *q_components, *q_change_orders; /* query texts */
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        rd_kafka_t *reader; /* assign-only consumer for dedupe rebuilds */
        struct enricher_part *parts;
        size_t nparts;
        int rebalanced; /* set by the rebalance callback, cleared by the cycle */
        int paused;
        struct enricher_force *force;
        size_t nforce;
        /* output topics known to exist, and recently found missing */
        struct {
                char *topic;
                int exists;
                int64_t checked_ms;
        } topics[128];
        size_t ntopics;
        struct enricher_metrics m;
        atomic_int run;
        atomic_int reload_key; /* SIGHUP seen */
        atomic_int fatal;
        atomic_int not_ready;        /* outage or auth failure */
        char not_ready_reason[200];  /* under m.lock */
        atomic_llong txn_call_since; /* monotonic ms; 0 when no transactional call */
        struct batch *ahead;         /* taken, its pull running; enricher_batch.c */
        int64_t window_ms;
};

/* enricher_dedupe.c */
void enricher_dedupe_id_of(const char *key, struct enricher_dedupe_id *id);
int enricher_dedupe_has_id(const struct enricher_dedupe *d,
                           const struct enricher_dedupe_id *id);
int enricher_dedupe_add_id(struct enricher_dedupe *d,
                           const struct enricher_dedupe_id *id, int64_t ts_ms);
/* The same for a key not yet made into an id. */
int enricher_dedupe_has(const struct enricher_dedupe *d, const char *key);
int enricher_dedupe_add(struct enricher_dedupe *d, const char *key, int64_t ts_ms);
void enricher_dedupe_clear(struct enricher_dedupe *d);
/* Rebuilds part's set from the raw partition (DESIGN §4). Returns 0 or -1. */
int enricher_dedupe_rebuild(struct enricher *e, struct enricher_part *part);
/* The dedupe key of a raw record: event id, sha256:<hex>, plus the redrive id. Caller
 * frees. */
char *enricher_dedupe_key(const rd_kafka_message_t *msg, const char *event_id);

/* enricher_pull.c */
enum enricher_pull_result {
        ENRICHER_PULL_DONE   = 0,
        ENRICHER_PULL_AGAIN  = 1, /* still working: call again */
        ENRICHER_PULL_OUTAGE = 2, /* the API is down: pause, back off, retry */
        ENRICHER_PULL_AUTH   = 3, /* the key was refused: not ready until it works */
};
struct enricher_pull;
struct enricher_pull *enricher_pull_new(struct enricher *e, struct enricher_item *items,
                                        size_t n);
/* Works for up to budget_ms. */
enum enricher_pull_result enricher_pull_step(struct enricher_pull *p, long budget_ms);
/* After an OUTAGE or AUTH result: start the failed work again. */
void enricher_pull_retry(struct enricher_pull *p);
const char *enricher_pull_error(const struct enricher_pull *p);
void enricher_pull_free(struct enricher_pull *p);
/* Parses one GraphQL answer's connection for kind (exposed for tests and fuzzing):
 * calls found(opaque, id, node) for each node; sets *has_next and *cursor (malloc'd or
 * NULL). Returns 0, or -1 when the answer does not have the expected shape. */
int enricher_pull_parse(json_t *data, enum dwire_kind kind,
                        void (*found)(void *opaque, const char *id, json_t *node),
                        void *opaque, int *has_next, char **cursor);

/* enricher_out.c */
/* Output topic for an event name from the template ("{event}" replaced by the lower-
 * cased, sanitised name). Caller frees. */
char *enricher_out_topic(const char *tmpl, const char *event);
/* Builds the output value (caller frees) for rec: the envelope written as text around
 * the item's doc_text, so a document pulled once is serialised once however many
 * events name it. Strings are escaped as dlog_json_escape() does. NULL when out of
 * memory. */
char *enricher_out_value(const struct enricher *e, const struct enricher_rec *rec,
                         size_t *len);
/* The same with the times and the raw topic given (enricher_out_value's core). */
char *enricher_out_build(const struct enricher_rec *rec, const char *raw_topic,
                         const char *received_at, const char *enriched_at, size_t *len);
const char *enricher_status_name(enum enricher_status s);

/* enricher_batch.c */
int enricher_batch_cycle(struct enricher *e);
/* At shutdown: drops the batch pulled ahead (not committed, so it is read again). */
void enricher_batch_drop_ahead(struct enricher *e);
void enricher_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts, void *opaque);
/* The state of an assigned partition (NULL when not assigned). */
struct enricher_part *enricher_part_find(struct enricher *e, int32_t partition);
/* Finds or adds it. */
struct enricher_part *enricher_part_get(struct enricher *e, int32_t partition);
void enricher_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* enricher_main.c: creates topic when missing (provisioning on). Returns 0 or -1. */
int enricher_create_topic(struct enricher *e, const char *topic, long long retention_ms,
                          char *err, size_t errsize);

/* cli/cli_dlq.c (declared with the other commands in cli/cli.h): `duro-enricher dlq
 * ...` (argv[0] is "dlq"). */
int cli_dlq_main(int argc, char **argv);

/* enricher_metrics.c */
void enricher_metrics_init(struct enricher_metrics *m);
void enricher_metrics_produced(struct enricher_metrics *m, const char *topic);
int enricher_metrics_render(void *opaque, struct dbuf *out);
int enricher_ready(void *opaque, char *reason, size_t reasonsize);
/* Refreshes the consumer-lag gauge (at most once a second; at most a second's wait). */
void enricher_update_lag(struct enricher *e);
void enricher_set_not_ready(struct enricher *e, const char *reason);
void enricher_set_ready(struct enricher *e);

#endif
