/* dtrace.h - W3C trace context (https://www.w3.org/TR/trace-context/): reading a
 * traceparent and a tracestate, starting a trace, continuing one with a new span, and
 * writing the traceparent back out. The bridge reads them from a webhook request; the
 * enricher and the commands read and write them as Kafka record headers (dce.h).
 *
 * Every function here is pure but for the random ids of dtrace_new and dtrace_child,
 * and may be called from any thread. */
#ifndef DTRACE_H
#define DTRACE_H

#include <stddef.h>

#define DTRACE_ID_LEN      32  /* hex digits of a trace id */
#define DTRACE_SPAN_LEN    16  /* hex digits of a span (parent) id */
#define DTRACE_PARENT_SIZE 56  /* "00-<32>-<16>-<2>" and its NUL */
#define DTRACE_STATE_MAX   512 /* the longest tracestate kept */

/* One position in a trace: the trace id, the span that wrote the record or request
 * (the next hop's parent id), and the flags (bit 0: sampled). Ids are lower-case hex,
 * NUL-terminated, never all zero. */
struct dtrace {
        char trace_id[DTRACE_ID_LEN + 1];
        char span_id[DTRACE_SPAN_LEN + 1];
        unsigned flags;
};

/* Reads a traceparent of len bytes (not NUL-terminated). Versions 00 to fe parse (a
 * later version may carry more fields after a '-', which are ignored); ff, a wrong
 * length, upper-case or other non-hex digits and all-zero ids do not. Returns 0 and
 * fills *t, or -1 and sets *why (a static string) when it is not valid. */
int dtrace_parse(const char *s, size_t len, struct dtrace *t, const char **why);

/* Whether a tracestate of len bytes is valid: at most DTRACE_STATE_MAX bytes and 32
 * list members, each key=value as the recommendation says (empty members allowed).
 * Returns 0 when valid, else -1 and sets *why. */
int dtrace_state_valid(const char *s, size_t len, const char **why);

/* Starts a trace: a random trace id and span id, sampled (the default sampler of
 * OpenTelemetry's SDKs records a root span). Returns 0, or -1 when the system has no
 * randomness to give. */
int dtrace_new(struct dtrace *t);

/* The next span of parent's trace: same trace id and flags, a new random span id.
 * Returns 0 or -1 as dtrace_new. */
int dtrace_child(const struct dtrace *parent, struct dtrace *child);

/* Writes t as a version-00 traceparent into buf (DTRACE_PARENT_SIZE bytes): of the
 * flags only the sampled bit, the one version 00 defines. */
void dtrace_format(const struct dtrace *t, char buf[DTRACE_PARENT_SIZE]);

#endif
