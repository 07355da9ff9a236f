/* dtrace.c - W3C trace context: traceparent and tracestate read and checked, traces
 * started and continued (dtrace.h). Ids come from a per-thread generator seeded from
 * getrandom(2): unpredictable enough for ids that only need to be unique, and no
 * system call per record. */
#include "dtrace.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define DTRACE_V00_LEN     55 /* "00-" 32 "-" 16 "-" 2 */
#define DTRACE_MAX_MEMBERS 32
#define DTRACE_KEY_MAX     256
#define DTRACE_VALUE_MAX   256

static int dtrace_hex(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1; /* upper case is not valid in a traceparent */
}

/* Whether s[0..n) is lower-case hex, and not all zeros (when nonzero is set). */
static int dtrace_hex_field(const char *s, size_t n, int nonzero)
{
        int any = 0;

        for (size_t i = 0; i < n; i++) {
                int v = dtrace_hex((unsigned char)s[i]);
                if (v < 0)
                        return 0;
                any |= v;
        }
        return !nonzero || any;
}

int dtrace_parse(const char *s, size_t len, struct dtrace *t, const char **why)
{
        int hi, lo;

        if (len < DTRACE_V00_LEN) {
                *why = "too short";
                return -1;
        }
        hi = dtrace_hex((unsigned char)s[0]);
        lo = dtrace_hex((unsigned char)s[1]);
        if (hi < 0 || lo < 0) {
                *why = "version is not hex";
                return -1;
        }
        if (hi == 15 && lo == 15) {
                *why = "version ff";
                return -1;
        }
        if (hi == 0 && lo == 0 ? len != DTRACE_V00_LEN
                               : len > DTRACE_V00_LEN && s[DTRACE_V00_LEN] != '-') {
                *why = "wrong length";
                return -1;
        }
        if (s[2] != '-' || s[35] != '-' || s[52] != '-') {
                *why = "fields not separated by '-'";
                return -1;
        }
        if (!dtrace_hex_field(s + 3, DTRACE_ID_LEN, 0) ||
            !dtrace_hex_field(s + 36, DTRACE_SPAN_LEN, 0) ||
            !dtrace_hex_field(s + 53, 2, 0)) {
                *why = "not lower-case hex";
                return -1;
        }
        if (!dtrace_hex_field(s + 3, DTRACE_ID_LEN, 1)) {
                *why = "trace id all zeros";
                return -1;
        }
        if (!dtrace_hex_field(s + 36, DTRACE_SPAN_LEN, 1)) {
                *why = "parent id all zeros";
                return -1;
        }
        memcpy(t->trace_id, s + 3, DTRACE_ID_LEN);
        t->trace_id[DTRACE_ID_LEN] = '\0';
        memcpy(t->span_id, s + 36, DTRACE_SPAN_LEN);
        t->span_id[DTRACE_SPAN_LEN] = '\0';
        t->flags                    = (unsigned)(dtrace_hex((unsigned char)s[53]) * 16 +
                              dtrace_hex((unsigned char)s[54]));
        return 0;
}

static int dtrace_key_char(int c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-' || c == '*' || c == '/';
}

/* Whether s[0..n) is first followed by up to max - 1 key characters. */
static int dtrace_key_part(const char *s, size_t n, int first_digit_ok, size_t max)
{
        if (n == 0 || n > max)
                return 0;
        if (!((s[0] >= 'a' && s[0] <= 'z') ||
              (first_digit_ok && s[0] >= '0' && s[0] <= '9')))
                return 0;
        for (size_t i = 1; i < n; i++)
                if (!dtrace_key_char((unsigned char)s[i]))
                        return 0;
        return 1;
}

/* One list member, s[0..n) without its surrounding blanks: key=value, the key simple
 * (a lower-case letter, then up to 255 key characters) or tenant@system (a letter or
 * digit and up to 240 more; a letter and up to 13 more). */
static int dtrace_member_valid(const char *s, size_t n)
{
        const char *eq = memchr(s, '=', n);
        const char *at;
        size_t klen, vlen;

        if (!eq)
                return 0;
        klen = (size_t)(eq - s);
        vlen = n - klen - 1;
        if (vlen == 0 || vlen > DTRACE_VALUE_MAX)
                return 0;
        at = memchr(s, '@', klen);
        if (at ? !dtrace_key_part(s, (size_t)(at - s), 1, 241) ||
                     !dtrace_key_part(at + 1, klen - (size_t)(at - s) - 1, 0, 14)
               : !dtrace_key_part(s, klen, 0, DTRACE_KEY_MAX))
                return 0;
        for (size_t i = 0; i < vlen; i++) {
                unsigned char c = (unsigned char)eq[1 + i];
                if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
                        return 0;
        }
        return 1; /* the blanks around a member were trimmed: it ends in one */
}

int dtrace_state_valid(const char *s, size_t len, const char **why)
{
        size_t i = 0, members = 0;

        if (len == 0)
                return 0;
        if (len > DTRACE_STATE_MAX) {
                *why = "longer than 512 bytes";
                return -1;
        }
        while (i <= len) {
                size_t start, end;
                const char *comma = memchr(s + i, ',', len - i);
                size_t stop       = comma ? (size_t)(comma - s) : len;

                start = i;
                end   = stop;
                while (start < end && (s[start] == ' ' || s[start] == '\t'))
                        start++;
                while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
                        end--;
                if (end > start) {
                        if (++members > DTRACE_MAX_MEMBERS) {
                                *why = "more than 32 list members";
                                return -1;
                        }
                        if (!dtrace_member_valid(s + start, end - start)) {
                                *why = "a list member is not key=value";
                                return -1;
                        }
                }
                i = stop + 1;
        }
        return 0;
}

/* splitmix64, one state per thread, seeded once from the system. */
static _Thread_local uint64_t dtrace_state;
static _Thread_local int dtrace_seeded;

static int dtrace_next(uint64_t *out)
{
        uint64_t z;

        if (!dtrace_seeded) {
                if (getrandom(&dtrace_state, sizeof(dtrace_state), 0) !=
                    (ssize_t)sizeof(dtrace_state))
                        return -1;
                dtrace_seeded = 1;
        }
        z    = (dtrace_state += 0x9e3779b97f4a7c15ULL);
        z    = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z    = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        *out = z ^ (z >> 31);
        return 0;
}

/* n hex digits (16 or 32) of random, not all zero, into out (NUL-terminated). */
static int dtrace_random_hex(char *out, size_t n)
{
        uint64_t v[2] = {0, 0};

        do {
                for (size_t i = 0; i < n / 16; i++)
                        if (dtrace_next(&v[i]))
                                return -1;
        } while (!v[0] && !v[1]);
        for (size_t i = 0; i < n / 16; i++)
                snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)v[i]);
        return 0;
}

int dtrace_new(struct dtrace *t)
{
        t->flags = 0x01;
        if (dtrace_random_hex(t->trace_id, DTRACE_ID_LEN))
                return -1;
        return dtrace_random_hex(t->span_id, DTRACE_SPAN_LEN);
}

int dtrace_child(const struct dtrace *parent, struct dtrace *child)
{
        struct dtrace c = *parent;

        if (dtrace_random_hex(c.span_id, DTRACE_SPAN_LEN))
                return -1;
        *child = c;
        return 0;
}

void dtrace_format(const struct dtrace *t, char buf[DTRACE_PARENT_SIZE])
{
        /* version 00 defines only the sampled bit: the others go out as zero */
        snprintf(buf, DTRACE_PARENT_SIZE, "00-%s-%s-%02x", t->trace_id, t->span_id,
                 t->flags & 0x01u);
}
