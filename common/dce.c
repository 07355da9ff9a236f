/* dce.c - CloudEvents binary-mode headers and W3C trace-context headers on Kafka
 * records (dce.h). */
#include "dce.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsig.h"
#include "dtime.h"
#include "dwire.h"

#define DCE_PREFIX "ce_"

/* Whether s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points
 * past U+10FFFF) without control characters (C0, DEL, C1). */
static int dce_printable(const unsigned char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                unsigned char c = s[i];
                unsigned long cp;
                size_t k;
                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
                                return 0;
                        i++;
                        continue;
                }
                k  = (c & 0xe0) == 0xc0   ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
                cp = k == 2 ? c & 0x1fu : k == 3 ? c & 0x0fu : c & 0x07u;
                if (!k || i + k > n)
                        return 0;
                for (size_t j = 1; j < k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return 0;
                        cp = (cp << 6) | (s[i + j] & 0x3fu);
                }
                if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
                    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
                        return 0;
                i += k;
        }
        return 1;
}

static int dce_put(rd_kafka_headers_t *h, const char *name, const char *value)
{
        return rd_kafka_header_add(h, name, -1, value, -1) ? -1 : 0;
}

int dce_add(rd_kafka_headers_t *h, const struct dce_event *ev)
{
        char stack[256], *buf = stack, hashed[DSIG_SHA256_KEY_SIZE];
        const char *id = ev->id, *name = ev->type_name;
        size_t idlen, typlen, need;
        int64_t ms;
        int rc = 0;

        /* CloudEvents strings are printable Unicode: an id that is not is named by its
         * hash, a type by "unknown" */
        if (!dce_printable((const unsigned char *)id, strlen(id))) {
                dsig_sha256_key(id, strlen(id), hashed);
                id = hashed;
        }
        if (!dce_printable((const unsigned char *)name, strlen(name)))
                name = "unknown";
        idlen  = strlen(id) + (ev->id_suffix ? strlen(ev->id_suffix) : 0);
        typlen = strlen(ev->type_prefix) + strlen(name);
        need   = (idlen > typlen ? idlen : typlen) + 1;
        if (need > sizeof(stack) && !(buf = malloc(need)))
                return -1;
        rc |= dce_put(h, DWIRE_H_CE_SPECVERSION, "1.0");
        snprintf(buf, need, "%s%s", id, ev->id_suffix ? ev->id_suffix : "");
        rc |= dce_put(h, DWIRE_H_CE_ID, buf);
        rc |= dce_put(h, DWIRE_H_CE_SOURCE, ev->source);
        {
                size_t p = strlen(ev->type_prefix), i;
                memcpy(buf, ev->type_prefix, p);
                for (i = 0; name[i]; i++) {
                        char c     = name[i];
                        buf[p + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
                }
                buf[p + i] = '\0';
        }
        rc |= dce_put(h, DWIRE_H_CE_TYPE, buf);
        if (ev->time && !dtime_parse_rfc3339(ev->time, strlen(ev->time), &ms))
                rc |= dce_put(h, DWIRE_H_CE_TIME, ev->time);
        if (ev->subject && *ev->subject &&
            dce_printable((const unsigned char *)ev->subject, strlen(ev->subject)))
                rc |= dce_put(h, DWIRE_H_CE_SUBJECT, ev->subject);
        if (ev->partitionkey && ev->partitionkey_len &&
            dce_printable(ev->partitionkey, ev->partitionkey_len))
                rc |=
                    rd_kafka_header_add(h, DWIRE_H_CE_PARTITIONKEY, -1,
                                        ev->partitionkey, (ssize_t)ev->partitionkey_len)
                        ? -1
                        : 0;
        if (buf != stack)
                free(buf);
        return rc;
}

void dce_remove(rd_kafka_headers_t *h)
{
        const char *name;
        const void *v;
        size_t n;

        /* Removing shifts the rest: look again from the start after each. */
        for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &v, &n);) {
                char stack[128], *copy = stack;
                size_t len = strlen(name);
                if (strncmp(name, DCE_PREFIX, sizeof(DCE_PREFIX) - 1)) {
                        i++;
                        continue;
                }
                /* name is the header's own: copy it before the header goes */
                if (len >= sizeof(stack) && !(copy = malloc(len + 1))) {
                        i++; /* out of memory: left in place */
                        continue;
                }
                memcpy(copy, name, len + 1);
                rd_kafka_header_remove(h, copy);
                if (copy != stack)
                        free(copy);
                i = 0;
        }
}

