"""`duro-enricher reconcile` (issue 19, DESIGN §8.5) against the real broker, bridge and
enricher and the Duro double: the bridge is down for longer than the double's scaled retry
span while events happen, so Duro (the double's sender) gives up on them; a delivery the
bridge accepted but whose answer Duro took for a time-out (``lose_answers``) is in the raw
topic although its log says every delivery failed. Then reconcile, for each shape of a
delivery log entry's ``metadata`` (the payload as an object, as a JSON string, delivery
details only): every event Duro gave up on appears exactly once in the outputs, nothing
that arrived is doubled, the unrecoverable ones are reported with the advice to snapshot
their kind; a second run and a run while webhooks arrive write nothing twice. Also: log
entries that name the resource without a payload (the default log table, and a
DURO_LOG_TABLE file for another shape), the raw scan reaching Duro's retry span before
--since, --since's default (the raw topic's retention), the metrics served after the run,
and bad settings that stop with one line (exit 2).

The sender's retry schedule is Duro's (27,755 s in all) times SCALE; the bridge comes back
on the same port, so the webhook registered in the double keeps one URL, which is
DURO_RECONCILE_URL."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import time

import pytest

import kafkatest
from bridgetest import WEBHOOK_PATH, wait_until
from enrichertest import (KNOWN_EVENTS, Rig, background, check_output, co_event,  # noqa: F401
                          double, enricher_bin, enrichers, item_event, parse_rfc3339, rig,
                          senders)
from duro_double import SCHEDULE_S, rfc3339
from proctest import Metrics, http_request, pdeathsig, run_once

SCALE = 0.0002  # Duro's retries (27,755 s) in 5.6 s
SPAN_S = sum(SCHEDULE_S) * SCALE
ATTEMPTS = 1 + len(SCHEDULE_S)  # per delivery, before Duro gives up
N_OK, N_DOWN_ITEMS, N_DOWN_COS = 6, 6, 4

# SPEC.md: the one line on stdout without --json
SUMMARY_LINE = re.compile(
    r"^reconcile: since (?P<since>\S+): (?P<w>\d+) webhook\(s\), (?P<n>\d+) log entries, "
    r"(?P<f>\d+) event\(s\) not delivered: (?P<r>\d+) recovered, (?P<a>\d+) already there, "
    r"(?P<u>\d+) not recoverable \((?P<secs>\d+(?:\.\d+)?) s\)$")
ADVICE = ("duro-enricher reconcile: {n} {kind} event(s) not recoverable (the log names no "
          "resource): run duro-enricher snapshot --kinds {kind}")


class Outage:
    """What outage() did: the webhook (id, url), the payloads acknowledged before the
    outage (ok), the one whose answers were lost (lost), those Duro gave up on while the
    bridge was down (down), the attempts the double's log holds, the bridge (back on the
    same port) and the running enricher."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def all_ids(self) -> list[str]:
        return [p["id"] for p in self.ok + self.down + [self.lost]]


def new_webhook(double, url: str, name: str = "reconcile test") -> str:
    return double.webhook_create({"name": name, "url": url, "events": list(KNOWN_EVENTS)})["id"]


