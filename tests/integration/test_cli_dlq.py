"""`duro-enricher dlq list|redrive` against the real broker: list shows what is in the
DLQ and why (filters by class, event id and time); redrive copies the chosen records back
to the raw topic in ONE transaction, each with a new duro-redrive-id, so the enricher
processes each once more: one redrive, exactly one more output; the same redrive run
twice, two more (each with its own redrive id), never more. The Kafka settings work as
flags too (--bootstrap-servers, --raw-topic, --dlq-topic, --group, -X), over the
environment."""

from __future__ import annotations

import json
import socket

import pytest

from enrichertest import (LsoProbe, RawProducer, Rig, double, enrichers,  # noqa: F401
                          item_event, run_enricher_once)
from proctest import wait_until

WH = "webhook_cli"


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811
    r = Rig(broker, double, tmp_path, raw_partitions=2, events=("ITEM_UPDATE",),
            prefix="cli")
    yield r
    r.close()


def dlq(rig, *args, timeout=60):
    env = rig.env(rig.txn("cli"))
    rc, out, err = run_enricher_once(env, ("dlq", *args), timeout=timeout)
    return rc, out, err


def outputs_of(rig, event_id):
    return [r for r in rig.final_records()
            if r.topic != rig.dlq and json.loads(r.value)["idempotency_key"] == event_id]


@pytest.mark.timeout_s(180)
def test_list_and_redrive_exactly_once_per_redrive(rig, double, enrichers):  # noqa: F811
    comps = double.data.component_ids()
    poison = comps[5]
    double.poison_ids = {poison}
    bad = item_event("ITEM_UPDATE", poison, webhook_id=WH)
    good = [item_event("ITEM_UPDATE", c, webhook_id=WH) for c in comps[20:26]]
    invalid = b"not json at all"
    rig.produce([bad] + good)
    rig.produce([invalid])
    e = enrichers(rig.env(rig.txn("a"), DURO_GRAPHQL_MAX_ATTEMPTS=2))
    rig.wait_for_ids([bad["id"]] + [g["id"] for g in good], timeout=90, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])

    rc, out, err = dlq(rig, "list", "--json")
    assert rc == 0, err
    listed = json.loads(out)
    classes = sorted(r["error_class"] for r in listed)
    assert classes == ["invalid-payload", "resource-error"], listed
    by_class = {r["error_class"]: r for r in listed}
    assert by_class["resource-error"]["event_id"] == bad["id"]
    assert by_class["resource-error"]["attempts"] == "2"
    assert by_class["invalid-payload"]["value"] == invalid.decode()

    rc, out, err = dlq(rig, "list", "--class", "invalid-payload", "--json")
    assert rc == 0, err
    assert [r["error_class"] for r in json.loads(out)] == ["invalid-payload"]
    rc, out, err = dlq(rig, "list", "--since", "1h")
    assert rc == 0, err
    assert bad["id"] in out and "resource-error" in out and "invalid-payload" in out
    rc, out, err = dlq(rig, "list", "--since", "2999-01-01T00:00:00Z", "--json")
    assert rc == 0 and json.loads(out) == [], out

    # The API is fixed; redrive the blamed event: exactly one more output.
    double.poison_ids = set()
    assert outputs_of(rig, bad["id"]) == []
    rc, out, err = dlq(rig, "redrive", "--event-id", bad["id"], "--json")
    assert rc == 0, err
    first = json.loads(out)
    assert len(first) == 1 and len(first[0]["redrive_id"]) == 32
    rig.wait_drained(timeout=60, procs=[e])
    outs = outputs_of(rig, bad["id"])
    assert len(outs) == 1, outs
    assert json.loads(outs[0].value)["resource"]["status"] == "found"

    # The same redrive again: one more, with its own redrive id; never more.
    rc, out, err = dlq(rig, "redrive", "--event-id", bad["id"], "--json")
    assert rc == 0, err
    second = json.loads(out)
    assert second[0]["redrive_id"] != first[0]["redrive_id"]
    rig.wait_drained(timeout=60, procs=[e])
    assert len(outputs_of(rig, bad["id"])) == 2
    raw = [r for r in rig.raw_records() if r.header("duro-redrive-id")]
    assert sorted(r.header("duro-redrive-id").decode() for r in raw) == \
        sorted([first[0]["redrive_id"], second[0]["redrive_id"]])
    for r in raw:  # redriven to the raw topic without the DLQ's own headers
        assert r.header("error-class") is None and r.header("source-offset") is None
        assert r.header("duro-event-id") == bad["id"].encode()
        # keyed and stamped by the event table, as the bridge does, and marked
        assert r.key == poison.encode()
        assert r.header("duro-resource-kind") == b"item"
        assert r.header("duro-origin") == b"redrive"
    # the output of a redriven record says where it came from
    assert all(o.header("duro-origin") == b"redrive" for o in outputs_of(rig, bad["id"]))
    # The good events were untouched throughout.
    for g in good:
        assert len(outputs_of(rig, g["id"])) == 1

    rc, out, err = dlq(rig, "redrive", "--class", "invalid-payload", "--dry-run")
    assert rc == 0, err
    assert "would be redriven" in err
    assert len([r for r in rig.raw_records() if r.header("duro-redrive-id")]) == 2


