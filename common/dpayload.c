/* dpayload.c - Duro webhook payload validation (see dpayload.h). */
#include "dpayload.h"

#include <stdio.h>
#include <string.h>

#include "dtime.h"

enum dwire_kind dpayload_kind_of(const char *event)
{
        if (!event)
                return DWIRE_KIND_UNKNOWN;
        if (!strncmp(event, "ITEM_", 5))
                return DWIRE_KIND_ITEM;
        if (!strncmp(event, "CO_", 3))
                return DWIRE_KIND_CHANGE_ORDER;
        return DWIRE_KIND_UNKNOWN;
}

int dpayload_depth(const char *body, size_t len, int limit)
{
        int depth = 0, max = 0, in_str = 0;

        for (size_t i = 0; i < len; i++) {
                char c = body[i];
                if (in_str) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_str = 0;
                        continue;
                }
                if (c == '"') {
                        in_str = 1;
                } else if (c == '{' || c == '[') {
                        if (++depth > max) {
                                max = depth;
                                if (max > limit)
                                        return limit + 1;
                        }
                } else if (c == '}' || c == ']') {
                        depth--;
                }
        }
        return max;
}

/* Marks p invalid with the reason what + detail (truncated to fit). */
static int dpayload_invalid(struct dpayload *p, const char *what, const char *detail)
{
        p->valid = 0;
        if (snprintf(p->reason, sizeof(p->reason), "%s%s", what, detail) < 0)
                p->reason[0] = '\0';
        return -1;
}

/* Reads field name of obj: NULL when absent; *bad=1 when present but not a string. */
static const char *dpayload_str(json_t *obj, const char *name, int *bad)
{
        json_t *v = json_object_get(obj, name);

        *bad = 0;
        if (!v)
                return NULL;
        if (!json_is_string(v)) {
                *bad = 1;
                return NULL;
        }
        return json_string_value(v);
}

/* Finds p's resource through t (NULL: by the event name's prefix, as before the
 * table): entry, resource_id and kind (UNKNOWN unless the id was found); id_missing
 * when the id of one of Duro's documented events is absent. data may be anything. */
static void dpayload_resource(struct dpayload *p, const struct devtable *t,
                              json_t *data)
{
        enum dwire_kind k;

        if (!json_is_object(data))
                data = NULL;
        if (!t) {
                k              = dpayload_kind_of(p->event);
                p->resource_id = k == DWIRE_KIND_ITEM           ? p->item_id
                                 : k == DWIRE_KIND_CHANGE_ORDER ? p->change_order_id
                                                                : NULL;
                p->id_missing  = k != DWIRE_KIND_UNKNOWN && !p->resource_id;
        } else {
                p->entry       = devtable_find(t, p->event);
                p->resource_id = devtable_resource_id(p->entry, data, NULL);
                k              = p->entry ? p->entry->kind : DWIRE_KIND_UNKNOWN;
                p->id_missing  = p->entry && p->entry->id_known && !p->resource_id;
        }
        p->kind = p->resource_id ? k : DWIRE_KIND_UNKNOWN;
        if (p->id_missing) /* §3's words: only the documented events get here */
                snprintf(p->id_reason, sizeof(p->id_reason),
                         "%s event without a non-empty string data.%s",
                         k == DWIRE_KIND_ITEM ? "ITEM_*" : "CO_*",
                         k == DWIRE_KIND_ITEM ? "item_id" : "change_order_id");
}

int dpayload_parse(struct dpayload *p, const struct devtable *t, const char *body,
                   size_t len)
{
        json_error_t jerr;
        json_t *data;
        int bad;

        memset(p, 0, sizeof(*p));
        if (dpayload_depth(body, len, DPAYLOAD_MAX_DEPTH) > DPAYLOAD_MAX_DEPTH)
                return dpayload_invalid(p,
                                        "not JSON: ", "nested deeper than 64 levels");
        p->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!p->root) {
                if (json_error_code(&jerr) == json_error_duplicate_key)
                        return dpayload_invalid(p, "duplicate key: ", jerr.text);
                return dpayload_invalid(p, "not JSON: ", jerr.text);
        }
        if (!json_is_object(p->root))
                return dpayload_invalid(p, "not a JSON object", "");

        /* Borrow every field first, so that the key can use what is there even when
         * something else is wrong. */
        p->id         = dpayload_str(p->root, "id", &bad);
        int bad_id    = bad;
        p->event      = dpayload_str(p->root, "event", &bad);
        int bad_event = bad;
        p->webhook_id = dpayload_str(p->root, "webhook_id", &bad);
        int bad_wh    = bad;
        p->created_at = dpayload_str(p->root, "created_at", &bad);
        int bad_ca    = bad;
        data          = json_object_get(p->root, "data");
        if (json_is_object(data)) {
                const char *s = dpayload_str(data, "item_id", &bad);
                if (s && *s)
                        p->item_id = s;
                s = dpayload_str(data, "change_order_id", &bad);
                if (s && *s)
                        p->change_order_id = s;
        }
        if (p->id && !*p->id)
                p->id = NULL, bad_id = 1;
        /* The resource first too: an invalid body is keyed by it all the same. */
        dpayload_resource(p, t, data);
        /* Read whatever else is wrong: the bridge's maximum event age applies to an
         * invalid body too. */
        p->created_at_ok =
            p->created_at && !dtime_parse_rfc3339(p->created_at, strlen(p->created_at),
                                                  &p->created_at_ms);

        if (bad_id || !p->id)
                return dpayload_invalid(p, "field id ",
                                        bad_id ? "is not a non-empty string"
                                               : "is missing");
        if (bad_event || !p->event || !*p->event)
                return dpayload_invalid(
                    p, "field event ",
                    bad_event || p->event ? "is not a non-empty string" : "is missing");
        if (bad_wh)
                p->webhook_id = NULL; /* optional; only a string is used */
        if (bad_ca || !p->created_at)
                return dpayload_invalid(p, "field created_at ",
                                        bad_ca ? "is not a string" : "is missing");
        if (!p->created_at_ok)
                return dpayload_invalid(p, "field created_at ",
                                        "is not an RFC 3339 date-time");
        if (!data)
                return dpayload_invalid(p, "field data ", "is missing");
        if (!json_is_object(data))
                return dpayload_invalid(p, "field data ", "is not an object");
        if (p->id_missing) {
                p->invalid_id_only = 1;
                return dpayload_invalid(p, p->id_reason, "");
        }
        p->valid = 1;
        return 0;
}

void dpayload_free(struct dpayload *p)
{
        if (p->root)
                json_decref(p->root);
        p->root = NULL;
}

const char *dpayload_key(const struct dpayload *p, const char *body, size_t len,
                         char buf[DPAYLOAD_HASHKEY_SIZE])
{
        const char *k = NULL;

        if (p->resource_id)
                k = p->resource_id;
        else if (p->item_id)
                k = p->item_id;
        else if (p->change_order_id)
                k = p->change_order_id;
        else if (p->id)
                k = p->id;
        if (k)
                return k;
        dsig_sha256_key(body, len, buf);
        return buf;
}
