/* dbuf.h - a growable byte buffer with a hard cap (curl's dynbuf idea).
 *
 * Ownership: the buffer owns its memory; dbuf_free() releases it, dbuf_take() moves it
 * out to the caller (who then frees it with free()). A failing append leaves the
 * contents as they were and returns -1. */
#ifndef DBUF_H
#define DBUF_H

#include <stdarg.h>
#include <stddef.h>

struct dbuf {
        char *data; /* NUL-terminated when len > 0 or after dbuf_cstr() */
        size_t len;
        size_t cap; /* allocated bytes */
        size_t max; /* hard cap on len; 0 = unlimited */
};

void dbuf_init(struct dbuf *b, size_t max);
void dbuf_free(struct dbuf *b);
void dbuf_reset(struct dbuf *b);

/* Appends; returns 0, or -1 when the cap would be exceeded or memory ran out. */
int dbuf_append(struct dbuf *b, const void *p, size_t n)
    __attribute__((warn_unused_result));
int dbuf_appendf(struct dbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
int dbuf_vappendf(struct dbuf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), warn_unused_result));

/* Returns the contents as a NUL-terminated string ("" when empty, never NULL). */
const char *dbuf_cstr(struct dbuf *b);

/* Moves the data out (NUL-terminated, caller frees) and resets the buffer. May return
 * NULL when nothing was appended. */
char *dbuf_take(struct dbuf *b, size_t *len);

#endif
