"""The short fault run (the guarantees "exactly once" under faults), for CI: the harness of
``scripts/fault-run.sh`` (tests/fault/fault_run.py) in process with small numbers, on the
session's broker. The Duro double sends 1,500 signed webhooks at 60/s (some repeated,
some signed-but-invalid, some of an unknown type) through duro-bridge to duro-enricher
while the bridge and the enricher are each kill -9'd once, the broker is restarted
once and the GraphQL double is down for a while; the delete events delete their
resource in the double first. Nothing acknowledged may be lost, nothing duplicated, the
ledger must balance, and the state topics must hold what the contract says.

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
        drain_timeout_s=240, progress_s=5)
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
    assert ledger["verdict"] == "PASS", ledger["reasons"]
