"""Helpers for integration tests against a real Kafka broker.

The broker is started by ``scripts/kafka.sh`` (single KRaft node on 127.0.0.1,
jars from the Maven cache). Clients here use ``confluent-kafka`` (which bundles
its own librdkafka); the bridge itself uses the system librdkafka.

Typical use in a conftest::

    broker = broker_from_env_or_start(tmp_path_factory.mktemp("kafka"))
    yield broker
    broker.close()          # stops the broker only if this object started it

Environment:
    DURO_TEST_BOOTSTRAP   use an already running broker at this address
    DURO_TEST_KAFKA_WORK  its KAFKA_WORK dir, so stop/kill/restart still work
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from proctest import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "scripts" / "kafka.sh"

# generous bounds for the subprocess calls; kafka.sh has its own, tighter ones
_START_CALL_TIMEOUT = 900.0  # includes a first-time jar fetch
_STOP_CALL_TIMEOUT = 120.0


class BrokerError(RuntimeError):
    """kafka.sh failed; the message carries its stderr (incl. the broker log tail)."""


class BrokerControlUnavailable(BrokerError):
    """The broker is external and its work dir is unknown (DURO_TEST_KAFKA_WORK unset)."""


_owned_brokers: "list[Broker]" = []


@atexit.register
def _kill_owned_brokers() -> None:  # safety net if a fixture teardown never ran
    for b in list(_owned_brokers):
        try:
            if b.is_running():
                b.kill()
        except Exception:
            pass


class Broker:
    """A Kafka broker controlled through scripts/kafka.sh.

    ``bootstrap`` ("127.0.0.1:PORT") is set by start(); restart() keeps it.
    ``owned`` is True when this object started the broker (close() stops it).
    """

    def __init__(self, work_dir: str, port: int = 0):
        self.work_dir = str(work_dir) if work_dir else ""
        self.port = int(port)
        self.bootstrap: str | None = None
        self.external = False
        self.owned = False

    # -- kafka.sh plumbing -------------------------------------------------
    def _run(self, command: str, timeout: float) -> str:
        if not self.work_dir:
            raise BrokerControlUnavailable(
                f"cannot {command} an external broker at {self.bootstrap}: "
                "its work dir is unknown (set DURO_TEST_KAFKA_WORK)")
        env = dict(os.environ, KAFKA_WORK=self.work_dir, KAFKA_PORT=str(self.port))
        try:
            p = subprocess.run(["bash", str(KAFKA_SH), command], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise BrokerError(f"kafka.sh {command} did not finish in {timeout}s:\n"
                              f"{_text(e.stderr)}") from e
        if p.returncode != 0:
            raise BrokerError(f"kafka.sh {command} failed (exit {p.returncode}):\n{p.stderr}")
        return p.stdout

    @staticmethod
    def _last_line(out: str) -> str:
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        if not lines:
            raise BrokerError("kafka.sh printed no bootstrap address")
        return lines[-1]

    # -- public API --------------------------------------------------------
    def start(self) -> None:
        """Start a fresh broker (wipes data). For an external broker: bring it
        back (keeping its data) if it is down, else do nothing."""
        if self.external:
            if self.work_dir and not self.is_running():
                self.restart()
            return
        try:
            self.bootstrap = self._last_line(self._run("start", _START_CALL_TIMEOUT))
        except BaseException:
            self._kill_quietly()  # e.g. kafka.sh itself was killed on a timeout
            raise
        self.port = int(self.bootstrap.rsplit(":", 1)[1])
        self.owned = True
        if self not in _owned_brokers:
            _owned_brokers.append(self)

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after a bounded wait)."""
        self._run("stop", _STOP_CALL_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL at once; data is kept, restart() brings it back."""
        self._run("kill", _STOP_CALL_TIMEOUT)

    def restart(self) -> None:
        """Stop if running, start again with the same data and the same address."""
        before = self.bootstrap
        try:
            self.bootstrap = self._last_line(self._run("restart", _START_CALL_TIMEOUT))
        except BaseException:
            self._kill_quietly()
            raise
        if before and before != self.bootstrap:
            raise BrokerError(f"restart changed the bootstrap address {before} -> {self.bootstrap}")

    def _kill_quietly(self) -> None:
        try:
            self._run("kill", _STOP_CALL_TIMEOUT)
        except Exception:
            pass

    def is_running(self) -> bool:
        if not self.work_dir:
            return self.bootstrap is not None and _metadata_ok(self.bootstrap)
        env = dict(os.environ, KAFKA_WORK=self.work_dir)
        p = subprocess.run(["bash", str(KAFKA_SH), "status"], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        return p.returncode == 0

    def close(self) -> None:
        """End of session: stop the broker if this object started it."""
        if self.owned:
            try:
                self.stop()
            finally:
                if self in _owned_brokers:
                    _owned_brokers.remove(self)
                self.owned = False

    @property
    def log_path(self) -> str | None:
        return os.path.join(self.work_dir, "logs", "server.out") if self.work_dir else None

    def __repr__(self) -> str:
        return f"Broker(bootstrap={self.bootstrap!r}, work_dir={self.work_dir!r}, external={self.external})"


def broker_from_env_or_start(tmpdir) -> Broker:
    """The broker for a test session.

    With DURO_TEST_BOOTSTRAP set, returns a Broker for that running broker
    (start/stop are managed outside; stop/kill/restart work only if
    DURO_TEST_KAFKA_WORK names its work dir). Else starts a fresh broker on a
    free port with its work dir under ``tmpdir``. Call ``close()`` at the end.
    """
    bootstrap = os.environ.get("DURO_TEST_BOOTSTRAP", "").strip()
    if bootstrap:
        b = Broker(os.environ.get("DURO_TEST_KAFKA_WORK", ""), port=int(bootstrap.rsplit(":", 1)[1]))
        b.bootstrap = bootstrap
        b.external = True
        return b
    b = Broker(os.path.join(str(tmpdir), "kafka-work"), port=0)
    b.start()
    return b


# ---------------------------------------------------------------- admin helpers

def _text(x) -> str:
    if x is None:
        return ""
    return x.decode(errors="replace") if isinstance(x, bytes) else str(x)


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def _metadata_ok(bootstrap: str) -> bool:
    try:
        _admin(bootstrap).list_topics(timeout=3)
        return True
    except KafkaException:
        return False


def _topic_meta(admin: AdminClient, topic: str):
    md = admin.list_topics(topic=topic, timeout=5)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return t


def create_topics(bootstrap: str, names, partitions: int = 1, config: dict | None = None,
                  timeout: float = 30.0) -> None:
    """Create topics in one request (replication 1) and wait until the broker's
    metadata shows every partition of each with a leader. Existing topics are
    accepted."""
    names = list(names)
    if not names:
        return
    admin = _admin(bootstrap)
    cfg = {k: str(v) for k, v in (config or {}).items()}
    futs = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1,
                                         config=cfg) for n in names],
                               operation_timeout=timeout, request_timeout=timeout)
    for fut in futs.values():
        try:
            fut.result(timeout=timeout)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def led(name):
        t = _topic_meta(admin, name)
        return (t is not None and len(t.partitions) >= partitions
                and all(p.leader >= 0 and p.error is None for p in t.partitions.values()))

    wait_until(lambda: all(led(n) for n in names), timeout,
               f"topics {names} in metadata", interval=0.1)


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None,
                 timeout: float = 30.0) -> None:
    """create_topics for one topic."""
    create_topics(bootstrap, [name], partitions=partitions, config=config, timeout=timeout)


def delete_topic(bootstrap: str, name: str, timeout: float = 30.0) -> None:
    """Delete a topic and wait until the metadata no longer shows it. A missing
    topic is accepted."""
    admin = _admin(bootstrap)
    fut = admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[name]
    try:
        fut.result(timeout=timeout)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise
    wait_until(lambda: _topic_meta(admin, name) is None, timeout, f"topic {name} to disappear",
               interval=0.1)


def topic_info(bootstrap: str, topic: str) -> dict:
    """{"partitions": n, "replication": rf} from the broker's metadata."""
    t = _topic_meta(_admin(bootstrap), topic)
    if t is None:
        raise LookupError(f"topic {topic} not found")
    rf = len(t.partitions[min(t.partitions)].replicas) if t.partitions else 0
    return {"partitions": len(t.partitions), "replication": rf}


# ---------------------------------------------------------------- consuming

@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        """Value of the first header called ``name`` (None if absent)."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @classmethod
    def from_message(cls, m) -> "Record":
        return cls(topic=m.topic(), partition=m.partition(), offset=m.offset(),
                   key=m.key(), value=m.value(),
                   headers=[(k, v) for k, v in (m.headers() or [])],
                   timestamp_ms=m.timestamp()[1])


def _consumer(bootstrap: str, isolation: str) -> Consumer:
    if isolation not in ("read_committed", "read_uncommitted"):
        raise ValueError(f"isolation must be read_committed or read_uncommitted, not {isolation!r}")
    return Consumer({
        "bootstrap.servers": bootstrap,
        # required by the client; never joined (assign() only), never committed
        "group.id": "kafkatest-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
        "enable.partition.eof": True,
    })


def _partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    md = consumer.list_topics(topic=topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise LookupError(f"topic {topic} not found ({t.error if t is not None else 'no metadata'})")
    return sorted(t.partitions)


_RETRIABLE = {"NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "_TIMED_OUT",
              "REQUEST_TIMED_OUT", "UNKNOWN_TOPIC_OR_PART", "_TRANSPORT", "NOT_COORDINATOR"}


def watermarks(consumer, tp, timeout: float = 10.0) -> tuple[int, int]:
    """consumer.get_watermark_offsets(tp) (uncached), retrying the transient errors a
    broker gives while it elects leaders after a restart, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(0.5, deadline - time.monotonic())
        try:
            return consumer.get_watermark_offsets(tp, timeout=left, cached=False)
        except KafkaException as e:
            err = e.args[0] if e.args else None
            name = err.name() if hasattr(err, "name") else ""
            if name not in _RETRIABLE or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)  # bounded retry interval while leadership settles


