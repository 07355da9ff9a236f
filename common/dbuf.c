/* dbuf.c - capped growable byte buffer (see dbuf.h). */
#include "dbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dbuf_init(struct dbuf *b, size_t max)
{
        b->data = NULL;
        b->len  = 0;
        b->cap  = 0;
        b->max  = max;
}

void dbuf_free(struct dbuf *b)
{
        free(b->data);
        b->data = NULL;
        b->len  = 0;
        b->cap  = 0;
}

void dbuf_reset(struct dbuf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

/* Makes room for n more bytes plus a NUL. */
static int dbuf_reserve(struct dbuf *b, size_t n)
{
        size_t need, ncap;
        char *p;

        if (b->max && (n > b->max || b->len > b->max - n))
                return -1;
        if (n >= SIZE_MAX - b->len)
                return -1;
        need = b->len + n + 1;
        if (need <= b->cap)
                return 0;
        ncap = b->cap ? b->cap : 256;
        while (ncap < need) {
                if (ncap > SIZE_MAX / 2) {
                        ncap = need;
                        break;
                }
                ncap *= 2;
        }
        p = realloc(b->data, ncap);
        if (!p)
                return -1;
        b->data = p;
        b->cap  = ncap;
        return 0;
}

int dbuf_append(struct dbuf *b, const void *p, size_t n)
{
        if (dbuf_reserve(b, n))
                return -1;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int dbuf_vappendf(struct dbuf *b, const char *fmt, va_list ap)
{
        va_list ap2;
        int n;

        va_copy(ap2, ap);
        n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        if (n < 0 || dbuf_reserve(b, (size_t)n))
                return -1;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int dbuf_appendf(struct dbuf *b, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = dbuf_vappendf(b, fmt, ap);
        va_end(ap);
        return r;
}

const char *dbuf_cstr(struct dbuf *b)
{
        return b->data ? b->data : "";
}

char *dbuf_take(struct dbuf *b, size_t *len)
{
        char *p = b->data;

        if (len)
                *len = b->len;
        b->data = NULL;
        b->len  = 0;
        b->cap  = 0;
        return p;
}
