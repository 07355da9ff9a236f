/* fuzz_graphql.c - libFuzzer target for GraphQL answers: classification of the HTTP
 * answer (status taken from the first byte) and the enricher's connection parsing for
 * both kinds. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dgql.h"
#include "enricher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_found(void *opaque, const char *id, json_t *node)
{
        (void)id;
        (void)node;
        (*(int *)opaque)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const long statuses[] = {200, 200, 200, 401, 403, 429, 500, 503};
        struct dgql_result res;
        long status      = size ? statuses[data[0] % 8] : 200;
        const char *body = (const char *)(size ? data + 1 : data);
        size_t len       = size ? size - 1 : 0;

        dgql_classify(&res, status, body, len, size > 2 ? "3" : NULL);
        if (res.data) {
                for (int kind = DWIRE_KIND_ITEM; kind <= DWIRE_KIND_CHANGE_ORDER;
                     kind++) {
                        int n = 0, has_next = 0;
                        char *cursor = NULL;
                        (void)enricher_pull_parse(res.data, (enum dwire_kind)kind,
                                                  fuzz_found, &n, &has_next, &cursor);
                        free(cursor);
                }
        }
        dgql_result_clear(&res);
        return 0;
}