def outage(rig: Rig, double, bridges, senders, enrichers, shape: str) -> Outage:  # noqa: F811
    """The bridge up: N_OK events delivered and acknowledged, one more whose 2xx answers the
    sender loses; the bridge stopped while N_DOWN_ITEMS + N_DOWN_COS events are sent and
    given up (the sender's summary says so: its whole scaled schedule ran against a closed
    port); the bridge back on the same port and an enricher that has processed what
    arrived. The double's log keeps ``shape``."""
    double.configure(log_shape=shape)
    bridge = bridges(rig.raw)
    url = f"http://127.0.0.1:{bridge.port}{WEBHOOK_PATH}"
    wid = new_webhook(double, url)
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    ok = [item_event("ITEM_UPDATE", c, webhook_id=wid) for c in comps[0:N_OK - 2]]
    ok += [co_event("CO_UPDATE", c, webhook_id=wid) for c in cos[0:2]]
    lost = item_event("ITEM_UPDATE", comps[10], webhook_id=wid)
    down = [item_event("ITEM_UPDATE", c, webhook_id=wid) for c in comps[20:20 + N_DOWN_ITEMS]]
    down += [co_event("CO_UPDATE", c, webhook_id=wid) for c in cos[10:10 + N_DOWN_COS]]

    s = senders(bridge, webhook_id=wid, scale=SCALE, delivery_log=double,
                lose_answers=[lost["id"]])
    s.send_many(ok + [lost])
    wait_until(lambda: len(s.ledger.acknowledged_ids()) == len(ok)
               and s.ledger.get(lost["id"])["answers_lost"] >= 1, 30,
               "the events acknowledged and the lost answer's event accepted once")
    bridge.terminate()
    s.send_many(down)
    assert s.wait(SPAN_S * 3 + 30), f"deliveries still going: {s.summary()}"
    summary = s.summary()
    assert summary == dict(summary, sent=len(ok) + 1 + len(down), acknowledged=len(ok),
                           gave_up=len(down) + 1, pending=0, balanced=True), summary
    for p in down:  # the whole schedule ran against the closed port, then Duro gave up
        led = s.ledger.get(p["id"])
        assert led["gave_up"] and led["attempts"] == ATTEMPTS and led["statuses"] == [None] * ATTEMPTS
        assert led["attempt_times"][-1] - led["attempt_times"][0] >= SPAN_S - 0.01
    led = s.ledger.get(lost["id"])
    assert led["gave_up"] and led["acks"] == 0 and led["answers_lost"] >= 1, led
    assert len(double.webhook_logs(wid)) == summary["attempts"]

    back = bridges(rig.raw, secret=bridge.secrets_[0],
                   DURO_BRIDGE_LISTEN=f"127.0.0.1:{bridge.port}")
    assert back.port == bridge.port
    enricher = enrichers(rig.env(rig.txn("live")))
    arrived = [p["id"] for p in ok] + [lost["id"]]
    rig.wait_for_ids(arrived, timeout=60, procs=[enricher])
    rig.wait_drained(timeout=60, procs=[enricher])
    raw_ids = {r.header("duro-event-id").decode() for r in rig.raw_records()}
    assert raw_ids == set(arrived), "the raw topic must hold what arrived, and only that"
    return Outage(wid=wid, url=url, ok=ok, lost=lost, down=down, attempts=summary["attempts"],
                  bridge=back, enricher=enricher, sender=s)


def reconcile_env(rig: Rig, url: str | None, **settings) -> dict:
    """The enricher's environment (as in its pod) plus DURO_RECONCILE_URL, unpaced."""
    base = {"DURO_GRAPHQL_RATE": 0, "DURO_RECONCILE_URL": url}
    base.update(settings)
    return rig.env(rig.txn("live"), **base)


def run_reconcile(rig: Rig, url: str | None, *args, timeout: float = 90.0, **settings):
    rc, out, err, secs = run_once([enricher_bin(), "reconcile", *args],
                                  reconcile_env(rig, url, **settings), timeout)
    assert rig.double.api_key not in out + err, "the API key appeared in reconcile's output"
    return rc, out, err


def reconciled(rig: Rig) -> list[kafkatest.Record]:
    """The committed raw records reconcile wrote."""
    return [r for r in rig.raw_records() if r.header("duro-origin") == b"reconcile"]


