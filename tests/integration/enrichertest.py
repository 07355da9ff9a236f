"""Helpers and fixtures for the duro-enricher integration tests.

The enricher runs as a real process (``build/duro-enricher`` or ``$DURO_ENRICHER_BIN``)
against the session's real broker (conftest ``broker``) and an in-process
:class:`duro_double.DuroDouble` on an ephemeral port. Each test gets a :class:`Rig`: its
own raw, DLQ and output topics (``<prefix>.raw``, ``<prefix>.dlq``,
``<prefix>.events.{event}``), consumer group and transactional ids, so tests never see
each other's records.

Outputs and DLQ records are read only with ``read_committed`` consumers: a
:class:`Tail` follows every output topic and the DLQ for the bounded polling waits
("until these event ids have an output"), and the final exactly-once counts are taken
with ``kafkatest.read_all`` after :meth:`Rig.wait_drained` saw the group's committed
offsets reach the raw topic's end.

Every wait polls a condition up to a deadline; every process started is killed at
teardown (``enrichers`` fixture), and the whole output of each enricher is checked for
the API keys it was given.

Import the fixtures into a test module with
``from enrichertest import background, double, enrichers, rig, senders  # noqa: F401``
(``rig`` may be redefined in a module that needs other topics, e.g. a 1-partition raw
topic). ``DURO_ENRICHER_BIN`` overrides the binary (default ``build/duro-enricher``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

import bridgetest
import kafkatest
from bridgetest import body_of, java_partition, now_ms
from proctest import Program, ProgramFactory, WaitTimeout, clean_env, run_once, wait_until

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from duro_double import DuroData, DuroDouble, WebhookSender, co_event, item_event  # noqa: E402

REPO_ROOT = TESTS_DIR.parent
ENRICHED_SCHEMA_PATH = REPO_ROOT / "schemas" / "enriched-event.schema.json"
WEBHOOK_SCHEMA_PATH = REPO_ROOT / "schemas" / "duro-webhook.schema.json"
QUERIES_DIR = REPO_ROOT / "schemas" / "graphql"

ITEM_EVENTS = ("ITEM_CREATE", "ITEM_UPDATE", "ITEM_DELETE")
CO_EVENTS = ("CO_OPEN", "CO_UPDATE", "CO_DELETE", "CO_STAGE_TRANSITION",
             "CO_STAGE_REVIEWER_DECISION", "CO_RESOLUTION")
KNOWN_EVENTS = ITEM_EVENTS + CO_EVENTS
DLQ_CLASSES = ("invalid-payload", "no-topic", "produce-rejected", "resource-error")

SESSION_TIMEOUT_MS = 3000
OUTPUT_PARTITIONS = 3


def enricher_bin() -> str:
    return os.environ.get("DURO_ENRICHER_BIN") or str(REPO_ROOT / "build" / "duro-enricher")


def topic_for(template: str, event: str) -> str:
    """the enricher's contract: the event name lower-cased, anything outside [a-z0-9._-] -> '_'."""
    name = re.sub(r"[^a-z0-9._-]", "_", event.lower())
    return template.replace("{event}", name)


# ---------------------------------------------------------------- topics

def create_topics(bootstrap: str, names, partitions: int = OUTPUT_PARTITIONS,
                  config: dict | None = None, timeout: float = 60.0) -> None:
    """kafkatest.create_topics with the output topics' partition count by default."""
    kafkatest.create_topics(bootstrap, names, partitions=partitions, config=config,
                            timeout=timeout)


STATE_KINDS = ("item", "change_order")


def create_state_topics(bootstrap: str, state_template: str, progress: str,
                        partitions: int = OUTPUT_PARTITIONS) -> None:
    """The compacted topics the enricher checks at start: a state topic per kind
    (co-partitioned with the outputs) and the progress topic (one partition)."""
    create_topics(bootstrap, [state_template.replace("{kind}", k) for k in STATE_KINDS],
                  partitions=partitions, config={"cleanup.policy": "compact"})
    create_topics(bootstrap, [progress], partitions=1,
                  config={"cleanup.policy": "compact", "segment.ms": "3600000"})


# ---------------------------------------------------------------- raw records

