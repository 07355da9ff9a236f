"""duro-enricher's dedupe rebuild at large windows (the enricher's contract: the dedupe
set is rebuilt on assignment from the raw partition, keeps the group, starts from the
committed offset's timestamp, and no record of a partition is processed before its set
is complete).

The windows are real: ``tests/bench/rawpart fill`` writes a raw partition of hundreds of
thousands to millions of records shaped as the bridge writes them, and the group's
offset is committed at its end as an enricher would have committed it (metadata
``{"last_ts":…}``, DESIGN of the progress), so starting the enricher means reading all
of them back. Records after the committed offset are re-deliveries of events inside the
window (which must be dropped) and new events (which must be enriched exactly once).
Outputs and the DLQ are read with read_committed only."""

from __future__ import annotations

import json
import os
import random
import subprocess

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import kafkatest
from enrichertest import (REPO_ROOT, Rig, double, enrichers, item_event, now_ms,  # noqa: F401
                          rfc3339_ms)
from proctest import wait_until

# A window of a few million records (DURO_TEST_REBUILD_RECORDS to change it).
BIG = int(os.environ.get("DURO_TEST_REBUILD_RECORDS", "2000000"))
# What librdkafka allows at the tests' 3 s session timeout: a rebuild that does not
# poll the group consumer for longer than this loses its partitions.
MAX_POLL_MS = 3000


def rawpart_bin() -> str:
    return os.environ.get("DURO_RAWPART_BIN") or str(REPO_ROOT / "build" / "tests" / "bench" /
                                                      "rawpart")


def fill(rig: Rig, partition: int, count: int, prefix: str, *props: str) -> dict:
    """Writes ``count`` raw records <prefix>-<i> to one partition (rawpart fill)."""
    argv = [rawpart_bin(), "fill", "--bootstrap", rig.bootstrap, "--topic", rig.raw,
            "--partition", str(partition), "--count", str(count), "--prefix", prefix,
            "--bare-every", "50"]
    for p in props:
        argv += ["-X", p]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"rawpart fill: {r.stderr}"
    return json.loads(r.stdout)


def offset_meta(last_ts: int) -> str:
    """The metadata this enricher writes on the offsets it commits."""
    return '{"last_ts":%d}' % last_ts


def commit(rig: Rig, offsets: dict[int, tuple[int, str | None]]) -> None:
    """Commits the rig's group offsets {partition: (offset, metadata)}, as an enricher's
    last transaction would have. The broker takes it once the group has no member (a
    stopped static member stays one until its session times out)."""
    c = Consumer({"bootstrap.servers": rig.bootstrap, "group.id": rig.group,
                  "enable.auto.commit": False})
    tps = [TopicPartition(rig.raw, p, off) if meta is None
           else TopicPartition(rig.raw, p, off, meta) for p, (off, meta) in offsets.items()]

    def done():
        try:
            c.commit(offsets=tps, asynchronous=False)
            return True
        except KafkaException:
            return False

    try:
        wait_until(done, 30, "the group's offsets committed (the group empty)", interval=0.5)
    finally:
        c.close()


def committed_meta(rig: Rig, partition: int) -> tuple[int, str | None]:
    c = Consumer({"bootstrap.servers": rig.bootstrap, "group.id": rig.group,
                  "enable.auto.commit": False})
    try:
        tp = c.committed([TopicPartition(rig.raw, partition)], timeout=10)[0]
        return tp.offset, tp.metadata
    finally:
        c.close()


def redelivery(prefix: str, i: int) -> dict:
    """Duro delivering event <prefix>-<i> of the window again."""
    return {"id": f"{prefix}-{i}", "webhook_id": "webhook_fill", "event": "ITEM_UPDATE",
            "created_at": rfc3339_ms(now_ms()), "data": {"item_id": f"comp_fill_{i % 1000}"}}