def check_written(rig: Rig, o: Outage, recs) -> None:
    """Each record reconcile wrote is one of the events Duro gave up on, keyed and stamped
    as SPEC.md says, its value the original payload."""
    by_id = {p["id"]: p for p in o.down}
    for r in recs:
        eid = r.header("duro-event-id").decode()
        assert eid in by_id, f"reconcile wrote {eid}, which is not an event Duro gave up on"
        p = by_id[eid]
        kind = "item" if p["event"].startswith("ITEM_") else "change_order"
        rid = p["data"]["item_id" if kind == "item" else "change_order_id"]
        assert json.loads(r.value) == p, f"{eid}: value {r.value[:300]!r}"
        assert r.key == rid.encode(), f"{eid}: key {r.key!r}, want {rid}"
        assert r.header("content-type") == b"application/json"
        assert r.header("duro-event") == p["event"].encode()
        assert r.header("duro-webhook-id") == o.wid.encode()
        assert r.header("duro-resource-kind") == kind.encode()
        ra = r.header("received-at")
        assert ra and abs(parse_rfc3339(ra.decode()) - time.time()) < 300, f"received-at {ra!r}"


def check_advice(err: str, by_kind: dict) -> None:
    for kind, n in by_kind.items():
        line = ADVICE.format(n=n, kind=kind)
        if n:
            assert line in err.splitlines(), f"no advice line {line!r} in stderr:\n{err}"
        else:
            assert f"--kinds {kind}" not in err, err


@pytest.mark.timeout_s(240)
@pytest.mark.parametrize("shape", ["object", "string", "details"])
def test_reconcile_after_an_outage_longer_than_the_retries(rig, double, bridges, senders,
                                                           enrichers, shape):
    t_start = time.time()
    o = outage(rig, double, bridges, senders, enrichers, shape)
    # another deployment's webhook (another URL), whose deliveries all failed: not ours
    other = new_webhook(double, "https://elsewhere.example/hooks/duro", name="elsewhere")
    stray = item_event("ITEM_UPDATE", double.data.component_ids()[50], webhook_id=other)
    double.record_delivery(other, stray["event"], {"event_id": stray["id"], "attempt": 1},
                           None, False, payload=stray)
    before = kafkatest.end_offsets(rig.bootstrap, rig.raw)

    rc, out, err = run_reconcile(rig, o.url, "--json")
    assert rc == 0, f"rc {rc}\nstdout:\n{out}\nstderr:\n{err}"
    r = json.loads(out)
    print(f"\nreconcile --json ({shape}): {json.dumps(r)}")
    if err.strip():
        print(f"stderr:\n{err}")
    assert r["webhooks"] == 1, r
    assert r["log_entries"] == o.attempts and r["unnamed_entries"] == 0, r
    assert r["events_failed"] == len(o.down) + 1, r
    assert r["already_there"] == 1, r  # the delivery whose answers were lost
    assert parse_rfc3339(r["since"]) < t_start, r  # infinite retention: every log entry
    assert isinstance(r["seconds"], (int, float)) and r["seconds"] >= 0, r
    kinds = {"item": N_DOWN_ITEMS, "change_order": N_DOWN_COS, "unknown": 0}
    e = o.enricher
    if shape == "details":
        # the log names the event (its id, its name) but not its resource
        assert r["recovered"] == 0 and r["not_recoverable"] == len(o.down), r
        assert r["not_recoverable_by_kind"] == kinds, r
        check_advice(err, kinds)
        assert kafkatest.end_offsets(rig.bootstrap, rig.raw) == before, "reconcile wrote"
        assert not reconciled(rig)
        rig.wait_drained(timeout=60, procs=[e])
        rig.assert_exactly_once([p["id"] for p in o.ok] + [o.lost["id"]])
        return
    assert r["recovered"] == len(o.down) and r["not_recoverable"] == 0, r
    assert r["not_recoverable_by_kind"] == {"item": 0, "change_order": 0, "unknown": 0}, r
    check_advice(err, {"item": 0, "change_order": 0})
    recs = reconciled(rig)
    assert sorted(x.header("duro-event-id").decode() for x in recs) == \
        sorted(p["id"] for p in o.down)
    check_written(rig, o, recs)
    after = kafkatest.end_offsets(rig.bootstrap, rig.raw)
    assert sum(after.values()) > sum(before.values())
    rig.wait_for_ids(o.all_ids, timeout=60, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])
    by = rig.assert_exactly_once(o.all_ids)
    for p in o.down:
        check_output(rig, by[p["id"]][0], p, status="found")
    # the stray event of the other webhook was neither counted nor written
    assert stray["id"] not in {x.header("duro-event-id").decode() for x in rig.raw_records()}


