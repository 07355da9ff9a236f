/* enricher_out.c - every record the enricher produces, built in one place: the output
 * record (topic name from the template, key, headers, and the enriched value of schema
 * duro.enriched.v1, docs/architecture.md), the state record (schema duro.state.v1, or
 * a tombstone) and the DLQ record (the raw record with the error headers added). */
#include "enricher.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbuf.h"
#include "dce.h"
#include "dkafka.h"
#include "dlog.h"
#include "dtime.h"
#include "dwire.h"

static const char *out_status_name(enum enricher_status s)
{
        switch (s) {
        case ENRICHER_ST_FOUND:
                return "found";
        case ENRICHER_ST_NOT_FOUND:
                return "not_found";
        case ENRICHER_ST_DELETED:
                return "deleted";
        case ENRICHER_ST_UNSUPPORTED:
                return "unsupported";
        case ENRICHER_ST_PENDING:
        case ENRICHER_ST_ERROR:
                break;
        }
        return "error";
}

char *enricher_out_topic(const char *tmpl, const char *event)
{
        const char *p = strstr(tmpl, "{event}");
        struct dbuf b;
        int rc = 0;

        dbuf_init(&b, 4096);
        if (!p)
                return strdup(tmpl);
        rc |= dbuf_append(&b, tmpl, (size_t)(p - tmpl));
        for (const char *c = event; *c; c++) {
                char ch = (char)tolower((unsigned char)*c);
                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                      ch == '.' || ch == '_' || ch == '-'))
                        ch = '_';
                rc |= dbuf_append(&b, &ch, 1);
        }
        rc |= dbuf_append(&b, p + 7, strlen(p + 7));
        if (rc) {
                dbuf_free(&b);
                return NULL;
        }
        return dbuf_take(&b, NULL);
}

/* The "received-at" header, or the record timestamp. */
static void out_received_at(const rd_kafka_message_t *msg, char *buf, size_t size)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *v            = NULL;
        size_t len               = 0;

        if (!rd_kafka_message_headers(msg, &hdrs) &&
            !rd_kafka_header_get_last(hdrs, DWIRE_H_RECEIVED_AT, &v, &len) && v &&
            len < size) {
                memcpy(buf, v, len);
                buf[len] = '\0';
                return;
        }
        dtime_format_ms(buf, size, rd_kafka_message_timestamp(msg, NULL));
}

/* Appends s as a JSON string, or null when s is NULL. */
static int out_str(struct dbuf *b, const char *s)
{
        char stack[256], *esc = stack;
        size_t len, cap, n;
        int rc;

        if (!s)
                return dbuf_append(b, "null", 4);
        len = strlen(s);
        if (len > (SIZE_MAX - 1) / 6)
                return -1;
        cap = len * 6 + 1; /* the longest escape, \u00XX, is 6 bytes for 1 */
        if (cap > sizeof(stack) && !(esc = malloc(cap)))
                return -1;
        n  = dlog_json_escape(esc, cap, s, len);
        rc = dbuf_append(b, "\"", 1);
        rc |= dbuf_append(b, esc, n);
        rc |= dbuf_append(b, "\"", 1);
        if (esc != stack)
                free(esc);
        return rc;
}

/* Appends a JSON value serialised by jansson, or null. */
static int out_json(struct dbuf *b, const json_t *v)
{
        char *s;
        int rc;

        if (!v)
                return dbuf_append(b, "null", 4);
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
                return -1;
        rc = dbuf_append(b, s, strlen(s));
        free(s);
        return rc;
}

/* Appends the item's document: its text made when it was pulled, or null. */
static int out_document(struct dbuf *b, const struct enricher_rec *rec)
{
        const struct enricher_item *it = rec->item;

        if (rec->status != ENRICHER_ST_FOUND || !it)
                return dbuf_append(b, "null", 4);
        if (it->doc_text)
                return dbuf_append(b, it->doc_text, it->doc_len);
        return out_json(b, it->doc);
}

#define OUT_LIT(b, lit) dbuf_append((b), (lit), sizeof(lit) - 1)

