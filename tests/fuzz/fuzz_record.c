/* fuzz_record.c - libFuzzer target for the enricher's raw-record decoding: payload
 * parsing, the dedupe key, the output topic name derived from the event, and the
 * enriched value built from what was parsed, which must always be JSON. */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpayload.h"
#include "enricher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* A zeroed block stands in for librdkafka's private message struct. */
        static unsigned char block[4096];
        rd_kafka_message_t *m = (rd_kafka_message_t *)block;
        struct dpayload p;
        char *key, *topic;

        memset(block, 0, sizeof(block));
        m->payload = (void *)data;
        m->len     = size;
        dpayload_parse(&p, NULL, size ? (const char *)data : "", size);
        key = enricher_dedupe_key(m, p.id);
        free(key);
        if (p.event) {
                topic = enricher_out_topic("duro.events.{event}", p.event);
                free(topic);
        }
        if (p.root) {
                /* the value for this record, its received-at taken from the raw bytes
                 * too (a header is any bytes); document: the item's text, or null */
                struct enricher_item item = {0};
                struct enricher_rec rec   = {0};
                char received[64], *value;
                size_t n = size < sizeof(received) - 1 ? size : sizeof(received) - 1,
                       vlen;
                json_error_t jerr;
                json_t *back;

                memcpy(received, data, n);
                received[n]     = '\0';
                item.status     = ENRICHER_ST_FOUND;
                item.doc_text   = (char *)"{\"id\":\"comp_1\"}";
                item.doc_len    = strlen(item.doc_text);
                rec.msg         = m;
                rec.payload     = p.root;
                rec.event       = p.event;
                rec.event_id    = p.id;
                rec.webhook_id  = p.webhook_id;
                rec.created_at  = p.created_at;
                rec.kind        = p.kind;
                rec.resource_id = p.item_id ? p.item_id : p.change_order_id;
                rec.item        = &item;
                rec.status      = size % 2 ? ENRICHER_ST_FOUND : ENRICHER_ST_NOT_FOUND;
                rec.dedupe_key  = received;
                value = enricher_out_build(&rec, "duro.webhooks.raw", received,
                                           "2024-12-20T10:30:00.180Z", &vlen);
                if (!value)
                        abort();
                back = json_loadb(value, vlen, 0, &jerr);
                if (!back || !json_is_object(json_object_get(back, "event")))
                        abort(); /* not JSON: an escaping bug */
                json_decref(back);
                free(value);
        }
        dpayload_free(&p);
        return 0;
}
