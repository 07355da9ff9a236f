/* dgqllit.c - GraphQL literals (see dgqllit.h). */
#include "dgqllit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Describes the byte c for a message: 'x' when printable ASCII, else its value. */
static void lit_byte(char *out, size_t size, unsigned char c)
{
        if (c > 0x20 && c < 0x7f && c != '\'')
                snprintf(out, size, "'%c'", c);
        else if (c == ' ')
                snprintf(out, size, "a space");
        else
                snprintf(out, size, "byte 0x%02X", c);
}

/* The length of the UTF-8 sequence at s[i] (1-4), or 0 after writing why it is not
 * one into err. */
static size_t lit_utf8_len(const unsigned char *s, size_t len, size_t i, char *err,
                           size_t errsize)
{
        unsigned char c = s[i];
        size_t n;
        unsigned long cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                n  = 2;
                cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
                n  = 3;
                cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n  = 4;
                cp = c & 0x07u;
        } else {
                snprintf(err, errsize,
                         "invalid UTF-8: byte 0x%02X at offset %zu cannot start a "
                         "character",
                         c, i);
                return 0;
        }
        for (size_t k = 1; k < n; k++) {
                if (i + k >= len) {
                        snprintf(err, errsize,
                                 "invalid UTF-8: the character at offset %zu is cut "
                                 "short by the end of the text",
                                 i);
                        return 0;
                }
                if ((s[i + k] & 0xc0) != 0x80) {
                        snprintf(err, errsize,
                                 "invalid UTF-8: byte 0x%02X at offset %zu does not "
                                 "continue the character at offset %zu",
                                 s[i + k], i + k, i);
                        return 0;
                }
                cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) {
                snprintf(err, errsize, "invalid UTF-8: overlong encoding at offset %zu",
                         i);
                return 0;
        }
        if (cp >= 0xd800 && cp <= 0xdfff) {
                snprintf(
                    err, errsize,
                    "invalid UTF-8: UTF-16 surrogate U+%04lX encoded at offset %zu", cp,
                    i);
                return 0;
        }
        if (cp > 0x10ffff) {
                snprintf(err, errsize,
                         "invalid UTF-8: code point above U+10FFFF at offset %zu", i);
                return 0;
        }
        return n;
}

int dgqllit_check_utf8(const char *s, size_t len, char *err, size_t errsize)
{
        const unsigned char *u = (const unsigned char *)s;

        for (size_t i = 0; i < len;) {
                size_t n = lit_utf8_len(u, len, i, err, errsize);
                if (!n)
                        return -1;
                i += n;
        }
        return 0;
}

static int lit_name_start(unsigned char c)
{
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int lit_name_char(unsigned char c)
{
        return lit_name_start(c) || (c >= '0' && c <= '9');
}

int dgqllit_check_name(const char *s, size_t len, char *err, size_t errsize)
{
        char what[16];

        if (!len) {
                snprintf(err, errsize, "empty: not a GraphQL name");
                return -1;
        }
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (i ? lit_name_char(c) : lit_name_start(c))
                        continue;
                lit_byte(what, sizeof(what), c);
                snprintf(err, errsize,
                         "not a GraphQL name: %s at offset %zu (a name is "
                         "[_A-Za-z][_0-9A-Za-z]*)",
                         what, i);
                return -1;
        }
        return 0;
}

int dgqllit_check_enum(const char *s, size_t len, char *err, size_t errsize)
{
        static const char *const reserved[] = {"true", "false", "null"};

        if (dgqllit_check_name(s, len, err, errsize))
                return -1;
        for (size_t i = 0; i < 3; i++) {
                if (strlen(reserved[i]) == len && !memcmp(s, reserved[i], len)) {
                        snprintf(err, errsize, "%s cannot be a GraphQL enum value",
                                 reserved[i]);
                        return -1;
                }
        }
        return 0;
}

void dgqllit_init(struct dgqllit *w, struct dbuf *out)
{
        memset(w, 0, sizeof(*w));
        w->out = out;
}

__attribute__((format(printf, 2, 3))) static void lit_fail(struct dgqllit *w,
                                                           const char *fmt, ...)
{
        va_list ap;

        if (w->failed)
                return;
        w->failed = 1;
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof(w->err), fmt, ap);
        va_end(ap);
}

static void lit_put(struct dgqllit *w, const char *p, size_t n)
{
        if (!w->failed && dbuf_append(w->out, p, n))
                lit_fail(w, "out of memory (or the literal is too long)");
}

/* Where a value may go now: writes the separator before it. Returns 0, or -1 (and
 * the writer failed) when no value may come here. */
