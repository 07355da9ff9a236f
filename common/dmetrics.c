/* dmetrics.c - Prometheus text exposition (see dmetrics.h). */
#include "dmetrics.h"

#include <string.h>

void dmetrics_hist_init(struct dmetrics_hist *h, const double *bounds, size_t n)
{
        if (n > DMETRICS_MAX_BUCKETS)
                n = DMETRICS_MAX_BUCKETS;
        h->n = n;
        memcpy(h->bounds, bounds, n * sizeof(*bounds));
        for (size_t i = 0; i <= DMETRICS_MAX_BUCKETS; i++)
                atomic_init(&h->counts[i], 0);
        atomic_init(&h->sum_us, 0);
        atomic_init(&h->count, 0);
}

void dmetrics_hist_observe_us(struct dmetrics_hist *h, unsigned long long us)
{
        double s = (double)us / 1e6;
        size_t i = 0;

        while (i < h->n && s > h->bounds[i])
                i++;
        atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

int dmetrics_head(struct dbuf *b, const char *name, const char *help, const char *type)
{
        return dbuf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int dmetrics_sample(struct dbuf *b, const char *name, const char *labels, double value)
{
        if (labels && *labels)
                return dbuf_appendf(b, "%s{%s} %.17g\n", name, labels, value);
        return dbuf_appendf(b, "%s %.17g\n", name, value);
}

int dmetrics_counter(struct dbuf *b, const char *name, const char *help,
                     unsigned long long value)
{
        if (dmetrics_head(b, name, help, "counter"))
                return -1;
        return dbuf_appendf(b, "%s %llu\n", name, value);
}

int dmetrics_gauge(struct dbuf *b, const char *name, const char *help, double value)
{
        if (dmetrics_head(b, name, help, "gauge"))
                return -1;
        return dmetrics_sample(b, name, NULL, value);
}

int dmetrics_hist_render(struct dbuf *b, const char *name, const char *help,
                         struct dmetrics_hist *h)
{
        unsigned long long cum = 0;

        if (dmetrics_head(b, name, help, "histogram"))
                return -1;
        for (size_t i = 0; i < h->n; i++) {
                cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
                if (dbuf_appendf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                                 cum))
                        return -1;
        }
        cum += atomic_load_explicit(&h->counts[h->n], memory_order_relaxed);
        if (dbuf_appendf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum) ||
            dbuf_appendf(b, "%s_sum %.6f\n%s_count %llu\n", name,
                         (double)atomic_load(&h->sum_us) / 1e6, name, cum))
                return -1;
        return 0;
}

int dmetrics_rows(struct dbuf *b, const struct dmetrics_row *rows, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const struct dmetrics_row *r = &rows[i];
                if (r->help && dmetrics_head(b, r->name, r->help, r->type))
                        return -1;
                if (dmetrics_sample(b, r->name, r->labels, r->value))
                        return -1;
        }
        return 0;
}
