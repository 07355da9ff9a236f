"""/metrics (the bridge's contract): Prometheus text that parses, with counters matching the
traffic the test sent and an ack-latency histogram counting every acked request."""

import time

import pytest

from bridgetest import body_of, event, post_declared_size, rfc3339, sign
from proctest import Metrics, wait_until

STATUSES = ["200", "202", "400", "401", "404", "405", "413", "415", "422", "500", "503", "other"]

FAMILIES = {
    "duro_bridge_requests_total": "counter",
    "duro_bridge_ack_latency_seconds": "histogram",
    "duro_bridge_inflight_requests": "gauge",
    "duro_bridge_producer_errors_total": "counter",
    "duro_bridge_late_delivery_reports_total": "counter",
    "duro_bridge_captured_invalid_total": "counter",
    "duro_bridge_connections_cut_total": "counter",
    "duro_bridge_producer_queue_depth": "gauge",
    "duro_bridge_secrets_reloads_total": "counter",
    "duro_bridge_secrets_active": "gauge",
    "duro_bridge_ready": "gauge",
}


def test_metrics_match_traffic(bridges, topic):
    b = bridges(topic, DURO_BRIDGE_MAX_BODY=4096)
    m0 = b.metrics()
    for s in STATUSES:
        assert m0.requests(s) == 0, s
    assert m0.value("duro_bridge_ack_latency_seconds_count") == 0

    sent = {s: 0 for s in STATUSES}

    def expect(status, r):
        assert r is not None and r.status == int(status), r
        sent[status] += 1

    for ev in ("ITEM_CREATE", "ITEM_UPDATE", "CO_OPEN", "CO_RESOLUTION", "SOMETHING_NEW"):
        expect("200", b.post(event(ev)))
    for bad in (b"not json", body_of(event("ITEM_UPDATE", data={})),
                body_of(event("CO_UPDATE", data={"item_id": "x"}))):
        expect("202", b.post(bad))
    expect("401", b.post(event("ITEM_UPDATE"), sign_=False))
    expect("401", b.post(event("ITEM_UPDATE"), secret="wrong"))
    expect("401", b.post(event("ITEM_UPDATE"), signature="sha256=abc"))
    expect("404", b.post(event("ITEM_UPDATE"), path="/elsewhere"))
    expect("405", b.post(b"", method="GET", sign_=False, content_type=None))
    expect("415", b.post(event("ITEM_UPDATE"), content_type="text/plain"))
    expect("422", b.post(event("ITEM_UPDATE", created_at=rfc3339(time.time() - 3 * 86400))))
    big = b'{"pad":"' + b"z" * 5000 + b'"}'
    expect("413", post_declared_size(b.port, big, {"Content-Type": "application/json",
                                                   "X-Duro-Signature": sign(b.secrets_[0], big)}))

    r = b.admin("/metrics")
    assert r.status == 200
    assert r.header("content-type").startswith("text/plain"), r.headers
    m = b.metrics()  # parses every line, or raises

    for fam, typ in FAMILIES.items():
        assert f"# TYPE {fam} {typ}" in m.text, f"missing # TYPE for {fam}"
        assert f"# HELP {fam} " in m.text, f"missing # HELP for {fam}"
    for s in STATUSES:
        assert m.requests(s) == sent[s], f"requests_total{{status={s}}}: {m.requests(s)} != {sent[s]}"

    acked = sent["200"] + sent["202"]
    assert m.value("duro_bridge_ack_latency_seconds_count") == acked
    buckets = sorted(((float(dict(lbl)["le"]), v) for lbl, v in
                      m.by_name("duro_bridge_ack_latency_seconds_bucket").items()))
    assert buckets and buckets[-1][0] == float("inf")
    assert buckets[-1][1] == acked
    assert all(a[1] <= b_[1] for a, b_ in zip(buckets, buckets[1:])), "buckets not cumulative"
    assert 0 < m.value("duro_bridge_ack_latency_seconds_sum") < acked * 10

    assert m.value("duro_bridge_captured_invalid_total") == sent["202"]
    assert m.value("duro_bridge_producer_errors_total") == 0
    assert m.value("duro_bridge_late_delivery_reports_total") == 0
    assert m.value("duro_bridge_inflight_requests") == 0
    assert m.value("duro_bridge_secrets_active") == 1
    assert m.value("duro_bridge_secrets_reloads_total") == 0
    assert m.value("duro_bridge_ready") == 1
    cut = m.by_name("duro_bridge_connections_cut_total")
    assert cut and all(dict(lbl).get("reason") for lbl in cut), cut
    assert all(v == 0 for v in cut.values()), cut
    wait_until(lambda: b.metrics().value("duro_bridge_producer_queue_depth") == 0, 10,
               "an empty producer queue")


def test_metrics_parser_rejects_garbage():
    with pytest.raises(ValueError):
        Metrics("duro_bridge_ready one\n")
    with pytest.raises(ValueError):
        Metrics('x{status=200} 1\n')
    assert Metrics('# HELP x y\nx{a="1",b="q\\"z"} 2.5e3\ny 1\n').value("x", a="1", b='q\\"z') == 2500
