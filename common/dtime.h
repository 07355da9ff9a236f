/* dtime.h - clocks and RFC 3339 timestamps. */
#ifndef DTIME_H
#define DTIME_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, milliseconds since the Unix epoch. */
int64_t dtime_now_ms(void);

/* Monotonic clock in milliseconds (for deadlines and latencies). */
int64_t dtime_mono_ms(void);
/* Monotonic clock in microseconds. */
int64_t dtime_mono_us(void);

/* Formats epoch milliseconds as "2024-12-20T10:30:00.120Z" into buf (at least 25
 * bytes). Returns buf. */
char *dtime_format_ms(char *buf, size_t size, int64_t epoch_ms);

/* Parses an RFC 3339 date-time ("2024-12-20T10:30:00Z", "...00.5+02:00", 't'/'z'
 * allowed) of exactly len bytes. Returns 0 and sets *epoch_ms, or -1 when it is not RFC
 * 3339. */
int dtime_parse_rfc3339(const char *s, size_t len, int64_t *epoch_ms);

#endif
