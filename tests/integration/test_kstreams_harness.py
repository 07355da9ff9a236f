"""Self-test of the Kafka Streams oracle (tests/kstreams, kstreamstest.py): a real
Kafka Streams application reading a compacted state topic with builder.table() must
dump exactly what the topic's committed records say, which is also what
kstreamstest.reduce_state() makes of a read_committed read of the topic.

The topic is written the way the state topics are: records in the duro.state.v1
format, keyed by resource id, in Kafka transactions, partitioned like the Java producer
(murmur2_random). It has updates of one key, a tombstone after a value, a key
tombstoned and written again, a tombstone of a key never written, a non-ASCII key,
aborted transactions in the middle and at the tail, and a partition holding nothing
but aborted records."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer

import kafkatest
import kstreamstest
from kafkatest import Record

PARTITIONS = 4
KIND = "item"


@pytest.fixture(scope="session")
def kstreams_app():
    """The application, built once per session (a first build downloads from Maven
    Central: bounded by build()'s own limit, outside the tests' time limits)."""
    return kstreamstest.build(timeout=600)  # within ctest's 900 s for this file


def state_value(rid: str, rev: int, seq: int, *, aborted: bool = False) -> str:
    doc = {"id": rid, "cpn": f"100-{rid[-5:]}", "name": f"part {rid}", "revision": rev,
           "note": "aborted" if aborted else "committed"}
    return json.dumps({
        "schema": "duro.state.v1", "kind": KIND, "id": rid, "document": doc,
        "as_of": {"event_id": f"evt_{seq}", "event_type": "ITEM_UPDATE",
                  "created_at": "2024-12-20T10:30:00Z",
                  "source": {"topic": "duro.webhooks.raw", "partition": 0, "offset": seq}},
        "enriched_at": "2024-12-20T10:30:00.180Z"}, ensure_ascii=False)


def keys_by_partition() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for i in range(1, 200):
        k = f"comp_{i:06d}"
        out[kstreamstest.java_partition(k, PARTITIONS)].append(k)
    assert all(len(v) >= 4 for v in out.values()), out
    return out


@pytest.mark.timeout_s(240)
def test_ktable_dump_equals_committed_state(broker, kstreams_app):
    by_p = keys_by_partition()
    a0, a1, a2, e0 = by_p[0][:4]
    b0, b1, b2, b3 = by_p[1][:4]
    c0, c1, c2 = by_p[2][:3]
    d0 = by_p[3][0]  # partition 3: only ever written in aborted transactions
    uni = "comp_ünïcode"
    assert kstreamstest.java_partition(uni, PARTITIONS) != 3

    seq = iter(range(1, 1000))
    committed = [
        # T1: first values
        [(k, state_value(k, 1, next(seq))) for k in (a0, a1, a2, b0, b1, b2, c0, c1, c2, uni)],
        # T2: one key updated twice, a tombstone after a value, a tombstone of a key
        # written again later, a tombstone of a key never written
        [(a0, state_value(a0, 2, next(seq))), (a0, state_value(a0, 3, next(seq))),
         (b0, None), (c0, None), (a1, state_value(a1, 2, next(seq))), (e0, None)],
        None,  # T3 (aborted), below
        # T4: c0 back after its tombstone; b1 deleted; more updates
        [(c0, state_value(c0, 4, next(seq))), (b1, None), (a2, state_value(a2, 2, next(seq))),
         (uni, state_value(uni, 2, next(seq)))],
        None,  # T5 (aborted, at the tail), below
    ]
    aborted = {
        2: [(a1, state_value(a1, 99, next(seq), aborted=True)),
            (b0, state_value(b0, 99, next(seq), aborted=True)),  # must stay deleted
            (d0, state_value(d0, 99, next(seq), aborted=True)),
            (b3, state_value(b3, 99, next(seq), aborted=True))],
        4: [(c0, None),  # must stay
            (a0, state_value(a0, 99, next(seq), aborted=True)),
            (d0, state_value(d0, 98, next(seq), aborted=True))],
    }

    topic = kafkatest.unique_name("duro.state.item.kstest")
    kafkatest.create_topic(broker.bootstrap, topic, partitions=PARTITIONS,
                           config={"cleanup.policy": "compact"})
    p = Producer({"bootstrap.servers": broker.bootstrap,
                  "transactional.id": "kstreams-harness-" + uuid.uuid4().hex,
                  "partitioner": "murmur2_random",  # the Java producer's default
                  "linger.ms": 0})
    p.init_transactions(60)
    expected: dict = {}
    for i, txn in enumerate(committed):
        p.begin_transaction()
        for k, v in (txn if txn is not None else aborted[i]):
            p.produce(topic, key=k.encode("utf-8"),
                      value=None if v is None else v.encode("utf-8"))
        if txn is None:
            p.flush(60)  # the aborted records really are in the log
            p.abort_transaction(60)
            continue
        p.commit_transaction(60)
        for k, v in txn:
            if v is None:
                expected.pop(k, None)
            else:
                expected[k] = json.loads(v)

    # what the expectation says, spelled out
    assert sorted(expected) == sorted([a0, a1, a2, b2, c0, c1, c2, uni])
    assert expected[a0]["document"]["revision"] == 3
    assert expected[c0]["document"]["revision"] == 4
    assert expected[uni]["document"]["revision"] == 2

    records = kafkatest.read_all(broker.bootstrap, topic, isolation="read_committed", timeout=30)
    # partitioned as a Java producer would; partition 3 has aborted records only
    for r in records:
        assert r.partition == kstreamstest.java_partition(r.key, PARTITIONS), r
    assert {r.partition for r in records} == {0, 1, 2}
    assert kafkatest.end_offsets(broker.bootstrap, topic)[3] > 0
    assert len(records) == sum(len(t) for t in committed if t is not None)
    assert kstreamstest.reduce_state(records) == expected

    dump = kstreamstest.dump_table(broker.bootstrap, topic, timeout=120)
    assert dump == expected
    assert all(v["document"]["note"] == "committed" for v in dump.values())
    for gone in (b0, b1, b3, d0, e0):
        assert gone not in dump


@pytest.mark.timeout_s(180)
def test_ktable_dump_empty_and_missing_topic(broker, kstreams_app):
    empty = kafkatest.unique_name("duro.state.empty.kstest")
    kafkatest.create_topic(broker.bootstrap, empty, partitions=3,
                           config={"cleanup.policy": "compact"})
    assert kstreamstest.dump_table(broker.bootstrap, empty, timeout=60) == {}

    missing = kafkatest.unique_name("duro.state.missing.kstest")
    with pytest.raises(kstreamstest.KStreamsError) as ei:
        kstreamstest.dump_table(broker.bootstrap, missing, timeout=30)
    assert ei.value.returncode == 4
    assert missing in ei.value.stderr and "UnknownTopicOrPartition" in ei.value.stderr


def test_reduce_state_rules():
    def rec(p, o, k, v):
        return Record(topic="t", partition=p, offset=o, key=k,
                      value=None if v is None else json.dumps(v).encode())

    rs = [rec(1, 0, b"x", {"n": 1}), rec(0, 0, b"y", {"n": 1}), rec(1, 1, b"x", None),
          rec(0, 1, None, {"n": 9}), rec(0, 2, "é".encode(), {"n": 2}), rec(1, 2, b"z", None),
          rec(0, 3, b"y", {"n": 3})]
    assert kstreamstest.reduce_state(rs) == {"y": {"n": 3}, "é": {"n": 2}}
    # out of order input is ordered by (partition, offset) first
    assert kstreamstest.reduce_state(list(reversed(rs))) == {"y": {"n": 3}, "é": {"n": 2}}
    with pytest.raises(ValueError, match="two partitions|partitions 0 and 1"):
        kstreamstest.reduce_state([rec(0, 0, b"k", {}), rec(1, 0, b"k", {})])
