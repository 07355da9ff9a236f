"""duro-enricher under crashes, long stops and rebalances (the guarantee "exactly once";
the enricher's contract): kill -9 in the middle of a batch and under load, a stop longer than the dedupe
window in wall-clock time, and a second instance joining then the first leaving while
events keep coming. Raw records are produced directly (the enricher does not check
signatures); outputs and the DLQ are read with read_committed only."""

from __future__ import annotations

import random
import time

import pytest

from proctest import wait_until
from enrichertest import (LsoProbe, RawProducer, background, co_event, double, enrichers,  # noqa: F401
                          item_event, now_ms, rig)


def _events(double, n: int, rng: random.Random, wh: str = "webhook_crash") -> list[dict]:
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            out.append(item_event("ITEM_UPDATE", rng.choice(comps), webhook_id=wh, rng=rng))
        elif r < 0.7:
            out.append(item_event("ITEM_DELETE", rng.choice(comps), webhook_id=wh, rng=rng))
        else:
            out.append(co_event("CO_UPDATE", rng.choice(cos), webhook_id=wh, rng=rng))
    return out


def _load(rig, double, background, rate: float, dup_every: int = 5, seed: int = 1):
    """Produces events continuously (``rate`` per second), re-producing every
    ``dup_every``-th one (a duplicate delivery). Returns (Background, sent dict)."""
    sent: dict[str, dict] = {}
    rng = random.Random(seed)

    def run(stop):
        prod = RawProducer(rig.bootstrap, rig.raw)
        t0, i = time.monotonic(), 0
        while not stop.is_set():
            ev = _events(double, 1, rng)[0]
            prod.produce(ev)
            sent[ev["id"]] = ev
            if i % dup_every == 0:
                prod.produce(ev)
            i += 1
            # pacing of the load generator (not a synchronisation)
            stop.wait(max(0.0, t0 + i / rate - time.monotonic()))
        prod.flush()

    return background(run, "raw-load"), sent


@pytest.mark.timeout_s(240)
def test_kill9_mid_batch_then_restart(rig, double, enrichers, background):
    rng = random.Random(3)
    env = rig.env(rig.txn("a"), DURO_BATCH_WAIT_MS=5)
    all_ids: list[str] = []
    tail = rig.tail()

    # 1. kills during the GraphQL pull: every request takes 1.5 s
    double.latency_ms = 1500
    wave = _events(double, 40, rng)
    rig.produce(wave)
    all_ids += [p["id"] for p in wave]
    base = double.requests_total
    e = enrichers(env, name="a")
    for _ in range(2):
        wait_until(lambda: e.alive and double.requests_total > base, 30,
                   "a GraphQL request of the batch")
        e.kill()  # the batch is inside its 1.5 s pull: nothing of it committed
        assert not tail.sync(), "a batch killed during its pull must leave no record"
        base = double.requests_total  # the killed process's requests are counted already
        e = enrichers.restart(e)
    double.latency_ms = 0
    rig.wait_for_ids(all_ids, timeout=60, tail=tail, procs=[e])

    # 2. kills under continuous load: two at arbitrary moments, then kills aimed at
    #    a transaction: an output partition's last stable offset below its end means
    #    a batch is between its first produce and its commit markers; kill right then,
    #    and count the kill when the transaction is still open after the process died
    load, sent = _load(rig, double, background, rate=80, dup_every=4, seed=4)
    kills, in_txn = 0, []
    for _ in range(2):
        committed = e.metric("duro_enricher_transactions_committed_total")
        wait_until(lambda: e.alive and
                   e.metric("duro_enricher_transactions_committed_total") >= committed + 2,
                   45, "the enricher committing transactions under load")
        e.kill()
        kills += 1
        e = enrichers.restart(e)
    probe = LsoProbe(rig.bootstrap, [rig.topic("ITEM_UPDATE"), rig.topic("CO_UPDATE")])
    try:
        aimed = 0
        while len(in_txn) < 2 and aimed < 20:  # each aim can miss on a loaded machine
            wait_until(lambda: e.alive and probe.open_partitions(), 30,
                       "a transaction open on an output partition")
            e.kill()
            kills += 1
            aimed += 1
            dangling = rig.open_transactions()
            if dangling:
                in_txn.append(dangling)
            e = enrichers.restart(e)
    finally:
        probe.close()
    assert in_txn, f"none of {aimed} aimed kills landed inside a transaction"
    load.stop()
    all_ids += list(sent)
    rig.wait_drained(timeout=90, procs=[e])
    rig.wait_for_ids(all_ids, timeout=30, tail=tail, procs=[e])
    recs = rig.final_records()
    by = rig.assert_exactly_once(all_ids, recs)
    assert not [i for i, rs in by.items() if rs[0].topic == rig.dlq], "nothing belongs in the DLQ"
    ordered_keys = rig.assert_order_per_key(recs)

    # 3. restart again: the dedupe set is rebuilt from the raw partitions, so a
    #    duplicate of an already processed event is still caught
    e.kill()
    e = enrichers.restart(e)
    e.wait_log(lambda m: m.startswith("dedupe set of"), 30, "the dedupe set rebuilt")
    again = [sent[i] for i in list(sent)[:5]] + wave[:3]
    before = e.metric("duro_enricher_deduplicated_total")
    rig.produce(again)
    rig.wait_drained(timeout=60, procs=[e])
    wait_until(lambda: e.metric("duro_enricher_deduplicated_total") >= before + len(again), 20,
               "the duplicates counted as deduplicated")
    dedup = e.metric("duro_enricher_deduplicated_total")
    assert dedup == before + len(again), (before, dedup)
    rig.assert_exactly_once(all_ids)
    rebuilt = [m for m in e.log_msgs() if m.startswith("dedupe set of")]
    print(f"kills: 2 during the pull + {kills} under load, {len(in_txn)} of them inside an "
          f"open transaction ({in_txn[:2]}); events {len(all_ids)}; keys with several outputs "
          f"in order: {ordered_keys}; "
          f"rebuild logs: {rebuilt}; deduplicated after the last restart: {dedup:.0f}")