char *enricher_out_build(const struct enricher_rec *rec, const char *raw_topic,
                         const char *received_at, const char *enriched_at, size_t *len)
{
        struct dbuf b;
        int rc = 0;

        dbuf_init(&b, 0);
        rc |= OUT_LIT(&b, "{\"schema\":\"duro.enriched.v1\",\"idempotency_key\":");
        rc |= out_str(&b, rec->event_id ? rec->event_id : rec->dedupe_key);
        rc |= OUT_LIT(&b, ",\"event\":{\"id\":");
        rc |= out_str(&b, rec->event_id);
        rc |= OUT_LIT(&b, ",\"type\":");
        rc |= out_str(&b, rec->event);
        rc |= OUT_LIT(&b, ",\"webhook_id\":");
        rc |= out_str(&b, rec->webhook_id);
        rc |= OUT_LIT(&b, ",\"created_at\":");
        rc |= out_str(&b, rec->created_at);
        rc |= OUT_LIT(&b, ",\"data\":");
        rc |= out_json(&b, json_object_get(rec->payload, "data"));
        rc |= OUT_LIT(&b, "},\"resource\":{\"kind\":");
        rc |= out_str(&b, dwire_kind_name(rec->kind));
        rc |= OUT_LIT(&b, ",\"id\":");
        rc |= out_str(&b, rec->resource_id ? rec->resource_id : "");
        rc |= OUT_LIT(&b, ",\"status\":");
        rc |= out_str(&b, out_status_name(rec->status));
        rc |= OUT_LIT(&b, "},\"document\":");
        rc |= out_document(&b, rec);
        rc |= OUT_LIT(&b, ",\"received_at\":");
        rc |= out_str(&b, received_at);
        rc |= OUT_LIT(&b, ",\"enriched_at\":");
        rc |= out_str(&b, enriched_at);
        rc |= OUT_LIT(&b, ",\"source\":{\"topic\":");
        rc |= out_str(&b, raw_topic);
        rc |= dbuf_appendf(&b, ",\"partition\":%d,\"offset\":%lld}}",
                           (int)rec->msg->partition, (long long)rec->msg->offset);
        if (rc) {
                dbuf_free(&b);
                return NULL;
        }
        return dbuf_take(&b, len);
}

/* The output value of rec with the times taken now. */
static char *out_value(const struct enricher *e, const struct enricher_rec *rec,
                       size_t *len)
{
        char received[64], enriched[40];

        out_received_at(rec->msg, received, sizeof(received));
        dtime_format_ms(enriched, sizeof(enriched), dtime_now_ms());
        return enricher_out_build(rec, e->cfg.raw_topic, received, enriched, len);
}

static void out_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
        if (value)
                rd_kafka_header_add(h, name, -1, value, -1);
}

/* Adds to h what every record written for r carries: a span of r's trace (with the
 * raw record's tracestate) and, unless DURO_CLOUDEVENTS is false, the CloudEvents
 * attributes (dce.h): ce_id r's dedupe key and suffix, ce_type prefix and name.
 * Returns 0, or -1 when out of memory or randomness. */
/* The last header called name of m, NUL-terminated in buf (size bytes), or NULL when
 * absent or longer than buf (never a truncated value). */
static const char *out_header_exact(const rd_kafka_message_t *m, const char *name,
                                    char *buf, size_t size)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *v            = NULL;
        size_t len               = 0;

        if (rd_kafka_message_headers(m, &hdrs) ||
            rd_kafka_header_get_last(hdrs, name, &v, &len) || !v || len >= size ||
            memchr(v, '\0', len))
                return NULL;
        memcpy(buf, v, len);
        buf[len] = '\0';
        return buf;
}

static int out_wire(const struct enricher *e, const struct enricher_rec *r,
                    rd_kafka_headers_t *h, const char *suffix, const char *type_prefix,
                    const char *type_name, const void *key, size_t key_len)
{
        char state[DTRACE_STATE_MAX + 1], stack[1024], run[512], webhook[512];
        struct dtrace parent, span;
        struct dce_event ev;
        const char *wh, *snap;
        char *source = stack;
        size_t need;
        int rc;

        dce_trace_get(r->msg, &parent, state, sizeof(state));
        if (dtrace_child(&r->trace, &span))
                return -1;
        dce_trace_put(h, &span, state);
        if (!e->cfg.cloudevents)
                return 0;
        wh   = r->webhook_id ? r->webhook_id
                             : out_header_exact(r->msg, DWIRE_H_WEBHOOK_ID, webhook,
                                                sizeof(webhook));
        snap = r->exempt
                   ? out_header_exact(r->msg, DWIRE_H_SNAPSHOT_ID, run, sizeof(run))
                   : NULL;
        /* the longest it can be: every byte of an id percent-encoded */
        need = strlen(e->cfg.ce_source ? e->cfg.ce_source : e->ce_base) +
               3 * ((wh ? strlen(wh) : 0) + (snap ? strlen(snap) : 0)) + 32;
        if (need > sizeof(stack) && !(source = malloc(need)))
                return -1;
        if (dce_source(source, need > sizeof(stack) ? need : sizeof(stack),
                       e->cfg.ce_source, e->ce_base, wh, snap)) {
                if (source != stack)
                        free(source);
                return -1;
        }
        memset(&ev, 0, sizeof(ev));
        ev.id               = r->dedupe_key;
        ev.id_suffix        = suffix;
        ev.source           = source;
        ev.type_prefix      = type_prefix;
        ev.type_name        = type_name ? type_name : "unknown";
        ev.time             = r->created_at;
        ev.subject          = r->resource_id;
        ev.partitionkey     = key;
        ev.partitionkey_len = key_len;
        rc                  = dce_add(h, &ev);
        if (source != stack)
                free(source);
        return rc;
}

