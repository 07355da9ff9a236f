/* enricher_ready.c - whether the enricher is ready (/readyz, and the
 * duro_enricher_ready gauge): not while it shuts down, after a fatal Kafka error, or
 * while the Duro API is down or refuses the key (the cycle says so while it waits on
 * the pull), or while a state or the progress topic is missing or refused (the
 * transaction found out; enricher_state.c looks for it again). */
#include "enricher.h"

#include <stdio.h>
#include <string.h>

#include "dlog.h"

void enricher_ready_init(struct enricher_ready *r)
{
        pthread_mutex_init(&r->lock, NULL);
        atomic_init(&r->api_down, 0);
        atomic_init(&r->state_down, 0);
        r->reason[0]       = '\0';
        r->state_reason[0] = '\0';
}

void enricher_ready_destroy(struct enricher_ready *r)
{
        pthread_mutex_destroy(&r->lock);
}

void enricher_ready_api_down(struct enricher *e, const char *reason)
{
        struct enricher_ready *r = &e->ready;

        pthread_mutex_lock(&r->lock);
        if (!atomic_load(&r->api_down) || strcmp(r->reason, reason)) {
                snprintf(r->reason, sizeof(r->reason), "%s", reason);
                if (!atomic_exchange(&r->api_down, 1))
                        dlog_warn("not ready: %s; partitions paused", reason);
        }
        pthread_mutex_unlock(&r->lock);
}

void enricher_ready_api_up(struct enricher *e)
{
        if (atomic_exchange(&e->ready.api_down, 0))
                dlog_info("ready again: the Duro API answers");
}

void enricher_ready_state_down(struct enricher *e, const char *reason)
{
        struct enricher_ready *r = &e->ready;

        pthread_mutex_lock(&r->lock);
        if (!atomic_load(&r->state_down) || strcmp(r->state_reason, reason)) {
                snprintf(r->state_reason, sizeof(r->state_reason), "%s", reason);
                dlog_warn("not ready: %s; partitions paused until it is back", reason);
                atomic_store(&r->state_down, 1);
        }
        pthread_mutex_unlock(&r->lock);
}

void enricher_ready_state_up(struct enricher *e)
{
        if (atomic_exchange(&e->ready.state_down, 0))
                dlog_info("ready again: the state and progress topics are back");
}

int enricher_ready(void *opaque, char *reason, size_t reasonsize)
{
        struct enricher *e = opaque;

        if (!atomic_load(&e->run)) {
                snprintf(reason, reasonsize, "shutting down");
                return 0;
        }
        if (atomic_load(&e->fatal)) {
                snprintf(reason, reasonsize, "fatal Kafka error");
                return 0;
        }
        if (atomic_load(&e->ready.state_down)) {
                pthread_mutex_lock(&e->ready.lock);
                snprintf(reason, reasonsize, "%s", e->ready.state_reason);
                pthread_mutex_unlock(&e->ready.lock);
                return 0;
        }
        if (atomic_load(&e->ready.api_down)) {
                pthread_mutex_lock(&e->ready.lock);
                snprintf(reason, reasonsize, "%s", e->ready.reason);
                pthread_mutex_unlock(&e->ready.lock);
                return 0;
        }
        return 1;
}