@pytest.mark.timeout_s(120)
def test_stop_longer_than_dedupe_window(rig, double, enrichers):
    """DURO_DEDUPE_WINDOW_S=5: the enricher is down for longer than 5 s of wall clock;
    the duplicates of its backlog (all within 5 s of stream time of their first
    delivery) are still caught: the window is stream time, never the wall clock."""
    rng = random.Random(8)
    env = rig.env(rig.txn("a"), DURO_DEDUPE_WINDOW_S=5)
    base = now_ms()
    first = _events(double, 24, rng)
    rig.produce(first, timestamp_ms=base)
    e = enrichers(env, name="a")
    rig.wait_for_ids([p["id"] for p in first], timeout=60, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    assert e.terminate(30) == 0

    # the backlog, while it is down: duplicates of processed events, new events, and
    # their duplicates (stream time: base + 1..3 s)
    backlog = _events(double, 24, rng)
    rig.produce(first[:10], timestamp_ms=base + 1000)
    rig.produce(backlog, timestamp_ms=base + 1500)
    rig.produce(backlog[::2], timestamp_ms=base + 2500)
    rig.produce(first[10:14], timestamp_ms=base + 3000)
    dups = 10 + len(backlog[::2]) + 4
    stopped_at = time.monotonic()
    # wall-clock passage is the condition here: a bounded wait on the clock
    wait_until(lambda: time.monotonic() - stopped_at > 6.5, 10, "6.5 s of wall clock")

    e = enrichers(env, name="a")
    ids = [p["id"] for p in first + backlog]
    rig.wait_drained(timeout=60, procs=[e])
    rig.wait_for_ids(ids, timeout=30, procs=[e])
    rig.assert_exactly_once(ids)
    dedup = e.metric("duro_enricher_deduplicated_total")
    assert dedup == dups, f"deduplicated {dedup}, want {dups}"
    print(f"backlog duplicates caught after the stop: {dedup:.0f}")


@pytest.mark.timeout_s(150)
def test_second_instance_joins_then_first_leaves(rig, double, enrichers, background):
    e1 = enrichers(rig.env(rig.txn("one")), name="one")
    load, sent = _load(rig, double, background, rate=40, dup_every=5, seed=9)

    def produced(e):
        return sum(e.metrics().by_name("duro_enricher_produced_total").values())

    wait_until(lambda: e1.alive and produced(e1) >= 20, 45, "the first instance producing")
    e2 = enrichers(rig.env(rig.txn("two")), name="two")
    wait_until(lambda: e1.alive and e2.alive and produced(e2) >= 10, 60,
               "the second instance producing too")
    p1 = produced(e1)
    assert p1 > 0
    dedup1 = e1.metric("duro_enricher_deduplicated_total")
    assert e1.terminate(30) == 0, e1.tail()
    e2.wait_log(lambda m: m.startswith(f"assigned {rig.raw_partitions} partition"), 45,
                "the second instance taking every partition")
    p2 = produced(e2)
    wait_until(lambda: e2.alive and produced(e2) >= p2 + 30, 60,
               "the second instance going on alone")
    load.stop()
    ids = list(sent)
    rig.wait_drained(timeout=60, procs=[e2])
    rig.wait_for_ids(ids, timeout=30, procs=[e2])
    recs = rig.final_records()
    rig.assert_exactly_once(ids, recs)
    assert rig.assert_order_per_key(recs) > 0
    print(f"events {len(ids)}; produced by one {p1:.0f}, by two {produced(e2):.0f}; "
          f"deduplicated by one {dedup1:.0f}, by two "
          f"{e2.metric('duro_enricher_deduplicated_total'):.0f}")
