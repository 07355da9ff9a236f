/* enricher_out.c - the records the enricher writes: the output topic name from the
 * template, and the enriched value (schema duro.enriched.v1, DESIGN §4). */
#include "enricher.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dbuf.h"
#include "dtime.h"

const char *enricher_status_name(enum enricher_status s)
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

const char *enricher_kind_name(enum enricher_kind k)
{
        switch (k) {
        case ENRICHER_KIND_ITEM:
                return "item";
        case ENRICHER_KIND_CHANGE_ORDER:
                return "change_order";
        case ENRICHER_KIND_UNKNOWN:
                break;
        }
        return "unknown";
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
            !rd_kafka_header_get_last(hdrs, "received-at", &v, &len) && v &&
            len < size) {
                memcpy(buf, v, len);
                buf[len] = '\0';
                return;
        }
        dtime_format_ms(buf, size, rd_kafka_message_timestamp(msg, NULL));
}

char *enricher_out_value(const struct enricher *e, const struct enricher_rec *rec,
                         size_t *len)
{
        char received[64], enriched[40];
        json_t *event, *v;
        json_t *doc = NULL;
        char *s;

        out_received_at(rec->msg, received, sizeof(received));
        dtime_format_ms(enriched, sizeof(enriched), dtime_now_ms());
        event =
            json_pack("{s:s?, s:s?, s:s?, s:s?, s:O?}", "id", rec->event_id, "type",
                      rec->event, "webhook_id", rec->webhook_id, "created_at",
                      rec->created_at, "data", json_object_get(rec->payload, "data"));
        if (rec->status == ENRICHER_ST_FOUND && rec->item && rec->item->doc)
                doc = rec->item->doc;
        v = json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:s}, s:O?, s:s, s:s, "
                      "s:{s:s, s:i, s:I}}",
                      "schema", "duro.enriched.v1", "idempotency_key",
                      rec->event_id ? rec->event_id : rec->dedupe_key, "event",
                      event ? event : json_object(), "resource", "kind",
                      enricher_kind_name(rec->kind), "id",
                      rec->resource_id ? rec->resource_id : "", "status",
                      enricher_status_name(rec->status), "document",
                      doc ? doc : json_null(), "received_at", received, "enriched_at",
                      enriched, "source", "topic", e->cfg.raw_topic, "partition",
                      (int)rec->msg->partition, "offset", (json_int_t)rec->msg->offset);
        if (!v)
                return NULL;
        s = json_dumps(v, JSON_COMPACT);
        json_decref(v);
        if (s && len)
                *len = strlen(s);
        return s;
}
