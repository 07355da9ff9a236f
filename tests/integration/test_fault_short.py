"""The short fault run (the guarantees "exactly once" under faults), for CI: the harness of
``scripts/fault-run.sh`` (tests/fault/fault_run.py) in process with small numbers, on the
session's broker. The Duro double sends 1,500 signed webhooks at 60/s (some repeated,
some signed-but-invalid, some of an unknown type) through duro-bridge to duro-enricher
while the bridge and the enricher are each kill -9'd once, the broker is restarted
once and the GraphQL double is down for a while; the delete events delete their
resource in the double first. Meanwhile one small snapshot phase (the double's 1,200
resources, five of them deleted without a webhook first) is kill -9'd at a random
moment, then inside one of its open transactions, and rerun with the same id until it
exits 0. At 60 % of the sending, the bridge is stopped for longer than the retry span of
the events of its first 3 s (Duro's schedule x0.0001: 2.8 s), so Duro gives up on them, and
on three events whose 2xx answers it took for time-outs; the double's webhook log holds each
attempt with the payload as a JSON string, and at the end `duro-enricher reconcile --json`
runs twice. Nothing acknowledged may be lost, nothing duplicated, the ledger must balance,
the state topics must hold what the contract says, every resource the snapshot pinged
must be on its snapshot event topic exactly once, and every event Duro gave up on must
be recovered (or found already there) by the first reconcile and be exactly once in the
outputs or the DLQ; the second reconcile writes nothing.

It runs once per DURO_ASSIGNMENT the enricher's librdkafka supports (eager on every
version; cooperative from 2.10, consumer from 2.12), skipped with the reason otherwise.

This file restarts the session's broker; a finalizer brings it back even on failure."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fault"))
import enrichertest  # noqa: E402
import fault_run  # noqa: E402


@pytest.mark.timeout_s(600)
@pytest.mark.parametrize("assignment", ["eager", "cooperative", "consumer"])
def test_fault_run_short(restorable_broker, tmp_path, assignment):
    if not enrichertest.assignment_supported(assignment):
        pytest.skip(f"DURO_ASSIGNMENT={assignment} needs librdkafka "
                    f"{'.'.join(map(str, enrichertest.ASSIGNMENT_MIN[assignment]))}; the "
                    f"enricher runs on {'.'.join(map(str, enrichertest.rdkafka_version()))}")
    cfg = fault_run.FaultConfig(assignment=assignment,
        events=1500, rate=60, scale=0.01, repeat_probability=0.1,
        bridge_kills=1, enricher_kills=1, broker_restarts=1, windows=("outage",),
        window_s=5, invalid_every=47, unknown_every=43, sender_workers=16,
        drain_timeout_s=240, progress_s=5,
        snapshot_phases=1, snapshot_kills=2, snapshot_rate=400, snapshot_page_size=50,
        snapshot_deletes=5, snapshot_span=(0.2, 0.2), snapshot_phase_timeout_s=240,
        bridge_outage=True, outage_at=0.6, outage_give_up_s=3, outage_scale=0.0001,
        outage_lost_answers=3, log_shape="string")
    ledger = fault_run.FaultRun(cfg, restorable_broker, tmp_path / "fault").run()
    print(fault_run.format_ledger(ledger))
    assert ledger["assignment"] == assignment
    assert ledger["kills"] == {"bridge": 1, "enricher": 1}
    assert ledger["broker_restarts"] == 1
    assert [w["name"] for w in ledger["fault_windows"]] == ["outage"]
    assert ledger["events_sent"] == 1500 + cfg.outage_lost_answers
    assert ledger["events_signed_invalid"] > 0 and ledger["events_unknown_type"] > 0
    assert ledger["lost"] == 0, ledger["samples"]["lost"]
    assert ledger["duplicated"] == 0, ledger["samples"]["duplicated"]
    assert ledger["misrouted"] == 0, ledger["samples"]["misrouted"]
    assert ledger["unexpected"] == 0, ledger["samples"]["unexpected"]
    assert ledger["balance_problems"] == [], ledger["balance_problems"]
    assert ledger["invalid_in_dlq_once"] == ledger["events_signed_invalid"]
    st = ledger["state"]  # deletes happened (tombstones) and every state is as expected
    assert st["mismatches"] == 0, st["samples"]
    assert st["double_deletes"] > 0 and st["tombstoned"] > 0 and st["equal"] > 0, st
    snap = ledger["snapshot"]  # killed, finished, each pinged resource once
    assert snap["failures"] == 0, snap
    (ph,) = snap["phases"]
    assert ph["finished"] and ph["kills"] >= 1, ph
    assert ph["raw_pings"] == ph["raw_distinct_keys"] == ph["written"] + ph["swept"], ph
    assert ph["exactly_once"] == ph["raw_pings"] > 0, ph
    assert ph["duplicated"] == ph["missing"] == ph["not_listed"] == 0, ph
    assert ph["silent_deletes"] > 0 and ph["silent_still_in_state"] == 0, ph
    rec = ledger["reconcile"]  # Duro gave up on some; reconcile brought each back once
    assert rec["failures"] == 0, rec["problems"]
    out = rec["outage"]
    assert out["down_s"] > out["retry_span_s"] and out["events_short_schedule"] > 0, out
    assert out["given_up"] == out["events_short_schedule"] + out["lost_answer_events"], out
    assert rec["given_up"] == out["given_up"], rec  # the main schedule gives up on nothing
    assert rec["given_up_with_lost_answers"] == cfg.outage_lost_answers, rec
    first, again = (r["summary"] for r in rec["runs"])
    assert first["events_failed"] == rec["given_up"], first
    assert first["recovered"] + first["already_there"] == rec["given_up"], first
    assert first["recovered"] > 0 and first["already_there"] >= cfg.outage_lost_answers, first
    assert first["not_recoverable"] == 0, first
    assert again["recovered"] == 0 and again["already_there"] == rec["given_up"], again
    assert rec["given_up_exactly_once"] == rec["given_up"], rec
    # the bridge is restarted after the outage as planned, not found dead
    assert not [u for u in ledger["unplanned_exits"] if u["program"] == "bridge"], \
        ledger["unplanned_exits"]
    assert ledger["verdict"] == "PASS", ledger["reasons"]
