"""The state topics and the progress topic (the enricher's contract, round 2) against
the real broker, bridge and double: a read_committed read of each compacted state topic,
reduced to the last value per key, is the double's library for the resources the events
named (deleted ones absent); a live not_found never erases a document; a missing state
topic pauses the enricher (not ready, no DLQ) until it is back; offsets that expired
resume from the progress topic with no duplicate output, or start over when told to."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import AdminClient

from bridgetest import new_id, rfc3339, wait_until
from enrichertest import (KNOWN_EVENTS, STATE_KINDS, Rig, co_event, create_topics,  # noqa: F401
                          double, enrichers, expected_document, item_event, run_enricher_once,
                          send_acknowledged, senders)
import kafkatest
import kstreamstest
from kstreamstest import reduce_state


@pytest.fixture(scope="session")
def kstreams_app():
    """The Kafka Streams application of tests/kstreams, built once (from ~/.m2)."""
    return kstreamstest.build(timeout=600)


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811
    r = Rig(broker, double, tmp_path, events=KNOWN_EVENTS + ("FOO_BAR",))
    yield r
    r.close()


def state_validator():
    from jsonschema import Draft202012Validator, FormatChecker
    from pathlib import Path
    import bridgetest
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" /
                         "state.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    fc = FormatChecker()
    fc.checks("date-time")(bridgetest.date_time_ok)
    return Draft202012Validator(schema, format_checker=fc)


def read_state(rig, kind: str) -> list:
    return kafkatest.read_all(rig.bootstrap, rig.state_topic(kind), isolation="read_committed",
                              timeout=30)


def _unknown(name: str, data: dict) -> dict:
    return {"id": new_id("evt"), "webhook_id": "webhook_state", "event": name,
            "created_at": rfc3339(), "data": data}


@pytest.mark.timeout_s(420)
def test_state_topics_hold_the_library(rig, double, bridges, enrichers, senders, kstreams_app):
    bridge = bridges(rig.raw)
    enricher = enrichers(rig.env(rig.txn("a")))
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    named_items, named_cos = comps[0:40], cos[0:15]
    deleted_items, deleted_cos = set(comps[30:34]), {cos[12]}
    payloads = [item_event("ITEM_CREATE", c) for c in named_items[:10]]
    payloads += [item_event("ITEM_UPDATE", c) for c in named_items[10:]]
    payloads += [co_event("CO_UPDATE", c) for c in named_cos]
    payloads += [item_event("ITEM_UPDATE", c) for c in named_items[:5]]  # again
    payloads += [_unknown("FOO_BAR", {"item_id": comps[60]})]  # not a state
    ids = send_acknowledged(bridge, senders, payloads)
    rig.wait_for_ids(ids, timeout=90, procs=[enricher])

    # Duro changes some, deletes others; the webhooks follow (some delivered twice)
    for c in named_items[:6]:
        double.data.update(c, name=f"renamed {c}")
    for rid in deleted_items | deleted_cos:
        double.data.delete(rid)
    later = [item_event("ITEM_UPDATE", c) for c in named_items[:6]]
    later += [item_event("ITEM_DELETE", c) for c in sorted(deleted_items)]
    later += [co_event("CO_DELETE", c) for c in sorted(deleted_cos)]
    s = senders(bridge, repeat_probability=0.5, seed=3)
    more = s.send_many(later)
    assert s.wait(60), s.summary()
    rig.wait_for_ids(more, timeout=90, procs=[enricher])
    rig.wait_drained(timeout=60, procs=[enricher])

    v = state_validator()
    for kind, named, deleted in (("item", named_items, deleted_items),
                                 ("change_order", named_cos, deleted_cos)):
        records = read_state(rig, kind)
        for r in records:
            assert r.header("content-type") == b"application/json"
            if r.value is not None:
                doc = json.loads(r.value)
                errors = list(v.iter_errors(doc))
                assert not errors, errors[:3]
                assert doc["id"] == r.key.decode() and doc["kind"] == kind
        state = reduce_state(records)
        want = {rid: expected_document(double, kind, rid) for rid in named if rid not in deleted}
        assert {k: s["document"] for k, s in state.items()} == want
        # every deletion left a tombstone
        tomb = {r.key.decode() for r in records if r.value is None}
        assert tomb == set(deleted)
    # the last event of a renamed component is what its state says it follows
    st = reduce_state(read_state(rig, "item"))
    c = named_items[0]
    assert st[c]["as_of"]["event_type"] == "ITEM_UPDATE"
    assert st[c]["as_of"]["event_id"] in {p["id"] for p in later if p["data"].get("item_id") == c}
    assert st[c]["as_of"]["source"]["topic"] == rig.raw
    assert st[c]["document"]["name"] == f"renamed {c}"
    assert comps[60] not in st  # an unknown event names no state

    # A real Kafka Streams application reading duro.state.item as a KTable holds the same
    # table: builder.table() is Duro's library.
    records = read_state(rig, "item")
    for r in records:  # keyed where a Java producer would put them (co-partitioning)
        assert r.partition == kstreamstest.java_partition(r.key, 3)
    dump = kstreamstest.dump_table(rig.bootstrap, rig.state_topic("item"), timeout=120)
    assert dump == kstreamstest.reduce_state(records)
    assert {k: v["document"] for k, v in dump.items()} == {
        rid: expected_document(double, "item", rid)
        for rid in named_items if rid not in deleted_items}
    m = enricher.metrics()
    assert m.value("duro_enricher_state_records_total", type="tombstone") >= len(deleted_items) + 1


@pytest.mark.timeout_s(120)
def test_live_not_found_keeps_the_document(rig, double, enrichers):
    comps = double.data.component_ids()
    c = comps[70]
    enricher = enrichers(rig.env(rig.txn("a"), DURO_NOT_FOUND_GRACE_MS=0))
    first = item_event("ITEM_UPDATE", c)
    rig.produce([first])
    rig.wait_for_ids([first["id"]], timeout=60, procs=[enricher])
    before = reduce_state(read_state(rig, "item"))[c]
    double.data.delete(c)  # Duro lost it, or a read lags: the webhook says update
    second = item_event("ITEM_UPDATE", c)
    rig.produce([second])
    got = rig.wait_for_ids([second["id"]], timeout=60, procs=[enricher])
    assert json.loads(got[second["id"]][0].value)["resource"]["status"] == "not_found"
    rig.wait_drained(timeout=60, procs=[enricher])
    records = read_state(rig, "item")
    assert reduce_state(records)[c] == before, "a live not_found erased the document"
    assert len([r for r in records if r.key == c.encode()]) == 1
    assert enricher.metrics().value("duro_enricher_state_skipped_total", reason="not_found") == 1


@pytest.mark.timeout_s(240)
def test_state_topic_gone_pauses_until_back(rig, double, enrichers):
    """A state topic deleted while running: not ready, nothing to the DLQ; created again,
    the enricher carries on and the held events are written once."""
    comps = double.data.component_ids()
    enricher = enrichers(rig.env(
        rig.txn("a"),
        DURO_RDKAFKA_PRODUCER_TOPIC_METADATA_REFRESH_INTERVAL_MS=1000,
        DURO_RDKAFKA_PRODUCER_MESSAGE_TIMEOUT_MS=10000))
    warm = item_event("ITEM_UPDATE", comps[80])
    rig.produce([warm])
    rig.wait_for_ids([warm["id"]], timeout=60, procs=[enricher])

    admin = AdminClient({"bootstrap.servers": rig.bootstrap})
    for f in admin.delete_topics([rig.state_topic("item")], operation_timeout=30).values():
        f.result()
    held = [item_event("ITEM_UPDATE", c) for c in comps[81:85]]
    rig.produce(held)

    def not_ready():
        assert enricher.alive, enricher.tail()
        r = enricher.readyz()
        return r.status == 503 and rig.state_topic("item").encode() in r.body
    wait_until(not_ready, 120, "the enricher to say the state topic is gone")
    assert kafkatest.read_all(rig.bootstrap, rig.dlq, isolation="read_committed",
                              timeout=10) == []

    create_topics(rig.bootstrap, [rig.state_topic("item")], config={"cleanup.policy": "compact"})
    got = rig.wait_for_ids([p["id"] for p in held], timeout=120, procs=[enricher])
    rig.wait_drained(timeout=60, procs=[enricher])
    rig.assert_exactly_once([warm["id"]] + [p["id"] for p in held])
    assert all(got[p["id"]][0].topic != rig.dlq for p in held)
    state = reduce_state(read_state(rig, "item"))
    assert set(comps[81:85]) <= set(state)
    wait_until(lambda: enricher.readyz().status == 200, 30, "ready again")


def _delete_group_offsets(rig) -> None:
    """What expiry does: the group's committed offsets are gone. The stopped enricher is
    a static member: the group empties when its session times out."""
    from confluent_kafka import KafkaError, KafkaException
    admin = AdminClient({"bootstrap.servers": rig.bootstrap})

    def deleted():
        try:
            for f in admin.delete_consumer_groups([rig.group], request_timeout=30).values():
                f.result()
            return True
        except KafkaException as e:
            if e.args[0].code() == KafkaError.NON_EMPTY_GROUP:
                return False
            raise
    wait_until(deleted, 60, "the group to be empty and deleted", interval=0.5)


@pytest.mark.timeout_s(240)
@pytest.mark.parametrize("ignore", [False, True])
def test_expired_offsets_resume_from_the_progress_topic(rig, double, enrichers, ignore):
    comps = double.data.component_ids()
    first = [item_event("ITEM_UPDATE", c) for c in comps[90:110]]
    env = rig.env(rig.txn("a"), DURO_PROGRESS_IGNORE="true" if ignore else "false")
    e1 = enrichers(env)
    rig.produce(first)
    rig.wait_for_ids([p["id"] for p in first], timeout=60, procs=[e1])
    rig.wait_drained(timeout=60, procs=[e1])
    assert e1.terminate() == 0
    progress = kafkatest.read_all(rig.bootstrap, rig.progress, isolation="read_committed",
                                  timeout=30)
    assert progress and all(r.key.decode().startswith(f"{rig.group}:{rig.raw}:")
                            for r in progress)
    _delete_group_offsets(rig)

    second = [item_event("ITEM_UPDATE", c) for c in comps[110:120]]
    rig.produce(second)
    e2 = enrichers(env)
    rig.wait_for_ids([p["id"] for p in second], timeout=90, procs=[e2])
    rig.wait_drained(timeout=60, procs=[e2])
    ids = [p["id"] for p in first + second]
    if not ignore:
        rig.assert_exactly_once(ids)
        assert any("resuming at" in m and "progress topic" in m for m in e2.log_msgs())
    else:
        # a deliberate reset: everything retained is processed again, as documented
        by = rig.by_event_id(rig.final_records())
        assert all(len(by[p["id"]]) == 2 for p in first), "the reset reprocesses"
        assert all(len(by[p["id"]]) == 1 for p in second)
        assert not any("resuming at" in m for m in e2.log_msgs())


@pytest.mark.timeout_s(180)
def test_state_record_too_large_sends_its_resource_to_the_dlq(rig, double, enrichers):
    """The item state topic takes no record as large as a document: each event of an item
    goes to the DLQ as produce-rejected (no output, no state), while a change order in
    the same batches is written as usual."""
    admin = AdminClient({"bootstrap.servers": rig.bootstrap})
    from confluent_kafka.admin import ConfigResource
    # (alter_configs replaces every config: compaction is given again)
    res = ConfigResource("topic", rig.state_topic("item"),
                         set_config={"max.message.bytes": "64", "cleanup.policy": "compact"})
    for f in admin.alter_configs([res]).values():
        f.result(timeout=30)
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    items = [item_event("ITEM_UPDATE", comps[130]), item_event("ITEM_CREATE", comps[130]),
             item_event("ITEM_UPDATE", comps[131])]
    co = co_event("CO_UPDATE", cos[20])
    rig.produce(items + [co])
    enricher = enrichers(rig.env(rig.txn("a")))
    got = rig.wait_for_ids([p["id"] for p in items + [co]], timeout=120, procs=[enricher])
    rig.wait_drained(timeout=60, procs=[enricher])
    rig.assert_exactly_once([p["id"] for p in items + [co]])
    for p in items:
        [d] = got[p["id"]]
        assert d.topic == rig.dlq, f"{p['id']} went to {d.topic}"
        assert d.header("error-class") == b"produce-rejected"
        assert rig.state_topic("item").encode() in d.header("error-message")
    assert got[co["id"]][0].topic == rig.topic("CO_UPDATE")
    assert read_state(rig, "item") == []
    assert set(reduce_state(read_state(rig, "change_order"))) == {cos[20]}


@pytest.mark.timeout_s(60)
@pytest.mark.parametrize("case", ["missing", "not-compacted", "progress-missing"])
def test_start_up_refuses_missing_or_uncompacted_topics(rig, case):
    env = rig.env(rig.txn("a"))
    if case == "missing":
        env["DURO_STATE_TOPIC_TEMPLATE"] = rig.prefix + ".nostate.{kind}"
        want = f"topic {rig.prefix}.nostate.item: does not exist"
    elif case == "progress-missing":
        env["DURO_PROGRESS_TOPIC"] = rig.prefix + ".noprogress"
        want = f"topic {rig.prefix}.noprogress: does not exist"
    else:
        create_topics(rig.bootstrap, [rig.prefix + ".plain.item", rig.prefix + ".plain.change_order"])
        env["DURO_STATE_TOPIC_TEMPLATE"] = rig.prefix + ".plain.{kind}"
        want = f"topic {rig.prefix}.plain.item: not compacted (cleanup.policy=delete"
    rc, out, err = run_enricher_once(env, timeout=40)
    errors = [json.loads(ln)["msg"] for ln in err.splitlines()
              if ln.strip() and json.loads(ln).get("level") == "error"]
    assert rc != 0 and len(errors) == 1 and want in errors[0], (rc, err)
