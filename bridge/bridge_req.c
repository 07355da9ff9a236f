/* bridge_req.c - a webhook request's life: its references, the list of requests
 * waiting for their record (in ack-deadline order), the deadline, and the one call
 * that completes a request from its record's outcome (see bridge.h). */
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>

#include "dtime.h"

void bridge_req_init(struct bridge *br)
{
        pthread_mutex_init(&br->pending_lock, NULL);
        br->pending.head = br->pending.tail = NULL;
}

void bridge_req_destroy(struct bridge *br)
{
        pthread_mutex_destroy(&br->pending_lock);
}

struct bridge_req *bridge_req_new(struct bridge *br, struct MHD_Connection *conn)
{
        struct bridge_req *req = calloc(1, sizeof(*req));

        if (!req)
                return NULL;
        atomic_init(&req->refcnt, 1);
        atomic_init(&req->state, BRIDGE_REQ_RECEIVING);
        req->br          = br;
        req->conn        = conn;
        req->received_ms = dtime_now_ms();
        dbuf_init(&req->body, (size_t)br->cfg.max_body);
        atomic_fetch_add(&br->m.inflight, 1);
        return req;
}

static void bridge_req_release(struct bridge_req *req)
{
        if (atomic_fetch_sub(&req->refcnt, 1) != 1)
                return;
        dbuf_free(&req->body);
        free(req->event_id);
        free(req);
}

void bridge_req_end(struct bridge_req *req)
{
        atomic_fetch_sub(&req->br->m.inflight, 1);
        bridge_req_release(req);
}

void bridge_req_wait(struct bridge_req *req)
{
        struct bridge *br = req->br;

        atomic_store(&req->state, BRIDGE_REQ_WAITING);
        req->deadline_ms = dtime_mono_ms() + br->cfg.ack_timeout_ms;
        atomic_fetch_add(&req->refcnt, 1); /* the record's reference */
        /* All deadlines are now + the same timeout, so appending keeps the order. */
        pthread_mutex_lock(&br->pending_lock);
        bridge_list_append(&br->pending, &req->link);
        req->in_pending = 1;
        pthread_mutex_unlock(&br->pending_lock);
}

static void bridge_req_unlist_locked(struct bridge_req *req)
{
        if (!req->in_pending)
                return;
        bridge_list_unlink(&req->br->pending, &req->link);
        req->in_pending = 0;
}

/* Sets the answer for the outcome; the caller won the request. */
static void bridge_req_set_answer(struct bridge_req *req, enum bridge_outcome outcome,
                                  const char *error)
{
        struct bridge *br = req->br;

        req->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        switch (outcome) {
        case BRIDGE_DELIVERED:
                req->status = req->invalid ? MHD_HTTP_ACCEPTED : MHD_HTTP_OK;
                break;
        case BRIDGE_FAILED:
                snprintf(req->error, sizeof(req->error), "Kafka delivery failed: %s",
                         error);
                break;
        case BRIDGE_TIMED_OUT:
                snprintf(req->error, sizeof(req->error),
                         "no acknowledgement from Kafka within %lld ms",
                         br->cfg.ack_timeout_ms);
                break;
        case BRIDGE_REFUSED:
                snprintf(req->error, sizeof(req->error), "%s", error);
                break;
        }
}

int bridge_req_complete(struct bridge_req *req, enum bridge_outcome outcome,
                        int32_t partition, int64_t offset, const char *error)
{
        struct bridge *br = req->br;
        int expected      = BRIDGE_REQ_WAITING;
        int answered;

        pthread_mutex_lock(&br->pending_lock);
        bridge_req_unlist_locked(req);
        pthread_mutex_unlock(&br->pending_lock);
        /* Write the position before the state flips, so that the answer never shows
         * a stale one. Only the winner of the flip uses it. */
        if (outcome == BRIDGE_DELIVERED && atomic_load(&req->state) == expected) {
                req->partition = partition;
                req->offset    = offset;
        }
        answered =
            atomic_compare_exchange_strong(&req->state, &expected, BRIDGE_REQ_ANSWERED);
        if (answered) {
                bridge_req_set_answer(req, outcome, error);
                MHD_resume_connection(req->conn);
                atomic_fetch_sub(&br->suspended, 1);
        } else if (outcome == BRIDGE_DELIVERED || outcome == BRIDGE_FAILED) {
                atomic_fetch_add(&br->m.late_reports, 1);
        }
        if (outcome != BRIDGE_TIMED_OUT)
                bridge_req_release(req);
        return answered;
}

void bridge_req_expire(struct bridge *br, int64_t now)
{
        for (;;) {
                struct bridge_req *req;

                pthread_mutex_lock(&br->pending_lock);
                req = br->pending.head
                          ? BRIDGE_LIST_ENTRY(br->pending.head, struct bridge_req)
                          : NULL;
                if (!req || req->deadline_ms > now) {
                        pthread_mutex_unlock(&br->pending_lock);
                        return;
                }
                /* Held across the completion: the report may come meanwhile and
                 * drop the record's reference. */
                bridge_req_unlist_locked(req);
                atomic_fetch_add(&req->refcnt, 1);
                pthread_mutex_unlock(&br->pending_lock);
                bridge_req_complete(req, BRIDGE_TIMED_OUT, 0, 0, NULL);
                bridge_req_release(req);
        }
}