/* The DLQ record: the raw record's key, value (copied) and headers, with why. */
static int out_dlq_record(const struct enricher *e, const struct enricher_rec *r,
                          struct dkafka_rec *out)
{
        rd_kafka_headers_t *src = NULL, *h;
        char num[32];

        h = rd_kafka_message_headers(r->msg, &src) ? rd_kafka_headers_new(8)
                                                   : rd_kafka_headers_copy(src);
        /* the record's own trace span and content type replace the raw record's */
        rd_kafka_header_remove(h, DWIRE_H_TRACEPARENT);
        rd_kafka_header_remove(h, DWIRE_H_TRACESTATE);
        rd_kafka_header_remove(h, DWIRE_H_CONTENT_TYPE);
        dce_remove(h);
        /* the value is the raw record's: JSON when it parsed */
        out_header(h, DWIRE_H_CONTENT_TYPE,
                   r->payload ? DWIRE_CONTENT_JSON : DWIRE_CONTENT_BYTES);
        out_header(h, DWIRE_H_ERROR_CLASS, dwire_dlq_class_name(r->dlq_class));
        out_header(h, DWIRE_H_ERROR_MESSAGE, r->dlq_message);
        snprintf(num, sizeof(num), "%d", r->attempts);
        out_header(h, DWIRE_H_ATTEMPTS, num);
        out_header(h, DWIRE_H_SOURCE_TOPIC, e->cfg.raw_topic);
        snprintf(num, sizeof(num), "%d", (int)r->msg->partition);
        out_header(h, DWIRE_H_SOURCE_PARTITION, num);
        snprintf(num, sizeof(num), "%lld", (long long)r->msg->offset);
        out_header(h, DWIRE_H_SOURCE_OFFSET, num);
        out->topic     = e->cfg.dlq_topic;
        out->value     = r->msg->payload;
        out->value_len = r->msg->len;
        out->key       = r->msg->key;
        out->key_len   = r->msg->key_len;
        out->headers   = h;
        out->msgflags  = RD_KAFKA_MSG_F_COPY;
        return out_wire(e, r, h, "/dlq", DCE_TYPE_DLQ,
                        dwire_dlq_class_name(r->dlq_class), r->msg->key,
                        r->msg->key_len);
}

/* The output record: keyed by the resource id (else the raw key), the enriched value
 * built here and handed to librdkafka (which frees it once delivered). */
static int out_output_record(const struct enricher *e, const struct enricher_rec *r,
                             struct dkafka_rec *out)
{
        out->value = out_value(e, r, &out->value_len);
        if (!out->value) {
                dlog_error(
                    "out of memory building the output of %s [%d] at offset %lld",
                    e->cfg.raw_topic, (int)r->msg->partition,
                    (long long)r->msg->offset);
                return -1;
        }
        out->headers = rd_kafka_headers_new(4);
        out_header(out->headers, DWIRE_H_IDEMPOTENCY_KEY,
                   r->event_id ? r->event_id : r->dedupe_key);
        out_header(out->headers, DWIRE_H_EVENT, r->event);
        out_header(out->headers, DWIRE_H_EVENT_ID, r->event_id);
        out_header(out->headers, DWIRE_H_CONTENT_TYPE, DWIRE_CONTENT_JSON);
        {
                char origin[32];
                if (dkafka_header(r->msg, DWIRE_H_ORIGIN, origin, sizeof(origin)))
                        out_header(out->headers, DWIRE_H_ORIGIN, origin);
        }
        out->topic = r->topic;
        if (r->kind != DWIRE_KIND_UNKNOWN && r->resource_id) {
                out->key     = r->resource_id;
                out->key_len = strlen(r->resource_id);
        } else {
                out->key     = r->msg->key;
                out->key_len = r->msg->key_len;
        }
        out->msgflags = RD_KAFKA_MSG_F_FREE;
        if (out_wire(e, r, out->headers, NULL, DCE_TYPE_WEBHOOK, r->event, out->key,
                     out->key_len)) {
                enricher_out_release(out);
                dlog_error("out of memory building the headers of %s [%d] at offset "
                           "%lld",
                           e->cfg.raw_topic, (int)r->msg->partition,
                           (long long)r->msg->offset);
                return -1;
        }
        return 0;
}