def raw_key(payload: dict | None, body: bytes) -> bytes:
    """The bridge's raw key (the bridge's contract)."""
    if isinstance(payload, dict):
        ev = payload.get("event")
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        iid, cid = data.get("item_id"), data.get("change_order_id")
        iid = iid if isinstance(iid, str) and iid else None
        cid = cid if isinstance(cid, str) and cid else None
        if isinstance(ev, str) and ev.startswith("ITEM_") and iid:
            return iid.encode()
        if isinstance(ev, str) and ev.startswith("CO_") and cid:
            return cid.encode()
        if iid or cid:
            return (iid or cid).encode()
        if isinstance(payload.get("id"), str) and payload["id"]:
            return payload["id"].encode()
    return ("sha256:" + hashlib.sha256(body).hexdigest()).encode()


def rfc3339_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class RawProducer:
    """Writes raw records as duro-bridge would (key, value = body, headers), with
    Java's murmur2 partitioner. ``timestamp_ms`` sets the record timestamp (stream
    time) explicitly."""

    def __init__(self, bootstrap: str, topic: str, transactional_id: str | None = None):
        self.topic = topic
        conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True,
                "acks": "all", "partitioner": "murmur2_random", "linger.ms": 5}
        if transactional_id:
            conf["transactional.id"] = transactional_id
        self.p = Producer(conf)
        if transactional_id:  # the caller then brackets produce() in self.p's transactions
            self.p.init_transactions(30)
        self.errors: list = []
        self.delivered: list[tuple[int, int]] = []

    def produce(self, payload, *, timestamp_ms: int | None = None, headers: dict | None = None,
                invalid: str | None = None, partition: int | None = None) -> bytes:
        body = body_of(payload)
        parsed = payload if isinstance(payload, dict) else None
        if parsed is None:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        ts = timestamp_ms if timestamp_ms is not None else now_ms()
        h = [("content-type", b"application/json"), ("received-at", rfc3339_ms(ts).encode()),
             ("duro-signature", b"sha256=" + hashlib.sha256(body).hexdigest().encode())]
        if isinstance(parsed, dict):
            for name, k in (("duro-event", "event"), ("duro-event-id", "id"),
                            ("duro-webhook-id", "webhook_id")):
                if isinstance(parsed.get(k), str):
                    h.append((name, parsed[k].encode()))
        if invalid:
            h.append(("duro-invalid", invalid.encode()))
        for k, v in (headers or {}).items():
            h.append((k, v.encode() if isinstance(v, str) else v))

        def dr(err, msg):
            if err is not None:
                self.errors.append(err)
            else:
                self.delivered.append((msg.partition(), msg.offset()))

        key = raw_key(parsed, body)
        while True:
            try:
                kw = {} if partition is None else {"partition": partition}
                self.p.produce(self.topic, value=body, key=key, headers=h, timestamp=ts,
                               on_delivery=dr, **kw)
                break
            except BufferError:
                self.p.poll(0.1)
        self.p.poll(0)
        return key

    def flush(self, timeout: float = 30.0) -> None:
        left = self.p.flush(timeout)
        assert left == 0, f"{left} raw record(s) not delivered within {timeout}s"
        assert not self.errors, f"raw produce errors: {self.errors}"


# ---------------------------------------------------------------- reading outputs

def record_event_id(rec: kafkatest.Record, dlq_topic: str) -> str:
    """The Duro event id a record stands for: an output's idempotency_key; for a DLQ
    record the raw duro-event-id header, else the body's id, else sha256:<hex>."""
    if rec.topic != dlq_topic:
        try:
            v = json.loads(rec.value)
            if isinstance(v, dict) and isinstance(v.get("idempotency_key"), str):
                return v["idempotency_key"]
        except ValueError:
            pass
    return raw_event_id(rec)


def raw_event_id(rec: kafkatest.Record) -> str:
    """The event id of a raw (or DLQ) record: the duro-event-id header, else the body's
    string id, else sha256:<hex of the body>."""
    h = rec.header("duro-event-id")
    if h:
        return h.decode()
    try:
        v = json.loads(rec.value or b"")
        if isinstance(v, dict) and isinstance(v.get("id"), str) and v["id"]:
            return v["id"]
    except ValueError:
        pass
    return "sha256:" + hashlib.sha256(rec.value or b"").hexdigest()


