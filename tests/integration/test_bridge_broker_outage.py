"""Broker down: no 2xx without an ack (the guarantees, the bridge's contract). While the (shared) broker
is stopped a webhook gets 503 with Retry-After within the ack timeout and the
bridge turns unready; after the restart it accepts again, and every event that
ever got a 2xx is on the raw topic.

This file stops and restarts the session's broker; a finalizer brings it back
even when the test fails."""

import pytest

from bridgetest import body_of, event
from proctest import wait_until
from kafkatest import BrokerControlUnavailable, read_all

ACK_TIMEOUT_MS = 3000
SLACK_S = 1.5


@pytest.mark.timeout_s(300)
def test_broker_outage_503_then_recovery(restorable_broker, bridges, topic):
    broker = restorable_broker
    b = bridges(topic, DURO_BRIDGE_ACK_TIMEOUT_MS=ACK_TIMEOUT_MS)
    acked = {}  # event id -> body, for every 2xx

    def post_and_track(p):
        r = b.post(p, timeout=ACK_TIMEOUT_MS / 1000 + 30)
        if 200 <= r.status < 300:
            acked[p["id"]] = body_of(p)
        return r

    for _ in range(3):
        r = post_and_track(event("ITEM_UPDATE"))
        assert r.status == 200, r

    try:
        broker.stop()
    except BrokerControlUnavailable as e:
        pytest.skip(str(e))

    # a webhook while the broker is down: 503 + Retry-After within the ack timeout
    outage_statuses = []
    for ev in ("ITEM_UPDATE", "CO_OPEN", "ITEM_CREATE"):
        r = post_and_track(event(ev))
        outage_statuses.append(r.status)
        assert r.status == 503, r
        assert r.header("retry-after") is not None, r
        assert r.header("retry-after").strip().isdigit(), r
        assert r.json()["status"] == "error"
        assert r.elapsed < ACK_TIMEOUT_MS / 1000 + SLACK_S, \
            f"503 after {r.elapsed:.2f}s, ack timeout is {ACK_TIMEOUT_MS} ms"

    # the bridge turns unready while the broker is down
    rz = wait_until(lambda: (lambda r: r if r.status == 503 else None)(b.readyz()), 20,
                    "/readyz -> 503 while the broker is down")
    assert rz.body.decode().startswith("not ready"), rz
    assert b.metrics().value("duro_bridge_ready") == 0

    broker.restart()
    b.wait_ready(timeout=60)

    # accepting again; allow the producer a bounded moment to reconnect
    def accepted():
        r = post_and_track(event("ITEM_UPDATE"))
        return r if r.status == 200 else None
    wait_until(accepted, 60, "a 200 after the broker restart", interval=0.2)
    for _ in range(3):
        r = post_and_track(event("CO_UPDATE"))
        assert r.status == 200, r

    m = b.metrics()
    assert m.requests(503) >= len(outage_statuses)
    assert m.value("duro_bridge_ready") == 1

    on_topic = {}
    for rec in read_all(broker.bootstrap, topic, timeout=30):
        on_topic.setdefault(rec.header("duro-event-id").decode(), rec.value)
    missing = sorted(set(acked) - set(on_topic))
    assert not missing, f"acknowledged events missing from the raw topic: {missing}"
    for eid, body in acked.items():
        assert on_topic[eid] == body
