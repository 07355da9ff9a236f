"""duro-enricher and Duro's GraphQL API (the enricher's contract "Pull", "Errors"): batching, the
not-found grace re-asks, transient trouble (500, 429, RATE_LIMITED, hangs), an outage
longer than the transaction timeout, per-id errors and poison ids (resource-error in
the DLQ), and a refused API key fixed without a restart."""

from __future__ import annotations

import os
import re
import secrets
import signal
import time

import pytest

from proctest import wait_until
from enrichertest import (background, check_dlq, check_output, co_event, double,  # noqa: F401
                          enrichers, item_event, rig)

WH = "webhook_gql"


def _items(ids, event="ITEM_UPDATE"):
    return [item_event(event, c, webhook_id=WH) for c in ids]


def _cos(ids, event="CO_UPDATE"):
    return [co_event(event, c, webhook_id=WH) for c in ids]


def _status_count(double, status) -> int:
    return double.stats()["requests_by_status"].get(str(status), 0)


def _lag(e) -> dict:
    """duro_enricher_consumer_lag by partition."""
    return {dict(k).get("partition"): v
            for k, v in e.metrics().by_name("duro_enricher_consumer_lag").items()}


def _dlq_total(e) -> float:
    return sum(e.metrics().by_name("duro_enricher_dlq_total").values())


def _expect_all_found(rig, payloads, e) -> None:
    """Waits for a record of every payload: exactly one each, its output, status found."""
    ids = [p["id"] for p in payloads]
    rig.wait_for_ids(ids, timeout=60, procs=[e])
    by = rig.assert_exactly_once(ids)
    for p in payloads:
        check_output(rig, by[p["id"]][0], p, status="found")


@pytest.mark.timeout_s(90)
def test_batching_few_requests_for_many_events(rig, double, enrichers):
    n = 200
    double.max_ids_per_request = 100  # what the enricher's DURO_GRAPHQL_MAX_IDS default allows
    comps = double.data.component_ids()[:n]
    payloads = _items(comps)
    rig.produce(payloads)
    e = enrichers(rig.env(rig.txn("a"), DURO_API_ORGANIZATION="org-test",
                          DURO_API_LIBRARY="lib-test"))
    _expect_all_found(rig, payloads, e)
    st = double.stats()
    assert st["organizations"] == {"org-test": st["requests_total"]}, st["organizations"]
    assert st["libraries"] == {"lib-test": st["requests_total"]}, st["libraries"]
    comp_requests = st["requests_by_operation"].get("DuroComponents", 0)
    assert comp_requests <= n // 10, f"{comp_requests} GraphQL requests for {n} events: {st}"
    assert max(int(k) for k in st["ids_histogram"]) <= 100
    assert sorted(set(double.ids_requested())) == sorted(comps)
    print(f"{n} events: {st['requests_total']} GraphQL requests "
          f"({st['requests_total'] / n:.3f} per event), ids per request {st['ids_histogram']}, "
          f"enricher batch sizes: {e.metrics().by_name('duro_enricher_batch_size_count')}")