class Tail:
    """A read_committed consumer on every partition of some topics, from the start,
    keeping every record it has seen. ``sync()`` reads up to the last stable offset of
    each partition as of the call."""

    def __init__(self, bootstrap: str, topics):
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "enrichertest-tail-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
        })
        self.tps: list[tuple[str, int]] = []
        md = self.c.list_topics(timeout=10)
        for t in self.topics:
            tm = md.topics.get(t)
            if tm is None or tm.error is not None:
                raise LookupError(f"topic {t} not found")
            self.tps += [(t, p) for p in sorted(tm.partitions)]
        self.c.assign([TopicPartition(t, p, 0) for t, p in self.tps])
        self.pos = {tp: 0 for tp in self.tps}
        self.records: list[kafkatest.Record] = []
        self.closed = False

    def _poll(self, timeout: float) -> bool:
        m = self.c.poll(timeout)
        if m is None:
            return False
        tp = (m.topic(), m.partition())
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                if tp in self.pos:
                    self.pos[tp] = max(self.pos[tp], m.offset())
                return True
            if m.error().fatal():
                raise KafkaException(m.error())
            return True
        self.records.append(kafkatest.Record.from_message(m))
        self.pos[tp] = max(self.pos[tp], m.offset() + 1)
        return True

    def sync(self, timeout: float = 20.0) -> list[kafkatest.Record]:
        deadline = time.monotonic() + timeout
        targets = {}
        for t, p in self.tps:
            lo, hi = kafkatest.watermarks(self.c, TopicPartition(t, p), 10)
            targets[(t, p)] = hi
        while True:
            behind = [tp for tp, hi in targets.items() if self.pos[tp] < hi]
            if not behind:
                return self.records
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Tail.sync: not at the end of {behind} after {timeout}s "
                                   f"(positions {[self.pos[tp] for tp in behind]}, "
                                   f"targets {[targets[tp] for tp in behind]})")
            if not self._poll(0.2):
                # position() also covers aborted batches and control records at the end
                for (t, p), got in zip(behind, self.c.position(
                        [TopicPartition(t, p) for t, p in behind])):
                    if got.offset >= 0:
                        self.pos[(t, p)] = max(self.pos[(t, p)], got.offset)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.c.close()


class LsoProbe:
    """Watches the last stable offset (read_committed end) against the high watermark
    of some partitions, to see a transaction open on them. Offsets only: no record is
    read uncommitted."""

    def __init__(self, bootstrap: str, topics):
        conf = {"bootstrap.servers": bootstrap, "enable.auto.commit": False}
        self.rc = Consumer(dict(conf, **{"group.id": "enrichertest-lso-" + uuid.uuid4().hex,
                                        "isolation.level": "read_committed"}))
        self.ru = Consumer(dict(conf, **{"group.id": "enrichertest-hw-" + uuid.uuid4().hex,
                                        "isolation.level": "read_uncommitted"}))
        md = self.rc.list_topics(timeout=10)
        self.tps = [TopicPartition(t, p) for t in topics for p in sorted(md.topics[t].partitions)]

    def open_partitions(self) -> list[tuple[str, int, int, int]]:
        out = []
        for tp in self.tps:
            hw = kafkatest.watermarks(self.ru, tp, 10)[1]
            lso = kafkatest.watermarks(self.rc, tp, 10)[1]
            if lso < hw:
                out.append((tp.topic, tp.partition, lso, hw))
        return out

    def close(self) -> None:
        self.rc.close()
        self.ru.close()


# ---------------------------------------------------------------- schema and documents

