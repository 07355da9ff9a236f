/* fuzz_record.c - libFuzzer target for the enricher's raw-record decoding: payload
 * parsing, the dedupe key and the output topic name derived from the event. */
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
        dpayload_parse(&p, size ? (const char *)data : "", size);
        key = enricher_dedupe_key(m, p.id);
        free(key);
        if (p.event) {
                topic = enricher_out_topic("duro.events.{event}", p.event);
                free(topic);
        }
        dpayload_free(&p);
        return 0;
}
