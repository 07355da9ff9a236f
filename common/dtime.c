/* dtime.c - clocks and RFC 3339 parsing/formatting (see dtime.h). */
#include "dtime.h"

#include <stdio.h>
#include <time.h>

int64_t dtime_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dtime_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dtime_mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *dtime_format_ms(char *buf, size_t size, int64_t epoch_ms)
{
        time_t secs = (time_t)(epoch_ms / 1000);
        int ms      = (int)(epoch_ms % 1000);
        struct tm tm;

        if (ms < 0) {
                ms += 1000;
                secs -= 1;
        }
        gmtime_r(&secs, &tm);
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        return buf;
}

/* Reads exactly n decimal digits at s[*i]; returns -1 when they are not digits. */
static int dtime_digits(const char *s, size_t len, size_t *i, int n)
{
        int v = 0;

        if (*i + (size_t)n > len)
                return -1;
        for (int k = 0; k < n; k++) {
                char c = s[*i + (size_t)k];
                if (c < '0' || c > '9')
                        return -1;
                v = v * 10 + (c - '0');
        }
        *i += (size_t)n;
        return v;
}

static int dtime_expect(const char *s, size_t len, size_t *i, char a, char b)
{
        if (*i >= len || (s[*i] != a && s[*i] != b))
                return -1;
        (*i)++;
        return 0;
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t dtime_days_from_civil(int64_t y, int m, int d)
{
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

int dtime_parse_rfc3339(const char *s, size_t len, int64_t *epoch_ms)
{
        static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        size_t i                 = 0;
        int y, mo, d, h, mi, sec, ms = 0, off = 0;

        if ((y = dtime_digits(s, len, &i, 4)) < 0 ||
            dtime_expect(s, len, &i, '-', '-') ||
            (mo = dtime_digits(s, len, &i, 2)) < 0 ||
            dtime_expect(s, len, &i, '-', '-') ||
            (d = dtime_digits(s, len, &i, 2)) < 0 ||
            dtime_expect(s, len, &i, 'T', 't') ||
            (h = dtime_digits(s, len, &i, 2)) < 0 ||
            dtime_expect(s, len, &i, ':', ':') ||
            (mi = dtime_digits(s, len, &i, 2)) < 0 ||
            dtime_expect(s, len, &i, ':', ':') ||
            (sec = dtime_digits(s, len, &i, 2)) < 0)
                return -1;
        if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
            sec > 60)
                return -1;
        if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                return -1;
        if (i < len && s[i] == '.') {
                int nd = 0;
                i++;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                        if (nd < 3)
                                ms = ms * 10 + (s[i] - '0');
                        nd++;
                        i++;
                }
                if (nd == 0)
                        return -1;
                for (; nd < 3; nd++)
                        ms *= 10;
        }
        if (i >= len)
                return -1;
        if (s[i] == 'Z' || s[i] == 'z') {
                i++;
        } else if (s[i] == '+' || s[i] == '-') {
                int sign = s[i] == '-' ? -1 : 1, oh, om;
                i++;
                if ((oh = dtime_digits(s, len, &i, 2)) < 0 ||
                    dtime_expect(s, len, &i, ':', ':') ||
                    (om = dtime_digits(s, len, &i, 2)) < 0 || oh > 23 || om > 59)
                        return -1;
                off = sign * (oh * 60 + om);
        } else {
                return -1;
        }
        if (i != len)
                return -1;
        if (sec == 60)
                sec = 59; /* leap second: clamp */
        *epoch_ms = ((dtime_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
                      sec - (int64_t)off * 60) *
                     1000) +
                    ms;
        return 0;
}
