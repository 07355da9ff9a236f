"""`duro-enricher dlq list|redrive` against the real broker (DESIGN §4): list shows what
is in the DLQ and why (filters by class, event id and time); redrive copies the chosen
records back to the raw topic in ONE transaction, each with a new duro-redrive-id, so the
enricher processes each once more: one redrive, exactly one more output; the same redrive
run twice, two more (each with its own redrive id), never more."""

from __future__ import annotations

import json

import pytest

from enrichertest import (Rig, double, enrichers, item_event,  # noqa: F401
                          run_enricher_once)

WH = "webhook_cli"


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811
    r = Rig(broker, double, tmp_path, raw_partitions=2, events=("ITEM_UPDATE",),
            prefix="cli")
    yield r
    r.close()


def dlq(rig, *args, timeout=60):
    env = rig.env(rig.txn("cli"))
    rc, out, err = run_enricher_once(env, ("dlq", *args), timeout=timeout)
    return rc, out, err


def outputs_of(rig, event_id):
    return [r for r in rig.final_records()
            if r.topic != rig.dlq and json.loads(r.value)["idempotency_key"] == event_id]


@pytest.mark.timeout_s(180)
def test_list_and_redrive_exactly_once_per_redrive(rig, double, enrichers):  # noqa: F811
    comps = double.data.component_ids()
    poison = comps[5]
    double.poison_ids = {poison}
    bad = item_event("ITEM_UPDATE", poison, webhook_id=WH)
    good = [item_event("ITEM_UPDATE", c, webhook_id=WH) for c in comps[20:26]]
    invalid = b"not json at all"
    rig.produce([bad] + good)
    rig.produce([invalid])
    e = enrichers(rig.env(rig.txn("a"), DURO_GRAPHQL_MAX_ATTEMPTS=2))
    rig.wait_for_ids([bad["id"]] + [g["id"] for g in good], timeout=90, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])

    rc, out, err = dlq(rig, "list", "--json")
    assert rc == 0, err
    listed = json.loads(out)
    classes = sorted(r["error_class"] for r in listed)
    assert classes == ["invalid-payload", "resource-error"], listed
    by_class = {r["error_class"]: r for r in listed}
    assert by_class["resource-error"]["event_id"] == bad["id"]
    assert by_class["resource-error"]["attempts"] == "2"
    assert by_class["invalid-payload"]["value"] == invalid.decode()

    rc, out, err = dlq(rig, "list", "--class", "invalid-payload", "--json")
    assert rc == 0, err
    assert [r["error_class"] for r in json.loads(out)] == ["invalid-payload"]
    rc, out, err = dlq(rig, "list", "--since", "1h")
    assert rc == 0, err
    assert bad["id"] in out and "resource-error" in out and "invalid-payload" in out
    rc, out, err = dlq(rig, "list", "--since", "2999-01-01T00:00:00Z", "--json")
    assert rc == 0 and json.loads(out) == [], out

    # The API is fixed; redrive the blamed event: exactly one more output.
    double.poison_ids = set()
    assert outputs_of(rig, bad["id"]) == []
    rc, out, err = dlq(rig, "redrive", "--event-id", bad["id"], "--json")
    assert rc == 0, err
    first = json.loads(out)
    assert len(first) == 1 and len(first[0]["redrive_id"]) == 32
    rig.wait_drained(timeout=60, procs=[e])
    outs = outputs_of(rig, bad["id"])
    assert len(outs) == 1, outs
    assert json.loads(outs[0].value)["resource"]["status"] == "found"

    # The same redrive again: one more, with its own redrive id; never more.
    rc, out, err = dlq(rig, "redrive", "--event-id", bad["id"], "--json")
    assert rc == 0, err
    second = json.loads(out)
    assert second[0]["redrive_id"] != first[0]["redrive_id"]
    rig.wait_drained(timeout=60, procs=[e])
    assert len(outputs_of(rig, bad["id"])) == 2
    raw = [r for r in rig.raw_records() if r.header("duro-redrive-id")]
    assert sorted(r.header("duro-redrive-id").decode() for r in raw) == \
        sorted([first[0]["redrive_id"], second[0]["redrive_id"]])
    for r in raw:  # redriven to the raw topic without the DLQ's own headers
        assert r.header("error-class") is None and r.header("source-offset") is None
        assert r.header("duro-event-id") == bad["id"].encode()
    # The good events were untouched throughout.
    for g in good:
        assert len(outputs_of(rig, g["id"])) == 1

    rc, out, err = dlq(rig, "redrive", "--class", "invalid-payload", "--dry-run")
    assert rc == 0, err
    assert "would be redriven" in err
    assert len([r for r in rig.raw_records() if r.header("duro-redrive-id")]) == 2


def test_usage_errors(rig):
    rc, out, err = dlq(rig, "list", "--class", "nonsense")
    assert rc == 2 and "unknown class" in err
    rc, out, err = dlq(rig, "list", "--since", "yesterday-ish")
    assert rc == 2 and "--since" in err
    rc, out, err = dlq(rig, "frobnicate")
    assert rc == 2 and "unknown command" in err
