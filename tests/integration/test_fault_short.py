"""The short fault run (the guarantees "exactly once" under faults), for CI: the harness of
``scripts/fault-run.sh`` (tests/fault/fault_run.py) in process with small numbers, on the
session's broker. The Duro double sends 1,500 signed webhooks at 60/s (some repeated,
some signed-but-invalid, some of an unknown type) through duro-bridge to duro-enricher
while the bridge and the enricher are each kill -9'd once, the broker is restarted
once and the GraphQL double is down for a while; the delete events delete their
resource in the double first. Meanwhile one small snapshot phase (the double's 1,200
resources, five of them deleted without a webhook first) is kill -9'd at a random
moment, then inside one of its open transactions, and rerun with the same id until it
exits 0. Nothing acknowledged may be lost, nothing duplicated, the ledger must balance,
the state topics must hold what the contract says, and every resource the snapshot
pinged must be on its snapshot event topic exactly once.

This file restarts the session's broker; a finalizer brings it back even on failure."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fault"))
import fault_run  # noqa: E402


@pytest.mark.timeout_s(600)
def test_fault_run_short(restorable_broker, tmp_path):
    cfg = fault_run.FaultConfig(
        events=1500, rate=60, scale=0.01, repeat_probability=0.1,
        bridge_kills=1, enricher_kills=1, broker_restarts=1, windows=("outage",),
        window_s=5, invalid_every=47, unknown_every=43, sender_workers=16,
        drain_timeout_s=240, progress_s=5,
        snapshot_phases=1, snapshot_kills=2, snapshot_rate=400, snapshot_page_size=50,
        snapshot_deletes=5, snapshot_span=(0.2, 0.2), snapshot_phase_timeout_s=240)
    ledger = fault_run.FaultRun(cfg, restorable_broker, tmp_path / "fault").run()
    print(fault_run.format_ledger(ledger))
    assert ledger["kills"] == {"bridge": 1, "enricher": 1}
    assert ledger["broker_restarts"] == 1
    assert [w["name"] for w in ledger["fault_windows"]] == ["outage"]
    assert ledger["events_sent"] == 1500
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
    assert ledger["verdict"] == "PASS", ledger["reasons"]
