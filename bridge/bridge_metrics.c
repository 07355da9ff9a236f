/* bridge_metrics.c - the bridge's counters and what /metrics reports (see bridge.h). */
#include "bridge.h"

#include <stdio.h>

/* The statuses counted one by one, with their labels; the last slot counts the rest. */
static const struct {
        unsigned status;
        const char *labels;
} bridge_statuses[BRIDGE_NSTATUS] = {
    {200, "status=\"200\""}, {202, "status=\"202\""}, {400, "status=\"400\""},
    {401, "status=\"401\""}, {404, "status=\"404\""}, {405, "status=\"405\""},
    {413, "status=\"413\""}, {415, "status=\"415\""}, {422, "status=\"422\""},
    {500, "status=\"500\""}, {503, "status=\"503\""}, {0, "status=\"other\""},
};

void bridge_metrics_init(struct bridge_metrics *m)
{
        static const double ack_bounds[] = {
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

        for (size_t i = 0; i < BRIDGE_NSTATUS; i++)
                atomic_init(&m->requests[i], 0);
        dmetrics_hist_init(&m->ack_latency, ack_bounds,
                           sizeof(ack_bounds) / sizeof(ack_bounds[0]));
        atomic_init(&m->producer_errors, 0);
        atomic_init(&m->late_reports, 0);
        atomic_init(&m->captured_invalid, 0);
        atomic_init(&m->cut_too_large, 0);
        atomic_init(&m->cut_deadline, 0);
        atomic_init(&m->cut_idle, 0);
        atomic_init(&m->secrets_reloads, 0);
        atomic_init(&m->secrets_reload_errors, 0);
        atomic_init(&m->trace_ignored_parent, 0);
        atomic_init(&m->trace_ignored_state, 0);
        atomic_init(&m->inflight, 0);
}

void bridge_metrics_count(struct bridge_metrics *m, unsigned status)
{
        size_t i = 0;

        while (i < BRIDGE_NSTATUS - 1 && bridge_statuses[i].status != status)
                i++;
        atomic_fetch_add_explicit(&m->requests[i], 1, memory_order_relaxed);
}

int bridge_metrics_render(void *opaque, struct dbuf *b)
{
        struct bridge *br        = opaque;
        struct bridge_metrics *m = &br->m;
        char reason[200];
        const struct dmetrics_row rows[] = {
            DMETRICS_GAUGE_ROW("duro_bridge_inflight_requests",
                               "Webhook requests received and not yet completed.",
                               atomic_load(&m->inflight)),
            DMETRICS_COUNTER_ROW("duro_bridge_producer_errors_total",
                                 "Records that failed to produce or deliver.",
                                 atomic_load(&m->producer_errors)),
            DMETRICS_COUNTER_ROW("duro_bridge_late_delivery_reports_total",
                                 "Delivery reports that arrived after the request "
                                 "was answered.",
                                 atomic_load(&m->late_reports)),
            DMETRICS_COUNTER_ROW("duro_bridge_captured_invalid_total",
                                 "Signed but invalid payloads published with "
                                 "duro-invalid.",
                                 atomic_load(&m->captured_invalid)),
            DMETRICS_SAMPLE_ROW("counter", "duro_bridge_trace_context_ignored_total",
                                "Requests whose W3C trace header was invalid and "
                                "ignored, by header (an invalid traceparent: the "
                                "record starts a new trace).",
                                "header=\"traceparent\"",
                                atomic_load(&m->trace_ignored_parent)),
            DMETRICS_SAMPLE_ROW("counter", "duro_bridge_trace_context_ignored_total",
                                NULL, "header=\"tracestate\"",
                                atomic_load(&m->trace_ignored_state)),
            DMETRICS_SAMPLE_ROW("counter", "duro_bridge_connections_cut_total",
                                "Connections closed without an answer, by reason.",
                                "reason=\"body_too_large\"",
                                atomic_load(&m->cut_too_large)),
            DMETRICS_SAMPLE_ROW("counter", "duro_bridge_connections_cut_total", NULL,
                                "reason=\"request_deadline\"",
                                atomic_load(&m->cut_deadline)),
            DMETRICS_SAMPLE_ROW("counter", "duro_bridge_connections_cut_total", NULL,
                                "reason=\"idle\"", atomic_load(&m->cut_idle)),
            DMETRICS_GAUGE_ROW("duro_bridge_producer_queue_depth",
                               "Records in the producer queue, not yet "
                               "acknowledged.",
                               bridge_kafka_queue_depth(br)),
            DMETRICS_COUNTER_ROW("duro_bridge_secrets_reloads_total",
                                 "Times the webhook secrets were reloaded.",
                                 atomic_load(&m->secrets_reloads)),
            DMETRICS_COUNTER_ROW("duro_bridge_secrets_reload_errors_total",
                                 "Failed reloads of the webhook secrets (the old "
                                 "ones stay active).",
                                 atomic_load(&m->secrets_reload_errors)),
            DMETRICS_GAUGE_ROW("duro_bridge_secrets_active",
                               "Webhook secrets currently accepted.",
                               dsecrets_count(br->secrets)),
            DMETRICS_GAUGE_ROW("duro_bridge_ready", "1 when /readyz answers ready.",
                               bridge_ready(br, reason, sizeof(reason))),
        };
        int rc = dmetrics_head(b, "duro_bridge_requests_total",
                               "Webhook requests answered, by HTTP status.", "counter");

        for (size_t i = 0; i < BRIDGE_NSTATUS; i++)
                rc |= dmetrics_sample(b, "duro_bridge_requests_total",
                                      bridge_statuses[i].labels,
                                      (double)atomic_load(&m->requests[i]));
        rc |= dmetrics_hist_render(b, "duro_bridge_ack_latency_seconds",
                                   "Time from produce to the broker's "
                                   "acknowledgement.",
                                   &m->ack_latency);
        rc |= dmetrics_rows(b, rows, sizeof(rows) / sizeof(rows[0]));
        return rc ? -1 : 0;
}