def enriched_validator():
    """Draft 2020-12 validator of schemas/enriched-event.schema.json, with the webhook
    schema it references registered and date-time checked."""
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    schema = json.loads(ENRICHED_SCHEMA_PATH.read_text())
    webhook = json.loads(WEBHOOK_SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    reg = Registry().with_resources([(webhook["$id"], Resource.from_contents(webhook))])
    fc = FormatChecker()
    fc.checks("date-time")(bridgetest.date_time_ok)
    return Draft202012Validator(schema, registry=reg, format_checker=fc)


def _node_selection(query_path: Path):
    """The selection set under ``...connection.edges.node`` of a query file."""
    from graphql import parse

    doc = parse(query_path.read_text())
    sel = doc.definitions[0].selection_set
    for name in (None, "get", "connection", "edges", "node"):
        field_ = sel.selections[0]
        if name is not None:
            field_ = next(s for s in sel.selections if s.name.value == name)
        sel = field_.selection_set
    return sel


def _project(value, sel):
    if sel is None or value is None:
        return value
    if isinstance(value, list):
        return [_project(v, sel) for v in value]
    out = {}
    for s in sel.selections:
        name = s.alias.value if s.alias else s.name.value
        out[name] = _project(value.get(s.name.value), s.selection_set)
    return out


_SELECTIONS: dict = {}


def expected_document(double: DuroDouble, kind: str, rid: str):
    """What the enricher's query selects of the double's document for rid (None when the
    double has no visible document)."""
    if kind not in _SELECTIONS:
        f = "components.graphql" if kind == "item" else "change_orders.graphql"
        _SELECTIONS[kind] = _node_selection(QUERIES_DIR / f)
    doc = (double.data.component(rid) if kind == "item" else double.data.change_order(rid))
    return None if doc is None else _project(doc, _SELECTIONS[kind])


# ---------------------------------------------------------------- the enricher process

@dataclass
class Enricher(Program):
    """A duro-enricher process. Use through the ``enrichers`` fixture (which kills it)."""
    name: str = "enricher"

    program = "duro-enricher"
    started_line = r"running: group .*admin on port (?P<admin>\d+),"

    @property
    def txn_id(self) -> str | None:
        return self.env.get("DURO_TRANSACTIONAL_ID")

    def binary(self) -> str:
        return enricher_bin()

    def start(self, timeout: float = 45.0) -> "Enricher":
        self._start(timeout)
        return self

    # -- logs
    def log_msgs(self) -> list[str]:
        return [r.get("msg", r.get("raw", "")) for r in self.logs()]

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                 f"{self.stderr_text()[-4000:]}")

    def wait_log(self, pred, timeout: float, what: str) -> dict:
        """The first log record whose message pred(msg) accepts; the enricher must stay up."""
        def find():
            self._check_alive()
            return next((r for r in self.logs() if pred(r.get("msg", ""))), None)
        return self.wait(find, timeout, f"log line: {what}")

    def assigned_counts(self) -> list[int]:
        out = []
        for m in self.log_msgs():
            a = re.match(r"assigned (\d+) partition", m)
            if a:
                out.append(int(a[1]))
        return out

    def wait_assigned(self, timeout: float = 45.0, at_least: int = 1) -> int:
        def ok():
            c = self.assigned_counts()
            return c and c[-1] >= at_least and c[-1]
        return self.wait(ok, timeout, f"{self.name}: 'assigned N partition(s)' with N >= {at_least}")

    # -- admin
    def metric(self, name: str, **labels) -> float:
        return self.metrics().get(name, 0.0, **labels)


# The group protocol every enricher of a run uses (DURO_ASSIGNMENT), unless a test sets
# its own: scripts/test.sh runs the suite on each librdkafka with the modes it supports.
TEST_ASSIGNMENT = os.environ.get("DURO_TEST_ASSIGNMENT", "")
# Properties of the classic protocol that librdkafka refuses under KIP-848's (there the
# broker's group.consumer.* settings govern; scripts/kafka.sh lowers them).
CLASSIC_ONLY = ("DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS",
                "DURO_RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS")
# The lowest librdkafka (rd_kafka_version() order) each DURO_ASSIGNMENT needs.
ASSIGNMENT_MIN = {"eager": (0,), "cooperative": (2, 10), "consumer": (2, 12)}


def enricher_env(extra: dict) -> dict:
    env = clean_env(extra)
    if TEST_ASSIGNMENT and "DURO_ASSIGNMENT" not in extra:
        env["DURO_ASSIGNMENT"] = TEST_ASSIGNMENT
    if env.get("DURO_ASSIGNMENT") == "consumer":
        for k in CLASSIC_ONLY:
            env.pop(k, None)
    return env


_rdkafka_version: tuple | None = None


def rdkafka_version() -> tuple:
    """The librdkafka the enricher runs on, from ``duro-enricher --version``."""
    global _rdkafka_version
    if _rdkafka_version is None:
        rc, out, err, _ = run_once([enricher_bin(), "--version"], clean_env(), 20)
        m = re.search(r"\(librdkafka (\d+)\.(\d+)\.(\d+)", out)
        assert rc == 0 and m, f"duro-enricher --version: rc {rc}: {out!r} {err!r}"
        _rdkafka_version = tuple(int(x) for x in m.groups())
    return _rdkafka_version


def assignment_supported(mode: str) -> bool:
    return rdkafka_version() >= ASSIGNMENT_MIN[mode]


def run_enricher_once(env: dict, args=(), timeout: float = 20.0) -> tuple[int, str, str]:
    """Runs duro-enricher expecting it to exit by itself: (rc, stdout, stderr)."""
    return run_once([enricher_bin(), *args], env, timeout)[:3]