@pytest.mark.timeout_s(240)
def test_reconcile_twice_writes_nothing_twice_and_prints_its_summary(rig, double, bridges,
                                                                      senders, enrichers):
    o = outage(rig, double, bridges, senders, enrichers, "object")
    rc, out, err = run_reconcile(rig, o.url, "--json")
    assert rc == 0, err
    first = json.loads(out)
    assert first["recovered"] == len(o.down) and first["already_there"] == 1, first
    rig.wait_for_ids(o.all_ids, timeout=60, procs=[o.enricher])
    ends = kafkatest.end_offsets(rig.bootstrap, rig.raw)

    rc, out, err = run_reconcile(rig, o.url)  # the one-line summary (SPEC.md)
    assert rc == 0, err
    lines = out.splitlines()
    print(f"\nsecond run's summary: {lines[0] if lines else out!r}")
    assert len(lines) == 1, out
    m = SUMMARY_LINE.match(lines[0])
    assert m, f"summary {lines[0]!r} is not SPEC.md's format"
    assert parse_rfc3339(m["since"]) == parse_rfc3339(first["since"])
    assert (int(m["w"]), int(m["n"]), int(m["f"])) == (1, o.attempts, len(o.down) + 1), lines[0]
    assert (int(m["r"]), int(m["a"]), int(m["u"])) == (0, len(o.down) + 1, 0), lines[0]
    assert "not recoverable" not in err, err
    assert kafkatest.end_offsets(rig.bootstrap, rig.raw) == ends, "the second run wrote"
    assert len(reconciled(rig)) == len(o.down)
    rig.wait_drained(timeout=60, procs=[o.enricher])
    rig.assert_exactly_once(o.all_ids)