static int lit_value(struct dgqllit *w)
{
        if (w->failed)
                return -1;
        if (!w->depth) {
                if (w->values++) {
                        lit_fail(w, "a second value at the top level");
                        return -1;
                }
                return 0;
        }
        if (w->open[w->depth - 1] == '{') {
                if (!w->keyed) {
                        lit_fail(w, "a value in an object without its key");
                        return -1;
                }
                w->keyed = 0;
                return 0;
        }
        if (w->members[w->depth - 1])
                lit_put(w, ", ", 2);
        w->members[w->depth - 1] = 1;
        return w->failed ? -1 : 0;
}

static void lit_open(struct dgqllit *w, char c)
{
        if (lit_value(w))
                return;
        if (w->depth == DGQLLIT_MAX_DEPTH) {
                lit_fail(w, "lists and objects nested deeper than %d",
                         DGQLLIT_MAX_DEPTH);
                return;
        }
        w->open[w->depth]    = c;
        w->members[w->depth] = 0;
        w->depth++;
        lit_put(w, &c, 1);
}

void dgqllit_object(struct dgqllit *w)
{
        lit_open(w, '{');
}

void dgqllit_list(struct dgqllit *w)
{
        lit_open(w, '[');
}

void dgqllit_close(struct dgqllit *w)
{
        char c;

        if (w->failed)
                return;
        if (!w->depth) {
                lit_fail(w, "nothing open to close");
                return;
        }
        if (w->keyed) {
                lit_fail(w, "a key without its value");
                return;
        }
        c = w->open[--w->depth] == '{' ? '}' : ']';
        lit_put(w, &c, 1);
}

void dgqllit_key(struct dgqllit *w, const char *name)
{
        char why[160];
        size_t n = strlen(name);

        if (w->failed)
                return;
        if (!w->depth || w->open[w->depth - 1] != '{') {
                lit_fail(w, "a key outside an object");
                return;
        }
        if (w->keyed) {
                lit_fail(w, "a key after a key without its value");
                return;
        }
        if (dgqllit_check_name(name, n, why, sizeof(why))) {
                lit_fail(w, "object key: %s", why);
                return;
        }
        if (w->members[w->depth - 1])
                lit_put(w, ", ", 2);
        w->members[w->depth - 1] = 1;
        lit_put(w, name, n);
        lit_put(w, ": ", 2);
        w->keyed = 1;
}

void dgqllit_string(struct dgqllit *w, const char *s, size_t len)
{
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *u  = (const unsigned char *)s;
        char why[160];
        size_t run = 0; /* start of the bytes not yet written */

        if (w->failed)
                return;
        if (dgqllit_check_utf8(s, len, why, sizeof(why))) {
                lit_fail(w, "%s", why);
                return;
        }
        if (lit_value(w))
                return;
        lit_put(w, "\"", 1);
        for (size_t i = 0; i < len; i++) {
                char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
                size_t n    = 2;
                switch (u[i]) {
                case '"':
                case '\\':
                        esc[1] = (char)u[i];
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                default:
                        if (u[i] >= 0x20 && u[i] != 0x7f)
                                continue;
                        memcpy(esc + 1, "u00", 3);
                        esc[4] = hex[u[i] >> 4];
                        esc[5] = hex[u[i] & 15];
                        n      = 6;
                }
                lit_put(w, s + run, i - run);
                lit_put(w, esc, n);
                run = i + 1;
        }
        lit_put(w, s + run, len - run);
        lit_put(w, "\"", 1);
}

void dgqllit_enum(struct dgqllit *w, const char *s, size_t len)
{
        char why[160];

        if (w->failed)
                return;
        if (dgqllit_check_enum(s, len, why, sizeof(why))) {
                lit_fail(w, "enum value: %s", why);
                return;
        }
        if (!lit_value(w))
                lit_put(w, s, len);
}

void dgqllit_bool(struct dgqllit *w, int v)
{
        if (!lit_value(w))
                lit_put(w, v ? "true" : "false", v ? 4 : 5);
}

void dgqllit_null(struct dgqllit *w)
{
        if (!lit_value(w))
                lit_put(w, "null", 4);
}

int dgqllit_end(struct dgqllit *w, char *err, size_t errsize)
{
        if (!w->failed && w->depth)
                lit_fail(w, "%d list(s) or object(s) left open", w->depth);
        else if (!w->failed && !w->values)
                lit_fail(w, "no value written");
        if (!w->failed)
                return 0;
        snprintf(err, errsize, "%s", w->err);
        return -1;
}