@pytest.mark.timeout_s(90)
def test_not_found_grace(rig, double, enrichers, background):
    grace_ms = 800
    e = enrichers(rig.env(rig.txn("a"), DURO_NOT_FOUND_GRACE_MS=grace_ms))
    comps = double.data.component_ids()
    later, present = comps[50], comps[51]
    never_item, never_co = "comp_999999", "co_999999"
    assert not double.data.exists(never_item)
    # `later` shows up 1.0 s after the enricher first asked for it (hidden until then)
    double.data.appear_later(later, delay_s=3600)

    def reveal(stop):
        while not stop.is_set():
            first = next((r for r in list(double.request_log) if r["ids"] and later in r["ids"]), None)
            if first is not None:
                double.data.appear_later(later, at=first["t"] + 1.0)
                return
            stop.wait(0.02)  # polling interval
    revealer = background(reveal, "reveal-later")
    payloads = _items([later, never_item, present]) + _cos([never_co])
    rig.produce(payloads)
    ids = [p["id"] for p in payloads]
    rig.wait_for_ids(ids, timeout=60, procs=[e])
    revealer.stop()
    by = rig.assert_exactly_once(ids)
    check_output(rig, by[payloads[0]["id"]][0], payloads[0], status="found")
    check_output(rig, by[payloads[1]["id"]][0], payloads[1], status="not_found")
    check_output(rig, by[payloads[2]["id"]][0], payloads[2], status="found")
    check_output(rig, by[payloads[3]["id"]][0], payloads[3], status="not_found")

    log = [r for r in list(double.request_log) if r["ids"]]
    for rid in (never_item, never_co):
        asks = [r for r in log if rid in r["ids"]]
        alone = [r for r in asks if r["ids"] == [rid]]
        assert len(asks) == 3, f"{rid} asked {len(asks)} times, want 1 + 2 re-asks: {asks}"
        assert len(alone) >= 2, f"the re-asks of {rid} must hold it alone: {asks}"
        gaps = [b["t"] - a["t"] for a, b in zip(asks, asks[1:])]
        assert all(g >= grace_ms / 1000 - 0.05 for g in gaps), f"re-asks of {rid} {gaps}s apart"
    later_asks = [r for r in log if later in r["ids"]]
    assert len(later_asks) == 3, f"{later}: found at the second re-ask, want 3 asks: {later_asks}"
    never_t = [r["t"] for r in log if never_item in r["ids"]]
    print(f"asks: {later}: {len(later_asks)}; {never_item}: {len(never_t)}, "
          f"gaps {[round(b - a, 3) for a, b in zip(never_t, never_t[1:])]} s")