@pytest.mark.timeout_s(240)
def test_reconcile_while_webhooks_arrive_doubles_nothing(rig, double, bridges, senders,
                                                         enrichers, background):
    """Webhooks keep arriving through the bridge while reconcile runs, among them half of
    the events Duro gave up on, sent again by hand (Duro's resend): whichever comes first,
    each has one output. The other half is resent once reconcile has written them, so the
    raw topic holds each twice (reconcile's record and the bridge's) and the enricher's
    dedupe set, which also catches a resend landing between reconcile's scan and its
    write, must keep one output each."""
    o = outage(rig, double, bridges, senders, enrichers, "string")
    live = senders(o.bridge, webhook_id=o.wid, scale=SCALE)  # no log: not Duro's retries
    comps = double.data.component_ids()
    early, late = o.down[:len(o.down) // 2], o.down[len(o.down) // 2:]
    fresh: list[str] = []

    def stream(stop):
        live.send_many(early)  # resent by hand, same ids, while reconcile starts
        i = 0
        while not stop.is_set():
            ev = item_event("ITEM_UPDATE", comps[100 + i % 250], webhook_id=o.wid)
            fresh.append(live.send(ev))
            i += 1
            stop.wait(0.01)  # pacing: about 100 webhooks/s

    p = subprocess.Popen([enricher_bin(), "reconcile", "--json"], env=reconcile_env(rig, o.url),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=pdeathsig)
    t0 = time.monotonic()
    try:
        bg = background(stream, name="live webhooks")
        out, err = p.communicate(timeout=90)
        t1 = time.monotonic()
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate(timeout=10)
    live.send_many(late)  # resent by hand after reconcile wrote them
    bg.stop()
    assert live.wait(60), live.summary()
    out, err = out.decode(), err.decode()
    assert double.api_key not in out + err, "the API key appeared in reconcile's output"
    assert p.returncode == 0, f"rc {p.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    r = json.loads(out)
    print(f"\nreconcile --json while webhooks arrive: {json.dumps(r)}; "
          f"{len(fresh)} live webhooks")
    s = live.summary()
    assert s["acknowledged"] == len(o.down) + len(fresh) and s["gave_up"] == 0, s
    during = [e for e in live.ledger.entries().values()
              if e["first_ack_mono"] is not None and t0 <= e["first_ack_mono"] <= t1]
    assert during, "no live webhook was acknowledged while reconcile ran"
    assert r["webhooks"] == 1 and r["log_entries"] == o.attempts, r
    assert r["events_failed"] == len(o.down) + 1 and r["not_recoverable"] == 0, r
    assert r["recovered"] + r["already_there"] == len(o.down) + 1, r
    assert r["recovered"] >= len(late) and r["already_there"] >= 1, r
    recs = reconciled(rig)
    check_written(rig, o, recs)
    assert len(recs) == r["recovered"]
    raw = rig.raw_records()
    for ev in late:  # reconcile's record and the resend's
        mine = [x for x in raw if x.header("duro-event-id") == ev["id"].encode()]
        assert sorted(x.header("duro-origin") or b"" for x in mine) == [b"", b"reconcile"], \
            f"{ev['id']}: {[x.headers for x in mine]}"
    ids = o.all_ids + fresh
    rig.wait_for_ids(ids, timeout=90, procs=[o.enricher])
    rig.wait_drained(timeout=60, procs=[o.enricher])
    rig.assert_exactly_once(ids)


@pytest.mark.timeout_s(120)
def test_reconcile_log_table_rows_find_event_and_resource(rig, double, enrichers, tmp_path):
    """Log entries that hold no payload but name the resource: with the default table
    (metadata.eventId, metadata.resourceId) and, for entries shaped otherwise, with a
    DURO_LOG_TABLE file written for them. Reconcile then writes the event made from the
    log ({"id", "webhook_id", "event", "created_at", "data": {<id field>: id}}, created_at
    the oldest entry's time); before the file, the same entries name no event id and are
    reported apart (unnamed_entries). --webhook names the webhook to read
    (DURO_RECONCILE_URL unset)."""
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    t_when = time.time() - 3600
    when, later = rfc3339(t_when), rfc3339(t_when + 60)  # the first attempt an hour ago
    wid_a = new_webhook(double, "https://a.example/hook", name="a")
    wid_b = new_webhook(double, "https://b.example/hook", name="b")
    # webhook a: eventId / resourceId in metadata (the default table's second choices)
    a_events = [("evt_a_item_" + comps[30], "ITEM_UPDATE", "item_id", comps[30]),
                ("evt_a_co_" + cos[30], "CO_OPEN", "change_order_id", cos[30])]
    for eid, name, _, rid in a_events:
        for attempt, code, at in ((1, 503, when), (2, None, later)):
            double.record_delivery(wid_a, name, {"eventId": eid, "resourceId": rid,
                                                 "attempt": attempt}, code, False,
                                   created_at=at)
    acked = "evt_a_acked"  # failed once, then acknowledged: not Duro's loss
    double.record_delivery(wid_a, "ITEM_UPDATE", {"eventId": acked, "resourceId": comps[31]},
                           503, False, created_at=when)
    double.record_delivery(wid_a, "ITEM_UPDATE", {"eventId": acked, "resourceId": comps[31]},
                           200, True, created_at=when)
    # webhook b: another Duro's shape, which the default table does not know
    b_events = [("evt_b_co_" + cos[40], "CO_UPDATE", "change_order_id", cos[40]),
                ("evt_b_item_" + comps[40], "ITEM_CREATE", "item_id", comps[40])]
    for eid, name, _, rid in b_events:
        double.record_delivery(wid_b, "", {"delivery": {"event": eid, "name": name,
                                                        "subject": rid}}, 500, False,
                               created_at=when)
    table = tmp_path / "log-table-b.txt"
    table.write_text("# webhook b's Duro\n"
                     "event_id   metadata.delivery.event\n"
                     "event      metadata.delivery.name  event\n"
                     "resource   metadata.delivery.subject\n"
                     "created_at metadata.delivery.at  createdAt\n")
    e = enrichers(rig.env(rig.txn("live")))

    rc, out, err = run_reconcile(rig, None, "--json", "--webhook", wid_b)
    assert rc == 0, err
    r = json.loads(out)
    print(f"\nwebhook b, default table: {json.dumps(r)}\n{err}")
    # entries that name no event id are reported apart, not as events
    assert (r["webhooks"], r["log_entries"], r["unnamed_entries"]) == (1, 2, 2), r
    assert r["events_failed"] == 0 and r["not_recoverable"] == 0, r
    assert r["not_recoverable_by_kind"] == {"item": 0, "change_order": 0, "unknown": 0}, r
    assert "duro-enricher reconcile: 2 log entries name no event id: check DURO_LOG_TABLE" \
        in err, err
    assert not rig.raw_records()

    rc, out, err = run_reconcile(rig, None, "--json", "--webhook", wid_b,
                                 DURO_LOG_TABLE=str(table))
    assert rc == 0, err
    r = json.loads(out)
    assert (r["webhooks"], r["log_entries"], r["unnamed_entries"], r["events_failed"]) == \
        (1, 2, 0, 2), r
    assert r["recovered"] == 2 and r["not_recoverable"] == 0, r
    assert "DURO_LOG_TABLE" not in err, err

    # --since after those entries: none is read
    rc, out, err = run_reconcile(rig, None, "--json", "--webhook", wid_a, "--since", "30m")
    assert rc == 0, err
    r = json.loads(out)
    assert (r["webhooks"], r["log_entries"], r["events_failed"], r["recovered"]) == \
        (1, 0, 0, 0), r
    assert len(reconciled(rig)) == 2

    rc, out, err = run_reconcile(rig, None, "--json", "--webhook", wid_a, "--since", "2h")
    assert rc == 0, err
    r = json.loads(out)
    assert (r["webhooks"], r["log_entries"], r["events_failed"]) == (1, 6, 2), r
    assert r["recovered"] == 2 and r["already_there"] == 0 and r["not_recoverable"] == 0, r

    want = {}
    for wid, evs in ((wid_a, a_events), (wid_b, b_events)):
        for eid, name, field, rid in evs:
            want[eid] = {"id": eid, "webhook_id": wid, "event": name, "created_at": when,
                         "data": {field: rid}}
    recs = reconciled(rig)
    assert sorted(x.header("duro-event-id").decode() for x in recs) == sorted(want)
    for x in recs:
        p = want[x.header("duro-event-id").decode()]
        assert json.loads(x.value) == p, x.value
        assert x.key == next(iter(p["data"].values())).encode()
        assert x.header("duro-event") == p["event"].encode()
        assert x.header("duro-webhook-id") == p["webhook_id"].encode()
        kind = "item" if p["event"].startswith("ITEM_") else "change_order"
        assert x.header("duro-resource-kind") == kind.encode()
    rig.wait_for_ids(list(want), timeout=60, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])
    by = rig.assert_exactly_once(list(want))
    for eid, p in want.items():
        check_output(rig, by[eid][0], p, status="found")


