/* dwire.h - the names on the wire, in one place: the Kafka record headers the two
 * programs and their commands write and read, the resource kinds and the DLQ's error
 * classes. A reader of the topics (docs/architecture.md, schemas/asyncapi.yaml) sees
 * exactly these strings.
 *
 * Every function here is pure and may be called from any thread. */
#ifndef DWIRE_H
#define DWIRE_H

#include <stddef.h>
#include <stdint.h>

/* Headers of a raw record (duro.webhooks.raw), written by the bridge. */
#define DWIRE_H_EVENT        "duro-event"
#define DWIRE_H_EVENT_ID     "duro-event-id"
#define DWIRE_H_WEBHOOK_ID   "duro-webhook-id"
#define DWIRE_H_SIGNATURE    "duro-signature"
#define DWIRE_H_RECEIVED_AT  "received-at"
#define DWIRE_H_CONTENT_TYPE "content-type"
#define DWIRE_H_INVALID      "duro-invalid"    /* signed but invalid: why */
#define DWIRE_H_REDRIVE_ID   "duro-redrive-id" /* written by `dlq redrive` */
/* The resource the record is about, from the writer's event table: its kind
 * ("item", "change_order", "unknown"); the record's key is its id. The enricher
 * trusts both rather than derive them again. */
#define DWIRE_H_RESOURCE_KIND "duro-resource-kind"
/* Written by writers other than the bridge: "redrive", "snapshot", "reconcile". */
#define DWIRE_H_ORIGIN "duro-origin"
/* The run of `duro-enricher snapshot` that wrote the ping. */
#define DWIRE_H_SNAPSHOT_ID "duro-snapshot-id"

/* W3C trace context, on the raw record (from the webhook request, or a new trace) and
 * continued on every record written for it (dtrace.h, dce.h). */
#define DWIRE_H_TRACEPARENT "traceparent"
#define DWIRE_H_TRACESTATE  "tracestate"

/* CloudEvents attributes in binary content mode, on output, state and DLQ records
 * (dce.h; content-type is the datacontenttype). */
#define DWIRE_H_CE_SPECVERSION  "ce_specversion"
#define DWIRE_H_CE_ID           "ce_id"
#define DWIRE_H_CE_SOURCE       "ce_source"
#define DWIRE_H_CE_TYPE         "ce_type"
#define DWIRE_H_CE_TIME         "ce_time"
#define DWIRE_H_CE_SUBJECT      "ce_subject"
#define DWIRE_H_CE_PARTITIONKEY "ce_partitionkey"

/* Headers of an output record (duro.events.<event>). */
#define DWIRE_H_IDEMPOTENCY_KEY "idempotency-key"

/* Headers a DLQ record (duro.webhooks.dlq) adds to the raw record's. */
#define DWIRE_H_ERROR_CLASS      "error-class"
#define DWIRE_H_ERROR_MESSAGE    "error-message"
#define DWIRE_H_ATTEMPTS         "attempts"
#define DWIRE_H_SOURCE_TOPIC     "source-topic"
#define DWIRE_H_SOURCE_PARTITION "source-partition"
#define DWIRE_H_SOURCE_OFFSET    "source-offset"

#define DWIRE_CONTENT_JSON "application/json"
/* The content type of a DLQ record whose value is not JSON. */
#define DWIRE_CONTENT_BYTES "application/octet-stream"

/* The metadata of the raw-topic offsets the enricher commits: the timestamp (ms) of
 * the last record processed before the offset, as the text {"last_ts":<ms>} with its
 * terminating NUL (clients that read metadata as a C string, Python's among them, read
 * past the end of one without). The dedupe rebuild starts from it. */
#define DWIRE_OFFSET_META_SIZE 40

/* Writes the metadata for last_ts into buf (DWIRE_OFFSET_META_SIZE bytes); returns its
 * length, the NUL included. */
int dwire_offset_meta_format(char *buf, int64_t last_ts);

/* Reads last_ts from metadata (len bytes, not NUL-terminated). Returns 0, or -1 when
 * it is absent or not ours (e.g. committed by another tool). */
int dwire_offset_meta_parse(const void *meta, size_t len, int64_t *last_ts);

/* A record of the progress topic (duro.enricher.progress): per raw partition the
 * enricher works on, the next offset to process and the timestamp of the last record
 * processed, written in every transaction. Key "<group>:<raw topic>:<partition>",
 * value {"next_offset":<n>,"last_ts":<ms>}. Read when a partition has no committed
 * offset (they expire). */
#define DWIRE_PROGRESS_VALUE_SIZE 80

/* Writes the value into buf (DWIRE_PROGRESS_VALUE_SIZE bytes); returns its length. */
int dwire_progress_format(char *buf, int64_t next_offset, int64_t last_ts);

/* Reads a value (len bytes). Returns 0, or -1 when it is not one. */
int dwire_progress_parse(const void *value, size_t len, int64_t *next_offset,
                         int64_t *last_ts);

/* The kind of resource an event names (resource.kind of an enriched record). */
enum dwire_kind {
        DWIRE_KIND_UNKNOWN      = 0,
        DWIRE_KIND_ITEM         = 1, /* a component, pulled with components.graphql */
        DWIRE_KIND_CHANGE_ORDER = 2, /* pulled with change_orders.graphql */
};
#define DWIRE_NKINDS 3

/* "unknown", "item", "change_order". */
const char *dwire_kind_name(enum dwire_kind k);

/* The state topic of kind: tmpl (DURO_STATE_TOPIC_TEMPLATE) with its first "{kind}"
 * replaced by the kind's name. malloc'd; NULL when out of memory. */
char *dwire_state_topic(const char *tmpl, enum dwire_kind kind);

/* Reads a kind's name (len bytes) into *k. Returns 0, or -1 when it is none of them. */
int dwire_kind_parse(const char *name, size_t len, enum dwire_kind *k);

/* The error-class header of a DLQ record. */
enum dwire_dlq_class {
        DWIRE_DLQ_INVALID_PAYLOAD  = 0,
        DWIRE_DLQ_NO_TOPIC         = 1,
        DWIRE_DLQ_PRODUCE_REJECTED = 2,
        DWIRE_DLQ_RESOURCE_ERROR   = 3,
};
#define DWIRE_NDLQ_CLASSES 4

/* "invalid-payload", "no-topic", "produce-rejected", "resource-error". */
const char *dwire_dlq_class_name(enum dwire_dlq_class c);

/* The class named name, or -1 when it names none. */
int dwire_dlq_class_parse(const char *name);

#endif
