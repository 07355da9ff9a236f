/* dmetrics.h - Prometheus text exposition helpers: counters, gauges, histograms.
 *
 * Counters and histograms are lock-free (atomics) so that hot paths can update them
 * from any thread. Each program keeps its own metrics and renders them with these
 * helpers into a dbuf when /metrics is asked for. */
#ifndef DMETRICS_H
#define DMETRICS_H

#include <stdatomic.h>
#include <stddef.h>

#include "dbuf.h"

#define DMETRICS_MAX_BUCKETS 16

struct dmetrics_hist {
        size_t n;                                       /* bucket bounds used */
        double bounds[DMETRICS_MAX_BUCKETS];            /* upper bounds, seconds */
        atomic_ullong counts[DMETRICS_MAX_BUCKETS + 1]; /* last one is +Inf */
        atomic_ullong sum_us;
        atomic_ullong count;
};

/* Initialises h with the given upper bounds (ascending, at most 16). */
void dmetrics_hist_init(struct dmetrics_hist *h, const double *bounds, size_t n);
void dmetrics_hist_observe_us(struct dmetrics_hist *h, unsigned long long us);

/* Writes "# HELP", "# TYPE" and the samples. labels may be NULL or like
 * "status=\"200\"". Return 0 or -1 (buffer cap). */
int dmetrics_counter(struct dbuf *b, const char *name, const char *help,
                     unsigned long long value);
int dmetrics_gauge(struct dbuf *b, const char *name, const char *help, double value);
int dmetrics_head(struct dbuf *b, const char *name, const char *help, const char *type);
int dmetrics_sample(struct dbuf *b, const char *name, const char *labels, double value);
int dmetrics_hist_render(struct dbuf *b, const char *name, const char *help,
                         struct dmetrics_hist *h);

/* One row of a metrics table: a counter or a gauge with its name, help and value.
 * A row with labels and no help adds a sample to the family of the row above. */
struct dmetrics_row {
        const char *type; /* "counter" or "gauge" */
        const char *name;
        const char *help;   /* NULL: another sample of the family above */
        const char *labels; /* NULL, or like "reason=\"idle\"" */
        double value;       /* written as dmetrics_sample does (exact below 2^53) */
};
#define DMETRICS_COUNTER_ROW(name, help, v)                                            \
        {                                                                              \
                "counter", name, help, NULL, (double)(v)                               \
        }
#define DMETRICS_GAUGE_ROW(name, help, v)                                              \
        {                                                                              \
                "gauge", name, help, NULL, (double)(v)                                 \
        }
#define DMETRICS_SAMPLE_ROW(type, name, help, labels, v)                               \
        {                                                                              \
                type, name, help, labels, (double)(v)                                  \
        }

/* Writes the rows in order ("# HELP" and "# TYPE" for each row with help, then its
 * sample). Returns 0 or -1 (buffer cap). Any thread. */
int dmetrics_rows(struct dbuf *b, const struct dmetrics_row *rows, size_t n);

#endif