# ---------------------------------------------------------------- the rig

class Rig:
    """One test's topics, group and enricher settings around a broker and a double."""

    def __init__(self, broker, double: DuroDouble, tmp_path: Path, *, raw_partitions: int = 3,
                 events=KNOWN_EVENTS + ("FOO_BAR",), prefix: str = "enr"):
        self.broker = broker
        self.bootstrap = broker.bootstrap
        self.double = double
        self.tmp_path = tmp_path
        self.prefix = kafkatest.unique_name(prefix)
        self.raw = f"{self.prefix}.raw"
        self.dlq = f"{self.prefix}.dlq"
        self.template = f"{self.prefix}.events.{{event}}"
        self.group = f"{self.prefix}-group"
        self.raw_partitions = raw_partitions
        self.events = list(events)
        self.state_template = f"{self.prefix}.state.{{kind}}"
        self.progress = f"{self.prefix}.progress"
        create_topics(self.bootstrap, [self.raw], partitions=raw_partitions)
        create_topics(self.bootstrap, [self.dlq] + [self.topic(e) for e in self.events])
        create_state_topics(self.bootstrap, self.state_template, self.progress)
        self._producer: RawProducer | None = None
        self._tails: list[Tail] = []
        self._validator = None

    # -- names
    def topic(self, event: str) -> str:
        return topic_for(self.template, event)

    def state_topic(self, kind: str) -> str:
        return self.state_template.replace("{kind}", kind)

    def txn(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def output_topics(self) -> list[str]:
        return [self.topic(e) for e in self.events]

    def env(self, txn_id: str, **settings) -> dict:
        e = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DURO_RAW_TOPIC": self.raw,
            "DURO_DLQ_TOPIC": self.dlq,
            "DURO_TOPIC_TEMPLATE": self.template,
            "DURO_STATE_TOPIC_TEMPLATE": self.state_template,
            "DURO_PROGRESS_TOPIC": self.progress,
            "DURO_ENRICHER_GROUP": self.group,
            "DURO_ENRICHER_ADMIN_LISTEN": "127.0.0.1:0",
            "DURO_TRANSACTIONAL_ID": txn_id,
            "DURO_API_URL": self.double.url,
            "DURO_API_KEY": self.double.api_key,
            "DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "DURO_RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
        }
        for k, v in settings.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return enricher_env(e)

    # -- raw records
    @property
    def producer(self) -> RawProducer:
        if self._producer is None:
            self._producer = RawProducer(self.bootstrap, self.raw)
        return self._producer

    def produce(self, payloads, flush: bool = True, **kw) -> list:
        keys = [self.producer.produce(p, **kw) for p in payloads]
        if flush:
            self.producer.flush()
        return keys

    def raw_records(self, timeout: float = 30.0) -> list[kafkatest.Record]:
        return kafkatest.read_all(self.bootstrap, self.raw, isolation="read_committed",
                                  timeout=timeout)

    # -- outputs
    def tail(self, topics=None) -> Tail:
        t = Tail(self.bootstrap, topics if topics is not None else self.output_topics() + [self.dlq])
        self._tails.append(t)
        return t

    def by_event_id(self, records) -> dict[str, list[kafkatest.Record]]:
        out: dict[str, list] = {}
        for r in records:
            out.setdefault(record_event_id(r, self.dlq), []).append(r)
        return out

    @staticmethod
    def _wait_watching(procs, cond, timeout: float, what: str, interval: float, detail):
        """wait_until(cond), where an exited process in ``procs`` fails the check; a
        timeout message adds detail() and the log tails of ``procs``."""
        def check():
            for p in procs:
                if not p.alive:
                    raise AssertionError(f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}")
            return cond()

        try:
            return wait_until(check, timeout, what, interval=interval)
        except WaitTimeout as e:
            logs = "\n".join(f"--- {p.name}:\n{p.tail(60)}" for p in procs)
            raise WaitTimeout(f"{e}: {detail()}\n{logs}") from None

    def wait_for_ids(self, ids, timeout: float = 60.0, tail: Tail | None = None,
                     procs=()) -> dict[str, list[kafkatest.Record]]:
        """Polls (read_committed) until every event id in ``ids`` has a record in an
        output topic or the DLQ. Returns records by event id. ``procs``: enrichers
        whose logs to add to a timeout message (and that must stay alive)."""
        want = set(ids)
        t = tail or self.tail()
        state = {}

        def done():
            got = self.by_event_id(t.sync())
            state["missing"] = want - set(got)
            return got if not state["missing"] else None

        def detail():
            missing = sorted(state.get("missing", want))
            return f"{len(missing)} missing, e.g. {missing[:5]}"

        return self._wait_watching(procs, done, timeout, f"records for {len(want)} event ids",
                                   0.2, detail)

    def final_records(self) -> list[kafkatest.Record]:
        """Every committed record of the output topics and the DLQ (kafkatest.read_all)."""
        out = []
        for t in self.output_topics() + [self.dlq]:
            out += kafkatest.read_all(self.bootstrap, t, isolation="read_committed", timeout=30)
        return out

    def open_transactions(self) -> list[tuple[str, int, int, int]]:
        """(topic, partition, last stable offset, high watermark) of every output/DLQ
        partition whose LSO is below its high watermark: a transaction that wrote there
        is still open (or its markers are still being written)."""
        probe = LsoProbe(self.bootstrap, self.output_topics() + [self.dlq])
        try:
            return probe.open_partitions()
        finally:
            probe.close()

    def committed(self) -> dict[int, int]:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                      "enable.auto.commit": False, "isolation.level": "read_committed"})
        try:
            tps = c.committed([TopicPartition(self.raw, p) for p in range(self.raw_partitions)],
                              timeout=10)
            return {tp.partition: tp.offset for tp in tps}
        finally:
            c.close()

    def wait_drained(self, timeout: float = 60.0, procs=()) -> dict[int, int]:
        """Waits until the group's committed offsets reach the raw topic's end on every
        partition (everything produced so far has been processed and committed)."""
        state = {}

        def drained():
            end = kafkatest.end_offsets(self.bootstrap, self.raw)
            com = self.committed()
            state["end"], state["committed"] = end, com
            return all(com.get(p, -1) >= hi for p, hi in end.items() if hi > 0) and com

        return self._wait_watching(
            procs, drained, timeout, "the group's committed offsets to reach the raw end", 0.25,
            lambda: f"end {state.get('end')}, committed {state.get('committed')}")

    def assert_exactly_once(self, ids, records=None, allow_extra=False) -> dict:
        """Each id in ``ids`` has exactly one committed record across every output topic
        and the DLQ; with allow_extra False no other id has one either."""
        recs = records if records is not None else self.final_records()
        by = self.by_event_id(recs)
        want = set(ids)
        missing = sorted(want - set(by))
        twice = {i: [(r.topic, r.partition, r.offset) for r in rs]
                 for i, rs in by.items() if len(rs) > 1}
        extra = sorted(set(by) - want)
        problems = []
        if missing:
            problems.append(f"{len(missing)} event(s) without a record, e.g. {missing[:5]}")
        if twice:
            problems.append(f"{len(twice)} event(s) with more than one record, e.g. "
                            f"{dict(list(twice.items())[:5])}")
        if extra and not allow_extra:
            problems.append(f"{len(extra)} unexpected event id(s), e.g. {extra[:5]}")
        assert not problems, "; ".join(problems)
        return by

    def assert_order_per_key(self, records=None) -> int:
        """the guarantees "Order per resource": in every output partition, the records of one
        key appear in the order of their raw records (source offsets increase). Returns
        the number of keys with more than one record."""
        recs = records if records is not None else self.final_records()
        seen: dict[tuple, tuple[int, int]] = {}
        multi = set()
        for r in sorted((r for r in recs if r.topic != self.dlq),
                        key=lambda r: (r.topic, r.partition, r.offset)):
            src = json.loads(r.value)["source"]
            k = (r.topic, r.key)
            cur = (src["partition"], src["offset"])
            if k in seen:
                multi.add(k)
                assert cur[0] == seen[k][0], f"key {r.key!r} came from two raw partitions"
                assert cur[1] > seen[k][1], \
                    f"{r.topic} [{r.partition}] at {r.offset}: key {r.key!r} from raw offset " \
                    f"{cur[1]} after raw offset {seen[k][1]}"
            seen[k] = cur
        return len(multi)

    @property
    def validator(self):
        if self._validator is None:
            self._validator = enriched_validator()
        return self._validator

    def close(self) -> None:
        for t in self._tails:
            try:
                t.close()
            except Exception:
                pass
        if self._producer is not None:
            self._producer.p.flush(5)
            self._producer = None  # destroyed now, not when a failed test's traceback goes


