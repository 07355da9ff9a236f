"""The event table (schemas/event-table.txt, DURO_EVENT_TABLE) through the real bridge,
broker and enricher: Duro's renamed events (COMPONENT_UPDATED, components.updated, ...)
are keyed, stamped and enriched like the events they rename and land on their topics;
a table that maps a new event enriches it with no new build; a bridge and an enricher
on different tables still keep each resource on one raw partition, because the enricher
takes the resource from the raw record's key and duro-resource-kind header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridgetest import (bridge_env, java_partition, new_id, new_secret, rfc3339,
                        run_bridge_once)
from enrichertest import (KNOWN_EVENTS, OUTPUT_PARTITIONS, QUERIES_DIR, Rig,  # noqa: F401
                          co_event, double, enrichers, expected_document, item_event,
                          parse_output, run_enricher_once, send_acknowledged,
                          senders)

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "schemas" / "event-table.txt"


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811
    r = Rig(broker, double, tmp_path, events=KNOWN_EVENTS + ("COMPONENT_ODD", "COMPONENT_UPDATED", "WIDGET_CHANGED"))
    yield r
    r.close()


def _event(name: str, data: dict) -> dict:
    return {"id": new_id("evt"), "webhook_id": "webhook_tbl", "event": name,
            "created_at": rfc3339(), "data": data}


def _table(tmp_path: Path, name: str, extra: str) -> Path:
    """The shipped table plus extra lines, written to tmp_path/name."""
    p = tmp_path / name
    p.write_text(DEFAULT_TABLE.read_text() + "\n" + extra + "\n")
    return p


def _found(rig, rec, payload, *, kind: str, rid: str, topic_event: str) -> dict:
    """Asserts rec is payload's output, pulled as (kind, rid), on topic_event's topic."""
    v = parse_output(rec)
    assert rec.topic == rig.topic(topic_event), f"{payload['event']} went to {rec.topic}"
    assert v["event"]["type"] == payload["event"], "event.type keeps the name Duro sent"
    assert v["resource"] == {**v["resource"], "kind": kind, "id": rid, "status": "found"}
    assert v["document"] == expected_document(rig.double, kind, rid)
    assert rec.key == rid.encode()
    assert rec.partition == java_partition(rid.encode(), OUTPUT_PARTITIONS)
    return v


@pytest.mark.timeout_s(120)
def test_renamed_events_are_enriched_like_the_events_they_rename(rig, double, bridges,
                                                                  enrichers, senders):
    bridge = bridges(rig.raw)
    enricher = enrichers(rig.env(rig.txn("a")))
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    plain = _event("ITEM_UPDATE", {"item_id": comps[0]})
    renamed = [
        (_event("COMPONENT_UPDATED", {"component_id": comps[0]}), "item", comps[0], "ITEM_UPDATE"),
        (_event("components.updated", {"componentId": comps[1]}), "item", comps[1], "ITEM_UPDATE"),
        (_event("COMPONENT_CREATED", {"item_id": comps[2]}), "item", comps[2], "ITEM_CREATE"),
        (_event("CHANGE_ORDER_UPDATED", {"change_order_id": cos[0]}), "change_order", cos[0],
         "CO_UPDATE"),
    ]
    deleted = _event("COMPONENT_DELETED", {"component_id": comps[3]})
    # the assumed id field is absent: passes through as unsupported, never invalid, and
    # on its own topic (the shared one holds only events about its resources)
    no_id = _event("COMPONENT_UPDATED", {"sku": "x"})
    # a name only a pattern knows, with its own topic
    odd = _event("COMPONENT_ODD", {"component_id": comps[4]})
    payloads = [plain] + [r[0] for r in renamed] + [deleted, no_id, odd]
    ids = send_acknowledged(bridge, senders, payloads)
    rig.wait_for_ids(ids, timeout=60, procs=[enricher])
    rig.wait_drained(timeout=60, procs=[enricher])
    by = rig.assert_exactly_once(ids)

    raw = {json.loads(r.value)["id"]: r for r in rig.raw_records()}
    # keyed and stamped by the table; a renamed event shares its resource's partition
    assert raw[plain["id"]].header("duro-resource-kind") == b"item"
    assert raw[renamed[0][0]["id"]].key == comps[0].encode()
    assert raw[renamed[0][0]["id"]].partition == raw[plain["id"]].partition
    for p, kind, rid, topic_event in renamed:
        assert raw[p["id"]].key == rid.encode()
        assert raw[p["id"]].header("duro-resource-kind") == kind.encode()
        _found(rig, by[p["id"]][0], p, kind=kind, rid=rid, topic_event=topic_event)
    _found(rig, by[odd["id"]][0], odd, kind="item", rid=comps[4], topic_event="COMPONENT_ODD")

    d = parse_output(by[deleted["id"]][0])
    assert by[deleted["id"]][0].topic == rig.topic("ITEM_DELETE")
    assert d["resource"]["status"] == "deleted" and d["resource"]["id"] == comps[3]
    assert comps[3] not in set(double.ids_requested()), "a delete is not pulled"

    assert raw[no_id["id"]].header("duro-resource-kind") == b"unknown"
    assert raw[no_id["id"]].header("duro-invalid") is None
    assert raw[no_id["id"]].key == no_id["id"].encode()
    u = by[no_id["id"]][0]
    assert u.topic == rig.topic("COMPONENT_UPDATED")
    assert parse_output(u)["resource"]["status"] == "unsupported"
    assert parse_output(u)["resource"]["kind"] == "unknown"


@pytest.mark.timeout_s(120)
def test_a_table_line_enriches_a_new_event(rig, double, bridges, enrichers, senders,
                                            tmp_path):
    """WIDGET_CHANGED is no event of ours: one line in the table given to both programs
    makes it an item event on ITEM_UPDATE's topic."""
    table = _table(tmp_path, "t.txt", "WIDGET_CHANGED item widget_ref no ITEM_UPDATE")
    bridge = bridges(rig.raw, DURO_EVENT_TABLE=table)
    enricher = enrichers(rig.env(rig.txn("a"), DURO_EVENT_TABLE=table))
    comps = double.data.component_ids()
    ev = _event("WIDGET_CHANGED", {"widget_ref": comps[7]})
    # a name Duro's documentation does not show: its field is assumed, so a payload
    # without it passes through unenriched on the event's own topic, never to the DLQ
    bare = _event("WIDGET_CHANGED", {"other": comps[8]})
    ids = send_acknowledged(bridge, senders, [ev, bare])
    got = rig.wait_for_ids(ids, timeout=60, procs=[enricher])
    _found(rig, got[ev["id"]][0], ev, kind="item", rid=comps[7], topic_event="ITEM_UPDATE")
    [u] = got[bare["id"]]
    assert u.topic == rig.topic("WIDGET_CHANGED")
    assert parse_output(u)["resource"]["status"] == "unsupported"
    assert comps[8] not in set(double.ids_requested())


