/* bridge_refusal.c - the refusal log: an anonymous client must not set the log rate.
 * Per reason (status and why), the first refusal of an interval is logged in full and
 * the rest are counted; when the interval ends the timer thread logs one summary line
 * with the counts per reason. (/metrics counts every refusal: bridge_metrics.c.) */
#include "bridge.h"

#include <stdio.h>
#include <string.h>

#include "dlog.h"
#include "dtime.h"

void bridge_refusal_init(struct bridge *br)
{
        pthread_mutex_init(&br->refusals.lock, NULL);
        br->refusals.n        = 0;
        br->refusals.since_ms = dtime_mono_ms();
}

void bridge_refusal_destroy(struct bridge *br)
{
        pthread_mutex_destroy(&br->refusals.lock);
}

/* The slot of (status, why) in the interval's table, why cut as the slot keeps it;
 * the last slot takes every reason past the table's size. Under the lock. */
static struct bridge_refusal *refusal_slot(struct bridge_refusals *r, unsigned status,
                                           const char *why)
{
        char cut[sizeof(r->by[0].why)];

        snprintf(cut, sizeof(cut), "%s", why);
        for (size_t i = 0; i < r->n; i++)
                if (r->by[i].status == status && !strcmp(r->by[i].why, cut))
                        return &r->by[i];
        if (r->n == BRIDGE_REFUSAL_REASONS)
                return &r->by[BRIDGE_REFUSAL_REASONS - 1];
        memset(&r->by[r->n], 0, sizeof(r->by[0]));
        if (r->n == BRIDGE_REFUSAL_REASONS - 1) {
                snprintf(r->by[r->n].why, sizeof(r->by[0].why), "other reasons");
        } else {
                r->by[r->n].status = status;
                snprintf(r->by[r->n].why, sizeof(r->by[0].why), "%s", cut);
        }
        return &r->by[r->n++];
}

void bridge_refusal_log(struct bridge *br, unsigned status, const char *peer,
                        const char *why)
{
        struct bridge_refusals *r = &br->refusals;
        struct bridge_refusal *s;
        int first;

        pthread_mutex_lock(&r->lock);
        s     = refusal_slot(r, status, why);
        first = !s->logged;
        if (first)
                s->logged = 1;
        else
                s->counted++;
        pthread_mutex_unlock(&r->lock);
        if (first)
                dlog_info("refused %u from %s: %s (more like it within %d s are "
                          "counted, not logged)",
                          status, peer, why, BRIDGE_REFUSAL_LOG_MS / 1000);
}

void bridge_refusal_summary(struct bridge *br, int now)
{
        struct bridge_refusals *r = &br->refusals;
        char line[1024];
        size_t len = 0;
        int64_t t  = dtime_mono_ms();

        pthread_mutex_lock(&r->lock);
        if (!now && t - r->since_ms < BRIDGE_REFUSAL_LOG_MS) {
                pthread_mutex_unlock(&r->lock);
                return;
        }
        line[0] = '\0';
        for (size_t i = 0; i < r->n; i++) {
                if (!r->by[i].counted)
                        continue;
                if (!r->by[i].status) { /* the slot of every reason past the table */
                        len += (size_t)snprintf(
                            line + len, len < sizeof(line) ? sizeof(line) - len : 0,
                            "%sother reasons: %llu", len ? "; " : "",
                            (unsigned long long)r->by[i].counted);
                        if (len >= sizeof(line))
                                len = sizeof(line) - 1;
                        continue;
                }
                len += (size_t)snprintf(
                    line + len, len < sizeof(line) ? sizeof(line) - len : 0,
                    "%s%u %s: %llu", len ? "; " : "", r->by[i].status, r->by[i].why,
                    (unsigned long long)r->by[i].counted);
                if (len >= sizeof(line))
                        len = sizeof(line) - 1;
        }
        r->n        = 0;
        r->since_ms = t;
        pthread_mutex_unlock(&r->lock);
        if (line[0])
                dlog_info("refused, not logged one by one, in the last %d s: %s",
                          BRIDGE_REFUSAL_LOG_MS / 1000, line);
}