@pytest.mark.timeout_s(120)
def test_transient_graphql_trouble_enriches_everything(rig, double, enrichers):
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    hang = {comps[0], cos[0]}
    double.configure(error_rate_500=0.15, rate_limit_429=3, graphql_rate_limited=3,
                     retry_after_s=1, timeout_ids=hang, hang_ms=1500)
    payloads = _items(comps[:40]) + _cos(cos[:20])
    rig.produce(payloads)
    e = enrichers(rig.env(rig.txn("a"), DURO_GRAPHQL_TIMEOUT_MS=1000, DURO_BATCH_MAX=15))
    # the hangs are transient: once one hung request has been answered (after 1.5 s,
    # the enricher having given up at 1 s), requests stop hanging
    wait_until(lambda: any(hang & set(ids) for ids in double.stats()["id_log"]), 60,
               "a hung request")
    double.configure(timeout_ids=set())
    ids = [p["id"] for p in payloads]
    rig.wait_for_ids(ids, timeout=90, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    by = rig.assert_exactly_once(ids)
    for p in payloads:
        assert by[p["id"]][0].topic != rig.dlq, f"{p['id']} in the DLQ: {by[p['id']][0].headers}"
        check_output(rig, by[p["id"]][0], p, status="found")
    st = double.stats()
    assert _status_count(double, 429) == 3, st["requests_by_status"]
    # Retry-After / retryAfter (1 s) honoured: 6 rate-limited answers to at most 2 jobs
    # in flight mean at least two 1 s waits before the 7th request
    t = [r["t"] for r in list(double.request_log)]
    assert t[6] - t[0] >= 1.9, f"7th request {t[6] - t[0]:.3f} s after the first"
    assert _status_count(double, 500) >= 1, st["requests_by_status"]
    m = e.metrics()
    assert m.value("duro_enricher_graphql_answers_total", outcome="rate_limited") >= 6
    assert m.value("duro_enricher_graphql_answers_total", outcome="failed") >= 2
    assert _dlq_total(e) == 0
    print(f"GraphQL requests {st['requests_total']}, by status {st['requests_by_status']}, "
          f"enricher answers {m.by_name('duro_enricher_graphql_answers_total')}")


@pytest.mark.timeout_s(120)
def test_outage_longer_than_transaction_timeout(rig, double, enrichers):
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    e = enrichers(rig.env(rig.txn("a"), DURO_RDKAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS=3000))
    first = _items(comps[:10]) + _cos(cos[:5])
    rig.produce(first)
    rig.wait_for_ids([p["id"] for p in first], timeout=60, procs=[e])
    assert e.readyz().status == 200

    double.outage = True
    t_out = time.monotonic()
    second = _items(comps[10:25]) + _cos(cos[5:10])
    rig.produce(second)
    r = wait_until(lambda: (x := e.readyz()).status == 503 and x, 30, "/readyz 503 in the outage")
    assert r.body.startswith(b"not ready: "), r
    assert e.metric("duro_enricher_ready") == 0
    third = _items(comps[25:35])
    rig.produce(third)  # more events while the partitions are paused
    # what waits must be visible as consumer lag (the guarantees "Nothing silently dropped");
    # sampled through the outage, asserted at the end
    backlog = len(second) + len(third)
    lags = []
    tail = rig.tail()
    # an ~8 s outage (longer than transaction.timeout.ms=3000): wall-clock passage is the condition
    while time.monotonic() - t_out < 8.0:
        assert e.alive, e.tail()
        assert e.readyz().status == 503
        lags.append(_lag(e))
        assert not rig.by_event_id(tail.sync()).keys() - {p["id"] for p in first}, \
            "nothing may be produced during the outage"
        time.sleep(0.5)  # pacing of the checks during the outage, not a synchronisation
    double.outage = False
    t_clear = time.monotonic()

    ids = [p["id"] for p in first + second + third]
    rig.wait_for_ids(ids, timeout=60, tail=tail, procs=[e])
    recovery = time.monotonic() - t_clear
    rig.wait_drained(timeout=30, procs=[e])
    wait_until(lambda: e.readyz().status == 200, 20, "/readyz 200 after the outage")
    by = rig.assert_exactly_once(ids)
    for p in first + second + third:
        check_output(rig, by[p["id"]][0], p, status="found")
    assert _dlq_total(e) == 0
    assert e.alive
    msgs = e.log_msgs()
    assert any(m.startswith("not ready:") for m in msgs), msgs[-20:]
    assert not [m for m in msgs if "fatal" in m.lower() or "fenced" in m.lower()], msgs
    print(f"503 answers during the outage: {_status_count(double, 503)}; "
          f"aborted transactions {e.metric('duro_enricher_transactions_aborted_total'):.0f}; "
          f"consumer lag during the outage: {lags[0]} .. {lags[-1]}; all enriched "
          f"{recovery:.1f} s after the outage ended")
    assert max(sum(x.values()) for x in lags) >= backlog, \
        f"{backlog} raw records waited through the outage, but duro_enricher_consumer_lag " \
        f"showed at most {max(sum(x.values()) for x in lags)}: first {lags[0]}, last {lags[-1]}"


def _check_blamed(rig, double, e, payloads, bad_ids, attempts=5):
    ids = [p["id"] for p in payloads]
    rig.wait_for_ids(ids, timeout=90, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    by = rig.assert_exactly_once(ids)
    raw = {r.header("duro-event-id").decode(): r for r in rig.raw_records()}
    blamed = 0
    for p in payloads:
        rid = p["data"].get("item_id") or p["data"].get("change_order_id")
        rec = by[p["id"]][0]
        if rid in bad_ids:
            check_dlq(rig, rec, error_class="resource-error", raw=raw[p["id"]], attempts=attempts)
            blamed += 1
        else:
            kind = "item" if p["event"].startswith("ITEM_") else "change_order"
            check_output(rig, rec, p, status="found", kind=kind)
    assert e.metric("duro_enricher_dlq_total", **{"class": "resource-error"}) == blamed
    assert _dlq_total(e) == blamed
    msgs = e.log_msgs()
    assert not [m for m in msgs if m.startswith("not ready")], \
        "a per-id failure is not an outage: " + str([m for m in msgs if m.startswith("not ready")])
    return by


@pytest.mark.timeout_s(120)
def test_per_id_error_goes_to_dlq_once(rig, double, enrichers):
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    bad, forbidden = comps[7], cos[2]  # an internal error, and FORBIDDEN on one change order
    double.per_id_errors = {bad: None, forbidden: "FORBIDDEN"}
    payloads = _items(comps[:30]) + _cos(cos[:10])
    rig.produce(payloads)
    e = enrichers(rig.env(rig.txn("a")))
    _check_blamed(rig, double, e, payloads, {bad, forbidden})
    for rid in (bad, forbidden):
        alone = [ids for ids in double.stats()["id_log"] if ids == [rid]]
        assert len(alone) >= 5, f"{rid} asked alone {len(alone)} times"
        assert any(re.search(rf"{rid} failed 5 times", m) for m in e.log_msgs())


@pytest.mark.timeout_s(120)
def test_poison_id_goes_to_dlq_once(rig, double, enrichers):
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    poison_item, poison_co = comps[3], cos[4]
    double.poison_ids = {poison_item, poison_co}
    payloads = (_items(comps[:25]) + _items([poison_item], "ITEM_CREATE") + _cos(cos[:12]))
    rig.produce(payloads)
    e = enrichers(rig.env(rig.txn("a"), DURO_GRAPHQL_MAX_ATTEMPTS=3))
    by = _check_blamed(rig, double, e, payloads, {poison_item, poison_co}, attempts=3)
    in_dlq = [i for i, rs in by.items() if rs[0].topic == rig.dlq]
    assert len(in_dlq) == 3, in_dlq  # two events of the poison item, one of the poison CO


@pytest.mark.timeout_s(120)
def test_wrong_api_key_then_fixed_file(rig, double, enrichers, tmp_path):
    wrong = "wrong-api-key-" + secrets.token_hex(12)
    keyfile = tmp_path / "duro-api-key"
    keyfile.write_text(wrong + "\n")
    e = enrichers(rig.env(rig.txn("a"), DURO_API_KEY=None, DURO_API_KEY_FILE=keyfile),
                  secrets_=[wrong])
    payloads = _items(double.data.component_ids()[:12]) + _cos(double.data.change_order_ids()[:4])
    rig.produce(payloads)
    r = wait_until(lambda: (x := e.readyz()).status == 503 and x, 45, "/readyz 503 (key refused)")
    assert r.body.startswith(b"not ready: "), r
    wait_until(lambda: _status_count(double, 401) >= 2, 45, "the enricher trying again")
    tail = rig.tail()
    assert tail.sync() == [], "no output and no DLQ record while the key is refused"
    assert e.readyz().status == 503
    assert _dlq_total(e) == 0
    lag_refused = _lag(e)  # asserted at the end
    pid = e.proc.pid

    tmp = keyfile.with_name(keyfile.name + ".tmp")
    tmp.write_text(double.api_key + "\n")
    os.replace(tmp, keyfile)
    ids = [p["id"] for p in payloads]
    rig.wait_for_ids(ids, timeout=60, tail=tail, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    by = rig.assert_exactly_once(ids)
    for p in payloads:
        check_output(rig, by[p["id"]][0], p, status="found")
    wait_until(lambda: e.readyz().status == 200, 20, "/readyz 200 with the right key")
    assert e.alive and e.proc.pid == pid
    msgs = e.log_msgs()
    assert sum(m.startswith("running:") for m in msgs) == 1, "no restart"
    assert any("reloaded" in m for m in msgs), msgs[-20:]
    assert _dlq_total(e) == 0
    assert sum(lag_refused.values()) >= len(payloads), \
        f"{len(payloads)} raw records waited while the key was refused, but " \
        f"duro_enricher_consumer_lag was {lag_refused}"


@pytest.mark.timeout_s(90)
def test_pages_are_followed(rig, double, enrichers):
    """The double answers at most 7 nodes per page: the enricher follows pageInfo
    (a few requests), rather than re-asking the ids of later pages one by one."""
    double.max_page_size = 7
    comps = double.data.component_ids()[100:140]
    payloads = _items(comps)
    rig.produce(payloads)
    e = enrichers(rig.env(rig.txn("a")))
    _expect_all_found(rig, payloads, e)
    st = double.stats()
    pages = -(-len(comps) // 7)
    assert st["requests_total"] <= pages + 2, (pages, st["requests_total"], st["ids_histogram"])
    assert "1" not in st["ids_histogram"], f"ids re-asked alone: {st['ids_histogram']}"


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("trouble", ["outage", "key-refused"])
def test_sigterm_while_api_unusable_exits_0_and_loses_nothing(rig, double, enrichers, trouble):
    """SIGTERM while the API is down or refuses the key (the batch waits in its pull):
    the enricher's contract "SIGTERM: stop taking batches, finish or abort the open transaction, close
    the consumer, exit 0" - within a bounded time, with nothing committed for that
    batch; a new process then enriches it."""
    comps = double.data.component_ids()
    right_key = double.api_key
    env = rig.env(rig.txn("a"))  # with the key the double accepts until it is rotated
    if trouble == "outage":
        double.outage = True
    else:
        double.api_key = "rotated-" + secrets.token_hex(8)
    payloads = _items(comps[200:215])
    rig.produce(payloads)
    e = enrichers(env)
    wait_until(lambda: e.readyz().status == 503, 30, "/readyz 503")
    e.signal(signal.SIGTERM)
    try:
        rc = e.wait_exit(20)
    finally:
        double.outage = False
        double.api_key = right_key
    assert rc == 0, f"exit {rc}\n{e.tail()}"
    assert rig.tail().sync() == [], "nothing may be committed for the interrupted batch"
    e2 = enrichers(env)
    ids = [p["id"] for p in payloads]
    rig.wait_for_ids(ids, timeout=60, procs=[e2])
    rig.wait_drained(timeout=30, procs=[e2])
    by = rig.assert_exactly_once(ids)
    for p in payloads:
        check_output(rig, by[p["id"]][0], p, status="found")


@pytest.mark.timeout_s(180)
def test_partial_outage_is_an_outage_not_a_dlq_flood(rig, double, enrichers, background):
    """Component lookups fail (HTTP 500) while change orders, and lookups of no id,
    answer: no component can be blamed, since no request of that kind naming other ids
    succeeds. It is an outage: nothing in the DLQ, /readyz 503 while it lasts, and
    every event enriched exactly once when it ends."""
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    e = enrichers(rig.env(rig.txn("a"), DURO_GRAPHQL_MAX_ATTEMPTS=3))
    first = _items(comps[:10]) + _cos(cos[:5])
    rig.produce(first)
    rig.wait_for_ids([p["id"] for p in first], timeout=60, procs=[e])

    double.failing_lookups = {"component"}
    t0 = time.monotonic()
    during: list[dict] = []

    def load(stop):
        i = 0
        while not stop.is_set() and i < 300:
            p = (_items([comps[(10 + i) % len(comps)]]) if i % 3 else
                 _cos([cos[(5 + i) % len(cos)]]))[0]
            rig.producer.produce(p)
            during.append(p)
            i += 1
            stop.wait(0.05)  # pacing of the load, not a synchronisation
        rig.producer.flush()

    bg = background(load, "partial-outage-load")
    r = wait_until(lambda: (x := e.readyz()).status == 503 and x, 60,
                   "/readyz 503 in the partial outage")
    assert b"Duro API unavailable" in r.body, r.body
    not_ready = 0
    # ~20 s of failing component lookups: the wall-clock passage is the condition
    while time.monotonic() - t0 < 20.0:
        assert e.alive, e.tail()
        not_ready += e.readyz().status == 503
        assert _dlq_total(e) == 0, "a partial outage must not fill the DLQ"
        time.sleep(0.5)  # pacing of the checks, not a synchronisation
    bg.stop()
    double.failing_lookups = set()

    ids = [p["id"] for p in first + during]
    rig.wait_for_ids(ids, timeout=90, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    wait_until(lambda: e.readyz().status == 200, 30, "/readyz 200 after the partial outage")
    by = rig.assert_exactly_once(ids)
    for p in first + during:
        kind = "item" if p["event"].startswith("ITEM_") else "change_order"
        check_output(rig, by[p["id"]][0], p, status="found", kind=kind)
    assert _dlq_total(e) == 0
    failed = _status_count(double, 500)
    assert failed > 0
    print(f"{len(during)} events during the partial outage, {failed} answers 500, "
          f"/readyz 503 in {not_ready} of the checks; all enriched once, none in the DLQ")
