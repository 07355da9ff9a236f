/* fuzz_webhook.c - libFuzzer target for the bridge's parse-and-verify path: the
 * signature header, HMAC verification against two secrets, payload validation and
 * the raw record key (by the prefix rules and through the shipped event table). Input:
 * first line = X-Duro-Signature value, rest = body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devtable.h"
#include "dpayload.h"
#include "dsecrets.h"
#include "dsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct dsecrets_set *set;
        static struct devtable table;
        static int table_loaded;
        const uint8_t *nl = memchr(data, '\n', size);
        size_t hlen       = nl ? (size_t)(nl - data) : 0;
        const char *body  = (const char *)(nl ? nl + 1 : data);
        size_t blen       = nl ? size - hlen - 1 : size;
        char hashkey[DPAYLOAD_HASHKEY_SIZE];
        struct dpayload p;
        char *header = malloc(hlen + 1);

        if (!set)
                set = dsecrets_parse("whsec_one\nwhsec_two\n", 20);
        if (!table_loaded) {
                char err[700];
                if (devtable_load(&table, DURO_SOURCE_EVENT_TABLE, err, sizeof(err)))
                        abort(); /* the shipped table must load */
                table_loaded = 1;
        }
        if (!header)
                return 0;
        memcpy(header, data, hlen);
        header[hlen] = '\0';
        (void)dsig_verify(set, nl ? header : NULL, body, blen);
        dpayload_parse(&p, NULL, blen ? body : "", blen);
        (void)dpayload_key(&p, blen ? body : "", blen, hashkey);
        dpayload_free(&p);
        dpayload_parse(&p, &table, blen ? body : "", blen);
        (void)dpayload_key(&p, blen ? body : "", blen, hashkey);
        dpayload_free(&p);
        free(header);
        return 0;
}
