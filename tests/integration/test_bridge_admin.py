"""The admin listener (the bridge's contract): /healthz live, /readyz ready only with the
broker reachable and the raw topic present."""

from bridgetest import event
from proctest import wait_until
from kafkatest import create_topic, read_all, unique_name


def test_healthz_and_readyz(bridge):
    r = bridge.admin("/healthz")
    assert (r.status, r.body.strip()) == (200, b"ok")
    r = bridge.admin("/readyz")
    assert (r.status, r.body.strip()) == (200, b"ready")
    assert bridge.admin("/nope").status == 404


def test_missing_raw_topic_not_ready_then_ready(broker, bridges):
    topic = unique_name("raw-later")
    b = bridges(topic, ready=False, DURO_BRIDGE_ACK_TIMEOUT_MS=3000)
    rz = wait_until(lambda: (lambda r: r if r.status == 503 else None)(b.readyz()), 15,
                    "/readyz -> 503 without the raw topic")
    assert rz.body.decode().startswith("not ready: "), rz
    assert topic in rz.body.decode() or "topic" in rz.body.decode().lower(), rz
    assert b.admin("/healthz").status == 200
    assert b.metrics().value("duro_bridge_ready") == 0

    r = b.post(event("ITEM_UPDATE"))
    assert r.status == 503, r
    assert r.header("retry-after") is not None
    assert r.elapsed < 3.0 + 1.5

    create_topic(broker.bootstrap, topic, partitions=1)
    b.wait_ready(30)
    r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(b.post(event("ITEM_UPDATE"))),
                   30, "a 200 once the topic exists", interval=0.2)
    ans = r.json()
    # the 503 request was not acknowledged; whatever is on the topic, the 200 one is
    assert any(rec.offset == ans["offset"] for rec in read_all(broker.bootstrap, topic))