char *dce_source_base(const char *api_url)
{
        const char *p = api_url ? strstr(api_url, "://") : NULL;
        size_t n;
        char *out;

        if (!p || p == api_url)
                return NULL;
        p += 3;
        {
                /* scheme:// and the host, without a user:password@ before it */
                size_t scheme = (size_t)(p - api_url), auth = strcspn(p, "/?#");
                const char *at = NULL;
                for (size_t i = 0; i < auth; i++)
                        if (p[i] == '@')
                                at = p + i;
                if (at) {
                        auth -= (size_t)(at + 1 - p);
                        p = at + 1;
                }
                n = scheme + auth;
                if (!(out = malloc(n + 1)))
                        return NULL;
                memcpy(out, api_url, scheme);
                memcpy(out + scheme, p, auth);
                out[n] = '\0';
        }
        return out;
}

/* Appends s percent-encoded (all but URI unreserved characters) at buf[*o]. */
static int dce_encode(char *buf, size_t size, size_t *o, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                int plain       = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                            c == '_' || c == '~';
                if (*o + (plain ? 1 : 3) >= size)
                        return -1;
                if (plain) {
                        buf[(*o)++] = (char)c;
                } else {
                        buf[(*o)++] = '%';
                        buf[(*o)++] = hex[c >> 4];
                        buf[(*o)++] = hex[c & 15];
                }
        }
        buf[*o] = '\0';
        return 0;
}

static int dce_append(char *buf, size_t size, size_t *o, const char *s)
{
        size_t n = strlen(s);

        if (*o + n >= size)
                return -1;
        memcpy(buf + *o, s, n + 1);
        *o += n;
        return 0;
}

int dce_source(char *buf, size_t size, const char *configured, const char *base,
               const char *webhook_id, const char *snapshot_run)
{
        size_t o = 0;

        if (!size)
                return -1;
        buf[0] = '\0';
        if (configured) {
                if (dce_append(buf, size, &o, configured))
                        return -1;
        } else {
                if (dce_append(buf, size, &o, base ? base : ""))
                        return -1;
                if (!snapshot_run) {
                        if (dce_append(buf, size, &o, "/webhooks"))
                                return -1;
                        if (webhook_id && *webhook_id &&
                            (dce_append(buf, size, &o, "/") ||
                             dce_encode(buf, size, &o, webhook_id)))
                                return -1;
                }
        }
        if (snapshot_run && (dce_append(buf, size, &o, "/snapshot/") ||
                             dce_encode(buf, size, &o, snapshot_run)))
                return -1;
        return 0;
}

int dce_trace_get(const rd_kafka_message_t *m, struct dtrace *t, char *state,
                  size_t state_size)
{
        rd_kafka_headers_t *h = NULL;
        const void *v         = NULL;
        const char *why;
        size_t n = 0;

        if (state && state_size)
                state[0] = '\0';
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, DWIRE_H_TRACEPARENT, &v, &n) || !v ||
            dtrace_parse(v, n, t, &why))
                return -1;
        if (state && state_size &&
            !rd_kafka_header_get_last(h, DWIRE_H_TRACESTATE, &v, &n) && v &&
            n < state_size && !dtrace_state_valid(v, n, &why)) {
                memcpy(state, v, n);
                state[n] = '\0';
        }
        return 0;
}

void dce_trace_put(rd_kafka_headers_t *h, const struct dtrace *t, const char *state)
{
        char tp[DTRACE_PARENT_SIZE];

        rd_kafka_header_remove(h, DWIRE_H_TRACEPARENT);
        rd_kafka_header_remove(h, DWIRE_H_TRACESTATE);
        dtrace_format(t, tp);
        rd_kafka_header_add(h, DWIRE_H_TRACEPARENT, -1, tp, -1);
        if (state && *state)
                rd_kafka_header_add(h, DWIRE_H_TRACESTATE, -1, state, -1);
}

int dce_trace_continue(const rd_kafka_message_t *m, struct dtrace *child, char *state,
                       size_t state_size)
{
        struct dtrace parent;

        if (dce_trace_get(m, &parent, state, state_size))
                return dtrace_new(child);
        return dtrace_child(&parent, child);
}
