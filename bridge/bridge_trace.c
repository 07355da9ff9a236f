/* bridge_trace.c - the W3C trace context of a webhook request: its traceparent and
 * tracestate when valid, or a new trace. Invalid ones are counted
 * (duro_bridge_trace_context_ignored_total) and ignored, never refused: a bad trace
 * header must not cost a webhook. */
#include "bridge.h"

#include <string.h>
#include <strings.h>

#define BRIDGE_H_TRACEPARENT "traceparent"
#define BRIDGE_H_TRACESTATE  "tracestate"

/* The request's header lines called name, joined with ',' (as HTTP allows for a list
 * header), counted in n; over means the joined value did not fit. */
struct bridge_trace_lines {
        const char *name;
        char *buf;
        size_t size, len;
        int n, over;
};

static enum MHD_Result bridge_trace_line(void *cls, enum MHD_ValueKind kind,
                                         const char *key, const char *value)
{
        struct bridge_trace_lines *l = cls;
        size_t vlen                  = value ? strlen(value) : 0;
        (void)kind;

        if (strcasecmp(key, l->name))
                return MHD_YES;
        if (l->n++ && !l->over) {
                if (l->len + 1 >= l->size)
                        l->over = 1;
                else
                        l->buf[l->len++] = ',';
        }
        if (!l->over && l->len + vlen < l->size) {
                memcpy(l->buf + l->len, value ? value : "", vlen);
                l->len += vlen;
        } else {
                l->over = 1;
        }
        l->buf[l->over ? 0 : l->len] = '\0';
        return MHD_YES;
}

static void bridge_trace_lines(struct MHD_Connection *conn,
                               struct bridge_trace_lines *l)
{
        l->buf[0] = '\0';
        MHD_get_connection_values(conn, MHD_HEADER_KIND, bridge_trace_line, l);
}

int bridge_trace_read(struct bridge *br, struct MHD_Connection *conn, struct dtrace *t,
                      char *state, size_t state_size)
{
        char parent[512]; /* a later version may be longer than 55 */
        struct bridge_trace_lines tp = {
            BRIDGE_H_TRACEPARENT, parent, sizeof(parent), 0, 0, 0};
        struct bridge_trace_lines ts = {
            BRIDGE_H_TRACESTATE, state, state_size, 0, 0, 0};
        const char *why;

        bridge_trace_lines(conn, &tp);
        bridge_trace_lines(conn, &ts);
        /* A request with two traceparents has none that can be trusted. */
        if (tp.n == 1 && !tp.over && !dtrace_parse(parent, tp.len, t, &why)) {
                if (ts.n && (ts.over || dtrace_state_valid(state, ts.len, &why))) {
                        atomic_fetch_add(&br->m.trace_ignored_state, 1);
                        state[0] = '\0';
                }
                return 0;
        }
        if (tp.n)
                atomic_fetch_add(&br->m.trace_ignored_parent, 1);
        state[0] = '\0';
        return dtrace_new(t);
}