def end_offsets(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """{partition: high watermark}."""
    c = _consumer(bootstrap, "read_uncommitted")
    try:
        return {p: watermarks(c, TopicPartition(topic, p), timeout)[1]
                for p in _partitions(c, topic, timeout)}
    finally:
        c.close()


def read_all(bootstrap: str, topic: str, isolation: str = "read_committed",
             timeout: float = 20.0) -> list[Record]:
    """Every record of every partition, from the beginning up to the end offset
    as of this call (high watermark; for read_committed the last stable offset).
    Ordered by partition, then offset. Raises TimeoutError if the end is not
    reached within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    c = _consumer(bootstrap, isolation)
    try:
        targets: dict[int, int] = {}
        assignment = []
        for p in _partitions(c, topic, timeout):
            # ListOffsets uses the consumer's isolation level: LSO for read_committed
            low, high = watermarks(c, TopicPartition(topic, p), timeout)
            if high > low:
                targets[p] = high
                assignment.append(TopicPartition(topic, p, low))
        out: dict[int, list[Record]] = {p: [] for p in targets}
        pending = set(targets)
        if assignment:
            c.assign(assignment)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                got = {p: (out[p][-1].offset + 1 if out[p] else None) for p in pending}
                raise TimeoutError(f"read_all({topic}) timed out after {timeout}s; "
                                   f"targets {targets}, next offsets {got}")
            m = c.poll(min(left, 0.5))
            if m is None:
                continue
            p = m.partition()
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    # the fetch position (past control records) reached the end
                    if p in pending and m.offset() >= targets[p]:
                        pending.discard(p)
                    continue
                if m.error().retriable() or not m.error().fatal():
                    continue
                raise KafkaException(m.error())
            if p not in targets or m.offset() >= targets[p]:
                continue
            out[p].append(Record.from_message(m))
            if m.offset() >= targets[p] - 1:
                pending.discard(p)
        return [r for p in sorted(out) for r in out[p]]
    finally:
        c.close()


def read_at(bootstrap: str, topic: str, partition: int, offset: int, timeout: float = 10.0,
            isolation: str = "read_committed") -> Record:
    """The record at exactly ``offset``. Raises LookupError if no such record is
    visible (e.g. an aborted record or a transaction marker under
    read_committed), TimeoutError if it does not arrive in time."""
    deadline = time.monotonic() + timeout
    c = _consumer(bootstrap, isolation)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no record at {topic}[{partition}]@{offset} within {timeout}s")
            m = c.poll(min(left, 0.5))
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() > offset:
                        raise LookupError(f"no visible record at {topic}[{partition}]@{offset} "
                                          f"({isolation}; end is {m.offset()})")
                    continue
                if m.error().retriable() or not m.error().fatal():
                    continue
                raise KafkaException(m.error())
            if m.offset() == offset:
                return Record.from_message(m)
            if m.offset() > offset:
                raise LookupError(f"no visible record at {topic}[{partition}]@{offset} "
                                  f"({isolation}; next is {m.offset()})")
    finally:
        c.close()


_NAME_OK = re.compile(r"[^A-Za-z0-9._-]")


def unique_name(prefix: str) -> str:
    """prefix + "-" + random hex; a valid topic name (bad characters become '-')."""
    base = _NAME_OK.sub("-", prefix) or "t"
    return f"{base[:200]}-{secrets.token_hex(6)}"