def test_usage_errors(rig):
    rc, out, err = dlq(rig, "list", "--class", "nonsense")
    assert rc == 2 and "unknown class" in err
    rc, out, err = dlq(rig, "list", "--since", "yesterday-ish")
    assert rc == 2 and "--since" in err
    rc, out, err = dlq(rig, "frobnicate")
    assert rc == 2 and "unknown command" in err


@pytest.fixture
def dead_broker():
    """A loopback address where no broker answers: a socket bound there that never
    listens (connections are refused), held for the whole test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield "127.0.0.1:%d" % s.getsockname()[1]


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("duro-enricher dlq: "), err
    return lines[0]


def put_dead_letters(rig, payloads, error_class="resource-error"):
    """Writes DLQ records as the enricher does: the raw record's headers plus the
    DLQ's own."""
    p = RawProducer(rig.bootstrap, rig.dlq)
    for n, payload in enumerate(payloads):
        p.produce(payload, headers={"error-class": error_class, "error-message": "test",
                                    "attempts": "1", "source-topic": rig.raw,
                                    "source-partition": "0", "source-offset": str(n)})
    p.flush()


@pytest.mark.timeout_s(120)
def test_kafka_settings_as_flags(rig, double, dead_broker):  # noqa: F811
    events = [item_event("ITEM_UPDATE", c, webhook_id=WH)
              for c in double.data.component_ids()[:2]]
    put_dead_letters(rig, events)
    # Only flags name the broker and the topics: the environment points elsewhere.
    env = rig.env(rig.txn("flags"), KAFKA_BOOTSTRAP_SERVERS=dead_broker,
                  DURO_RAW_TOPIC=None, DURO_DLQ_TOPIC=None, DURO_ENRICHER_GROUP=None)
    rc, out, err = run_enricher_once(
        env, ("dlq", "list", "--json", "--bootstrap-servers", rig.bootstrap,
              f"--dlq-topic={rig.dlq}"), timeout=60)
    assert rc == 0, err
    assert sorted(r["event_id"] for r in json.loads(out)) == sorted(e["id"] for e in events)

    rc, out, err = run_enricher_once(
        env, ("dlq", "redrive", "--event-id", events[0]["id"], "--json",
              "--bootstrap-servers", rig.bootstrap, "--dlq-topic", rig.dlq,
              "--raw-topic", rig.raw, "--group", rig.group), timeout=60)
    assert rc == 0, err
    redriven = json.loads(out)
    assert [r["event_id"] for r in redriven] == [events[0]["id"]]
    raw = [r for r in rig.raw_records() if r.header("duro-redrive-id")]
    assert [r.header("duro-redrive-id").decode() for r in raw] == \
        [redriven[0]["redrive_id"]]
    assert raw[0].header("duro-event-id") == events[0]["id"].encode()
    assert raw[0].header("error-class") is None

    # -X passes a librdkafka property: here the broker itself.
    rc, out, err = run_enricher_once(
        env, ("dlq", "list", "--json", "-X", f"bootstrap.servers={rig.bootstrap}",
              "--dlq-topic", rig.dlq), timeout=60)
    assert rc == 0, err
    assert len(json.loads(out)) == 2


def test_kafka_flags_checked_and_unknown_refused(rig):
    rc, out, err = dlq(rig, "list", "--frobnicate")
    assert rc == 2 and "--frobnicate: unknown option" in one_line_error(err)
    rc, out, err = dlq(rig, "list", "-X", "isolation.level=read_uncommitted")
    line = one_line_error(err)
    assert rc == 2 and "isolation.level" in line and "refused" in line
    rc, out, err = dlq(rig, "list", "--bootstrap-servers")
    assert rc == 2 and "--bootstrap-servers: expects a value" in one_line_error(err)
    rc, out, err = dlq(rig, "redrive", "--limit", "0")
    assert rc == 2 and "--limit 0" in one_line_error(err)
    assert [r for r in rig.raw_records() if r.header("duro-redrive-id")] == []

    rc, out, err = dlq(rig, "--help")
    assert rc == 0, err
    for flag, env in (("--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS"),
                      ("--raw-topic", "DURO_RAW_TOPIC"), ("--dlq-topic", "DURO_DLQ_TOPIC"),
                      ("--group", "DURO_ENRICHER_GROUP"), ("-X", "DURO_RDKAFKA_")):
        assert [ln for ln in out.splitlines()
                if ln.split()[:1] == [flag] and env in ln], (flag, out)


