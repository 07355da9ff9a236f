/* fuzz_webhook.c - libFuzzer target for the bridge's parse-and-verify path: the
 * signature header, HMAC verification against two secrets, payload validation and
 * the raw record key (by the prefix rules and through the shipped event table); and
 * the request's trace context: each part read as a traceparent (a valid one must come
 * back the same through dtrace_format, but for the flag bits version 00 leaves
 * undefined) and as a tracestate, and the first line as a webhook id in a CloudEvents
 * source (percent-encoded into a small buffer). Input: first line = X-Duro-Signature
 * value (and traceparent / tracestate), rest = body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dce.h"
#include "devtable.h"
#include "dpayload.h"
#include "dsecrets.h"
#include "dsig.h"
#include "dtrace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s[0..len) (not NUL-terminated) as a traceparent and a tracestate. */
static void trace_context(const char *s, size_t len)
{
        struct dtrace t, back, child;
        char buf[DTRACE_PARENT_SIZE];
        const char *why = NULL;

        if (dtrace_parse(s, len, &t, &why) == 0) {
                dtrace_format(&t, buf);
                if (dtrace_parse(buf, strlen(buf), &back, &why) ||
                    strcmp(back.trace_id, t.trace_id) ||
                    strcmp(back.span_id, t.span_id) ||
                    back.flags != (t.flags & 0x01u) || memcmp(buf + 3, s + 3, 50))
                        abort(); /* what was read does not come back (but for the
                                    flags' bits version 00 leaves undefined) */
                if (dtrace_child(&t, &child) == 0 && strcmp(child.trace_id, t.trace_id))
                        abort();
        } else if (!why) {
                abort(); /* refused without saying why */
        }
        why = NULL;
        if (dtrace_state_valid(s, len, &why) ? !why : len > DTRACE_STATE_MAX)
                abort(); /* refused without why, or too long accepted */
}

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
        {
                /* the line alone, without a NUL after it, so that reading past it
                 * is seen */
                char *line = malloc(hlen ? hlen : 1);
                if (line) {
                        memcpy(line, data, hlen);
                        trace_context(line, hlen);
                        free(line);
                }
        }
        trace_context(body, blen);
        {
                char source[64];
                (void)dce_source(source, sizeof(source), NULL,
                                 "https://api.durohub.com", header, NULL);
                (void)dce_source(source, sizeof(source), "urn:x", NULL, NULL, header);
        }
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