def new_events(double, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    comps = double.data.component_ids()
    return [item_event("ITEM_UPDATE", rng.choice(comps), webhook_id="webhook_rebuild", rng=rng)
            for _ in range(n)]


def log_lines(e, needle: str) -> list[dict]:
    return [r for r in e.logs() if needle in r.get("msg", "")]


def assert_kept_the_group(e) -> None:
    """The enricher never exceeded max.poll.interval.ms (librdkafka's warning) and was
    never revoked."""
    text = e.stderr_text()
    assert "maximum poll interval" not in text, "the enricher exceeded max.poll.interval.ms"
    assert not log_lines(e, "revoked"), [r["msg"] for r in log_lines(e, "revoked")]
    assert e.assigned_counts() == [1], e.assigned_counts()


@pytest.fixture
def rig1(broker, double, tmp_path):
    r = Rig(broker, double, tmp_path, raw_partitions=1, prefix="rb")
    yield r
    r.close()


@pytest.fixture
def rig2(broker, double, tmp_path):
    r = Rig(broker, double, tmp_path, raw_partitions=2, prefix="rb")
    yield r
    r.close()


@pytest.mark.timeout_s(420)
def test_a_window_of_millions_keeps_the_group(rig1, double, enrichers):
    """Finding 1: a rebuild longer than max.poll.interval.ms used to cost the enricher
    its partitions, again at every re-assignment, so nothing was ever consumed."""
    rig = rig1
    f = fill(rig, 0, BIG, "evt_big")
    end = f["last_offset"] + 1
    commit(rig, {0: (end, offset_meta(f["last_ts"]))})
    rng = random.Random(11)
    again = [redelivery("evt_big", i) for i in rng.sample(range(BIG), 20)]
    fresh = new_events(double, 20, seed=12)
    rig.produce(again, partition=0)
    rig.produce(fresh, partition=0)

    e = enrichers(rig.env(rig.txn("a"),
                          DURO_RDKAFKA_CONSUMER_MAX_POLL_INTERVAL_MS=MAX_POLL_MS),
                  name="a")
    tail = rig.tail()
    rig.wait_for_ids([p["id"] for p in fresh], timeout=240, tail=tail, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])
    rig.assert_exactly_once([p["id"] for p in fresh])
    assert e.metric("duro_enricher_deduplicated_total") == len(again)
    assert_kept_the_group(e)
    rebuilt = log_lines(e, "rebuilt from offsets")
    assert len(rebuilt) == 1, [r["msg"] for r in rebuilt]
    # the whole window was read, from the start its committed timestamp gives
    assert f"rebuilt from offsets 0..{end}: {BIG} keys, {BIG} records" in rebuilt[0]["msg"]
    assert e.metric("duro_enricher_dedupe_rebuild_records_total") == BIG
    assert e.metric("duro_enricher_dedupe_rebuilds_total", how="read") == 1
    print(f"window {BIG} records: {rebuilt[0]['msg']}; fill {f['seconds']} s")


@pytest.mark.timeout_s(300)
@pytest.mark.parametrize("meta", ["timestamp", "none"])
def test_rebuild_after_a_large_aborted_block(rig1, double, enrichers, meta):
    """Finding 2: when the committed offset sits after a large aborted transaction on the
    raw partition (an aborted redrive), the search for the last processed record found
    nothing within 64 offsets and the set was left empty: re-deliveries were doubled.
    Now the committed offset's timestamp says where to start ("timestamp"); an offset
    committed without it (by an older version: "none") makes it read the whole retained
    partition."""
    rig = rig1
    first = new_events(double, 30, seed=21)
    rig.produce(first, partition=0)
    e = enrichers(rig.env(rig.txn("a")), name="a")
    tail = rig.tail()
    rig.wait_for_ids([p["id"] for p in first], timeout=60, tail=tail, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])
    assert e.terminate() == 0
    offset, written = committed_meta(rig, 0)
    if meta == "timestamp":
        assert written and json.loads(written.rstrip("\0"))["last_ts"] > 0, \
            f"the enricher committed offset {offset} with metadata {written!r}"

    # 300 records of a transaction that aborts, then its marker
    p = Producer({"bootstrap.servers": rig.bootstrap, "transactional.id": rig.txn("redrive"),
                  "enable.idempotence": True})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(300):
        p.produce(rig.raw, partition=0, key=b"k", value=json.dumps(
            redelivery("evt_aborted", i)).encode())
    p.flush(30)
    p.abort_transaction(30)
    end = kafkatest.end_offsets(rig.bootstrap, rig.raw)[0]
    assert end > offset + 300
    # where an enricher whose position had passed the block commits
    commit(rig, {0: (end, written if meta == "timestamp" else None)})

    rig.produce(first, partition=0)  # Duro delivers them all again
    fresh = new_events(double, 10, seed=22)
    rig.produce(fresh, partition=0)
    e = enrichers.restart(e)
    rig.wait_for_ids([p["id"] for p in fresh], timeout=60, tail=tail, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])
    rig.assert_exactly_once([p["id"] for p in first + fresh])
    assert e.metric("duro_enricher_deduplicated_total") == len(first)
    rebuilt = log_lines(e, "rebuilt from offsets")
    assert len(rebuilt) == 1 and f"{len(first)} keys" in rebuilt[0]["msg"], \
        [r["msg"] for r in rebuilt]


