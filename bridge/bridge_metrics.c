/* bridge_metrics.c - what /metrics and /readyz report for duro-bridge (see bridge.h).
 */
#include "bridge.h"

#include <stdio.h>

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
        atomic_init(&m->inflight, 0);
}

void bridge_metrics_count(struct bridge_metrics *m, unsigned status)
{
        size_t i = 0;

        while (i < BRIDGE_NSTATUS - 1 && bridge_statuses[i] != status)
                i++;
        atomic_fetch_add_explicit(&m->requests[i], 1, memory_order_relaxed);
}

int bridge_metrics_render(void *opaque, struct dbuf *b)
{
        struct bridge *br        = opaque;
        struct bridge_metrics *m = &br->m;
        char reason[200];
        int rc = 0;

        rc |= dmetrics_head(b, "duro_bridge_requests_total",
                            "Webhook requests answered, by HTTP status.", "counter");
        for (size_t i = 0; i < BRIDGE_NSTATUS; i++) {
                char labels[32];
                if (bridge_statuses[i])
                        snprintf(labels, sizeof(labels), "status=\"%u\"",
                                 bridge_statuses[i]);
                else
                        snprintf(labels, sizeof(labels), "status=\"other\"");
                rc |= dmetrics_sample(b, "duro_bridge_requests_total", labels,
                                      (double)atomic_load(&m->requests[i]));
        }
        rc |= dmetrics_hist_render(b, "duro_bridge_ack_latency_seconds",
                                   "Time from produce to the broker's "
                                   "acknowledgement.",
                                   &m->ack_latency);
        rc |= dmetrics_gauge(b, "duro_bridge_inflight_requests",
                             "Webhook requests received and not yet completed.",
                             (double)atomic_load(&m->inflight));
        rc |= dmetrics_counter(b, "duro_bridge_producer_errors_total",
                               "Records that failed to produce or deliver.",
                               atomic_load(&m->producer_errors));
        rc |= dmetrics_counter(b, "duro_bridge_late_delivery_reports_total",
                               "Delivery reports that arrived after the request "
                               "was answered.",
                               atomic_load(&m->late_reports));
        rc |= dmetrics_counter(b, "duro_bridge_captured_invalid_total",
                               "Signed but invalid payloads published with "
                               "duro-invalid.",
                               atomic_load(&m->captured_invalid));
        rc |= dmetrics_head(b, "duro_bridge_connections_cut_total",
                            "Connections closed without an answer, by reason.",
                            "counter");
        rc |= dmetrics_sample(b, "duro_bridge_connections_cut_total",
                              "reason=\"body_too_large\"",
                              (double)atomic_load(&m->cut_too_large));
        rc |= dmetrics_sample(b, "duro_bridge_connections_cut_total",
                              "reason=\"request_deadline\"",
                              (double)atomic_load(&m->cut_deadline));
        rc |= dmetrics_sample(b, "duro_bridge_connections_cut_total", "reason=\"idle\"",
                              (double)atomic_load(&m->cut_idle));
        rc |= dmetrics_gauge(b, "duro_bridge_producer_queue_depth",
                             "Records in the producer queue, not yet "
                             "acknowledged.",
                             br->rk ? (double)rd_kafka_outq_len(br->rk) : 0);
        rc |= dmetrics_counter(b, "duro_bridge_secrets_reloads_total",
                               "Times the webhook secrets were reloaded.",
                               atomic_load(&m->secrets_reloads));
        rc |= dmetrics_counter(b, "duro_bridge_secrets_reload_errors_total",
                               "Failed reloads of the webhook secrets (the old "
                               "ones stay active).",
                               atomic_load(&m->secrets_reload_errors));
        rc |= dmetrics_gauge(b, "duro_bridge_secrets_active",
                             "Webhook secrets currently accepted.",
                             (double)dsecrets_count(br->secrets));
        rc |= dmetrics_gauge(b, "duro_bridge_ready", "1 when /readyz answers ready.",
                             bridge_ready(br, reason, sizeof(reason)));
        return rc ? -1 : 0;
}

int bridge_ready(void *opaque, char *reason, size_t reasonsize)
{
        struct bridge *br = opaque;

        if (atomic_load(&br->draining)) {
                snprintf(reason, reasonsize, "shutting down");
                return 0;
        }
        return bridge_kafka_ready(br, reason, reasonsize);
}