def _dlq_records(rig, n, *, big_at=None, value=None, event_id_header=None):
    """Writes n DLQ records as the enricher writes them (the raw headers plus the DLQ's)
    straight to the DLQ topic; returns their event ids."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": rig.bootstrap, "enable.idempotence": True})
    ids = []
    for i in range(n):
        ev = item_event("ITEM_UPDATE", f"comp_dlq_{i:04d}", webhook_id=WH)
        body = value if value is not None else json.dumps(ev).encode()
        if big_at is not None and i == big_at:
            body = json.dumps(dict(ev, pad="x" * 3000)).encode()
        eid = event_id_header if event_id_header is not None else ev["id"].encode()
        headers = [("duro-event", b"ITEM_UPDATE"), ("duro-event-id", eid),
                   ("content-type", b"application/json"),
                   ("error-class", b"resource-error"), ("error-message", b"boom"),
                   ("attempts", b"5"), ("source-topic", rig.raw.encode()),
                   ("source-partition", b"0"), ("source-offset", str(i).encode())]
        p.produce(rig.dlq, key=f"comp_dlq_{i:04d}".encode(), value=body, headers=headers)
        ids.append(ev["id"])
    assert p.flush(30) == 0
    return ids


def _raw_open_transactions(rig):
    probe = LsoProbe(rig.bootstrap, [rig.raw])
    try:
        return probe.open_partitions()
    finally:
        probe.close()


@pytest.mark.timeout_s(120)
def test_redrive_larger_than_the_producer_queue_waits_for_room(rig):
    """60 records through a producer queue of 10: the redrive waits for room instead of
    failing on QUEUE_FULL (which left its transaction open on the raw topic)."""
    ids = _dlq_records(rig, 60)
    rc, out, err = dlq(rig, "redrive", "--json",
                       "-X", "queue.buffering.max.messages=10")
    assert rc == 0, err
    assert len(json.loads(out)) == 60
    redriven = [r for r in rig.raw_records() if r.header("duro-redrive-id")]
    assert sorted(r.header("duro-event-id").decode() for r in redriven) == sorted(ids)
    assert not _raw_open_transactions(rig)


@pytest.mark.timeout_s(120)
def test_failed_redrive_aborts_its_transaction(rig):
    """A record the producer refuses at once (larger than its message.max.bytes) comes
    after 500 others were sent in the transaction (linger.ms=0): the redrive fails, says nothing was
    redriven, and aborts, so the raw topic's read_committed readers are not held back
    until transaction.timeout.ms (60 s by default)."""
    _dlq_records(rig, 600, big_at=500)
    rc, out, err = dlq(rig, "redrive", "-X", "message.max.bytes=2000", "-X", "linger.ms=0")
    assert rc != 0
    assert "redrive failed, nothing was redriven" in err, err
    wait_until(lambda: not _raw_open_transactions(rig), 15,
               "no transaction left open on the raw topic")
    assert [r for r in rig.raw_records() if r.header("duro-redrive-id")] == []


@pytest.mark.timeout_s(120)
def test_list_json_keeps_records_that_are_not_utf8(rig):
    """--json shows every record: a value that is not UTF-8 as value_base64 (byte for
    byte), a header that is not as text with U+FFFD."""
    import base64
    binary = b"\xff\xfe\x00 not text \xc3"
    _dlq_records(rig, 1, value=binary, event_id_header=b"evt_\xffbad")
    _dlq_records(rig, 1)
    rc, out, err = dlq(rig, "list", "--json")
    assert rc == 0, err
    listed = json.loads(out)
    assert len(listed) == 2, listed
    odd = next(r for r in listed if "value_base64" in r)
    assert base64.b64decode(odd["value_base64"]) == binary
    assert "value" not in odd
    assert odd["event_id"] == "evt_\ufffdbad"
    plain = next(r for r in listed if "value" in r)
    assert json.loads(plain["value"])["event"] == "ITEM_UPDATE"