@pytest.mark.timeout_s(420)
def test_rebalance_in_the_middle_of_a_rebuild(rig2, double, enrichers):
    """Finding 3: a partition's records are processed only once its set is complete for
    the current assignment, though a rebalance resets the pause state. The rebuild of
    partition 0 is made slow (small record batches read with a small fetch size) and a
    second instance joins while it runs."""
    rig = rig2
    n = 600_000
    slow = ("DURO_RDKAFKA_CONSUMER_MAX_PARTITION_FETCH_BYTES", 4096)
    f = fill(rig, 0, n, "evt_mid", "batch.num.messages=20")
    end = f["last_offset"] + 1
    commit(rig, {0: (end, offset_meta(f["last_ts"]))})
    rng = random.Random(31)
    again = [redelivery("evt_mid", i) for i in rng.sample(range(n), 20)]
    fresh0 = new_events(double, 10, seed=32)
    fresh1 = new_events(double, 10, seed=33)
    rig.produce(again + fresh0, partition=0)
    rig.produce(fresh1, partition=1)

    env = dict(DURO_RDKAFKA_CONSUMER_MAX_POLL_INTERVAL_MS=MAX_POLL_MS)
    env[slow[0]] = slow[1]
    a = enrichers(rig.env(rig.txn("a"), **env), name="a")
    a.wait(lambda: a.metric("duro_enricher_dedupe_partitions_rebuilding") >= 1, 30,
           "a's rebuild of partition 0 under way")
    b = enrichers(rig.env(rig.txn("b"), **env), name="b")
    tail = rig.tail()
    ids = [p["id"] for p in fresh0 + fresh1]
    rig.wait_for_ids(ids, timeout=240, tail=tail, procs=[a, b])
    rig.wait_drained(timeout=120, procs=[a, b])
    rig.assert_exactly_once(ids)
    dedup = a.metric("duro_enricher_deduplicated_total") + \
        b.metric("duro_enricher_deduplicated_total")
    assert dedup == len(again), dedup

    # The rebalance came while partition 0's set was incomplete: a was revoked before
    # any instance logged partition 0's set ready.
    revoked = [r["ts"] for r in log_lines(a, "revoked")]
    ready0 = sorted(r["ts"] for p in (a, b) for r in p.logs()
                    if r.get("msg", "").startswith(f"dedupe set of {rig.raw} [0] ")
                    and ("rebuilt" in r["msg"] or "kept" in r["msg"]))
    assert revoked and ready0 and revoked[0] < ready0[0], \
        f"no rebalance during the rebuild (revoked {revoked}, partition 0 ready {ready0})"
    print(f"revoked at {revoked[0]}, partition 0 ready at {ready0}; dedup {dedup}")


@pytest.mark.timeout_s(180)
@pytest.mark.parametrize("meta", ["timestamp", "none"])
def test_retention_past_the_committed_offset(rig1, double, enrichers, meta):
    """Retention (here DeleteRecords) removed everything up to past the committed
    offset: nothing of the window is left, the set starts empty, and the enricher goes
    on from the first record retained."""
    from confluent_kafka.admin import AdminClient
    rig = rig1
    f = fill(rig, 0, 1000, "evt_gone")
    end = f["last_offset"] + 1
    commit(rig, {0: (end, offset_meta(f["last_ts"]) if meta == "timestamp" else None)})
    fill(rig, 0, 10, "evt_gone_after")  # past the committed offset, deleted too
    lo = end + 10
    a = AdminClient({"bootstrap.servers": rig.bootstrap})
    for fut in a.delete_records([TopicPartition(rig.raw, 0, lo)]).values():
        fut.result(30)
    fresh = new_events(double, 5, seed=41)
    rig.produce(fresh, partition=0)
    e = enrichers(rig.env(rig.txn("a")), name="a")
    rig.wait_for_ids([p["id"] for p in fresh], timeout=60, procs=[e])
    rig.assert_exactly_once([p["id"] for p in fresh])
    assert log_lines(e, f"dedupe set of {rig.raw} [0] empty"), e.log_msgs()