@pytest.mark.timeout_s(90)
def test_reconcile_scan_reaches_a_retry_span_before_since(rig, double):
    """An event whose retries Duro logged inside --since but whose record reached the raw
    topic before it (a lost answer two hours earlier) is found, not written again: the scan
    starts Duro's retry span (8 h) and the clock skew before --since. An event absent from
    the raw topic is written."""
    double.configure(log_shape="object")
    url = "http://127.0.0.1:1/webhooks/duro"
    wid = new_webhook(double, url)
    comps = double.data.component_ids()
    now = time.time()
    early = item_event("ITEM_UPDATE", comps[60], webhook_id=wid,
                       created_at=rfc3339(now - 2 * 3600))
    absent = item_event("ITEM_UPDATE", comps[61], webhook_id=wid,
                        created_at=rfc3339(now - 2 * 3600))
    rig.produce([early], timestamp_ms=int((now - 2 * 3600) * 1000))
    for ev in (early, absent):  # the last retries, inside the window, failed
        for attempt in (8, 9):
            double.record_delivery(wid, ev["event"], {"event_id": ev["id"], "attempt": attempt},
                                   None, False, created_at=rfc3339(now - 1800 + attempt),
                                   payload=ev)
    rc, out, err = run_reconcile(rig, url, "--json", "--since", "1h")
    assert rc == 0, err
    r = json.loads(out)
    assert (r["log_entries"], r["events_failed"]) == (4, 2), r
    assert (r["recovered"], r["already_there"], r["not_recoverable"]) == (1, 1, 0), r
    assert [x.header("duro-event-id") for x in reconciled(rig)] == [absent["id"].encode()]