@pytest.mark.timeout_s(150)
def test_different_tables_keep_a_resource_on_one_partition(rig, double, bridges, enrichers,
                                                           senders, tmp_path):
    """The bridge's table maps PART_TOUCHED to data.part_ref; the enricher's (rolled out
    later) to another field and kind. The bridge alone decides the raw partition (the
    first assertion shows its keying); what this proves is the enricher's side: it takes
    kind and id from the raw record, so each component is pulled, keyed and partitioned
    downstream as the bridge said, not as its own table would (a change order with no
    id: unsupported)."""
    bridge_table = _table(tmp_path, "bridge.txt",
                          "PART_TOUCHED item part_ref no ITEM_UPDATE")
    enricher_table = _table(tmp_path, "enricher.txt",
                            "PART_TOUCHED change_order other_ref no ITEM_UPDATE")
    bridge = bridges(rig.raw, DURO_EVENT_TABLE=bridge_table)
    enricher = enrichers(rig.env(rig.txn("a"), DURO_EVENT_TABLE=enricher_table))
    comps = double.data.component_ids()[30:42]
    payloads = []
    for c in comps:
        payloads += [_event("ITEM_UPDATE", {"item_id": c}), _event("PART_TOUCHED", {"part_ref": c})]
    ids = send_acknowledged(bridge, senders, payloads)
    got = rig.wait_for_ids(ids, timeout=90, procs=[enricher])

    raw = {json.loads(r.value)["id"]: r for r in rig.raw_records()}
    partitions = set()
    for i, c in enumerate(comps):
        a, b = payloads[2 * i], payloads[2 * i + 1]
        assert raw[a["id"]].partition == raw[b["id"]].partition, f"{c} split across partitions"
        partitions.add(raw[a["id"]].partition)
        _found(rig, got[b["id"]][0], b, kind="item", rid=c, topic_event="ITEM_UPDATE")
    assert len(partitions) > 1, "the components should spread over the raw partitions"


@pytest.mark.timeout_s(120)
def test_query_overrides_name_their_own_operations(rig, double, enrichers, tmp_path):
    """The operation name sent is the document's: a DURO_QUERIES_DIR copy that renames
    the operations still enriches (the double, like any GraphQL server, refuses an
    operationName the document does not define)."""
    qdir = tmp_path / "queries"
    qdir.mkdir()
    for f in QUERIES_DIR.glob("*.graphql"):
        text = f.read_text().replace("DuroComponents", "MyComponents")
        (qdir / f.name).write_text(text.replace("DuroChangeOrders", "MyChangeOrders"))
    enricher = enrichers(rig.env(rig.txn("a"), DURO_QUERIES_DIR=qdir))
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    payloads = [item_event("ITEM_UPDATE", comps[50]), co_event("CO_UPDATE", cos[5])]
    rig.produce(payloads)
    got = rig.wait_for_ids([p["id"] for p in payloads], timeout=60, procs=[enricher])
    _found(rig, got[payloads[0]["id"]][0], payloads[0], kind="item", rid=comps[50],
           topic_event="ITEM_UPDATE")
    _found(rig, got[payloads[1]["id"]][0], payloads[1], kind="change_order", rid=cos[5],
           topic_event="CO_UPDATE")


def test_a_bad_table_stops_start_up_naming_file_line_and_entry(rig, tmp_path):
    table = _table(tmp_path, "bad.txt", "NEW_THING item id sometimes -")
    line = len(table.read_text().splitlines())
    rc, out, err = run_enricher_once(rig.env(rig.txn("a"), DURO_EVENT_TABLE=table))
    assert rc == 2, (rc, err)
    want = f"{table}:{line}: entry NEW_THING: deletes 'sometimes' is not yes or no"
    lines = [ln for ln in err.splitlines() if want in ln]
    assert len(lines) == 1, err
    rc, out, err, _ = run_bridge_once(
        bridge_env(rig.bootstrap, rig.raw, new_secret(), DURO_EVENT_TABLE=str(table)), [])
    assert rc == 2, (rc, err)
    assert len([ln for ln in err.splitlines() if want in ln]) == 1, err
    missing = tmp_path / "nope.txt"
    rc, out, err = run_enricher_once(rig.env(rig.txn("a"), DURO_EVENT_TABLE=missing))
    assert rc == 2 and "DURO_EVENT_TABLE" in err and str(missing) in err, err