int enricher_out_record(const struct enricher *e, struct enricher_rec *r,
                        struct dkafka_rec *out)
{
        memset(out, 0, sizeof(*out));
        out->opaque = r;
        if (r->action == ENRICHER_ACT_DLQ && out_dlq_record(e, r, out)) {
                enricher_out_release(out);
                dlog_error("out of memory building the DLQ record of %s [%d] at offset "
                           "%lld",
                           e->cfg.raw_topic, (int)r->msg->partition,
                           (long long)r->msg->offset);
                return -1;
        }
        if (r->action == ENRICHER_ACT_DLQ)
                return 0;
        return out_output_record(e, r, out);
}

void enricher_out_release(struct dkafka_rec *out)
{
        rd_kafka_headers_destroy(out->headers);
        if (out->msgflags == RD_KAFKA_MSG_F_FREE)
                free(out->value);
}

/* The state value of r: the resource's document as of r. */
static char *out_state_value(const struct enricher *e, const struct enricher_rec *r,
                             size_t *len)
{
        char enriched[40];
        struct dbuf b;
        int rc = 0;

        dtime_format_ms(enriched, sizeof(enriched), dtime_now_ms());
        dbuf_init(&b, 0);
        rc |= OUT_LIT(&b, "{\"schema\":\"duro.state.v1\",\"kind\":");
        rc |= out_str(&b, dwire_kind_name(r->kind));
        rc |= OUT_LIT(&b, ",\"id\":");
        rc |= out_str(&b, r->resource_id);
        rc |= OUT_LIT(&b, ",\"document\":");
        rc |= out_document(&b, r);
        rc |= OUT_LIT(&b, ",\"as_of\":{\"event_id\":");
        rc |= out_str(&b, r->event_id);
        rc |= OUT_LIT(&b, ",\"event_type\":");
        rc |= out_str(&b, r->event);
        rc |= OUT_LIT(&b, ",\"created_at\":");
        rc |= out_str(&b, r->created_at);
        rc |= OUT_LIT(&b, ",\"source\":{\"topic\":");
        rc |= out_str(&b, e->cfg.raw_topic);
        rc |= dbuf_appendf(&b, ",\"partition\":%d,\"offset\":%lld}}",
                           (int)r->msg->partition, (long long)r->msg->offset);
        rc |= OUT_LIT(&b, ",\"enriched_at\":");
        rc |= out_str(&b, enriched);
        rc |= OUT_LIT(&b, "}");
        if (rc) {
                dbuf_free(&b);
                return NULL;
        }
        return dbuf_take(&b, len);
}

int enricher_out_state(const struct enricher *e, const struct enricher_rec *r,
                       struct dkafka_rec *out)
{
        char origin[32];

        memset(out, 0, sizeof(*out));
        out->opaque  = (void *)r;
        out->topic   = e->state_topic[r->kind];
        out->key     = r->resource_id;
        out->key_len = strlen(r->resource_id);
        if (!enricher_state_tombstone(r)) {
                out->value = out_state_value(e, r, &out->value_len);
                if (!out->value) {
                        dlog_error("out of memory building the state of %s",
                                   r->resource_id);
                        return -1;
                }
                out->msgflags = RD_KAFKA_MSG_F_FREE;
        }
        out->headers = rd_kafka_headers_new(4);
        out_header(out->headers, DWIRE_H_EVENT, r->event);
        out_header(out->headers, DWIRE_H_EVENT_ID, r->event_id);
        out_header(out->headers, DWIRE_H_CONTENT_TYPE, DWIRE_CONTENT_JSON);
        if (dkafka_header(r->msg, DWIRE_H_ORIGIN, origin, sizeof(origin)))
                out_header(out->headers, DWIRE_H_ORIGIN, origin);
        if (out_wire(e, r, out->headers, "/state", DCE_TYPE_STATE,
                     dwire_kind_name(r->kind), out->key, out->key_len)) {
                enricher_out_release(out);
                dlog_error("out of memory building the state headers of %s",
                           r->resource_id);
                return -1;
        }
        return 0;
}
