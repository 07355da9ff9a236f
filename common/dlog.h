/* dlog.h - one JSON object per line on stderr, thread-safe, level-filtered.
 *
 * Every line is {"ts":"<RFC 3339 ms>","level":"info","prog":"duro-bridge","msg":"..."};
 * a line about one event also has "trace_id" before "msg".
 * Messages are JSON-escaped; a line is written with a single write(2) so lines from
 * several threads never interleave. Never pass a secret to these functions. */
#ifndef DLOG_H
#define DLOG_H

#include <stdarg.h>
#include <stddef.h>

enum dlog_level {
        DLOG_DEBUG = 0,
        DLOG_INFO  = 1,
        DLOG_WARN  = 2,
        DLOG_ERROR = 3,
};

/* Sets the program name (not copied: pass a string literal) and the minimum level. */
void dlog_init(const char *prog, enum dlog_level level);

/* Parses "debug", "info", "warn"/"warning", "error". Returns 0, or -1 when unknown. */
int dlog_level_parse(const char *s, enum dlog_level *out);

int dlog_enabled(enum dlog_level level);

/* Writes one line. Use the macros: they skip formatting when the level is filtered. */
void dlog_write(enum dlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same, for a line about one event: trace_id (its W3C trace id, 32 lower-case hex
 * digits; anything else is left out) becomes the line's "trace_id" field. */
void dlog_write_trace(enum dlog_level level, const char *trace_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define DLOG(lvl, ...)                                                                 \
        do {                                                                           \
                if (dlog_enabled(lvl))                                                 \
                        dlog_write(lvl, __VA_ARGS__);                                  \
        } while (0)
#define dlog_debug(...) DLOG(DLOG_DEBUG, __VA_ARGS__)
#define dlog_info(...)  DLOG(DLOG_INFO, __VA_ARGS__)
#define dlog_warn(...)  DLOG(DLOG_WARN, __VA_ARGS__)
#define dlog_error(...) DLOG(DLOG_ERROR, __VA_ARGS__)

#define DLOG_TRACE(lvl, trace_id, ...)                                                 \
        do {                                                                           \
                if (dlog_enabled(lvl))                                                 \
                        dlog_write_trace(lvl, trace_id, __VA_ARGS__);                  \
        } while (0)
#define dlog_info_trace(t, ...) DLOG_TRACE(DLOG_INFO, t, __VA_ARGS__)
#define dlog_warn_trace(t, ...) DLOG_TRACE(DLOG_WARN, t, __VA_ARGS__)

/* A printf-style callback with a va_list (libmicrohttpd's external logger has this
 * shape): logs at debug level, prefixed with cls when it is a string. */
void dlog_vcallback(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Appends s (len bytes) to dst as JSON string contents (no quotes), escaping as needed.
 * Writes at most dstsize-1 bytes and NUL-terminates; returns the length written.
 * Invalid UTF-8 bytes are replaced by U+FFFD so that the output is always valid JSON.
 */
size_t dlog_json_escape(char *dst, size_t dstsize, const char *s, size_t len);

#endif
