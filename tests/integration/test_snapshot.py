"""`duro-enricher snapshot` against the real broker, enricher and double (a library of
thousands of components and change orders): after a snapshot each state topic, reduced
to the last value per key, is the double's library; resources deleted without a webhook
are tombstoned by the sweep; a snapshot killed with kill -9 and rerun with the same id
writes every resource exactly once and holds the live enricher back for its short
transaction timeout at most; a snapshot started with the enricher's environment
(DURO_TRANSACTIONAL_ID included) never fences the enricher; a refused cursor asks for a
new run; snapshot pings stay out of the dedupe sets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from bridgetest import new_id, wait_until
from enrichertest import (KNOWN_EVENTS, LsoProbe, Rig, enricher_bin,  # noqa: F401
                          expected_document, enrichers, item_event, co_event,
                          send_acknowledged, senders)
from duro_double import DuroDouble
import kafkatest
from kstreamstest import java_partition, reduce_state
from proctest import pdeathsig, run_once

SNAP_EVENTS = KNOWN_EVENTS + ("ITEM_SNAPSHOT", "CO_SNAPSHOT")
COMPONENTS, CHANGE_ORDERS = 2500, 600
KINDS = ("item", "change_order")


@pytest.fixture
def double():
    d = DuroDouble(port=0, api_key="duro-api-key-snap-" + new_id("k"), seed=11,
                   components=COMPONENTS, change_orders=CHANGE_ORDERS)
    d.start()
    yield d
    d.close()


@pytest.fixture
def rig(broker, double, tmp_path):
    r = Rig(broker, double, tmp_path, events=SNAP_EVENTS, prefix="snap")
    yield r
    r.close()


@pytest.fixture
def snapshots():
    """Background snapshot processes, killed at teardown."""
    procs: list[subprocess.Popen] = []

    def start(env: dict, *args) -> subprocess.Popen:
        p = subprocess.Popen([enricher_bin(), "snapshot", *args], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=pdeathsig)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=10)


def snap_env(rig: Rig, txn: str = "live", **settings) -> dict:
    """The enricher's own environment (DURO_TRANSACTIONAL_ID included, as in its pod),
    with the snapshot unpaced unless told otherwise."""
    base = {"DURO_SNAPSHOT_RATE": 0, "DURO_GRAPHQL_RATE": 0}
    base.update(settings)
    return rig.env(rig.txn(txn), **base)


def run_snapshot(rig: Rig, *args, timeout: float = 120.0, **settings):
    rc, out, err, _ = run_once([enricher_bin(), "snapshot", *args], snap_env(rig, **settings),
                               timeout)
    return rc, out, err


def library(double: DuroDouble, kind: str) -> dict:
    ids = double.data.component_ids() if kind == "item" else double.data.change_order_ids()
    return {rid: expected_document(double, kind, rid) for rid in ids}


def state_of(rig: Rig, kind: str) -> dict:
    records = kafkatest.read_all(rig.bootstrap, rig.state_topic(kind), isolation="read_committed",
                                 timeout=60)
    return {k: v["document"] for k, v in reduce_state(records).items()}


def pings(rig: Rig, run: str) -> list[kafkatest.Record]:
    """The committed raw records of snapshot run ``run``."""
    return [r for r in rig.raw_records(timeout=60)
            if r.header("duro-snapshot-id") == run.encode()]


def snapshot_outputs(rig: Rig, run: str) -> dict[str, list]:
    """Records of the snapshot event topics for run, by resource id."""
    out: dict[str, list] = {}
    for ev in ("ITEM_SNAPSHOT", "CO_SNAPSHOT"):
        for r in kafkatest.read_all(rig.bootstrap, rig.topic(ev), isolation="read_committed",
                                    timeout=60):
            v = json.loads(r.value)
            if v["event"]["id"].startswith(f"snapshot:{run}:"):
                out.setdefault(v["resource"]["id"], []).append(v)
    return out


def wait_state(rig: Rig, double: DuroDouble, procs, timeout: float = 180.0) -> None:
    """Waits until the enricher drained the raw topic, then checks each state topic is
    the library."""
    rig.wait_drained(timeout=timeout, procs=procs)
    for kind in KINDS:
        got, want = state_of(rig, kind), library(double, kind)
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        wrong = sorted(k for k in set(want) & set(got) if got[k] != want[k])
        assert not (missing or extra or wrong), \
            f"{kind}: {len(missing)} missing {missing[:3]}, {len(extra)} extra {extra[:3]}, " \
            f"{len(wrong)} differ {wrong[:3]}"


def summary(out: str) -> dict:
    return json.loads(out)


@pytest.mark.timeout_s(420)
def test_snapshot_fills_the_state_topics_without_fencing_the_enricher(rig, double, enrichers):
    enricher = enrichers(snap_env(rig))
    rc, out, err = run_snapshot(rig, "--id", "first", "--json")
    assert rc == 0, err
    s = summary(out)
    assert s["kinds"]["item"]["listed"] == COMPONENTS, s
    assert s["kinds"]["change_order"]["listed"] == CHANGE_ORDERS, s
    assert s["written"] == COMPONENTS + CHANGE_ORDERS and s["swept"] == 0, s
    assert double.stats()["list_requests"] > 0

    # one committed ping per resource, stamped as §8.1 says
    ps = pings(rig, "first")
    assert len(ps) == COMPONENTS + CHANGE_ORDERS
    assert len({p.key for p in ps}) == len(ps)
    p = ps[0]
    body = json.loads(p.value)
    assert body["id"] == f"snapshot:first:{p.key.decode()}"
    kind = p.header("duro-resource-kind").decode()
    assert body["event"] == ("ITEM_SNAPSHOT" if kind == "item" else "CO_SNAPSHOT")
    field = "item_id" if kind == "item" else "change_order_id"
    assert body["data"] == {field: p.key.decode()}
    assert p.header("duro-origin") == b"snapshot"
    assert p.header("duro-event-id") == body["id"].encode()

    wait_state(rig, double, [enricher])
    outs = snapshot_outputs(rig, "first")
    assert len(outs) == COMPONENTS + CHANGE_ORDERS
    assert all(len(v) == 1 for v in outs.values())
    # the snapshot never fenced the enricher (same DURO_TRANSACTIONAL_ID in its
    # environment): it is alive and still processes webhooks
    assert enricher.alive
    assert not [m for m in enricher.log_msgs() if "fenced" in m.lower()]
    live = item_event("ITEM_UPDATE", double.data.component_ids()[0])
    rig.produce([live])
    rig.wait_for_ids([live["id"]], timeout=60, procs=[enricher])
    # snapshot pings stay out of the dedupe sets, also when they are rebuilt from the
    # raw topic (a restart): only the live event's key is there
    assert enricher.metric("duro_enricher_dedupe_set_size") == 1
    enricher = enrichers.restart(enricher)
    wait_until(lambda: enricher.metric("duro_enricher_dedupe_partitions_rebuilding") == 0
               and enricher.metric("duro_enricher_dedupe_rebuilds_total", how="read") > 0,
               60, "the dedupe sets rebuilt")
    assert enricher.metric("duro_enricher_dedupe_set_size") == 1

    # a finished run says so and writes nothing
    rc, out, err = run_snapshot(rig, "--id", "first")
    assert rc == 0, err
    assert "finished earlier" in out
    assert len(pings(rig, "first")) == COMPONENTS + CHANGE_ORDERS


@pytest.mark.timeout_s(420)
def test_snapshot_sweep_tombstones_resources_deleted_without_a_webhook(rig, double, enrichers):
    enricher = enrichers(snap_env(rig))
    assert run_snapshot(rig, "--id", "one")[0] == 0
    rig.wait_drained(timeout=180, procs=[enricher])
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    gone = comps[5:25] + cos[3:8]
    for rid in gone:  # deleted in Duro, the webhook lost
        double.data.delete(rid)
    new = double.data.add_component()
    rc, out, err = run_snapshot(rig, "--id", "two", "--json")
    assert rc == 0, err
    s = summary(out)
    assert s["kinds"]["item"]["swept"] == 20 and s["kinds"]["change_order"]["swept"] == 5, s
    wait_state(rig, double, [enricher])
    tomb = {r.key.decode() for kind in KINDS
            for r in kafkatest.read_all(rig.bootstrap, rig.state_topic(kind), timeout=60)
            if r.value is None}
    assert tomb == set(gone)
    assert new in state_of(rig, "item")


@pytest.mark.timeout_s(420)
def test_snapshot_while_webhooks_arrive_ends_exact(rig, double, enrichers, bridges, senders):
    enricher = enrichers(snap_env(rig))
    bridge = bridges(rig.raw)
    snap = subprocess.Popen([enricher_bin(), "snapshot", "--id", "busy", "--json"],
                            env=snap_env(rig, DURO_SNAPSHOT_RATE=1500),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=pdeathsig)
    try:
        comps = double.data.component_ids()
        changed = comps[::97]
        for rid in changed:
            double.data.update(rid, name=f"changed while snapshotting {rid}")
        deleted = comps[1::211]
        for rid in deleted:
            double.data.delete(rid)
        payloads = [item_event("ITEM_UPDATE", rid) for rid in changed]
        payloads += [item_event("ITEM_DELETE", rid) for rid in deleted]
        s = senders(bridge, repeat_probability=0.3, seed=5)
        ids = s.send_many(payloads)
        assert s.wait(60), s.summary()
        out, err = snap.communicate(timeout=120)
        assert snap.returncode == 0, err.decode()
        written = summary(out)["written"]
    finally:
        if snap.poll() is None:
            snap.kill()
            snap.communicate(timeout=10)
    rig.wait_for_ids(ids, timeout=120, procs=[enricher])
    wait_state(rig, double, [enricher])
    # every listed resource once (those deleted before the listing reached them are
    # not listed; their delete webhooks tombstoned them)
    assert written <= COMPONENTS + CHANGE_ORDERS
    outs = snapshot_outputs(rig, "busy")
    assert len(outs) == written and all(len(v) == 1 for v in outs.values())


@pytest.mark.timeout_s(480)
def test_snapshot_killed_and_rerun_writes_each_resource_once(rig, double, enrichers, snapshots):
    enricher = enrichers(snap_env(rig))
    # paced so that it is killed in the middle, while one of its transactions is open
    # on a raw partition: a page of 200 every 0.5 s, each ping sent only once the one
    # before was acknowledged (a producer queue of one message), so that a transaction
    # stays open for a good part of those 0.5 s rather than a few milliseconds
    p = snapshots(snap_env(rig, DURO_SNAPSHOT_RATE=400, DURO_SNAPSHOT_PAGE_SIZE=200,
                           DURO_RDKAFKA_PRODUCER_QUEUE_BUFFERING_MAX_MESSAGES=1),
                  "--id", "crash")
    wait_until(lambda: len(pings(rig, "crash")) >= 200 or p.poll() is not None, 60,
               "200 pings committed")
    probe = LsoProbe(rig.bootstrap, [rig.raw])
    try:
        def open_txn():
            assert p.poll() is None, "the snapshot ended before a kill inside a transaction"
            return probe.open_partitions()
        opened = wait_until(open_txn, 25, "a snapshot transaction open on the raw topic",
                            interval=0)
        os.kill(p.pid, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        probe.close()
    p.wait(10)
    before = len(pings(rig, "crash"))
    assert 200 <= before < COMPONENTS + CHANGE_ORDERS
    held_partition = opened[0][1]

    # The killed run's open transaction holds the read_committed enricher back on that
    # partition until the broker aborts it: transaction.timeout.ms (10 s) after it
    # began, seen by the broker's check for expired transactions (every 10 s by
    # default), plus a batch. A live webhook behind it shows how long.
    rid = next(c for c in double.data.component_ids()
               if java_partition(c, rig.raw_partitions) == held_partition)
    live = item_event("ITEM_UPDATE", rid)
    rig.produce([live])
    rig.wait_for_ids([live["id"]], timeout=60, procs=[enricher])
    held = time.monotonic() - killed_at
    print(f"live event on raw partition {held_partition} processed {held:.1f} s after "
          f"the kill inside an open transaction")
    assert held < 10 + 10 + 8  # (8: a batch, and room for a busy machine)

    rc, out, err = run_snapshot(rig, "--id", "crash", "--json")
    assert rc == 0, err
    assert "resumes" in err
    s = summary(out)
    assert s["written"] == COMPONENTS + CHANGE_ORDERS, s
    ps = pings(rig, "crash")
    keys = [r.key for r in ps]
    assert len(keys) == len(set(keys)) == COMPONENTS + CHANGE_ORDERS
    wait_state(rig, double, [enricher])
    outs = snapshot_outputs(rig, "crash")
    assert len(outs) == COMPONENTS + CHANGE_ORDERS
    twice = [k for k, v in outs.items() if len(v) != 1]
    assert not twice, twice[:5]


@pytest.mark.timeout_s(300)
def test_snapshot_refused_cursor_asks_for_a_new_run(rig, double, snapshots):
    p = snapshots(snap_env(rig, DURO_SNAPSHOT_RATE=100, DURO_SNAPSHOT_PAGE_SIZE=50,
                           DURO_STATE_TOPICS="false"), "--id", "old", "--kinds", "item")
    wait_until(lambda: len(pings(rig, "old")) >= 100 or p.poll() is not None, 60,
               "100 pings committed")
    assert p.poll() is None, p.stderr.read().decode()
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    double.configure(cursor_generation=1)  # Duro forgets the cursors it handed out
    rc, out, err = run_snapshot(rig, "--id", "old", "--kinds", "item", DURO_STATE_TOPICS="false")
    assert rc == 1, (out, err)
    assert "refused the saved cursor" in err and "new run" in err
    # a new run lists both kinds, without a sweep
    rc, out, err = run_snapshot(rig, "--id", "new", "--json", DURO_STATE_TOPICS="false")
    assert rc == 0, err
    s = summary(out)
    assert s["kinds"]["item"]["written"] == COMPONENTS
    assert s["kinds"]["change_order"]["written"] == CHANGE_ORDERS
    assert s["swept"] == 0


@pytest.mark.parametrize("args,settings,want", [
    (("--id", "bad id"), {}, "DURO_SNAPSHOT_ID"),
    (("--id", "x" * 65), {}, "DURO_SNAPSHOT_ID"),
    (("--kinds", "item,widget"), {}, "DURO_SNAPSHOT_KINDS: unknown kind 'widget'"),
    ((), {"DURO_SNAPSHOT_RATE": "-1"}, "DURO_SNAPSHOT_RATE"),
    ((), {"DURO_QUERIES_DIR": "/nonexistent"}, "DURO_QUERIES_DIR"),
    (("--bogus",), {}, "--bogus: unknown option"),
    ((), {"DURO_STATE_TOPIC_TEMPLATE": "one.state"}, "DURO_STATE_TOPIC_TEMPLATE=one.state: must contain {kind}"),
])
def test_snapshot_bad_settings_stop_with_one_line(rig, args, settings, want):
    rc, out, err = run_snapshot(rig, *args, timeout=30, **settings)
    assert rc == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) >= 1 and want in lines[0], err
    assert not rig.raw_records()
