"""DURO_ASSIGNMENT: the enricher group's rebalance protocol. eager (range,roundrobin) is
the default on every librdkafka; cooperative (cooperative-sticky) needs 2.10 and
consumer (KIP-848's group.protocol) 2.12, refused with one line on older ones. Under
the incremental protocols a rebalance takes away only the partitions that change owner:
the others keep their dedupe sets (no rebuild) and their positions, and nothing is lost
or duplicated across the move.

Tests of a mode the enricher's librdkafka lacks are skipped with the reason (the
release build runs on Debian's 2.0.2, the sanitizer build on a current one:
scripts/test.sh)."""

from __future__ import annotations

import random
import re

import pytest

from enrichertest import (ASSIGNMENT_MIN, Rig, assignment_supported, double,  # noqa: F401
                          enrichers, item_event, rdkafka_version, run_enricher_once)
from proctest import clean_env

INCREMENTAL = ["cooperative", "consumer"]
REBUILDS = ("kept", "empty", "read")


def need(mode: str) -> None:
    if not assignment_supported(mode):
        pytest.skip(f"DURO_ASSIGNMENT={mode} needs librdkafka "
                    f"{'.'.join(map(str, ASSIGNMENT_MIN[mode]))}; the enricher runs on "
                    f"{'.'.join(map(str, rdkafka_version()))}")


@pytest.fixture
def rig6(broker, double, tmp_path):
    r = Rig(broker, double, tmp_path, raw_partitions=6, prefix="asg")
    yield r
    r.close()


def events(double, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    comps = double.data.component_ids()
    return [item_event("ITEM_UPDATE", rng.choice(comps), webhook_id="webhook_asg", rng=rng)
            for _ in range(n)]


def revoked(e, raw: str) -> list[int]:
    """The partitions e's incremental rebalances took away, from its log lines."""
    out = []
    for m in e.log_msgs():
        r = re.match(rf"revoked \d+ partition\(s\) of {re.escape(raw)}: ([0-9, ]*);", m)
        if r:
            out += [int(x) for x in r[1].split(",") if x.strip()]
    return out


def added(e, raw: str) -> list[int]:
    out = []
    for m in e.log_msgs():
        r = re.match(rf"assigned \d+ partition\(s\) of {re.escape(raw)}, \d+ of them new: "
                     r"([0-9, ]*)$", m)
        if r:
            out += [int(x) for x in r[1].split(",") if x.strip()]
    return out


def rebuilds(e) -> float:
    return sum(e.metric("duro_enricher_dedupe_rebuilds_total", how=h) for h in REBUILDS)


@pytest.mark.timeout_s(300)
@pytest.mark.parametrize("mode", INCREMENTAL)
def test_a_rebalance_moves_only_the_partitions_that_change_owner(rig6, double, enrichers,
                                                                 mode):
    need(mode)
    rig = rig6
    first = events(double, 120, seed=41)
    rig.produce(first)
    tail = rig.tail()
    a = enrichers(rig.env(rig.txn("a"), DURO_ASSIGNMENT=mode), name="a", assigned=False)
    a.wait_assigned(timeout=60, at_least=6)
    rig.wait_for_ids([p["id"] for p in first], timeout=90, tail=tail, procs=[a])
    assert sorted(added(a, rig.raw)) == list(range(6)), a.log_msgs()
    a_rebuilds = rebuilds(a)
    assert a_rebuilds == 6, a_rebuilds  # one per partition, at its first assignment

    b = enrichers(rig.env(rig.txn("b"), DURO_ASSIGNMENT=mode), name="b", assigned=False)
    b.wait_assigned(timeout=60, at_least=1)
    a.wait(lambda: revoked(a, rig.raw), 60, "a's revocation")
    moved, b_parts = sorted(revoked(a, rig.raw)), sorted(added(b, rig.raw))
    # Only what b took left a; a kept the rest without rebuilding their sets.
    assert moved == b_parts, (moved, b_parts)
    assert 0 < len(moved) < 6, moved
    b.wait(lambda: rebuilds(b) >= len(b_parts), 60, "b's sets of its partitions ready")
    assert rebuilds(b) == len(b_parts)
    assert rebuilds(a) == a_rebuilds, "a rebuilt the set of a partition it kept"

    # Across the move: new events and Duro's re-deliveries of the first ones, each
    # partition's with its current owner, exactly once.
    second = events(double, 120, seed=42)
    again = random.Random(43).sample(first, 30)
    rig.produce(second + again)
    ids = [p["id"] for p in first + second]
    rig.wait_for_ids(ids, timeout=90, tail=tail, procs=[a, b])
    rig.wait_drained(timeout=90, procs=[a, b])
    rig.assert_exactly_once(ids)
    dedup = sum(e.metric("duro_enricher_deduplicated_total") for e in (a, b))
    assert dedup == len(again), dedup
    print(f"{mode}: a kept {6 - len(moved)} partition(s), b took {b_parts}")


@pytest.mark.parametrize("mode", INCREMENTAL)
def test_a_mode_the_library_lacks_is_refused(mode):
    if assignment_supported(mode):
        pytest.skip(f"librdkafka {'.'.join(map(str, rdkafka_version()))} supports {mode}")
    rc, out, err = run_enricher_once(clean_env({"DURO_ASSIGNMENT": mode, "DURO_API_KEY": "k"}))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and "DURO_ASSIGNMENT" in lines[0] and \
        f"needs librdkafka {'.'.join(map(str, ASSIGNMENT_MIN[mode]))}" in lines[0], lines


def test_consumer_mode_refuses_the_classic_properties():
    need("consumer")
    rc, out, err = run_enricher_once(clean_env({
        "DURO_ASSIGNMENT": "consumer", "DURO_API_KEY": "k",
        "DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS": "3000"}))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and "session.timeout.ms" in lines[0], lines


def test_an_unknown_mode_is_refused():
    rc, out, err = run_enricher_once(clean_env({"DURO_ASSIGNMENT": "sticky", "DURO_API_KEY": "k"}))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "DURO_ASSIGNMENT=sticky" in lines[0], (rc, lines)