def _free_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first line of proc's stdout, read without blocking past timeout."""
    deadline, buf = time.monotonic() + timeout, b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, \
            f"no line on stdout (got {buf!r}, exit {proc.poll()}): {proc.stderr.read().decode()}"
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 4096)
            buf += chunk
    return buf.decode().splitlines()[0]


@pytest.mark.timeout_s(90)
def test_reconcile_metrics_stay_served_after_the_run(rig, double):
    """DURO_RECONCILE_ADMIN_LISTEN serves the run's counts (SPEC.md's metrics), still after
    the summary for DURO_RECONCILE_METRICS_LINGER_S, and SIGTERM ends that wait."""
    url = "http://127.0.0.1:1/webhooks/duro"
    wid = new_webhook(double, url)
    comps = double.data.component_ids()
    there, written, unnamed_res = (item_event("ITEM_UPDATE", comps[i], webhook_id=wid)
                                   for i in (70, 71, 72))
    rig.produce([there])
    double.configure(log_shape="object")
    for ev in (there, written):
        double.record_delivery(wid, ev["event"], {"event_id": ev["id"]}, 502, False, payload=ev)
    double.configure(log_shape="details")  # names the event, not its resource
    double.record_delivery(wid, unnamed_res["event"], {"event_id": unnamed_res["id"]}, None,
                           False, payload=unnamed_res)
    port = _free_port()
    p = subprocess.Popen([enricher_bin(), "reconcile"],
                         env=reconcile_env(rig, url, DURO_RECONCILE_ADMIN_LISTEN=f"127.0.0.1:{port}",
                                           DURO_RECONCILE_METRICS_LINGER_S=60),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=pdeathsig)
    try:
        line = _first_line(p, 60)
        print(f"\n{line}")
        m = SUMMARY_LINE.match(line)
        assert m and (m["r"], m["a"], m["u"]) == ("1", "1", "1"), line
        assert p.poll() is None, "it did not stay up to be scraped"
        r = http_request(port, "GET", "/metrics")
        assert r.status == 200, r
        got = Metrics(r.body.decode())
        assert got.value("duro_reconcile_log_entries_total") == 3, got.text
        for result in ("recovered", "already_there", "not_recoverable"):
            assert got.value("duro_reconcile_events_total", result=result) == 1, got.text
        assert got.value("duro_reconcile_raw_records_scanned_total") >= 1, got.text
        assert got.value("duro_reconcile_graphql_requests_total") >= 2, got.text
        assert http_request(port, "GET", "/healthz").status == 200
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10)
        assert rc == 0, (rc, p.stderr.read().decode())
        assert time.monotonic() - t0 < 10
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=10)
    assert [x.header("duro-event-id") for x in reconciled(rig)] == [written["id"].encode()]


