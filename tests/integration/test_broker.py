"""The test broker is a real Kafka: transactions, isolation levels, restart."""

import shutil
import socket
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Producer

import kafkatest
from kafkatest import (Broker, create_topic, delete_topic, end_offsets, read_all, read_at,
                       topic_info, unique_name)


@pytest.fixture(scope="module")
def kbroker(tmp_path_factory):
    b = kafkatest.broker_from_env_or_start(tmp_path_factory.mktemp("kafka"))
    yield b
    b.close()


def _txn_producer(bootstrap):
    p = Producer({"bootstrap.servers": bootstrap,
                  "transactional.id": "kafkatest-" + uuid.uuid4().hex,
                  "enable.idempotence": True,
                  "acks": "all"})
    p.init_transactions(30)
    return p


def _produce_txn(bootstrap, topic, values, commit, partition=0):
    p = _txn_producer(bootstrap)
    p.begin_transaction()
    for i, v in enumerate(values):
        p.produce(topic, key=b"k%d" % i, value=v, partition=partition,
                  headers=[("h", v), ("n", str(i).encode())])
    p.flush(30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)


def test_create_topic_and_info(kbroker):
    t = unique_name("info")
    create_topic(kbroker.bootstrap, t, partitions=3, config={"retention.ms": "-1"})
    assert topic_info(kbroker.bootstrap, t) == {"partitions": 3, "replication": 1}
    assert end_offsets(kbroker.bootstrap, t) == {0: 0, 1: 0, 2: 0}
    assert read_all(kbroker.bootstrap, t, timeout=5) == []
    create_topic(kbroker.bootstrap, t, partitions=3)  # existing topic is accepted
    delete_topic(kbroker.bootstrap, t)
    with pytest.raises(LookupError):
        topic_info(kbroker.bootstrap, t)


def test_no_auto_create(kbroker):
    t = unique_name("nocreate")
    p = Producer({"bootstrap.servers": kbroker.bootstrap, "message.timeout.ms": 3000})
    errors = []
    p.produce(t, b"x", on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert errors and errors[0] is not None
    with pytest.raises(LookupError):
        topic_info(kbroker.bootstrap, t)


def test_transactions_and_isolation(kbroker):
    t = unique_name("txn")
    create_topic(kbroker.bootstrap, t, partitions=2)
    _produce_txn(kbroker.bootstrap, t, [b"c1", b"c2"], commit=True)
    _produce_txn(kbroker.bootstrap, t, [b"a1", b"a2", b"a3"], commit=False)
    _produce_txn(kbroker.bootstrap, t, [b"c3"], commit=True, partition=1)

    committed = read_all(kbroker.bootstrap, t, isolation="read_committed")
    assert [(r.partition, r.value) for r in committed] == [(0, b"c1"), (0, b"c2"), (1, b"c3")]
    r = committed[1]
    assert r.key == b"k1" and r.header("h") == b"c2" and r.header("n") == b"1"
    assert r.header("missing") is None and r.timestamp_ms > 0

    everything = read_all(kbroker.bootstrap, t, isolation="read_uncommitted")
    assert [r.value for r in everything] == [b"c1", b"c2", b"a1", b"a2", b"a3", b"c3"]

    # offsets include the transaction markers: 2 + marker + 3 + marker; 1 + marker
    assert end_offsets(kbroker.bootstrap, t) == {0: 7, 1: 2}
    assert read_at(kbroker.bootstrap, t, 0, 1).value == b"c2"
    # Markers are written asynchronously after EndTxn, so the aborted records' offsets
    # are read back rather than assumed.
    a2 = next(r for r in everything if r.value == b"a2")
    assert read_at(kbroker.bootstrap, t, 0, a2.offset, isolation="read_uncommitted").value == b"a2"
    with pytest.raises(LookupError):
        read_at(kbroker.bootstrap, t, 0, a2.offset)  # aborted: invisible to read_committed


def test_read_committed_stops_at_open_transaction(kbroker):
    t = unique_name("open")
    create_topic(kbroker.bootstrap, t)
    _produce_txn(kbroker.bootstrap, t, [b"c1"], commit=True)
    p = _txn_producer(kbroker.bootstrap)
    p.begin_transaction()
    p.produce(t, b"pending", partition=0)
    p.flush(30)
    try:
        assert [r.value for r in read_all(kbroker.bootstrap, t, timeout=10)] == [b"c1"]
        assert [r.value for r in read_all(kbroker.bootstrap, t, "read_uncommitted")] == [b"c1", b"pending"]
    finally:
        p.commit_transaction(30)
    assert [r.value for r in read_all(kbroker.bootstrap, t)] == [b"c1", b"pending"]


def test_system_librdkafka_kcat(kbroker):
    """kcat uses the system librdkafka (what the bridge links), incl. transactions."""
    if shutil.which("kcat") is None:
        pytest.skip("kcat not installed")
    t = unique_name("kcat")
    create_topic(kbroker.bootstrap, t)
    subprocess.run(["kcat", "-P", "-b", kbroker.bootstrap, "-t", t, "-p", "0",
                    "-X", "transactional.id=kcat-" + uuid.uuid4().hex],
                   input=b"one\ntwo\n", check=True, timeout=60)
    out = subprocess.run(["kcat", "-C", "-b", kbroker.bootstrap, "-t", t, "-e", "-q",
                          "-X", "isolation.level=read_committed", "-f", "%s\n"],
                         capture_output=True, check=True, timeout=60).stdout
    assert out.split() == [b"one", b"two"]
    assert [r.value for r in read_all(kbroker.bootstrap, t)] == [b"one", b"two"]


def test_restart_keeps_data_and_address(kbroker):
    if not kbroker.work_dir:
        pytest.skip("external broker without DURO_TEST_KAFKA_WORK")
    t = unique_name("restart")
    create_topic(kbroker.bootstrap, t)
    _produce_txn(kbroker.bootstrap, t, [b"before"], commit=True)
    before = kbroker.bootstrap

    kbroker.restart()
    assert kbroker.bootstrap == before
    assert kbroker.is_running()
    assert [r.value for r in read_all(kbroker.bootstrap, t)] == [b"before"]

    # after a hard kill too (log recovery), still the same address
    kbroker.kill()
    assert not kbroker.is_running()
    kbroker.restart()
    assert kbroker.bootstrap == before
    _produce_txn(kbroker.bootstrap, t, [b"after"], commit=True)
    assert [r.value for r in read_all(kbroker.bootstrap, t)] == [b"before", b"after"]


def test_port_in_use_fails_fast(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        b = Broker(str(tmp_path / "busy"), port=port)
        t0 = time.monotonic()
        with pytest.raises(kafkatest.BrokerError, match=f"127.0.0.1:{port} is already in use"):
            b.start()
        assert time.monotonic() - t0 < 10
        assert not b.is_running()


def test_stale_data_and_stop_idempotent(tmp_path):
    """A second, short-lived broker: a stale data dir does not break start;
    stop twice; restart after stop."""
    work = tmp_path / "k2"
    (work / "data" / "__cluster_metadata-0").mkdir(parents=True)
    (work / "data" / "meta.properties").write_text("cluster.id=stale\nnode.id=7\nversion=1\n")
    (work / "data" / "__cluster_metadata-0" / "00000000000000000000.log").write_bytes(b"\xff" * 4096)
    b = Broker(str(work), port=0)
    b.start()
    try:
        assert b.is_running()
        addr = b.bootstrap
        b.stop()
        assert not b.is_running()
        b.stop()
        b.restart()
        assert b.bootstrap == addr and b.is_running()
    finally:
        b.close()
    assert not b.is_running()