# ---------------------------------------------------------------- output checks

def parse_rfc3339(s: str) -> float:
    """POSIX seconds of an RFC 3339 time (Z or offset, optional fraction)."""
    import datetime as dt
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()


def parse_output(rec: kafkatest.Record) -> dict:
    v = json.loads(rec.value)
    assert isinstance(v, dict), rec.value[:200]
    return v


def check_output(rig: Rig, rec: kafkatest.Record, payload: dict, *, status: str,
                 kind: str | None = None, key: bytes | None = None,
                 document="from-double") -> dict:
    """Asserts the output record contract (the enricher's contract) for the event ``payload``."""
    ev = payload["event"]
    v = parse_output(rec)
    errors = sorted(rig.validator.iter_errors(v), key=lambda e: list(e.path))
    assert not errors, f"output of {payload['id']} fails the schema: " + \
        "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    assert rec.topic == rig.topic(ev), f"topic {rec.topic}, want {rig.topic(ev)}"
    if kind is None:
        kind = "item" if ev.startswith("ITEM_") else "change_order" if ev.startswith("CO_") else "unknown"
    rid = (payload["data"].get("item_id") if kind == "item"
           else payload["data"].get("change_order_id") if kind == "change_order" else None)
    if key is None:
        key = rid.encode() if rid else raw_key(payload, body_of(payload))
    assert rec.key == key, f"key {rec.key!r}, want {key!r}"
    assert rec.partition == java_partition(key, OUTPUT_PARTITIONS), \
        f"{payload['id']}: partition {rec.partition}, murmur2 says {java_partition(key, OUTPUT_PARTITIONS)}"
    assert rec.header("idempotency-key") == payload["id"].encode()
    assert rec.header("duro-event") == ev.encode()
    assert rec.header("duro-event-id") == payload["id"].encode()
    assert rec.header("content-type") == b"application/json"
    assert v["schema"] == "duro.enriched.v1"
    assert v["idempotency_key"] == payload["id"]
    want_event = {"id": payload["id"], "type": ev, "created_at": payload["created_at"],
                  "data": payload["data"]}
    if "webhook_id" in payload:
        want_event["webhook_id"] = payload["webhook_id"]
    assert v["event"] == want_event
    assert v["resource"]["kind"] == kind
    assert v["resource"]["status"] == status, f"{payload['id']}: {v['resource']}"
    if rid is not None:
        assert v["resource"]["id"] == rid
    if status == "found":
        if document == "from-double":
            want = expected_document(rig.double, kind, rid)
            assert want is not None, f"the double has no {rid}"
            assert v["document"] == want, f"document of {rid}: {v['document']} != {want}"
        elif document is not None:
            assert v["document"] == document
    else:
        assert v["document"] is None
    assert v["source"]["topic"] == rig.raw
    assert parse_rfc3339(v["received_at"]) <= parse_rfc3339(v["enriched_at"]) + 0.001, \
        f"received_at {v['received_at']} after enriched_at {v['enriched_at']}"
    return v


