"""duro-enricher end to end (the guarantees, the enricher's contract): signed webhooks through duro-bridge into the
raw topic, enriched by duro-enricher into per-event topics, exactly once, also when Duro
delivers the same event several times."""

from __future__ import annotations

import json

import pytest

import kafkatest

from bridgetest import new_id, rfc3339, wait_until
from enrichertest import (KNOWN_EVENTS, RawProducer, Rig, check_output, co_event, double,  # noqa: F401
                          enrichers, item_event, parse_output, senders)
from duro_double import random_events

WEIRD_EVENT = "Foo.Bar-Baz!"  # an unknown event whose name needs sanitising


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811 - this module also needs the weird event's topic
    r = Rig(broker, double, tmp_path, events=KNOWN_EVENTS + ("FOO_BAR", WEIRD_EVENT))
    yield r
    r.close()


def _unknown(name: str, data: dict) -> dict:
    return {"id": new_id("evt"), "webhook_id": "webhook_e2e", "event": name,
            "created_at": rfc3339(), "data": data}


@pytest.mark.timeout_s(120)
def test_webhooks_through_bridge_and_enricher(rig, double, bridges, enrichers, senders):
    bridge = bridges(rig.raw)
    enricher = enrichers(rig.env(rig.txn("a")))
    sender = senders(bridge)
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    wh = "webhook_e2e"

    payloads = [item_event("ITEM_UPDATE", c, webhook_id=wh) for c in comps[0:8]]
    payloads += [item_event("ITEM_CREATE", c, webhook_id=wh) for c in comps[8:11]]
    deleted_item = comps[11]
    payloads.append(item_event("ITEM_DELETE", deleted_item, webhook_id=wh))
    for i, name in enumerate(("CO_OPEN", "CO_UPDATE", "CO_STAGE_TRANSITION",
                              "CO_STAGE_REVIEWER_DECISION", "CO_RESOLUTION")):
        payloads.append(co_event(name, cos[i], data=double.data, webhook_id=wh))
    payloads.append(co_event("CO_UPDATE", cos[0], webhook_id=wh))  # the same CO twice
    deleted_co = cos[10]
    payloads.append(co_event("CO_DELETE", deleted_co, webhook_id=wh))
    unknown_item = comps[20]
    unknown_with_item = _unknown("FOO_BAR", {"item_id": unknown_item, "extra": [1, 2]})
    unknown_bare = _unknown("FOO_BAR", {"note": "no ids"})
    unknown_weird = _unknown(WEIRD_EVENT, {})
    payloads += [unknown_with_item, unknown_bare, unknown_weird]

    ids = sender.send_many(payloads)
    assert sender.wait(60), f"webhook deliveries did not finish: {sender.summary()}"
    s = sender.summary()
    assert s["acknowledged"] == len(payloads), s

    rig.wait_for_ids(ids, timeout=60, procs=[enricher])
    rig.wait_drained(timeout=60, procs=[enricher])
    by = rig.assert_exactly_once(ids)

    raw = {(r.partition, r.offset): r for r in rig.raw_records()}
    assert len(raw) == len(payloads)
    for p in payloads:
        [rec] = by[p["id"]]
        assert rec.topic != rig.dlq, f"{p['id']} went to the DLQ: {rec.headers}"
        ev = p["event"]
        if ev.endswith("_DELETE"):
            v = check_output(rig, rec, p, status="deleted")
        elif ev in KNOWN_EVENTS:
            v = check_output(rig, rec, p, status="found")
        else:
            v = check_output(rig, rec, p, status="unsupported", kind="unknown")
        src = raw[(v["source"]["partition"], v["source"]["offset"])]
        assert json.loads(src.value) == p, "source must point at the event's raw record"
        assert src.header("duro-event-id") == p["id"].encode()
        assert v["received_at"] == src.header("received-at").decode()
        if ev not in KNOWN_EVENTS:
            assert rec.key == src.key, "an unknown event keeps its raw key"

    # the weird name was sanitised into the template
    assert by[unknown_weird["id"]][0].topic == f"{rig.prefix}.events.foo.bar-baz_"
    assert parse_output(by[unknown_bare["id"]][0])["resource"]["id"] in ("",)
    assert by[unknown_bare["id"]][0].key == unknown_bare["id"].encode()
    assert parse_output(by[unknown_with_item["id"]][0])["resource"]["id"] == unknown_item

    # deletes and unknown events are not pulled
    asked = set(double.ids_requested())
    assert deleted_item not in asked and deleted_co not in asked and unknown_item not in asked
    m = enricher.metrics()
    assert m.value("duro_enricher_consumed_total") >= len(payloads)
    assert sum(v for _, v in m.by_name("duro_enricher_produced_total").items()) == len(payloads)
    assert m.value("duro_enricher_ready") == 1
    assert enricher.readyz().status == 200


