"""duro-enricher pulls the next batch while the current batch's transaction commits
(DURO_PULL_AHEAD, on by default). The batch taken ahead is deduplicated against the batch
still committing, and an aborted transaction redoes both. With DURO_BATCH_MAX=1 every
record is its own batch, so the records preloaded behind the first one are taken ahead;
the duro_enricher_batches_pulled_ahead_total counter shows that the path was taken."""

from __future__ import annotations

import pytest

from enrichertest import (Rig, check_dlq, check_output, create_topics, double,  # noqa: F401
                          enrichers, item_event)

WH = "webhook_ahead"


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811
    r = Rig(broker, double, tmp_path, raw_partitions=1, events=("ITEM_UPDATE",))
    yield r
    r.close()


@pytest.mark.parametrize("ahead", ["true", "false"])
@pytest.mark.timeout_s(120)
def test_repeat_in_the_batch_taken_ahead_is_dropped(rig, double, enrichers, ahead):
    comps = double.data.component_ids()
    x, y, z = (item_event("ITEM_UPDATE", comps[i], webhook_id=WH) for i in range(3))
    # x again right behind x: taken ahead while x's transaction is still open
    order = [x, x, y, x, z, z]
    rig.produce(order)
    e = enrichers(rig.env(rig.txn("a"), DURO_BATCH_MAX=1, DURO_PULL_AHEAD=ahead))
    ids = [p["id"] for p in (x, y, z)]
    rig.wait_for_ids(ids, timeout=60, procs=[e])
    rig.wait_drained(timeout=30, procs=[e])
    by = rig.assert_exactly_once(ids)
    for p in (x, y, z):
        check_output(rig, by[p["id"]][0], p, status="found")
    m = e.metrics()
    assert m.value("duro_enricher_deduplicated_total") == 3
    assert m.value("duro_enricher_transactions_aborted_total") == 0
    ahead_n = m.value("duro_enricher_batches_pulled_ahead_total")
    if ahead == "true":
        assert ahead_n >= 1, "no batch was taken ahead"
    else:
        assert ahead_n == 0
    print(f"batches pulled ahead: {ahead_n:.0f}")


@pytest.mark.timeout_s(150)
def test_abort_redoes_the_batch_taken_ahead(broker, double, enrichers, tmp_path):  # noqa: F811
    """A record that a topic rejects for good aborts its transaction while the next batch
    is already taken and pulled. Each of the two partitions holds an accepted record and
    then a rejected one, so whichever partition the consumer hands over first, the batch
    taken ahead of the first rejected record comes from the other partition: the redo
    must rewind that partition too, or its record is lost."""
    rig = Rig(broker, double, tmp_path, raw_partitions=2, events=("ITEM_UPDATE",))
    try:
        small = rig.topic("ITEM_CREATE")
        create_topics(rig.bootstrap, [small], config={"max.message.bytes": 200})
        rig.events.append("ITEM_CREATE")
        comps = double.data.component_ids()
        events = []
        for part in (0, 1):
            for i, name in enumerate(("ITEM_UPDATE", "ITEM_CREATE")):
                p = item_event(name, comps[2 * part + i], webhook_id=WH)
                rig.producer.produce(p, partition=part)
                events.append(p)
        rig.producer.flush()
        e = enrichers(rig.env(rig.txn("a"), DURO_BATCH_MAX=1))
        ids = [p["id"] for p in events]
        rig.wait_for_ids(ids, timeout=90, procs=[e])
        rig.wait_drained(timeout=30, procs=[e])
        by = rig.assert_exactly_once(ids)
        for p in events:
            rec = by[p["id"]][0]
            if p["event"] == "ITEM_CREATE":
                check_dlq(rig, rec, error_class="produce-rejected")
            else:
                check_output(rig, rec, p, status="found")
        m = e.metrics()
        assert m.value("duro_enricher_dlq_total", **{"class": "produce-rejected"}) == 2
        assert m.value("duro_enricher_transactions_aborted_total") >= 2
        assert m.value("duro_enricher_batches_pulled_ahead_total") >= 1
    finally:
        rig.close()