def _bad_log_table(rig, tmp_path):
    f = tmp_path / "log-table.txt"
    f.write_text("# a log table\nevent_id  metadata.event_id\nresourse  metadata.resource_id\n"
                 "event  event\n")
    return (), {"DURO_LOG_TABLE": str(f)}, [f"{f}:3", "resourse"]


def _missing_log_table(rig, tmp_path):
    f = tmp_path / "nowhere" / "log-table.txt"
    return (), {"DURO_LOG_TABLE": str(f)}, ["DURO_LOG_TABLE", str(f)]


def _since_garbage(rig, tmp_path):
    return ("--since", "yesterday-ish"), {}, ["--since yesterday-ish"]


def _since_before_retention(rig, tmp_path):
    short = f"{rig.prefix}.raw-1h"
    kafkatest.create_topic(rig.bootstrap, short, config={"retention.ms": "3600000"})
    return ("--since", "2h"), {"DURO_RAW_TOPIC": short}, ["--since 2h", "retention"]


def _unknown_option(rig, tmp_path):
    return ("--bogus",), {}, ["--bogus"]


@pytest.mark.timeout_s(60)
@pytest.mark.parametrize("case", [_since_garbage, _since_before_retention, _bad_log_table,
                                  _missing_log_table, _unknown_option],
                         ids=lambda c: c.__name__.lstrip("_"))
def test_reconcile_bad_settings_stop_with_one_line(rig, double, tmp_path, case):
    args, settings, want = case(rig, tmp_path)
    wid = new_webhook(double, "http://127.0.0.1:1/webhooks/duro")
    ev = item_event("ITEM_UPDATE", double.data.component_ids()[0], webhook_id=wid)
    double.record_delivery(wid, ev["event"], {"event_id": ev["id"]}, None, False, payload=ev)
    topics = [rig.raw] + ([settings["DURO_RAW_TOPIC"]] if "DURO_RAW_TOPIC" in settings else [])
    rc, out, err = run_reconcile(rig, "http://127.0.0.1:1/webhooks/duro", *args, timeout=30,
                                 **settings)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    print(f"\n{case.__name__.lstrip('_')}: exit {rc}: {lines[:3]}")
    assert rc == 2, f"rc {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert len(lines) == 1, err
    for w in want:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    assert not out.strip(), out
    for t in topics:
        assert not kafkatest.read_all(rig.bootstrap, t, timeout=30), f"{t} was written"


@pytest.mark.timeout_s(90)
def test_reconcile_since_defaults_to_the_raw_topics_retention(rig, double):
    short = f"{rig.prefix}.raw-1h"
    kafkatest.create_topic(rig.bootstrap, short, config={"retention.ms": "3600000"})
    url = "http://127.0.0.1:1/webhooks/duro"
    # DURO_RECONCILE_URL that no webhook has: exit 1, one line naming it
    rc, out, err = run_reconcile(rig, url, "--json", DURO_RAW_TOPIC=short)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 1 and len(lines) == 1 and "DURO_RECONCILE_URL=" + url in lines[0], (rc, err)
    assert not out.strip(), out
    new_webhook(double, url)  # one, with an empty log
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    cases = [((), time.time() - 3600, 60),                  # default: now - retention.ms
             (("--since", "30m"), time.time() - 1800, 60),  # an age
             (("--since", stamp), parse_rfc3339(stamp), 0)]  # RFC 3339, kept as it is
    for args, want, slack in cases:
        rc, out, err = run_reconcile(rig, url, "--json", *args, DURO_RAW_TOPIC=short)
        assert rc == 0, f"{args}: rc {rc}\n{err}"
        r = json.loads(out)
        assert abs(parse_rfc3339(r["since"]) - want) <= slack + 1, (args, r)
        assert r["webhooks"] == 1 and r["log_entries"] == 0 and r["events_failed"] == 0, r
    assert not kafkatest.read_all(rig.bootstrap, short, timeout=30)
