"""duro-enricher's shutdown when a Kafka call hangs (the enricher's contract: a hung
transactional call is caught by a watchdog and treated as fatal): the watchdog keeps
watching after SIGTERM, through the last commit or abort and the closing of the
consumer, so the process never waits for SIGKILL."""

from __future__ import annotations

import signal

import pytest

from enrichertest import double, enrichers, item_event, rig  # noqa: F401
from proctest import wait_until

TXN_TIMEOUT_MS = 2000  # the watchdog fires 30 s past it


@pytest.mark.timeout_s(240)
def test_sigterm_during_a_hung_transaction_still_exits(restorable_broker, rig, double,
                                                       enrichers):
    comps = double.data.component_ids()
    e = enrichers(rig.env(rig.txn("a"), DURO_BATCH_WAIT_MS=5,
                          DURO_RDKAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS=TXN_TIMEOUT_MS))
    first = [item_event("ITEM_UPDATE", c, webhook_id="webhook_stop") for c in comps[:5]]
    rig.produce(first)
    rig.wait_for_ids([p["id"] for p in first], timeout=60, procs=[e])

    # the next batch's pull takes 2 s; the broker dies meanwhile, so its transaction
    # cannot complete
    double.latency_ms = 2000
    base = double.requests_total
    rig.produce([item_event("ITEM_UPDATE", c, webhook_id="webhook_stop") for c in comps[5:10]])
    wait_until(lambda: double.requests_total > base, 30, "the next batch's GraphQL request")
    restorable_broker.kill()
    e.wait(lambda: e.metric("duro_enricher_kafka_call_seconds") >= 1.0, 60,
           "a transactional call hanging with Kafka down")
    e.signal(signal.SIGTERM)
    rc = e.wait_exit(TXN_TIMEOUT_MS / 1000 + 30 + 30)
    assert rc == 3, f"exit {rc}:\n{e.tail()}"
    msgs = e.log_msgs()
    assert any(m.startswith("watchdog: a Kafka call has hung") and "shutting down" in m
               for m in msgs), msgs[-10:]
    double.latency_ms = 0

    # back up: the stuck transaction is fenced, and every event is enriched once
    restorable_broker.restart()
    e = enrichers.restart(e)
    ids = [p["id"] for p in first]
    rig.wait_drained(timeout=120, procs=[e])
    by = rig.assert_exactly_once(ids, allow_extra=True)
    assert len(rig.final_records()) == 10, "each of the 10 events once"
    print(f"watchdog exit {rc}; the 10 events enriched once after the restart")