def check_dlq(rig: Rig, rec: kafkatest.Record, *, error_class: str, raw: kafkatest.Record | None = None,
              attempts: int | None = None) -> None:
    """Asserts the DLQ record contract (the enricher's contract); ``raw`` is the source raw record."""
    assert rec.topic == rig.dlq
    assert rec.header("error-class") == error_class.encode(), \
        f"error-class {rec.header('error-class')!r}, want {error_class}; headers {rec.headers}"
    assert rec.header("error-message"), "error-message header missing or empty"
    a = rec.header("attempts")
    assert a is not None and a.decode().isdigit(), f"attempts header {a!r}"
    if attempts is not None:
        assert int(a) == attempts, f"attempts {a!r}, want {attempts}"
    assert rec.header("source-topic") == rig.raw.encode()
    sp, so = rec.header("source-partition"), rec.header("source-offset")
    assert sp is not None and so is not None
    if raw is None:
        raw = kafkatest.read_at(rig.bootstrap, rig.raw, int(sp), int(so))
    else:
        assert (int(sp), int(so)) == (raw.partition, raw.offset), \
            f"source {sp!r}/{so!r}, raw record at {raw.partition}/{raw.offset}"
    assert rec.value == raw.value, "DLQ value must be the raw value byte for byte"
    assert rec.key == raw.key, f"DLQ key {rec.key!r}, raw key {raw.key!r}"
    for k, v in raw.headers:
        if k in ("traceparent", "tracestate", "content-type") or k.startswith("ce_"):
            continue  # the DLQ record's own: the raw record's trace, a new span; its
            # value's content type (issue 20)
        assert (k, v) in rec.headers, f"raw header {k}={v!r} missing from the DLQ record"


