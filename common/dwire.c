/* dwire.c - the names of dwire.h's enums, and the committed offsets' metadata. */
#include "dwire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DWIRE_META_PREFIX "{\"last_ts\":"

static const char *const dwire_kinds[DWIRE_NKINDS]             = {"unknown", "item",
                                                                  "change_order"};
static const char *const dwire_dlq_classes[DWIRE_NDLQ_CLASSES] = {
    "invalid-payload", "no-topic", "produce-rejected", "resource-error"};

const char *dwire_kind_name(enum dwire_kind k)
{
        return (unsigned)k < DWIRE_NKINDS ? dwire_kinds[k] : dwire_kinds[0];
}

int dwire_kind_parse(const char *name, size_t len, enum dwire_kind *k)
{
        for (int i = 0; i < DWIRE_NKINDS; i++)
                if (strlen(dwire_kinds[i]) == len &&
                    !memcmp(dwire_kinds[i], name, len)) {
                        *k = (enum dwire_kind)i;
                        return 0;
                }
        return -1;
}

const char *dwire_dlq_class_name(enum dwire_dlq_class c)
{
        return (unsigned)c < DWIRE_NDLQ_CLASSES ? dwire_dlq_classes[c] : "unknown";
}

int dwire_dlq_class_parse(const char *name)
{
        for (int i = 0; i < DWIRE_NDLQ_CLASSES; i++)
                if (!strcmp(dwire_dlq_classes[i], name))
                        return i;
        return -1;
}

int dwire_offset_meta_format(char *buf, int64_t last_ts)
{
        return snprintf(buf, DWIRE_OFFSET_META_SIZE, DWIRE_META_PREFIX "%" PRId64 "}",
                        last_ts) +
               1;
}

int dwire_offset_meta_parse(const void *meta, size_t len, int64_t *last_ts)
{
        const char *s = meta;
        size_t plen   = sizeof(DWIRE_META_PREFIX) - 1, i;
        int64_t v     = 0;

        while (s && len && !s[len - 1])
                len--; /* some clients count a C string's NUL */
        if (!s || len < plen + 2 || memcmp(s, DWIRE_META_PREFIX, plen) ||
            s[len - 1] != '}')
                return -1;
        for (i = plen; i < len - 1; i++) {
                if (s[i] < '0' || s[i] > '9' || i - plen >= 18)
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        if (i == plen)
                return -1;
        *last_ts = v;
        return 0;
}

int dwire_progress_format(char *buf, int64_t next_offset, int64_t last_ts)
{
        return snprintf(buf, DWIRE_PROGRESS_VALUE_SIZE,
                        "{\"next_offset\":%" PRId64 ",\"last_ts\":%" PRId64 "}",
                        next_offset, last_ts);
}

int dwire_progress_parse(const void *value, size_t len, int64_t *next_offset,
                         int64_t *last_ts)
{
        char buf[DWIRE_PROGRESS_VALUE_SIZE], tail;
        long long n, t;

        if (!value || len == 0 || len >= sizeof(buf))
                return -1;
        memcpy(buf, value, len);
        buf[len] = '\0';
        if (sscanf(buf, "{\"next_offset\":%lld,\"last_ts\":%lld%c", &n, &t, &tail) !=
                3 ||
            tail != '}' || n < 0)
                return -1;
        if (strchr(buf, '}') != buf + len - 1)
                return -1;
        *next_offset = n;
        *last_ts     = t;
        return 0;
}

char *dwire_state_topic(const char *tmpl, enum dwire_kind kind)
{
        const char *p = strstr(tmpl, "{kind}");
        const char *k = dwire_kind_name(kind);
        size_t pre, klen, post;
        char *out;

        if (!p)
                return strdup(tmpl);
        pre  = (size_t)(p - tmpl);
        klen = strlen(k);
        post = strlen(p + 6);
        out  = malloc(pre + klen + post + 1);
        if (!out)
                return NULL;
        memcpy(out, tmpl, pre);
        memcpy(out + pre, k, klen);
        memcpy(out + pre + klen, p + 6, post + 1);
        return out;
}