@pytest.mark.timeout_s(120)
def test_repeated_deliveries_give_one_output_each(rig, double, bridges, enrichers, senders):
    bridge = bridges(rig.raw)
    enricher = enrichers(rig.env(rig.txn("a")))
    sender = senders(bridge, repeat_probability=0.9, seed=11)
    payloads = random_events(60, double.data, rng=5, webhook_id="webhook_rep")
    ids = sender.send_many(payloads)
    assert sender.wait(60), sender.summary()
    rig.wait_for_ids(ids, timeout=60, procs=[enricher])

    # Duro delivers some of them again, well after their outputs appeared
    for eid in ids[:20]:
        sender.repeat(eid, times=2)
    assert sender.wait(60), sender.summary()
    s = sender.summary()
    assert s["acknowledged"] == len(ids) and s["repeats"] >= 40, s
    rig.wait_drained(timeout=60, procs=[enricher])

    raw = rig.raw_records()
    assert len(raw) == s["acks"], (len(raw), s)
    assert len(raw) >= len(ids) + 40
    recs = rig.final_records()
    rig.assert_exactly_once(ids, recs)
    rig.assert_order_per_key(recs)
    m = enricher.metrics()
    dedup = m.value("duro_enricher_deduplicated_total")
    assert dedup == len(raw) - len(ids), (dedup, len(raw), len(ids))
    assert m.value("duro_enricher_dedupe_set_size") >= len(ids)
    print(f"raw records {len(raw)}, events {len(ids)}, deduplicated {dedup:.0f}")


@pytest.mark.timeout_s(90)
def test_odd_strings_still_give_json_outputs(rig, double, enrichers):
    """A raw record's received-at header is any bytes, and a payload's strings any Unicode
    (quotes, backslashes, control and line-separator characters, astral planes): the
    enriched value is still JSON, invalid UTF-8 replaced by U+FFFD, and the partition
    moves on to the next record (a value that could not be built would be retried for
    ever)."""
    comps = double.data.component_ids()
    webhook_id = 'wh "q" \\ \u2028\u00e9\U0001F600\x01\x7f'
    odd = item_event("ITEM_UPDATE", comps[0], webhook_id=webhook_id)
    plain = item_event("ITEM_UPDATE", comps[1], webhook_id="webhook_e2e")
    rig.produce([odd], headers={"received-at": b"2024-12-20T10:30:00.120Z\xff\xc3("})
    rig.produce([plain])
    e = enrichers(rig.env(rig.txn("a")))
    ids = [odd["id"], plain["id"]]
    rig.wait_for_ids(ids, timeout=60, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    by = rig.assert_exactly_once(ids)
    v = parse_output(by[odd["id"]][0])
    assert v["received_at"] == "2024-12-20T10:30:00.120Z\ufffd\ufffd("
    assert v["event"]["webhook_id"] == webhook_id
    assert v["event"]["id"] == odd["id"] and v["event"]["data"] == odd["data"]
    assert v["resource"] == {"kind": "item", "id": comps[0], "status": "found"}
    check_output(rig, by[plain["id"]][0], plain, status="found")


@pytest.mark.timeout_s(120)
def test_transactions_on_the_raw_topic_drain_to_its_end(rig, double, enrichers):
    """A raw topic written in transactions (the snapshot command writes it so) ends on a
    transaction marker, not a record, and an aborted transaction delivers no record at
    all: the enricher commits past them once it is idle, so the group's committed
    offsets reach the end and the lag gauge reads 0."""
    e = enrichers(rig.env(rig.txn("a")))
    comps = double.data.component_ids()
    w = RawProducer(rig.bootstrap, rig.raw, transactional_id=rig.txn("writer"))
    ids = []
    for batch in range(3):
        w.p.begin_transaction()
        for part in range(rig.raw_partitions):
            ev = item_event("ITEM_UPDATE", comps[batch * rig.raw_partitions + part])
            ids.append(ev["id"])
            w.produce(ev, partition=part)
        w.p.commit_transaction(30)
    rig.wait_for_ids(ids, timeout=60, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    # then one that aborts, once the enricher is idle: its records are never
    # delivered, only its markers, so no batch ever holds them
    w.p.begin_transaction()
    for part in range(rig.raw_partitions):
        w.produce(item_event("ITEM_UPDATE", comps[-1 - part]), partition=part)
    w.p.flush(30)
    w.p.abort_transaction(30)
    assert not w.errors, w.errors
    committed = rig.wait_drained(timeout=30, procs=[e])
    assert committed == kafkatest.end_offsets(rig.bootstrap, rig.raw), committed
    rig.assert_exactly_once(ids)

    def lag_zero():
        lag = e.metrics().by_name("duro_enricher_consumer_lag")
        return len(lag) == rig.raw_partitions and all(v == 0 for v in lag.values())
    wait_until(lag_zero, 15, "the consumer lag gauge to read 0 on every partition")