# ---------------------------------------------------------------- factories and fixtures

class EnricherFactory(ProgramFactory):
    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.secrets: list[str] = []

    def _add(self, e: Enricher, start: bool, assigned: bool) -> Enricher:
        self.started.append(e)
        if start:
            e.start()
            if assigned:
                e.wait_assigned()
        return e

    def __call__(self, env: dict, *, name: str | None = None, args=(), start: bool = True,
                 assigned: bool = True, secrets_=()) -> Enricher:
        name = name or f"enricher{len(self.started)}"
        d = self.tmp_path / "enrichers"
        d.mkdir(exist_ok=True)
        known = list(secrets_) + self.secrets
        if env.get("DURO_API_KEY"):
            known.append(env["DURO_API_KEY"])
        e = Enricher(env=dict(env), args=list(args), workdir=d, name=name, secrets_=known)
        return self._add(e, start, assigned)

    def restart(self, old: Enricher, assigned: bool = True) -> Enricher:
        """A new process of the same logical instance (same env, transactional id)."""
        old.kill()
        e = Enricher(env=dict(old.env), args=list(old.args), workdir=old.workdir,
                     name=old.name, secrets_=list(old.secrets_))
        return self._add(e, True, assigned)


@pytest.fixture
def double():
    """An in-process DuroDouble on an ephemeral port with a random API key."""
    d = DuroDouble(port=0, api_key="duro-api-key-" + secrets.token_hex(16), seed=7,
                   components=400, change_orders=80)
    d.start()
    yield d
    d.close()


@pytest.fixture
def rig(broker, double, tmp_path):
    r = Rig(broker, double, tmp_path)
    yield r
    r.close()


@pytest.fixture
def enrichers(tmp_path, double):
    f = EnricherFactory(tmp_path)
    f.secrets.append(double.api_key)
    yield f
    f.cleanup()


def send_acknowledged(bridge, senders, payloads) -> list[str]:  # noqa: F811
    """Sends payloads through bridge with a new sender of the ``senders`` fixture and
    waits (bounded) until every one was acknowledged; returns their event ids."""
    s = senders(bridge)
    ids = s.send_many(payloads)
    assert s.wait(60), s.summary()
    assert s.summary()["acknowledged"] == len(payloads), s.summary()
    return ids


@pytest.fixture
def senders():
    """Factory of WebhookSenders, all closed at teardown."""
    made: list[WebhookSender] = []

    def make(bridge, **kw) -> WebhookSender:
        kw.setdefault("scale", 0.001)
        kw.setdefault("workers", 4)
        s = WebhookSender(f"http://127.0.0.1:{bridge.port}{bridgetest.WEBHOOK_PATH}",
                          bridge.secrets_[0], **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


class Background:
    """A thread running fn(stop_event) that the test stops and joins (and whose
    exception is re-raised by stop())."""

    def __init__(self, fn, name="background"):
        self.stop_event = threading.Event()
        self.exc = None

        def run():
            try:
                fn(self.stop_event)
            except BaseException as e:  # noqa: BLE001
                self.exc = e

        self.t = threading.Thread(target=run, name=name, daemon=True)
        self.t.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.t.join(timeout)
        assert not self.t.is_alive(), "background thread did not stop"
        if self.exc is not None:
            raise self.exc


@pytest.fixture
def background():
    made: list[Background] = []

    def make(fn, name="background") -> Background:
        b = Background(fn, name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop_event.set()
        b.t.join(30)


__all__ = ["Background", "CO_EVENTS", "DLQ_CLASSES", "DuroData", "DuroDouble", "Enricher",
           "EnricherFactory", "ITEM_EVENTS", "KNOWN_EVENTS", "LsoProbe", "RawProducer", "Rig", "STATE_KINDS", "Tail",
           "WebhookSender", "background", "check_dlq", "check_output", "co_event", "create_state_topics", "create_topics",
           "double", "enriched_validator", "enrichers", "expected_document", "item_event",
           "now_ms", "parse_output", "raw_event_id", "raw_key", "record_event_id", "rig", "run_enricher_once", "send_acknowledged",
           "senders", "topic_for"]
