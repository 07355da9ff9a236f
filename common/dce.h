/* dce.h - the wire conventions of the records the enricher and the commands write:
 * CloudEvents in binary content mode (Kafka protocol binding 1.0.2: one ce_<attribute>
 * header per attribute, the value untouched) and W3C trace context in the headers
 * traceparent and tracestate (dtrace.h).
 *
 * Header names are in dwire.h. Functions add to or take from headers the caller owns;
 * nothing here keeps a pointer. Thread-safe. */
#ifndef DCE_H
#define DCE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "dtrace.h"

/* The attributes of one record's event. NULL members are left out (but id, source and
 * type, which the caller must give). */
struct dce_event {
        const char *id;          /* the record's dedupe key */
        const char *id_suffix;   /* appended to id: "/state", "/dlq", or NULL */
        const char *source;      /* from dce_source */
        const char *type_prefix; /* DCE_TYPE_WEBHOOK, DCE_TYPE_STATE or DCE_TYPE_DLQ */
        const char *type_name;   /* the event, kind or error class (lower-cased here) */
        const char *time;        /* RFC 3339; left out when it is not */
        const char *subject;     /* the resource id */
        const void
            *partitionkey; /* the record's key; left out unless printable UTF-8 */
        size_t partitionkey_len;
};

#define DCE_TYPE_WEBHOOK "com.durohub.webhook."
#define DCE_TYPE_STATE   "com.durohub.state."
#define DCE_TYPE_DLQ     "com.durohub.dlq."

/* Adds ce_specversion, ce_id, ce_source, ce_type and those of ce_time, ce_subject and
 * ce_partitionkey that ev gives to h (content-type is the caller's). Returns 0, or -1
 * when out of memory. */
int dce_add(rd_kafka_headers_t *h, const struct dce_event *ev);

/* Removes every ce_* header from h. */
void dce_remove(rd_kafka_headers_t *h);

/* The base of the default source: the scheme and authority of api_url
 * ("https://api.durohub.com"). malloc'd; NULL when api_url has no "://" or when out
 * of memory. */
char *dce_source_base(const char *api_url);

/* Writes the source of a record into buf (size bytes). For a snapshot's record (run
 * not NULL): configured + "/snapshot/" + run when configured (DURO_CE_SOURCE) is
 * given, else base + "/snapshot/" + run. For any other: configured when given, else
 * base + "/webhooks/" + webhook_id (base + "/webhooks" without one). The
 * ids are percent-encoded but for URI unreserved characters. Returns 0, or -1 when it
 * does not fit. */
int dce_source(char *buf, size_t size, const char *configured, const char *base,
               const char *webhook_id, const char *snapshot_run);

/* Reads the record's traceparent (and tracestate into state, state_size bytes, ""
 * when absent or invalid). Returns 0 when a valid traceparent was found, else -1
 * (state is then ""). */
int dce_trace_get(const rd_kafka_message_t *m, struct dtrace *t, char *state,
                  size_t state_size);

/* Replaces h's traceparent and tracestate by t's and state (left out when NULL or
 * ""). */
void dce_trace_put(rd_kafka_headers_t *h, const struct dtrace *t, const char *state);

/* The trace a writer of m's successors continues: m's own, or a new one when m has
 * none that is valid, then a child span of it in *child. Returns 0, or -1 when there
 * is no randomness. */
int dce_trace_continue(const rd_kafka_message_t *m, struct dtrace *child, char *state,
                       size_t state_size);

#endif
