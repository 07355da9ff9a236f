"""duro-enricher's dead-letter queue (the guarantee "Nothing silently dropped"): signed
but invalid bodies captured by duro-bridge end in the DLQ as invalid-payload, byte for
byte and once each; an event whose output topic is missing goes to the DLQ as no-topic,
one a topic rejects for good as produce-rejected; the partition keeps moving."""

from __future__ import annotations

import collections
import json

import pytest

from bridgetest import new_id, rfc3339
from enrichertest import (Rig, check_dlq, check_output, create_topics, double,  # noqa: F401
                          enrichers, item_event, co_event, senders)

WH = "webhook_dlq"


def _compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811
    r = Rig(broker, double, tmp_path, raw_partitions=1, events=("ITEM_UPDATE",))
    yield r
    r.close()


@pytest.mark.timeout_s(120)
def test_invalid_bodies_captured_by_bridge_go_to_dlq_once(rig, double, bridges, enrichers, senders):
    comp = double.data.component_ids()[0]
    now = rfc3339()
    valid = item_event("ITEM_UPDATE", comp, webhook_id=WH)
    dup_keys = (b'{"id":"' + new_id("evt").encode() + b'","id":"evt_other","webhook_id":"wh",'
                b'"event":"ITEM_UPDATE","created_at":"' + now.encode() + b'",'
                b'"data":{"item_id":"' + comp.encode() + b'"}}')
    bodies = {
        "not-json": b"this is { not JSON",
        "missing-event": _compact({"id": new_id("evt"), "webhook_id": WH, "created_at": now,
                                   "data": {"item_id": comp}}),
        "missing-data": _compact({"id": new_id("evt"), "webhook_id": WH, "event": "ITEM_UPDATE",
                                  "created_at": now}),
        "missing-id": _compact({"webhook_id": WH, "event": "ITEM_UPDATE", "created_at": now,
                                "data": {"item_id": comp, "n": 1}}),
        "duplicate-keys": dup_keys,
        "bad-created_at": _compact({"id": new_id("evt"), "webhook_id": WH, "event": "CO_UPDATE",
                                    "created_at": "yesterday", "data": {"change_order_id": "co_1"}}),
        "item-without-item_id": _compact({"id": new_id("evt"), "webhook_id": WH,
                                          "event": "ITEM_CREATE", "created_at": now,
                                          "data": {"name": "x"}}),
    }
    bridge = bridges(rig.raw)
    e = enrichers(rig.env(rig.txn("a")))
    sender = senders(bridge)
    sent = {name: sender.send(body) for name, body in bodies.items()}
    valid_id = sender.send(valid)
    assert sender.wait(60), sender.summary()
    # two of them delivered again by Duro
    sender.repeat(sent["not-json"])
    sender.repeat(sent["missing-event"])
    assert sender.wait(60), sender.summary()
    statuses = {name: sender.ledger.get(eid)["statuses"] for name, eid in sent.items()}
    assert all(st and all(s == 202 for s in st) for st in statuses.values()), statuses

    rig.wait_for_ids(list(sent.values()) + [valid_id], timeout=60, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    recs = rig.final_records()
    dlq = [r for r in recs if r.topic == rig.dlq]
    out = [r for r in recs if r.topic != rig.dlq]
    counts = collections.Counter(r.value for r in dlq)
    for name, body in bodies.items():
        assert counts[body] == 1, f"{name}: {counts[body]} DLQ records, want 1"
    assert len(dlq) == len(bodies), [r.value[:80] for r in dlq]
    raw = rig.raw_records()
    assert len(raw) == len(bodies) + 1 + 2
    for r in dlq:
        check_dlq(rig, r, error_class="invalid-payload")
        assert r.header("duro-invalid"), "the bridge's duro-invalid header is kept"
        assert r.header("duro-signature"), "the raw headers are kept"
    assert len(out) == 1 and json.loads(out[0].value)["idempotency_key"] == valid["id"]
    check_output(rig, out[0], valid, status="found")
    assert e.metric("duro_enricher_dlq_total", **{"class": "invalid-payload"}) == len(bodies)
    assert e.metric("duro_enricher_deduplicated_total") == 2


def _two_rounds_with_dlq(rig, enrichers, first, later, dlq_event, error_class, named):
    """Produces ``first``, starts an enricher and waits for their records, then
    produces ``later`` into the moved partitions. Every event has exactly one record:
    the ``dlq_event`` ones a DLQ record of ``error_class`` whose message names
    ``named``, the others their output. Returns the enricher."""
    rig.produce(first)
    e = enrichers(rig.env(rig.txn("a")))
    rig.wait_for_ids([p["id"] for p in first], timeout=60, procs=[e])
    rig.produce(later)
    ids = [p["id"] for p in first + later]
    rig.wait_for_ids(ids, timeout=60, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    by = rig.assert_exactly_once(ids)
    for p in first + later:
        rec = by[p["id"]][0]
        if p["event"] == dlq_event:
            check_dlq(rig, rec, error_class=error_class)
            assert named in rec.header("error-message").decode()
        else:
            check_output(rig, rec, p, status="found")
    return e


@pytest.mark.timeout_s(90)
def test_missing_output_topic_goes_to_dlq_and_partition_moves(rig, double, enrichers):
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    missing_topic = rig.topic("CO_RESOLUTION")
    first = [item_event("ITEM_UPDATE", comps[0], webhook_id=WH),
             co_event("CO_RESOLUTION", cos[0], webhook_id=WH),
             item_event("ITEM_UPDATE", comps[1], webhook_id=WH)]
    later = [item_event("ITEM_UPDATE", comps[2], webhook_id=WH),
             co_event("CO_RESOLUTION", cos[1], webhook_id=WH),
             item_event("ITEM_UPDATE", comps[3], webhook_id=WH)]
    e = _two_rounds_with_dlq(rig, enrichers, first, later, "CO_RESOLUTION", "no-topic",
                             missing_topic)
    assert e.metric("duro_enricher_dlq_total", **{"class": "no-topic"}) == 2


@pytest.mark.timeout_s(90)
def test_topic_rejecting_the_record_goes_to_dlq_and_partition_moves(rig, double, enrichers):
    small = rig.topic("ITEM_CREATE")
    create_topics(rig.bootstrap, [small], config={"max.message.bytes": 200})
    rig.events.append("ITEM_CREATE")
    comps = double.data.component_ids()
    first = [item_event("ITEM_UPDATE", comps[0], webhook_id=WH),
             item_event("ITEM_CREATE", comps[1], webhook_id=WH),
             item_event("ITEM_UPDATE", comps[2], webhook_id=WH)]
    later = [item_event("ITEM_UPDATE", comps[3], webhook_id=WH),
             item_event("ITEM_UPDATE", comps[4], webhook_id=WH)]
    e = _two_rounds_with_dlq(rig, enrichers, first, later, "ITEM_CREATE", "produce-rejected",
                             small)
    m = e.metrics()
    assert m.value("duro_enricher_dlq_total", **{"class": "produce-rejected"}) == 1
    assert m.value("duro_enricher_transactions_aborted_total") >= 1
    print(f"aborted transactions: {m.value('duro_enricher_transactions_aborted_total'):.0f}")


@pytest.mark.timeout_s(90)
def test_redriven_record_processed_once_per_redrive(rig, double, enrichers):
    """the enricher's contract: the dedupe key of a redriven record is the event id + '#' + its
    duro-redrive-id header: each redrive is processed once more, exactly once."""
    comps = double.data.component_ids()
    ev = item_event("ITEM_UPDATE", comps[9], webhook_id=WH)
    other = item_event("ITEM_UPDATE", comps[10], webhook_id=WH)
    rig.produce([ev, other])
    e = enrichers(rig.env(rig.txn("a")))
    rig.wait_for_ids([ev["id"], other["id"]], timeout=60, procs=[e])
    rig.produce([ev], headers={"duro-redrive-id": "rd-1"})
    rig.produce([ev], headers={"duro-redrive-id": "rd-1"})  # the same redrive twice
    rig.produce([ev], headers={"duro-redrive-id": "rd-2"})
    rig.produce([ev, other])  # plain duplicates
    rig.wait_drained(timeout=60, procs=[e])
    recs = rig.final_records()
    outs = [r for r in recs if r.topic != rig.dlq]
    mine = [r for r in outs if json.loads(r.value)["idempotency_key"] == ev["id"]]
    assert len(mine) == 3, f"{len(mine)} outputs of {ev['id']}, want 1 + one per redrive (2)"
    assert len([r for r in outs if json.loads(r.value)["idempotency_key"] == other["id"]]) == 1
    assert not [r for r in recs if r.topic == rig.dlq]
    for r in mine:
        check_output(rig, r, ev, status="found")
    assert e.metric("duro_enricher_deduplicated_total") == 3
