/* dlog.c - JSON line logger on stderr (see dlog.h). */
#include "dlog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dtime.h"

static const char *dlog_prog = "duro";
static atomic_int dlog_min   = DLOG_INFO;

static const char *const dlog_names[] = {"debug", "info", "warn", "error"};

void dlog_init(const char *prog, enum dlog_level level)
{
        dlog_prog = prog;
        atomic_store(&dlog_min, (int)level);
}

int dlog_level_parse(const char *s, enum dlog_level *out)
{
        if (!strcasecmp(s, "debug"))
                *out = DLOG_DEBUG;
        else if (!strcasecmp(s, "info"))
                *out = DLOG_INFO;
        else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
                *out = DLOG_WARN;
        else if (!strcasecmp(s, "error"))
                *out = DLOG_ERROR;
        else
                return -1;
        return 0;
}

int dlog_enabled(enum dlog_level level)
{
        return (int)level >= atomic_load(&dlog_min);
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when invalid. */
static size_t dlog_utf8_len(const unsigned char *s, size_t avail)
{
        size_t n, i;
        unsigned cp;

        if (s[0] < 0x80)
                return 1;
        if ((s[0] & 0xE0) == 0xC0) {
                n  = 2;
                cp = s[0] & 0x1Fu;
        } else if ((s[0] & 0xF0) == 0xE0) {
                n  = 3;
                cp = s[0] & 0x0Fu;
        } else if ((s[0] & 0xF8) == 0xF0) {
                n  = 4;
                cp = s[0] & 0x07u;
        } else {
                return 0;
        }
        if (n > avail)
                return 0;
        for (i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return n;
}

size_t dlog_json_escape(char *dst, size_t dstsize, const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t o = 0, i = 0;

        if (dstsize == 0)
                return 0;
        while (i < len) {
                char tmp[8];
                const char *rep = NULL;
                size_t replen   = 0;
                unsigned char c = p[i];
                size_t ulen     = 1;

                if (c == '"')
                        rep = "\\\"";
                else if (c == '\\')
                        rep = "\\\\";
                else if (c == '\n')
                        rep = "\\n";
                else if (c == '\r')
                        rep = "\\r";
                else if (c == '\t')
                        rep = "\\t";
                else if (c < 0x20 || c == 0x7F) {
                        snprintf(tmp, sizeof(tmp), "\\u%04x", c);
                        rep = tmp;
                } else if (c >= 0x80) {
                        ulen = dlog_utf8_len(p + i, len - i);
                        if (ulen == 0) {
                                rep  = "\\ufffd";
                                ulen = 1;
                        }
                }
                if (rep) {
                        replen = strlen(rep);
                } else {
                        rep    = (const char *)p + i;
                        replen = ulen;
                }
                if (o + replen >= dstsize)
                        break;
                memcpy(dst + o, rep, replen);
                o += replen;
                i += ulen;
        }
        dst[o] = '\0';
        return o;
}

/* Writes one line; trace_id (32 hex digits, or NULL) becomes its "trace_id". */
static void dlog_vwrite(enum dlog_level level, const char *trace_id, const char *fmt,
                        va_list ap) __attribute__((format(printf, 3, 0)));

static void dlog_vwrite(enum dlog_level level, const char *trace_id, const char *fmt,
                        va_list ap)
{
        char msg[2048], esc[4096], line[4672], ts[40], trace[64] = "";
        int n, m;

        n = vsnprintf(msg, sizeof(msg), fmt, ap);
        if (n < 0)
                return;
        if ((size_t)n >= sizeof(msg))
                n = (int)sizeof(msg) - 1;
        dlog_json_escape(esc, sizeof(esc), msg, (size_t)n);
        dtime_format_ms(ts, sizeof(ts), dtime_now_ms());
        if (trace_id && strlen(trace_id) == 32 &&
            strspn(trace_id, "0123456789abcdef") == 32)
                snprintf(trace, sizeof(trace), ",\"trace_id\":\"%s\"", trace_id);
        m = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\"%s,"
                     "\"msg\":\"%s\"}\n",
                     ts, dlog_names[level], dlog_prog, trace, esc);
        if (m < 0)
                return;
        if ((size_t)m >= sizeof(line)) {
                m           = (int)sizeof(line) - 1;
                line[m - 3] = '"';
                line[m - 2] = '}';
                line[m - 1] = '\n';
        }
        if (write(STDERR_FILENO, line, (size_t)m) < 0)
                return;
}

void dlog_write(enum dlog_level level, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        dlog_vwrite(level, NULL, fmt, ap);
        va_end(ap);
}

void dlog_write_trace(enum dlog_level level, const char *trace_id, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        dlog_vwrite(level, trace_id, fmt, ap);
        va_end(ap);
}

void dlog_vcallback(void *cls, const char *fmt, va_list ap)
{
        char msg[1024];
        size_t n;

        if (!dlog_enabled(DLOG_DEBUG))
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n && msg[n - 1] == '\n')
                msg[--n] = '\0';
        dlog_write(DLOG_DEBUG, "%s%s", cls ? (const char *)cls : "", msg);
}
