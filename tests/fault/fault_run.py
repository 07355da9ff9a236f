#!/usr/bin/env python3
"""The fault run: the guarantees (README: Guarantees) under crashes, restarts and upstream failures.

One bounded scenario on one machine, against a real Kafka broker:

* the Duro double (``tests/duro_double``) serves the GraphQL API and plays Duro's webhook
  sender: it sends ``--events`` signed webhooks at ``--rate`` per second (a mix of ITEM_*
  and CO_* events over the double's library, some signed-but-invalid bodies, and an event
  type nobody knows), delivers some of them two or three times (``--repeat-probability``)
  and retries every non-2xx on Duro's schedule (5 s, 30 s, 2 m, ... 4 h) times ``--scale``;
* ``duro-bridge`` takes the webhooks (one instance on a fixed port, so the sender's
  retries find it again after a restart) and ``duro-enricher`` (stable transactional id,
  short session timeout) enriches them into the output topics and the DLQ;
* meanwhile the harness ``kill -9``s the bridge and the enricher (restarting each at
  once), restarts the broker (same port, same data), and makes the GraphQL double fail
  for a while: a window of random 500s, of timeouts (every request slower than the
  enricher's GraphQL timeout), of 429s then ``RATE_LIMITED`` errors, and a full outage.
  A process that exits by itself is restarted too, as an orchestrator would, and counted;
* meanwhile snapshot phases (``--snapshot-phases``): a few resources with a live state
  record are deleted in the double without a webhook, then ``duro-enricher snapshot --id
  phase<N> --json`` runs with the enricher's environment, is ``kill -9``'d at random
  moments (``--snapshot-kills``; every second one aimed at an open transaction) and
  rerun with the same id until it exits 0, then once more (it must say it finished);
* meanwhile one bridge outage (``--bridge-outage``, at ``--outage-at`` of the sending time)
  longer than Duro's retry span: a few events whose 2xx answers the sender takes for
  time-outs (``--outage-lost-answers``: on Kafka, yet failed in Duro's log), then the bridge
  is stopped (SIGTERM), and the well-formed events of the outage's first
  ``--outage-give-up-s`` seconds are sent on Duro's schedule x ``--outage-scale`` (a span
  far shorter than the outage), so Duro gives up on them; the bridge comes back once every
  one of them was given up. Every delivery attempt of the run is in the double's webhook
  log (``--log-shape``: the payload as an object or as a JSON string), and at the end
  ``duro-enricher reconcile --json`` (``DURO_RECONCILE_URL`` = the bridge's URL, the
  webhook's URL in the double) writes the events Duro gave up on that the raw topic does
  not hold; it runs twice (the second must write nothing).

At the end (the sender finished every delivery, the reconcile ran, the bridge was stopped,
the enricher's committed offsets reached the raw topic's end) every output topic and the
DLQ are read with read_committed consumers and a ledger is printed (and written as JSON):

  events sent, acknowledged (2xx at least once), given up, raw records, outputs,
  DLQ records by class, lost (acknowledged but neither output nor DLQ), duplicated (more
  than one output+DLQ record for one event id), unexpected (records for ids never sent),
  not acknowledged but delivered (given up by Duro, yet on Kafka: legitimate), misrouted
  (an invalid event not in the DLQ as invalid-payload, a valid one on the wrong topic),
  plus deliveries, kills, broker restarts, fault windows and wall time;

and the state topics are checked (``check_state``): the run's ITEM_DELETE / CO_DELETE
events delete their resource in the double before they are sent, so later events of it
are answered not_found; per resource the run named, the state records must be exactly
those the contract asks for (per committed batch, read back from the progress topic:
its last output event of the resource writes a tombstone if deleted, the document if
found, nothing if a live not_found, a tombstone if a snapshot's ping not_found; a
DLQ'd event writes nothing), and the reduced state the double's document as the
enricher's query selects it, as of that event, or absent;
and the snapshot phases (``check_snapshots``): per run, its committed pings one per key
and as many as the final summary's written + swept, each pinged id exactly once on its
snapshot event topic (or in the DLQ), every resource in the double throughout the phase
pinged, and every resource deleted without a webhook absent from the state at the end;
and the reconcile (``check_reconcile``): its summary against the run's own figures (events
failed = given up, recovered = given up and never on the raw topic, already there = given
up yet on it, not recoverable 0, log entries = attempts), its raw records (one per
recovered event, original id, ``duro-origin: reconcile``, keyed and stamped), the rerun
(nothing recovered), and every event given up exactly once in the outputs or the DLQ.

Verdict: FAIL (exit 1) when anything is lost, duplicated or misrouted, a state
mismatches, a snapshot phase or the reconcile has a problem; VOID (exit 2) when the
ledger does not balance (sender ledger inconsistent or unfinished, records for ids never
sent, records without a raw record, enricher not drained) or the harness itself failed;
PASS (exit 0) otherwise.

Run it with ``scripts/fault-run.sh`` (own broker in a temporary KAFKA_WORK); the short
CI version is ``tests/integration/test_fault_short.py`` (same harness, in process, on
the test session's broker). ``python tests/fault/fault_run.py --help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime as dt
import json
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

FAULT_DIR = Path(__file__).resolve().parent
TESTS_DIR = FAULT_DIR.parent
for _p in (TESTS_DIR / "integration", TESTS_DIR):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

import bridgetest  # noqa: E402
import enrichertest  # noqa: E402
import kafkatest  # noqa: E402
from proctest import http_request, Metrics, pdeathsig  # noqa: E402
from duro_double import SCHEDULE_S, DuroDouble, WebhookSender, co_event, item_event  # noqa: E402
from duro_double.server import LOG_SHAPES  # noqa: E402
from duro_double.data import rfc3339  # noqa: E402
from duro_double.sender import DEFAULT_MIX, new_event_id  # noqa: E402

UNKNOWN_EVENT = "WIDGET_RECALIBRATE"  # an event name no Duro document mentions
INVALID_KINDS = ("not-json", "item-without-item_id", "co-without-change_order_id",
                 "created_at-not-rfc3339", "id-number", "duplicate-keys", "deep-json",
                 "event-null", "data-array")
WINDOWS = {
    # name: (knobs at the start, knobs at the end)
    "500s": ({"error_rate_500": 0.35}, {"error_rate_500": 0.0}),
    "timeouts": ({"latency_ms": 4000}, {"latency_ms": 0}),
    "429": ({"rate_limit_429": 10 ** 9, "retry_after_s": 1}, {"rate_limit_429": 0}),
    "rate_limited": ({"graphql_rate_limited": 10 ** 9, "retry_after_s": 1},
                     {"graphql_rate_limited": 0}),
    "outage": ({"outage": True}, {"outage": False}),
    # a partial outage: component lookups fail (500), change orders still answer
    "partial": ({"failing_lookups": {"component"}}, {"failing_lookups": set()}),
}
DELETE_EVENTS = ("ITEM_DELETE", "CO_DELETE")  # the run deletes the resource in the double first
STATE_KINDS = ("item", "change_order")
# output statuses that write a tombstone: a delete, and a snapshot's ping answered not_found
TOMBSTONE_STATUSES = ("deleted", "snapshot_not_found")
MIN_WINDOW_REQUESTS = 5
AIM_S = 5.0  # longest wait for an open transaction to kill the enricher in
GRAPHQL_TIMEOUT_MS = 3000   # below the "timeouts" window's latency
BRIDGE_ACK_TIMEOUT_MS = 3000
WEBHOOK_ID = "webhook_fault"
# `duro-enricher snapshot`: its pings' event per kind (their outputs go to these events'
# topics), and the counters of its /metrics that say how far a process got
SNAPSHOT_EVENT = {"item": "ITEM_SNAPSHOT", "change_order": "CO_SNAPSHOT"}
SNAPSHOT_COUNTERS = ("duro_snapshot_ids_written_total", "duro_snapshot_ids_swept_total")
RECONCILE_RUNS = 2  # the reconcile, then once more (which must write nothing)


@dataclass
class FaultConfig:
    events: int = 20000
    rate: float = 100.0                 # events per second (first deliveries)
    scale: float = 0.01                 # Duro's retry schedule x scale
    repeat_probability: float = 0.1
    invalid_every: int = 97             # one signed-but-invalid body in every N events
    unknown_every: int = 89             # one event of an unknown type in every N events
    bridge_kills: int = 3
    enricher_kills: int = 3
    broker_restarts: int = 1
    windows: tuple = ("500s", "timeouts", "429", "rate_limited", "outage", "partial")
    window_s: float = 12.0              # GraphQL failure window (shorter if the plan is tight)
    raw_partitions: int = 6
    output_partitions: int = 3
    sender_workers: int = 32
    sender_timeout_s: float = 10.0
    seed: int = 1
    components: int = 1000
    change_orders: int = 200
    progress_s: float = 5.0
    drain_timeout_s: float = 600.0
    graphql_max_attempts: int = 8
    fault_span: tuple = (0.05, 0.9)     # faults happen in this part of the sending time
    # snapshot phases (`duro-enricher snapshot --id phaseN`) while the webhooks flow
    snapshot_phases: int = 2
    snapshot_kills: int = 2             # kill -9s of each phase's snapshot (random moments)
    snapshot_rate: int = 150            # DURO_SNAPSHOT_RATE, ids per second
    snapshot_page_size: int = 50        # DURO_SNAPSHOT_PAGE_SIZE (ids per transaction)
    snapshot_deletes: int = 8           # resources deleted without a webhook before a phase
    snapshot_span: tuple = (0.15, 0.6)  # the phases start in this part of the sending time
    snapshot_max_processes: int = 25    # per phase; then it is given up (FAIL)
    snapshot_phase_timeout_s: float = 600.0
    # the bridge outage longer than Duro's retry span, then `duro-enricher reconcile`
    bridge_outage: bool = True
    outage_at: float = 0.6              # it starts at this part of the sending time
    outage_give_up_s: float = 5.0       # the events of its first seconds are given up
    outage_scale: float = 0.0002        # their retry schedule: Duro's x this (5.6 s in all)
    outage_lost_answers: int = 3        # events answered 2xx that Duro takes for time-outs
    log_shape: str = "object"           # the double's webhook log metadata (LOG_SHAPES)
    assignment: str = "eager"           # the enricher's DURO_ASSIGNMENT
    reconcile_timeout_s: float = 180.0

    @property
    def send_s(self) -> float:
        return self.events / self.rate

    @property
    def give_up_after_s(self) -> float:
        return sum(SCHEDULE_S) * self.scale

    @property
    def outage_span_s(self) -> float:
        """The retry span of the outage's events (Duro's schedule x outage_scale)."""
        return sum(SCHEDULE_S) * self.outage_scale


# ---------------------------------------------------------------- events

def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def invalid_body(kind: str, rng: random.Random, comps: list[str]) -> bytes:
    """A signed-but-invalid body of the given kind; unique (fresh id or nonce)."""
    eid = new_event_id(rng)
    now = rfc3339()
    comp = rng.choice(comps)
    base = {"id": eid, "webhook_id": WEBHOOK_ID, "event": "ITEM_UPDATE", "created_at": now,
            "data": {"item_id": comp}}
    if kind == "not-json":
        return f"not JSON {{ {rng.getrandbits(64):016x}".encode()
    if kind == "item-without-item_id":
        return _dumps(dict(base, data={"note": "no item id"}))
    if kind == "co-without-change_order_id":
        return _dumps(dict(base, event="CO_OPEN", data={"resolution": "approved"}))
    if kind == "created_at-not-rfc3339":
        return _dumps(dict(base, created_at="yesterday at noon"))
    if kind == "id-number":
        return _dumps(dict(base, id=rng.getrandbits(48)))
    if kind == "duplicate-keys":
        return (b'{"id":"' + eid.encode() + b'","webhook_id":"' + WEBHOOK_ID.encode()
                + b'","event":"ITEM_UPDATE","created_at":"' + now.encode()
                + b'","data":{"item_id":"' + comp.encode() + b'"},"data":{"item_id":"'
                + rng.choice(comps).encode() + b'"}}')
    if kind == "deep-json":
        deep = 0
        for _ in range(100):
            deep = [deep]
        return _dumps(dict(base, data={"item_id": comp, "deep": deep}))
    if kind == "event-null":
        return _dumps(dict(base, event=None))
    if kind == "data-array":
        return _dumps(dict(base, data=[comp]))
    raise ValueError(kind)


def event_stream(cfg: FaultConfig, data, template: str):
    """Yields (event dict or body bytes, expected route, kind) lazily, so that created_at
    is the time of sending. Route: ("topic", name) or ("dlq", "invalid-payload")."""
    rng = random.Random(cfg.seed)
    comps, cos = data.component_ids(), data.change_order_ids()
    names, weights = list(DEFAULT_MIX), list(DEFAULT_MIX.values())
    n_invalid = 0
    for i in range(cfg.events):
        if cfg.invalid_every and i % cfg.invalid_every == cfg.invalid_every // 2:
            kind = INVALID_KINDS[n_invalid % len(INVALID_KINDS)]
            n_invalid += 1
            yield invalid_body(kind, rng, comps), ("dlq", "invalid-payload"), kind
            continue
        if cfg.unknown_every and i % cfg.unknown_every == cfg.unknown_every // 3:
            ev = {"id": new_event_id(rng), "event": UNKNOWN_EVENT, "created_at": rfc3339(),
                  "data": {"item_id": rng.choice(comps)}}
            yield ev, ("topic", enrichertest.topic_for(template, UNKNOWN_EVENT)), UNKNOWN_EVENT
            continue
        name = rng.choices(names, weights)[0]
        if name.startswith("ITEM_"):
            ev = item_event(name, rng.choice(comps), rng=rng)
        else:
            ev = co_event(name, rng.choice(cos), data=data, rng=rng)
        yield ev, ("topic", enrichertest.topic_for(template, name)), name


def resource_of(ev: dict) -> tuple[str, str] | None:
    """(state kind, id) a known event names: ITEM_* an item, CO_* a change order."""
    name, data = ev.get("event"), ev.get("data") or {}
    if name.startswith("ITEM_"):
        return "item", data["item_id"]
    if name.startswith("CO_"):
        return "change_order", data["change_order_id"]
    return None


# ---------------------------------------------------------------- Kafka helpers

class OffsetProbe:
    """The raw topic's end offsets and the enricher group's committed offsets, through
    one long-lived consumer that never joins the group (quiet while the broker restarts)."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int):
        self.topic, self.partitions = topic, partitions
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "enable.auto.commit": False, "socket.timeout.ms": 5000,
                           "log_level": 0})
        self.lock = threading.Lock()

    def end(self, timeout: float = 5.0) -> dict[int, int]:
        with self.lock:
            return {p: self.c.get_watermark_offsets(TopicPartition(self.topic, p),
                                                    timeout=timeout, cached=False)[1]
                    for p in range(self.partitions)}

    def committed(self, timeout: float = 5.0) -> dict[int, int]:
        with self.lock:
            tps = self.c.committed([TopicPartition(self.topic, p)
                                    for p in range(self.partitions)], timeout=timeout)
            return {tp.partition: tp.offset for tp in tps}

    def close(self) -> None:
        with self.lock:
            self.c.close()


def _quiet_handle_error(request, client_address) -> None:
    """The double's socketserver prints a traceback when a client resets its connection,
    which a killed enricher (or one timing out a hung request) does all the time here."""
    exc = sys.exc_info()[1]
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, TimeoutError)):
        return
    traceback.print_exc()


def free_port() -> int:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- the run

class Log:
    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, msg: str) -> None:
        now = dt.datetime.now(dt.timezone.utc).strftime("%H:%M:%S")
        with self._lock:
            print(f"[fault {now} +{time.monotonic() - self.t0:7.1f}s] {msg}", file=self.out,
                  flush=True)


class FaultRun:
    """One scenario. ``run()`` returns the ledger (a dict); every process it started is
    killed by ``close()`` (called by ``run()`` itself, also on failure)."""

    def __init__(self, cfg: FaultConfig, broker: kafkatest.Broker, workdir: Path, log=None):
        self.cfg = cfg
        self.broker = broker
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = log or Log()
        self.prefix = kafkatest.unique_name("fault")
        self.raw = f"{self.prefix}.raw"
        self.dlq = f"{self.prefix}.dlq"
        self.template = f"{self.prefix}.events.{{event}}"
        self.group = f"{self.prefix}-group"
        self.txn_id = f"{self.prefix}-enricher"
        self.events_names = list(DEFAULT_MIX) + [UNKNOWN_EVENT]
        self.output_topics = [enrichertest.topic_for(self.template, e) for e in self.events_names]
        self.snapshot_topics = [enrichertest.topic_for(self.template, e)
                                for e in SNAPSHOT_EVENT.values()]
        self.secret = bridgetest.new_secret()
        self.api_key = "duro-api-key-" + secrets.token_hex(16)
        self.double: DuroDouble | None = None
        self.probe: OffsetProbe | None = None
        self.lso = None
        self.sender: WebhookSender | None = None
        self.bridge: bridgetest.Bridge | None = None
        self.enricher: enrichertest.Enricher | None = None
        self.bridge_port = 0
        self.expected: dict[str, tuple] = {}
        self.kinds: dict[str, str] = {}
        self.stop = threading.Event()
        self.proc_lock = threading.RLock()
        self.threads: list[threading.Thread] = []
        self.counts = collections.Counter()
        self.unplanned: list[dict] = []
        self.windows: list[dict] = []
        self.timeline: list[dict] = []
        self.current_window = None
        self.t0 = time.monotonic()
        self.thread_errors: list[str] = []
        self.feeder_done = threading.Event()
        # the state check: every (kind, id) a known event named, and the documents of the
        # resources the run deleted in the double (as the enricher's query selected them
        # just before the deletion)
        self.named: set[tuple[str, str]] = set()
        self.deleted_docs: dict[tuple[str, str], dict | None] = {}
        self.delete_lock = threading.Lock()
        # the snapshot phases: their tallies (for the ledger), the sets the final check
        # needs (not in the ledger), the running process (killed by close())
        self.eenv: dict = {}
        self.snap_phases: list[dict] = []
        self.snap_sets: dict[str, dict] = {}
        self.snap_proc: subprocess.Popen | None = None
        self.snap_stop = threading.Event()
        self.snap_lso = None
        self.current_snapshot = None
        # the bridge outage and the reconcile: the webhook registered in the double (its
        # url is the bridge's), the sender of the outage's events (a short retry span),
        # whether the feeder sends through it now, the bridge being down on purpose (the
        # supervisor and the kills leave it alone), the phase's tally, the reconcile runs
        self.webhook_id = WEBHOOK_ID
        self.webhook_url = ""
        self.outage_sender: WebhookSender | None = None
        self.outage_route = False
        self.outage_ids: set[str] = set()
        # the broker is up (cleared while _restart_broker runs), and the feeder may send
        # (cleared while the outage waits for a slow broker restart: the events it holds
        # back are what the give-up window needs)
        self.broker_up = threading.Event()
        self.broker_up.set()
        self.feed_open = threading.Event()
        self.feed_open.set()
        self.bridge_down = threading.Event()
        self.bridge_restart = threading.Event()  # the supervisor starts it and clears both
        self.supervisor_wake = threading.Event()
        self.bridge_back_mono: float | None = None
        self.outage: dict | None = None
        self.reconciles: list[dict] = []
        self.rec_proc: subprocess.Popen | None = None

    # -- set-up -------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        b = self.broker.bootstrap
        enrichertest.create_topics(b, [self.raw], partitions=cfg.raw_partitions)
        enrichertest.create_topics(b, [self.dlq] + self.output_topics + self.snapshot_topics,
                                   partitions=cfg.output_partitions)
        self.state_template = f"{self.prefix}.state.{{kind}}"
        self.progress = f"{self.prefix}.progress"
        enrichertest.create_state_topics(b, self.state_template, self.progress,
                                         partitions=cfg.output_partitions)
        self.log(f"topics: {self.raw} ({cfg.raw_partitions} partitions), {self.dlq}, "
                 f"{len(self.output_topics)} output topics ({self.template})")
        self.probe = OffsetProbe(b, self.group, self.raw, cfg.raw_partitions)
        self.lso = enrichertest.LsoProbe(b, [enrichertest.topic_for(self.template, "ITEM_UPDATE")])
        if cfg.snapshot_phases:  # the bridge is not transactional: an open one is a snapshot's
            self.snap_lso = enrichertest.LsoProbe(b, [self.raw])
            # one partition only, so that a look takes milliseconds (a snapshot's
            # transaction is open for about as long): a page of pings spans them all
            self.snap_lso.tps = self.snap_lso.tps[:1]
        self.double = DuroDouble(port=0, api_key=self.api_key, seed=cfg.seed,
                                 components=cfg.components, change_orders=cfg.change_orders)
        self.double.start()
        self.double._server.handle_error = _quiet_handle_error  # see the function
        self.log(f"duro double: {self.double.url}")
        self.bridge_port = free_port()
        self.webhook_url = f"http://127.0.0.1:{self.bridge_port}{bridgetest.WEBHOOK_PATH}"
        if cfg.bridge_outage:
            # Duro's side of the reconcile: the webhook (its url is the bridge's, as
            # DURO_RECONCILE_URL says) and its delivery log of every attempt
            self.double.configure(log_shape=cfg.log_shape)
            hook = self.double.webhook_create({"name": "fault run", "url": self.webhook_url,
                                               "events": list(DEFAULT_MIX)})
            self.webhook_id = hook["id"]
            self.log(f"webhook {self.webhook_id} -> {self.webhook_url}; delivery log "
                     f"metadata: {cfg.log_shape}")
        benv = bridgetest.bridge_env(
            b, self.raw, self.secret, DURO_BRIDGE_LISTEN=f"127.0.0.1:{self.bridge_port}",
            DURO_BRIDGE_ACK_TIMEOUT_MS=BRIDGE_ACK_TIMEOUT_MS, DURO_BRIDGE_DRAIN_DELAY_MS=200)
        d = self.workdir / "bridge"
        d.mkdir(exist_ok=True)
        self.bridge = bridgetest.Bridge(env=benv, args=[], workdir=d, secrets_=[self.secret])
        self.bridge.start(timeout=30)
        self.bridge.wait_ready(timeout=60)
        self.log(f"duro-bridge: webhooks on 127.0.0.1:{self.bridge.port} "
                 f"({bridgetest.bridge_bin()})")
        eenv = enrichertest.enricher_env({
            "KAFKA_BOOTSTRAP_SERVERS": b,
            "DURO_RAW_TOPIC": self.raw,
            "DURO_DLQ_TOPIC": self.dlq,
            "DURO_TOPIC_TEMPLATE": self.template,
            "DURO_STATE_TOPIC_TEMPLATE": self.state_template,
            "DURO_PROGRESS_TOPIC": self.progress,
            "DURO_ENRICHER_GROUP": self.group,
            "DURO_ENRICHER_ADMIN_LISTEN": "127.0.0.1:0",
            "DURO_TRANSACTIONAL_ID": self.txn_id,
            "DURO_API_URL": self.double.url,
            "DURO_API_KEY": self.api_key,
            "DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS": "3000",
            "DURO_RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
            "DURO_ASSIGNMENT": cfg.assignment,
            "DURO_GRAPHQL_MAX_ATTEMPTS": str(cfg.graphql_max_attempts),
            "DURO_GRAPHQL_TIMEOUT_MS": str(GRAPHQL_TIMEOUT_MS),
        })
        self.eenv = eenv
        d = self.workdir / "enricher"
        d.mkdir(exist_ok=True)
        self.enricher = enrichertest.Enricher(env=eenv, args=[], workdir=d, name="enricher",
                                              secrets_=[self.api_key])
        self.enricher.start(timeout=60)
        self.enricher.wait_assigned(timeout=60)
        self.log(f"duro-enricher: transactional id {self.txn_id} ({enrichertest.enricher_bin()})")
        self.sender = WebhookSender(
            self.webhook_url, self.secret,
            webhook_id=self.webhook_id, scale=cfg.scale, workers=cfg.sender_workers,
            timeout_s=cfg.sender_timeout_s, repeat_probability=cfg.repeat_probability,
            seed=cfg.seed, delivery_log=self.double if cfg.bridge_outage else None)
        self.log(f"sender: {cfg.events} events at {cfg.rate}/s, repeat p={cfg.repeat_probability}, "
                 f"retry schedule x{cfg.scale} = "
                 f"{', '.join(f'{s * cfg.scale:g}s' for s in SCHEDULE_S)} "
                 f"(gives up after {cfg.give_up_after_s:.0f} s)")

    # -- threads --------------------------------------------------------------
    def _thread(self, fn, name: str) -> threading.Thread:
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001
                self.thread_errors.append(f"{name}: {e!r}\n{traceback.format_exc()}")
                self.log(f"thread {name} failed: {e!r}")
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        self.threads.append(t)
        return t

    def _feeder(self) -> None:
        cfg = self.cfg
        t0 = time.monotonic()
        try:
            for i, (ev, route, kind) in enumerate(event_stream(cfg, self.double.data,
                                                               self.template)):
                if not self.feed_open.is_set():  # held by the outage: the pace resumes after
                    held = time.monotonic()
                    while not self.feed_open.wait(0.05):
                        if self.stop.is_set():
                            return
                    t0 += time.monotonic() - held
                delay = t0 + i / cfg.rate - time.monotonic()
                # pacing of the load generator, not synchronisation
                if delay > 0 and self.stop.wait(delay):
                    return
                if self.stop.is_set():
                    return
                res = resource_of(ev) if kind in DEFAULT_MIX else None
                if res is not None:
                    self.named.add(res)
                    if kind in DELETE_EVENTS:
                        self._delete_in_double(*res)
                if self.outage_route and isinstance(ev, dict):
                    # the outage's first seconds: a well-formed event, on the short retry
                    # schedule, so Duro gives up on it (signed-but-invalid bodies stay on
                    # the main schedule: Duro's log could not hold them as Duro sent them)
                    eid = self.outage_sender.send(ev)
                    self.outage_ids.add(eid)
                else:
                    eid = self.sender.send(ev)
                self.expected[eid] = route
                self.kinds[eid] = kind
        finally:
            self.feeder_done.set()

    def _delete_in_double(self, kind: str, rid: str, webhook: bool = True) -> None:
        """Duro deletes the resource, then sends the webhook: the double loses it before
        the delete event is sent (so later events of it are answered not_found).
        webhook=False: a deletion whose webhook is lost (the snapshot's sweep has to
        find it)."""
        with self.delete_lock:  # the feeder and the snapshot phases both delete
            if (kind, rid) not in self.deleted_docs:
                self.deleted_docs[(kind, rid)] = enrichertest.expected_document(self.double,
                                                                                kind, rid)
            self.double.data.delete(rid)
        self.counts["double_deletes" if webhook else "silent_deletes"] += 1

    def expected_doc(self, kind: str, rid: str) -> dict | None:
        """The document the enricher's query selects of the resource: as it was before
        the run deleted it, else as the double has it now (documents never change here)."""
        if (kind, rid) in self.deleted_docs:
            return self.deleted_docs[(kind, rid)]
        return enrichertest.expected_document(self.double, kind, rid)

    def _supervise(self) -> None:
        """Restarts a program that exited by itself (an orchestrator's job), and the
        bridge at the end of the bridge outage when asked to (bridge_restart): from this
        thread, which lives as long as the run, since a child of ours dies with the
        thread that started it (pdeathsig)."""
        while not self.stop.is_set():
            self.supervisor_wake.wait(0.5)  # a poll, or woken for the outage's end
            self.supervisor_wake.clear()
            if self.stop.is_set():
                break
            with self.proc_lock:
                if self.bridge_restart.is_set():
                    self._start("bridge")
                    self.bridge_back_mono = time.monotonic()
                    self.bridge_down.clear()
                    self.bridge_restart.clear()
                for what in ("bridge", "enricher"):
                    p = getattr(self, what)
                    if p is None or p.proc is None or p.proc.poll() is None:
                        continue
                    if what == "bridge" and self.bridge_down.is_set():
                        continue  # the outage: stopped on purpose
                    rc = p.proc.returncode
                    tail = p.stderr_text().splitlines()[-15:]
                    self.unplanned.append({"program": what, "rc": rc, "at_s": self._now(),
                                           "log": str(p.stderr_path), "tail": tail})
                    self.counts[f"{what}_unplanned_exits"] += 1
                    self.log(f"!! {what} exited by itself with {rc} (log {p.stderr_path}); "
                             f"restarting it. Last lines:\n    " + "\n    ".join(tail[-6:]))
                    self._start(what)

    def _progress(self) -> None:
        while not self.stop.wait(self.cfg.progress_s):
            self.log(self._progress_line())

    def _progress_line(self) -> str:
        s = self._sender_summary()
        parts = [f"sent {s['sent']}/{self.cfg.events} acked {s['acknowledged']} "
                 f"gave_up {s['gave_up']} pending {s['pending']} attempts {s['attempts']} "
                 f"(non-2xx {s['failures']})"]
        try:
            com = self.probe.committed()  # first: the end read after it is not older
            end = self.probe.end()
            raw_n = sum(end.values())
            com_n = sum(max(0, com.get(p, 0)) for p in end)
            parts.append(f"raw {raw_n} committed {com_n} lag {raw_n - com_n}")
        except Exception as e:  # noqa: BLE001 - the broker may be restarting
            parts.append(f"kafka unavailable ({type(e).__name__})")
        up = []
        for what in ("bridge", "enricher"):
            p = getattr(self, what)
            up.append(f"{what} {'up' if p and p.proc and p.proc.poll() is None else 'DOWN'}")
        parts.append(", ".join(up))
        parts.append(f"kills b{self.counts['bridge_kills']} e{self.counts['enricher_kills']} "
                     f"broker restarts {self.counts['broker_restarts']}")
        if self.current_window:
            parts.append(f"graphql window: {self.current_window}")
        if self.current_snapshot:
            parts.append(f"snapshot {self.current_snapshot}")
        if self.bridge_down.is_set():
            parts.append("BRIDGE OUTAGE" + (" (give-up window)" if self.outage_route else ""))
        return " | ".join(parts)

    # -- process control ------------------------------------------------------
    def _now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def _start(self, what: str) -> None:
        p = getattr(self, what)
        try:
            p.start(timeout=60)
        except Exception as e:  # noqa: BLE001 - the supervisor tries again
            self.log(f"{what} start: {e}".splitlines()[0])
            return
        try:
            if what == "bridge":
                p.wait_ready(timeout=60)
            else:
                p.wait_assigned(timeout=60)
        except Exception as e:  # noqa: BLE001 - reported; the run goes on
            self.log(f"{what} restarted but not ready yet: {str(e).splitlines()[0]}")

    def _open_txn(self) -> list:
        try:
            return self.lso.open_partitions()
        except Exception:  # noqa: BLE001 - broker busy: no evidence either way
            return []

    def _kill(self, what: str) -> None:
        """kill -9 and restart at once. An enricher kill is aimed (for at most
        AIM_S) at a moment when one of its transactions is open on the busiest output
        topic (last stable offset below the high watermark). A bridge kill due during
        the bridge outage waits for its end."""
        if what == "enricher":
            deadline = time.monotonic() + AIM_S
            while time.monotonic() < deadline and not self._open_txn():
                self.stop.wait(0.01)  # bounded poll of the offsets
        waited = False
        deadline = time.monotonic() + self.cfg.outage_give_up_s + self.cfg.outage_span_s + 120
        while True:
            if what == "bridge" and self.bridge_down.is_set():
                if not waited:
                    self.log("kill -9 bridge: due during the bridge outage; waiting for its end")
                    waited = True
                if self.stop.wait(0.2):  # bounded: the outage's length and some
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError("kill -9 bridge: the bridge outage did not end")
                continue
            with self.proc_lock:
                if what == "bridge" and self.bridge_down.is_set():
                    continue  # the outage began meanwhile
                self._kill_now(what)
                return

    def _kill_now(self, what: str) -> None:
        aimed = ""
        p = getattr(self, what)
        t = time.monotonic()
        if what == "enricher":
            self._note_rss(p)
        p.kill()  # SIGKILL
        if what == "enricher":
            if self._open_txn():  # still open after the process died: killed inside
                self.counts["enricher_kills_in_txn"] += 1
                aimed = " (inside an open transaction)"
        self.counts[f"{what}_kills"] += 1
        self._start(what)
        self.log(f"kill -9 {what} #{self.counts[f'{what}_kills']}{aimed}; back in "
                 f"{time.monotonic() - t:.1f}s")

    def _note_rss(self, p) -> None:
        """Keeps the largest peak RSS (VmHWM) an enricher process reached."""
        try:
            for ln in open(f"/proc/{p.proc.pid}/status"):
                if ln.startswith("VmHWM:"):
                    kib = int(ln.split()[1])
                    self.counts["enricher_peak_rss_kib"] = max(
                        self.counts["enricher_peak_rss_kib"], kib)
        except (OSError, ValueError, AttributeError):
            pass  # gone already: nothing to read

    def _rebuilds(self) -> dict:
        """The dedupe rebuilds every enricher process logged: how each set was made
        ready after an assignment, and the reading times."""
        how = collections.Counter()
        ms, records = [], []
        for f in sorted((self.workdir / "enricher").glob("enricher-*.stderr")):
            for ln in f.read_text(errors="replace").splitlines():
                if '"dedupe set of ' not in ln:
                    continue
                m = re.search(r"rebuilt from offsets \d+\.\.\d+: \d+ keys, (\d+) records "
                              r"read in (\d+) ms", ln)
                if m:
                    how["read"] += 1
                    records.append(int(m[1]))
                    ms.append(int(m[2]))
                elif " kept: " in ln:
                    how["kept"] += 1
                elif " empty: " in ln:
                    how["empty"] += 1
        ms.sort()
        return {"by_how": dict(how), "read_ms_median": ms[len(ms) // 2] if ms else None,
                "read_ms_max": ms[-1] if ms else None,
                "read_records_max": max(records) if records else None}

    def _restart_broker(self) -> None:
        t = time.monotonic()
        self.log("restarting the broker (same port, same data)")
        self.broker_up.clear()
        try:
            self.broker.restart()
        finally:
            self.broker_up.set()
        self.counts["broker_restarts"] += 1
        self.log(f"broker back after {time.monotonic() - t:.1f}s")

    def _window(self, name: str, duration: float) -> None:
        start, end = WINDOWS[name]
        t = self._now()
        self.current_window = name
        self.double.configure(**start)
        self.log(f"graphql window '{name}' opens for {duration:.0f}s: {start}")
        base = self.double.stats()["requests_total"]
        t_open = time.monotonic()
        try:
            # the window lasts `duration` and until MIN_WINDOW_REQUESTS GraphQL requests
            # met it (so that it is felt even in a short run); at most 4 x duration
            while not self.stop.wait(0.2):
                hit = self.double.stats()["requests_total"] - base
                held = time.monotonic() - t_open
                if (held >= duration and hit >= MIN_WINDOW_REQUESTS) or held >= 4 * duration:
                    break
        finally:
            self.double.configure(**end)
            self.current_window = None
        hit = self.double.stats()["requests_total"] - base
        self.windows.append({"name": name, "start_s": t, "end_s": self._now(), "knobs": start,
                             "graphql_requests": hit})
        self.log(f"graphql window '{name}' closed after {time.monotonic() - t_open:.1f}s; "
                 f"{hit} GraphQL requests met it")

    def plan(self) -> tuple[list[tuple[float, str, str | None]], float]:
        """([(due second, action, argument)], slot seconds): kills, broker restarts and
        windows interleaved evenly over the fault span of the sending time."""
        cfg = self.cfg
        queues = {"bridge": ["bridge"] * cfg.bridge_kills,
                  "window": list(cfg.windows),
                  "enricher": ["enricher"] * cfg.enricher_kills}
        seq: list[tuple[str, str | None]] = []
        while any(queues.values()):
            for k in ("bridge", "window", "enricher"):
                if queues[k]:
                    v = queues[k].pop(0)
                    seq.append(("window", v) if k == "window" else ("kill", v))
        for j in range(cfg.broker_restarts):  # in the middle (and spread out if several)
            seq.insert(min(len(seq), (len(seq) * (j + 1)) // (cfg.broker_restarts + 1) + j),
                       ("broker", None))
        lo, hi = cfg.fault_span
        n = len(seq)
        slot = (hi - lo) * cfg.send_s / max(1, n)
        return [(lo * cfg.send_s + i * slot, a, v) for i, (a, v) in enumerate(seq)], slot

    def _faults(self) -> None:
        plan, slot = self.plan()
        window_s = max(2.0, min(self.cfg.window_s, 0.7 * slot))
        self.log("fault plan: " + ", ".join(f"{t:.0f}s {a}{'=' + v if v else ''}"
                                            for t, a, v in plan))
        send_t0 = self.send_t0
        for due, action, arg in plan:
            wait = send_t0 + due - time.monotonic()
            if wait > 0 and self.stop.wait(wait):  # the plan's schedule (pacing)
                return
            self.timeline.append({"at_s": self._now(), "action": action, "arg": arg})
            if action == "kill":
                self._kill(arg)
            elif action == "broker":
                self._restart_broker()
            else:
                self._window(arg, window_s)

    # -- snapshot phases ------------------------------------------------------------
    def snapshot_starts(self) -> list[float]:
        """The seconds (from the start of the sending) the snapshot phases are due at:
        evenly over snapshot_span of the sending time."""
        cfg = self.cfg
        lo, hi = cfg.snapshot_span
        n = cfg.snapshot_phases
        return [(lo + (hi - lo) * i / max(1, n - 1)) * cfg.send_s for i in range(n)]

    def _snapshots(self) -> None:
        """The snapshot phases, one after the other, each at its due time at the
        earliest (later if the one before took longer)."""
        for i, due in enumerate(self.snapshot_starts()):
            wait = self.send_t0 + due - time.monotonic()
            if wait > 0 and self.snap_stop.wait(wait):  # the plan's schedule (pacing)
                return
            if self.snap_stop.is_set():
                return
            try:
                self._snapshot_phase(i)
            finally:
                self.current_snapshot = None

    def _library(self) -> dict[str, set]:
        return {"item": set(self.double.data.component_ids()),
                "change_order": set(self.double.data.change_order_ids())}

    def _silent_deletes(self, n: int, rng: random.Random) -> list[tuple[str, str]]:
        """Deletes n resources in the double without a webhook (Duro's webhook lost),
        chosen among those with a live committed state record that are still in the
        double: the phase's sweep has to tombstone them."""
        if n <= 0:
            return []
        live: set[tuple[str, str]] = set()
        for attempt in range(3):
            try:
                for kind in STATE_KINDS:
                    last: dict[bytes, bool] = {}
                    for r in kafkatest.read_all(self.broker.bootstrap,
                                                self.state_template.replace("{kind}", kind),
                                                timeout=30):
                        last[r.key] = r.value is not None
                    live |= {(kind, k.decode()) for k, alive in last.items() if k and alive}
                break
            except Exception as e:  # noqa: BLE001 - the broker may be restarting
                self.log(f"snapshot: reading the state topics for the deletions: {e!r}"
                         .splitlines()[0])
                live = set()
                self.snap_stop.wait(2.0)  # bounded: 3 attempts
        lib = self._library()
        cands = sorted(r for r in live if r[1] in lib[r[0]] and r not in self.deleted_docs)
        chosen = sorted(rng.sample(cands, min(n, len(cands))))
        for kind, rid in chosen:
            self._delete_in_double(kind, rid, webhook=False)
        return chosen

    def _snapshot_seen(self, port: int) -> int | None:
        """Ids (written + swept) this snapshot process committed, from its /metrics."""
        try:
            r = http_request(port, "GET", "/metrics", timeout=1.0)
            if r.status != 200:
                return None
            m = Metrics(r.body.decode())
            return int(sum(v for name in SNAPSHOT_COUNTERS
                           for v in m.by_name(name).values()))
        except (OSError, ValueError):
            return None  # not listening yet, or gone

    def _snapshot_process(self, run: str, ph: dict, kill_after: int | None,
                          jitter_s: float, deadline: float, aim: bool = False) -> dict:
        """One `duro-enricher snapshot --id run --json` with the enricher's environment.
        kill_after: kill -9 it once its /metrics say it committed that many ids, plus
        jitter_s seconds (a random moment: mostly while it paces between two pages),
        and with aim, at the first moment after that (within AIM_S) when one of its
        transactions is open on the raw topic. Returns what became of it."""
        cfg = self.cfg
        port = free_port()
        env = dict(self.eenv, DURO_SNAPSHOT_RATE=str(cfg.snapshot_rate),
                   DURO_SNAPSHOT_PAGE_SIZE=str(cfg.snapshot_page_size),
                   DURO_GRAPHQL_RATE="0", DURO_SNAPSHOT_ADMIN_LISTEN=f"127.0.0.1:{port}")
        ph["processes"] += 1
        base = self.workdir / "snapshot" / f"{run}-{ph['processes']}"
        res = {"n": ph["processes"], "rc": None, "killed": False, "in_txn": False,
               "seen": 0, "hung": False, "aimed_s": None, "stdout": f"{base}.stdout",
               "stderr": f"{base}.stderr"}
        t0 = time.monotonic()
        with open(f"{base}.stdout", "wb") as out, open(f"{base}.stderr", "wb") as err:
            with self.proc_lock:
                if self.snap_stop.is_set():
                    return res
                p = subprocess.Popen([enrichertest.enricher_bin(), "snapshot", "--id", run,
                                      "--json"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err, preexec_fn=pdeathsig)
                self.snap_proc = p
        try:
            kill_at = None
            while p.poll() is None:
                if self.snap_stop.is_set() or time.monotonic() > deadline:
                    res["hung"] = not self.snap_stop.is_set()
                    p.kill()
                    break
                if kill_after is not None:
                    seen = self._snapshot_seen(port)
                    res["seen"] = max(res["seen"], seen or 0)
                    if kill_at is None and seen is not None and seen >= kill_after:
                        kill_at = time.monotonic() + jitter_s
                    if kill_at is not None and time.monotonic() >= kill_at:
                        aim_t0 = time.monotonic()
                        while aim and time.monotonic() < aim_t0 + AIM_S and p.poll() is None:
                            try:
                                if self.snap_lso.open_partitions():
                                    res["aimed_s"] = round(time.monotonic() - aim_t0, 2)
                                    break
                            except Exception:  # noqa: BLE001 - broker busy; try again
                                pass
                        with self.proc_lock:
                            if p.poll() is None:
                                p.kill()  # SIGKILL
                                res["killed"] = True
                        break
                self.snap_stop.wait(0.05)  # bounded poll of the process and its metrics
            res["rc"] = p.wait(30)
            if res["killed"]:
                try:  # its transaction still open after it died: killed inside it
                    res["in_txn"] = bool(self.snap_lso.open_partitions())
                except Exception:  # noqa: BLE001 - broker busy: no evidence either way
                    pass
        finally:
            with self.proc_lock:
                if p.poll() is None:
                    p.kill()
                    p.wait(30)
                self.snap_proc = None
        res["seconds"] = round(time.monotonic() - t0, 1)
        return res

    def _snapshot_phase(self, i: int) -> None:
        """One snapshot run (id phase<i+1>): resources deleted without a webhook first,
        then the snapshot, kill -9'd at random moments (cfg.snapshot_kills times) and
        rerun with the same id until it exits 0; then once more, which must say it
        finished earlier. Exit 1 (a failure, e.g. the broker restarting) is rerun too."""
        cfg = self.cfg
        run = f"phase{i + 1}"
        rng = random.Random(cfg.seed * 7919 + i)
        ph = {"run": run, "start_s": self._now(), "end_s": None, "processes": 0, "kills": 0,
              "kills_wanted": cfg.snapshot_kills, "kills_inside_a_transaction": 0,
              "failed_exits": [], "summary": None, "confirm": None, "finished": False,
              "problems": []}
        self.snap_phases.append(ph)
        self.current_snapshot = f"{run} (deletions)"
        (self.workdir / "snapshot").mkdir(exist_ok=True)
        silent = self._silent_deletes(cfg.snapshot_deletes, rng)
        lib0 = self._library()
        lists0 = self.double.stats()["list_requests"]
        ph["silent_deletes"] = len(silent)
        ph["library_at_start"] = sum(len(v) for v in lib0.values())
        self.log(f"snapshot {run}: {len(silent)} resources deleted in the double without a "
                 f"webhook; library {ph['library_at_start']} resources; starting")
        total = ph["library_at_start"] + len(silent)  # ids the run will write, about
        done = 0  # ids the killed processes were seen to commit (a lower bound)
        deadline = time.monotonic() + cfg.snapshot_phase_timeout_s
        page = cfg.snapshot_page_size
        while not self.snap_stop.is_set():
            if ph["processes"] >= cfg.snapshot_max_processes or time.monotonic() > deadline:
                ph["problems"].append(f"not finished after {ph['processes']} processes and "
                                      f"{self._now() - ph['start_s']:.0f}s")
                break
            kill_after, jitter = None, 0.0
            hi = min(total - 2 * page, int(0.9 * total))  # some resources go meanwhile
            if ph["kills"] < cfg.snapshot_kills and hi >= done + page:
                # a random moment between its first page and its last ones; every second
                # kill aimed at an open transaction (one page is written in one)
                kill_after = rng.randint(done + page, hi) - done
                jitter = rng.uniform(0.0, 0.3)
            self.current_snapshot = f"{run} process {ph['processes'] + 1}"
            aim = ph["kills"] % 2 == 1
            res = self._snapshot_process(run, ph, kill_after, jitter, deadline, aim=aim)
            if res["killed"]:
                ph["kills"] += 1
                ph["kills_inside_a_transaction"] += res["in_txn"]
                done += res["seen"]
                aimed = ("" if not aim else
                         f", aimed: a transaction seen open after {res['aimed_s']}s"
                         if res["aimed_s"] is not None else f", aimed: none open in {AIM_S}s")
                self.log(f"kill -9 snapshot {run} #{ph['kills']} after {res['seen']} ids of "
                         f"this process{aimed}" + (" (inside an open transaction)"
                                                   if res["in_txn"] else "")
                         + "; rerun with the same id")
                continue
            if res["rc"] == 0:
                try:
                    ph["summary"] = json.loads(Path(res["stdout"]).read_text())
                except ValueError as e:
                    ph["problems"].append(f"exit 0 without a JSON summary: {e}")
                break
            tail = Path(res["stderr"]).read_text(errors="replace").splitlines()[-5:]
            ph["failed_exits"].append({"rc": res["rc"], "at_s": self._now(),
                                       "hung": res["hung"], "tail": tail})
            if res["rc"] == 2:  # a bad setting: the harness is wrong
                raise RuntimeError(f"snapshot {run} refused its settings: {tail}")
            if res["rc"] is None or self.snap_stop.is_set():
                break
            self.log(f"!! snapshot {run} exited with {res['rc']}"
                     f"{' (hung, killed)' if res['hung'] else ''}; rerun with the same id. "
                     "Last lines:\n    " + "\n    ".join(tail))
            self.snap_stop.wait(1.0)  # a short pause before the rerun
        if ph["summary"] is not None:
            ph["finished"] = True
            # once more: a finished run says so and writes nothing
            self.current_snapshot = f"{run} (finished? rerun)"
            res = self._snapshot_process(run, ph, None, 0.0, time.monotonic() + 120)
            try:
                ph["confirm"] = json.loads(Path(res["stdout"]).read_text())
            except ValueError:
                ph["confirm"] = {"rc": res["rc"]}
            c = ph["confirm"]
            if res["rc"] != 0 or not c.get("finished_earlier") or \
                    (c.get("written"), c.get("swept")) != (ph["summary"]["written"],
                                                           ph["summary"]["swept"]):
                ph["problems"].append(f"the rerun after the end: rc {res['rc']}, {c}")
        ph["end_s"] = self._now()
        ph["list_requests"] = self.double.stats()["list_requests"] - lists0
        leaked = [f.name for f in sorted((self.workdir / "snapshot").glob(f"{run}-*"))
                  if self.api_key in f.read_text(errors="replace")]
        if leaked:
            ph["problems"].append(f"the API key in the output of {leaked}")
        lib1 = self._library()
        # every resource in the double from the start of the phase to its end must be
        # listed (those deleted meanwhile may or may not be)
        self.snap_sets[run] = {
            "silent": set(silent),
            "library_start": {(k, r) for k, ids in lib0.items() for r in ids},
            "must_list": {(k, r) for k, ids in lib0.items() for r in ids & lib1[k]},
        }
        s = ph["summary"] or {}
        self.log(f"snapshot {run} {'done' if ph['finished'] else 'NOT FINISHED'} in "
                 f"{ph['end_s'] - ph['start_s']:.1f}s: {ph['processes']} processes, "
                 f"{ph['kills']} kill -9, {len(ph['failed_exits'])} failed exits; listed "
                 f"{s.get('listed')} written {s.get('written')} swept {s.get('swept')}")

    # -- the bridge outage and the reconcile ----------------------------------------
    def _bridge_outage(self) -> None:
        """At outage_at of the sending time: first outage_lost_answers events whose 2xx
        answers Duro takes for time-outs (the bridge wrote them; Duro's log says every
        delivery failed), then the bridge is stopped (SIGTERM) and the well-formed events
        of the next outage_give_up_s seconds go out on Duro's schedule x outage_scale, so
        Duro gives up on them while the bridge is still down; the events after them (and
        the signed-but-invalid ones) stay on the main schedule and get through later. The
        bridge comes back once every event on the short schedule was given up, so it is
        down for longer than their retry span."""
        cfg = self.cfg
        wait = self.send_t0 + cfg.outage_at * cfg.send_s - time.monotonic()
        if wait > 0 and self.stop.wait(wait):  # the plan's schedule (pacing)
            return
        try:
            self._bridge_outage_run()
        finally:
            self.feed_open.set()

    def _bridge_outage_run(self) -> None:
        cfg = self.cfg
        if not self.broker_up.is_set():
            # A slow broker restart (a loaded machine) still running: its outage and this
            # one must not overlap, and the sending must not end meanwhile.
            self.feed_open.clear()
            t = time.monotonic()
            self.log("bridge outage: the broker restart has not ended; the sending waits")
            while not self.broker_up.wait(0.1):
                if self.stop.is_set() or time.monotonic() - t > 180:
                    return
            self.log(f"bridge outage: the broker is back after {time.monotonic() - t:.1f}s "
                     "more")
        o = {"start_s": self._now(), "end_s": None, "down_s": None,
             "give_up_window_s": cfg.outage_give_up_s, "retry_span_s": cfg.outage_span_s,
             "scale": cfg.outage_scale, "lost_answer_events": 0, "lost_answers_accepted": 0,
             "events_short_schedule": 0, "given_up": 0, "acknowledged": 0,
             "bridge_stop_rc": None, "problems": []}
        self.outage = o
        rng = random.Random(cfg.seed * 104729 + 19)
        lost = []
        for j in range(cfg.outage_lost_answers):
            lib = self._library()
            if j % 2 == 0:
                ev = item_event("ITEM_UPDATE", rng.choice(sorted(lib["item"])), rng=rng)
            else:
                ev = co_event("CO_UPDATE", rng.choice(sorted(lib["change_order"])),
                              data=self.double.data, rng=rng)
            lost.append(ev)
        self.outage_sender = WebhookSender(
            self.webhook_url, self.secret, webhook_id=self.webhook_id, scale=cfg.outage_scale,
            workers=16, timeout_s=cfg.sender_timeout_s, seed=cfg.seed + 1,
            delivery_log=self.double, lose_answers=[ev["id"] for ev in lost])
        self.log(f"bridge outage: {len(lost)} event(s) whose 2xx answers Duro takes for "
                 "time-outs first")
        for ev in lost:
            self.named.add(resource_of(ev))
            self.expected[ev["id"]] = ("topic", enrichertest.topic_for(self.template,
                                                                       ev["event"]))
            self.kinds[ev["id"]] = ev["event"]
            self.outage_sender.send(ev)
        o["lost_answer_events"] = len(lost)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # each accepted at least once by the bridge
            n = sum(1 for ev in lost
                    if self.outage_sender.ledger.get(ev["id"])["answers_lost"] > 0)
            o["lost_answers_accepted"] = n
            if n == len(lost) or self.stop.wait(0.02):  # bounded poll of the sender
                break
        t_stop = time.monotonic()
        try:
            with self.proc_lock:
                self.bridge_down.set()
                t_stop = time.monotonic()
                p = self.bridge
                p.signal(signal.SIGTERM)
                try:
                    o["bridge_stop_rc"] = p.wait_exit(30)
                except AssertionError:
                    p.kill()
            self.log(f"bridge outage: duro-bridge stopped (SIGTERM, exit "
                     f"{o['bridge_stop_rc']}); the events of the next "
                     f"{cfg.outage_give_up_s:g}s go out on Duro's schedule x{cfg.outage_scale:g} "
                     f"({cfg.outage_span_s:.1f}s in all)")
            self.outage_route = True
            self.feed_open.set()
            self.stop.wait(cfg.outage_give_up_s)  # the give-up window
            self.outage_route = False
            self.stop.wait(0.2)  # an event the feeder was routing as it closed
            o["events_short_schedule"] = len(self.outage_ids)
            bound = cfg.outage_span_s + cfg.sender_timeout_s * 10 + 60
            if not self.outage_sender.wait(bound):
                o["problems"].append(f"the outage's events not all ended {bound:.0f}s after "
                                     "the give-up window")
        finally:
            if self.bridge_down.is_set():  # the supervisor starts it (see _supervise)
                self.bridge_restart.set()
                self.supervisor_wake.set()
                deadline = time.monotonic() + 120
                while self.bridge_down.is_set() and time.monotonic() < deadline:
                    self.stop.wait(0.05)  # bounded: a start and its readiness
                if self.bridge_down.is_set():
                    o["problems"].append("the supervisor did not start the bridge again")
                else:
                    o["down_s"] = round(self.bridge_back_mono - t_stop, 1)
        o["end_s"] = self._now()
        s = self.outage_sender.summary()
        o["given_up"], o["acknowledged"] = s["gave_up"], s["acknowledged"]
        if o["down_s"] is None or o["down_s"] <= cfg.outage_span_s:
            o["problems"].append(f"the bridge was down {o['down_s']}s, not longer than the "
                                 f"retry span {cfg.outage_span_s:.1f}s")
        if not o["events_short_schedule"]:
            o["problems"].append("no event in the give-up window (the sending had ended)")
        if o["lost_answers_accepted"] < o["lost_answer_events"]:
            o["problems"].append(f"only {o['lost_answers_accepted']} of the "
                                 f"{o['lost_answer_events']} lost-answer events reached the "
                                 "bridge before the outage")
        self.log(f"bridge outage over: down {o['down_s']}s (> the retry span "
                 f"{cfg.outage_span_s:.1f}s); {o['events_short_schedule']} events on the short "
                 f"schedule + {len(lost)} with lost answers: {o['given_up']} given up, "
                 f"{o['acknowledged']} acknowledged")

    def _reconcile(self, n: int) -> dict:
        """One `duro-enricher reconcile --json` with the enricher's environment and
        DURO_RECONCILE_URL = the bridge's URL (the webhook's url in the double)."""
        cfg = self.cfg
        d = self.workdir / "reconcile"
        d.mkdir(exist_ok=True)
        env = dict(self.eenv, DURO_RECONCILE_URL=self.webhook_url, DURO_GRAPHQL_RATE="0")
        res = {"n": n, "rc": None, "hung": False, "summary": None, "seconds": None,
               "log_entries_in_double": len(self.double.webhook_logs(self.webhook_id)),
               "stdout": str(d / f"run{n}.stdout"), "stderr": str(d / f"run{n}.stderr"),
               "stderr_tail": [], "api_key_leaked": False}
        t0 = time.monotonic()
        with open(res["stdout"], "wb") as out, open(res["stderr"], "wb") as err:
            with self.proc_lock:
                if self.stop.is_set():
                    return res
                p = subprocess.Popen([enrichertest.enricher_bin(), "reconcile", "--json"],
                                     env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     preexec_fn=pdeathsig)
                self.rec_proc = p
            try:
                res["rc"] = p.wait(cfg.reconcile_timeout_s)
            except subprocess.TimeoutExpired:
                res["hung"] = True
                p.kill()
                res["rc"] = p.wait(30)
            finally:
                with self.proc_lock:
                    if p.poll() is None:
                        p.kill()
                        p.wait(30)
                    self.rec_proc = None
        res["seconds"] = round(time.monotonic() - t0, 1)
        text = Path(res["stdout"]).read_text(errors="replace")
        etext = Path(res["stderr"]).read_text(errors="replace")
        res["stderr_tail"] = etext.splitlines()[-8:]
        res["api_key_leaked"] = self.api_key in text or self.api_key in etext
        try:
            res["summary"] = json.loads(text)
        except ValueError:
            pass
        self.log(f"reconcile run {n}: exit {res['rc']} in {res['seconds']}s: "
                 f"{json.dumps(res['summary']) if res['summary'] else text.strip()[:300]}"
                 + ("" if not res["stderr_tail"] else
                    "\n    stderr: " + "\n    ".join(res["stderr_tail"])))
        return res

    def _sender_summary(self) -> dict:
        """The senders' summaries added up (the main one and the outage's)."""
        return merge_summaries([x.summary() for x in (self.sender, self.outage_sender)
                                if x is not None])

    def _sender_entries(self) -> dict:
        entries = self.sender.ledger.entries()
        if self.outage_sender is not None:
            entries.update(self.outage_sender.ledger.entries())
        return entries

    # -- the end ------------------------------------------------------------------
    def _wait_sender(self) -> None:
        self.feeder_done.wait(self.cfg.send_s * 3 + 120)
        bound = self.cfg.give_up_after_s + self.cfg.sender_timeout_s * 10 + 120
        self.log(f"all {len(self.expected)} events queued; waiting (at most {bound:.0f}s) for "
                 "every delivery to end")
        if not self.sender.wait(bound):
            self.log(f"!! the sender still has {self.sender.outstanding} deliveries after "
                     f"{bound:.0f}s")
        if self.outage_sender is not None and not self.outage_sender.wait(60):
            self.log(f"!! the outage's sender still has {self.outage_sender.outstanding} "
                     "deliveries")

    def _stop_bridge(self) -> int | None:
        with self.proc_lock:
            p = self.bridge
            self.bridge = None  # the supervisor leaves it alone from now on
        if p.proc.poll() is not None:
            return p.proc.returncode
        p.signal(signal.SIGTERM)
        try:
            return p.wait_exit(60)
        except AssertionError as e:
            self.log(f"!! {e}".splitlines()[0])
            p.kill()
            return None

    def _wait_drained(self) -> tuple[bool, dict, dict]:
        deadline = time.monotonic() + self.cfg.drain_timeout_s
        end, com = {}, {}
        while time.monotonic() < deadline:
            try:
                com = self.probe.committed(timeout=8)
                end = self.probe.end(timeout=8)
                if all(com.get(p, -1) >= hi for p, hi in end.items() if hi > 0):
                    return True, end, com
            except Exception:  # noqa: BLE001 - broker busy; poll again
                pass
            self.stop.wait(1.0)  # bounded poll interval
        return False, end, com

    def run(self) -> dict:
        t_start = time.time()
        ledger: dict = {}
        try:
            self._setup()
            self.t0 = time.monotonic()
            self.send_t0 = time.monotonic()
            self._thread(self._feeder, "feeder")
            self._thread(self._progress, "progress")
            self._thread(self._supervise, "supervisor")
            snaps = (self._thread(self._snapshots, "snapshots") if self.cfg.snapshot_phases
                     else None)
            outage = (self._thread(self._bridge_outage, "bridge-outage")
                      if self.cfg.bridge_outage else None)
            self._faults()
            self.log("fault plan done; sending goes on")
            if outage is not None:
                outage.join(max(0.0, self.send_t0 + self.cfg.send_s - time.monotonic())
                            + self.cfg.outage_give_up_s + self.cfg.outage_span_s
                            + self.cfg.sender_timeout_s * 10 + 180)
                if outage.is_alive():
                    self.thread_errors.append("bridge-outage: still running")
            self._wait_sender()
            sent_done_s = self._now()
            self.log("sender finished: " + json.dumps(self._sender_summary()))
            if snaps is not None:
                bound = self.cfg.snapshot_phases * (self.cfg.snapshot_phase_timeout_s + 180)
                if snaps.is_alive():
                    self.log(f"waiting (at most {bound:.0f}s) for the snapshot phases to end")
                snaps.join(bound)
                if snaps.is_alive():
                    self.snap_stop.set()  # its process is killed; the phase is unfinished
                    snaps.join(60)
            if self.cfg.bridge_outage:  # every delivery ended: what Duro gave up on is final
                for n in range(1, RECONCILE_RUNS + 1):
                    self.reconciles.append(self._reconcile(n))
            bridge_rc = self._stop_bridge()
            self.log(f"duro-bridge stopped (SIGTERM) with {bridge_rc}")
            t_drain = time.monotonic()
            drained, end, com = self._wait_drained()
            self.log(f"enricher {'drained' if drained else 'NOT drained'} after "
                     f"{time.monotonic() - t_drain:.1f}s: raw end {end}, committed {com}")
            with self.proc_lock:
                e = self.enricher
                self.enricher = None
            enricher_rc = None
            self._note_rss(e)
            if e.proc.poll() is None:
                e.signal(signal.SIGTERM)
                try:
                    enricher_rc = e.wait_exit(60)
                except AssertionError:
                    e.kill()
            else:
                enricher_rc = e.proc.returncode
            self.log(f"duro-enricher stopped (SIGTERM) with {enricher_rc}")
            self.stop.set()
            self.log("reading the raw topic, every output topic and the DLQ (read_committed)")
            raw = kafkatest.read_all(self.broker.bootstrap, self.raw, timeout=300)
            outs = []
            for t in self.output_topics + self.snapshot_topics + [self.dlq]:
                outs += kafkatest.read_all(self.broker.bootstrap, t, timeout=300)
            # the snapshot's pings and what became of them are checked on their own
            snap_raw = [r for r in raw if r.header("duro-origin") == b"snapshot"]
            is_snap = [r.topic in self.snapshot_topics or
                       enrichertest.record_event_id(r, self.dlq).startswith("snapshot:")
                       for r in outs]
            snap_outs = [r for r, y in zip(outs, is_snap) if y]
            entries = self._sender_entries()
            hook_raw = [r for r in raw if r.header("duro-origin") != b"snapshot"]
            hook_outs = [r for r, y in zip(outs, is_snap) if not y]
            ledger = build_ledger(entries, self._sender_summary(), self.expected, self.kinds,
                                  hook_raw, hook_outs, self.dlq)
            if self.cfg.bridge_outage:
                rec = check_reconcile(self.outage, self.reconciles, entries, self.kinds,
                                      hook_raw, hook_outs, self.dlq, self.webhook_id)
                ledger["reconcile"] = rec
                ledger["reconcile_failures"] = rec["failures"]
            self.log("reading the state topics and the progress topic (read_committed)")
            states = {k: kafkatest.read_all(self.broker.bootstrap,
                                            self.state_template.replace("{kind}", k),
                                            timeout=300) for k in STATE_KINDS}
            progress = kafkatest.read_all(self.broker.bootstrap, self.progress, timeout=300)
            for r in snap_raw:  # the resources the snapshots pinged are named too
                self.named.add(((r.header("duro-resource-kind") or b"").decode(),
                                (r.key or b"").decode()))
            state = check_state(self.named, [r for r in outs if r.topic != self.dlq],
                                {enrichertest.record_event_id(r, self.dlq)
                                 for r in outs if r.topic == self.dlq},
                                states, progress, f"{self.group}:{self.raw}:",
                                self.expected_doc, set(self.deleted_docs))
            state["double_deletes"] = self.counts["double_deletes"]
            state["double_deleted_resources"] = len(self.deleted_docs)
            ledger["state"] = state
            ledger["state_mismatches"] = state["mismatches"]
            ledger["balance_problems"] += state.pop("problems")
            ledger["balance_problems"] += ([] if drained else
                                           [f"enricher not drained: raw end {end}, committed {com}"])
            if self.cfg.snapshot_phases:
                snap = check_snapshots(self.snap_phases, self.snap_sets, snap_raw, snap_outs,
                                       self.dlq, self.template, states,
                                       set(self.deleted_docs))
                snap["silent_deletes"] = self.counts["silent_deletes"]
                ledger["snapshot"] = snap
                ledger["snapshot_failures"] = snap["failures"]
            if self.thread_errors:
                ledger["balance_problems"].append(f"harness thread errors: {self.thread_errors}")
            ledger.update({
                "assignment": self.cfg.assignment,
                "kills": {"bridge": self.counts["bridge_kills"],
                          "enricher": self.counts["enricher_kills"]},
                "enricher_kills_inside_a_transaction": self.counts["enricher_kills_in_txn"],
                "unplanned_exits": self.unplanned,
                "broker_restarts": self.counts["broker_restarts"],
                "enricher_peak_rss_mib": round(self.counts["enricher_peak_rss_kib"] / 1024, 1),
                "dedupe_rebuilds": self._rebuilds(),
                "fault_windows": self.windows,
                "timeline": self.timeline,
                "final_exit_codes": {"bridge": bridge_rc, "enricher": enricher_rc},
                "sending_s": sent_done_s,
                "wall_s": round(time.time() - t_start, 1),
                "config": asdict(self.cfg),
                "topics": {"raw": self.raw, "dlq": self.dlq, "template": self.template,
                           "group": self.group, "transactional_id": self.txn_id},
                "binaries": {"bridge": bridgetest.bridge_bin(),
                             "enricher": enrichertest.enricher_bin()},
                "logs": str(self.workdir),
                "double_requests_by_status": {str(k): v for k, v in
                                              self.double.stats()["requests_by_status"].items()},
            })
            code, verdict, reasons = judge(ledger)
            ledger.update({"verdict": verdict, "exit_code": code, "reasons": reasons})
            return ledger
        finally:
            self.close()

    def close(self) -> None:
        self.stop.set()
        self.supervisor_wake.set()
        self.snap_stop.set()
        with self.proc_lock:
            for p in (self.bridge, self.enricher):
                if p is not None:
                    p.kill()
            if self.snap_proc is not None and self.snap_proc.poll() is None:
                self.snap_proc.kill()  # its thread reaps it
            if self.rec_proc is not None and self.rec_proc.poll() is None:
                self.rec_proc.kill()  # its caller reaps it
        for snd in (self.sender, self.outage_sender):
            if snd is None:
                continue
            try:
                snd.close()
            except Exception as e:  # noqa: BLE001
                self.log(f"sender close: {e}")
        for t in self.threads:
            t.join(15)
        if self.probe is not None:
            self.probe.close()
            self.probe = None
        if self.lso is not None:
            self.lso.close()
            self.lso = None
        if self.snap_lso is not None:
            self.snap_lso.close()
            self.snap_lso = None
        if self.double is not None:
            try:
                self.double.close()
            except Exception as e:  # noqa: BLE001
                self.log(f"double close: {e}")


# ---------------------------------------------------------------- the ledger

def merge_summaries(summaries: list[dict]) -> dict:
    """Senders' summaries added up (balanced: every one is)."""
    out: dict = {}
    for s in summaries:
        for k, v in s.items():
            if k == "balanced":
                out[k] = out.get(k, True) and v
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
    return out


def build_ledger(entries: dict, sender_summary: dict, expected: dict, kinds: dict,
                 raw: list, records: list, dlq: str) -> dict:
    sent = set(entries)
    acked = {i for i, e in entries.items() if e["acknowledged"]}
    gave_up = {i for i, e in entries.items() if e["gave_up"] and not e["acknowledged"]}
    pending = sent - acked - gave_up
    raw_by: dict[str, list] = collections.defaultdict(list)
    for r in raw:
        raw_by[enrichertest.raw_event_id(r)].append(r)
    by: dict[str, list] = collections.defaultdict(list)
    for r in records:
        by[enrichertest.record_event_id(r, dlq)].append(r)
    outputs = [r for r in records if r.topic != dlq]
    dlqs = [r for r in records if r.topic == dlq]
    dlq_by_class = collections.Counter((r.header("error-class") or b"?").decode() for r in dlqs)
    outputs_by_topic = collections.Counter(r.topic for r in outputs)

    def where(i):
        return [f"{r.topic}[{r.partition}]@{r.offset}"
                + (f" {(r.header('error-class') or b'').decode()}" if r.topic == dlq else "")
                for r in by.get(i, [])]

    def detail(i):
        e = entries.get(i, {})
        return {"id": i, "kind": kinds.get(i), "acknowledged": e.get("acknowledged"),
                "statuses": e.get("statuses"), "deliveries": e.get("deliveries"),
                "raw": [f"[{r.partition}]@{r.offset}" for r in raw_by.get(i, [])],
                "records": where(i)}

    lost = sorted(i for i in acked if not by.get(i))
    lost_at_bridge = [i for i in lost if i not in raw_by]
    duplicated = sorted(i for i in sent if len(by.get(i, [])) > 1)
    unexpected = sorted(i for i in by if i not in sent)
    raw_unexpected = sorted(i for i in raw_by if i not in sent)
    orphans = sorted(i for i in by if i in sent and i not in raw_by)
    nack_delivered = sorted(i for i in sent - acked if len(by.get(i, [])) == 1)
    gave_up_not_delivered = sorted(i for i in gave_up if not by.get(i))
    misrouted, resource_errors = [], []
    invalid_in_dlq = 0
    for i in sent:
        rs = by.get(i, [])
        if len(rs) != 1 or i not in expected:
            continue
        r = rs[0]
        kind, target = expected[i]
        cls = (r.header("error-class") or b"").decode() if r.topic == dlq else None
        if kind == "dlq":
            if cls == target:
                invalid_in_dlq += 1
            else:
                misrouted.append(i)
        elif r.topic == target:
            pass
        elif cls == "resource-error":
            resource_errors.append(i)
        else:
            misrouted.append(i)
    acked_once = sum(1 for i in acked if len(by.get(i, [])) == 1)
    acked_dup = sum(1 for i in acked if len(by.get(i, [])) > 1)
    invalid_sent = sum(1 for i in sent if expected.get(i, ("",))[0] == "dlq")
    statuses = collections.Counter()
    for e in entries.values():
        for st in e["statuses"]:
            statuses["no answer" if st is None else str(st)] += 1

    problems = []
    if not sender_summary.get("balanced"):
        problems.append(f"sender ledger not internally consistent: {sender_summary}")
    if pending:
        problems.append(f"{len(pending)} event(s) still pending at the sender")
    if sender_summary.get("unfinished_deliveries"):
        problems.append(f"{sender_summary['unfinished_deliveries']} unfinished deliveries")
    if len(sent) != len(acked) + len(gave_up) + len(pending):
        problems.append("sent != acknowledged + given up + pending")
    if set(expected) != sent:
        problems.append(f"harness: {len(set(expected) ^ sent)} ids differ between the plan "
                        "and the sender ledger")
    if unexpected:
        problems.append(f"{len(unexpected)} output/DLQ id(s) never sent, e.g. {unexpected[:5]}")
    if raw_unexpected:
        problems.append(f"{len(raw_unexpected)} raw id(s) never sent, e.g. {raw_unexpected[:5]}")
    if orphans:
        problems.append(f"{len(orphans)} id(s) with an output/DLQ record but no raw record, "
                        f"e.g. {orphans[:5]}")
    if acked_once + acked_dup + len(lost) != len(acked):
        problems.append("harness: acknowledged != exactly-once + duplicated + lost")
    if len(outputs) + len(dlqs) != sum(len(v) for v in by.values()):
        problems.append("harness: records do not add up")

    cap = 50
    return {
        "events_sent": len(sent),
        "events_valid_known": sum(1 for i in sent if kinds.get(i) in DEFAULT_MIX),
        "events_unknown_type": sum(1 for i in sent if kinds.get(i) == UNKNOWN_EVENT),
        "events_signed_invalid": invalid_sent,
        "acknowledged": len(acked),
        "given_up": len(gave_up),
        "pending": len(pending),
        "deliveries": sender_summary.get("deliveries"),
        "repeats": sender_summary.get("repeats"),
        "attempts": sender_summary.get("attempts"),
        "attempt_statuses": dict(sorted(statuses.items())),
        "raw_records": len(raw),
        "raw_distinct_ids": len(raw_by),
        "outputs": len(outputs),
        "outputs_by_topic": dict(sorted(outputs_by_topic.items())),
        "dlq_records": len(dlqs),
        "dlq_by_class": dict(sorted(dlq_by_class.items())),
        "invalid_in_dlq_once": invalid_in_dlq,
        "acknowledged_exactly_once": acked_once,
        "lost": len(lost),
        "lost_at_bridge": len(lost_at_bridge),
        "duplicated": len(duplicated),
        "unexpected": len(unexpected),
        "misrouted": len(misrouted),
        "valid_dlq_resource_error": len(resource_errors),
        "not_acknowledged_but_delivered": len(nack_delivered),
        "given_up_not_delivered": len(gave_up_not_delivered),
        "balance_problems": problems,
        "samples": {
            "lost": [detail(i) for i in lost[:cap]],
            "duplicated": [detail(i) for i in duplicated[:cap]],
            "unexpected": [{"id": i, "records": where(i)} for i in unexpected[:cap]],
            "misrouted": [detail(i) for i in misrouted[:cap]],
            "valid_dlq_resource_error": [detail(i) for i in resource_errors[:cap]],
            "not_acknowledged_but_delivered": [detail(i) for i in nack_delivered[:cap]],
            "given_up_not_delivered": [detail(i) for i in gave_up_not_delivered[:cap]],
        },
    }


def check_reconcile(outage: dict | None, runs: list, entries: dict, kinds: dict, raw: list,
                    records: list, dlq: str, webhook_id: str) -> dict:
    """The bridge outage and the reconcile, against the run's own figures. Given up: the
    events none of whose deliveries Duro saw acknowledged (every attempt is in the
    double's log). The first run must find them all (events failed), recover exactly
    those the raw topic did not hold before it (one raw record each: the original
    payload and id, keyed by the resource, stamped with its kind and duro-origin:
    reconcile), count the others as already there, and find none unrecoverable (the
    outage's events are well-formed, and the log holds their payloads); it must read
    every attempt of the run (log entries). The second run recovers nothing. At the end
    every event given up is exactly once in the outputs or the DLQ."""
    problems = list((outage or {}).get("problems", []))
    if outage is None:
        problems.append("the bridge outage never happened")
    gave_up = {i for i, e in entries.items() if e["gave_up"] and not e["acknowledged"]}
    lost_answers = {i for i, e in entries.items() if e.get("answers_lost")}
    attempts = sum(e["attempts"] for e in entries.values())
    rec_raw = [r for r in raw if r.header("duro-origin") == b"reconcile"]
    written = collections.Counter(enrichertest.raw_event_id(r) for r in rec_raw)
    before = {enrichertest.raw_event_id(r) for r in raw
              if r.header("duro-origin") != b"reconcile"}
    want_already = gave_up & before
    want_recovered = gave_up - before
    unparsable = {i for i in gave_up if not isinstance(_json_or_none(entries[i]["body"]), dict)}
    by = collections.Counter(enrichertest.record_event_id(r, dlq) for r in records)
    once = sum(1 for i in gave_up if by.get(i) == 1)
    not_delivered = sorted(i for i in gave_up if not by.get(i))
    doubled = sorted(i for i in gave_up if by.get(i, 0) > 1)

    want = {"webhooks": 1, "events_failed": len(gave_up), "recovered": len(want_recovered),
            "already_there": len(want_already), "not_recoverable": len(unparsable)}
    if len(runs) < RECONCILE_RUNS:
        problems.append(f"{len(runs)} reconcile run(s), {RECONCILE_RUNS} expected")
    for run in runs:
        n, s = run["n"], run.get("summary") or {}
        if run["rc"] != 0 or not s:
            problems.append(f"reconcile run {n}: exit {run['rc']}"
                            f"{' (hung, killed)' if run['hung'] else ''}"
                            f"{'' if s else ', no JSON summary'}: {run['stderr_tail'][-3:]}")
            continue
        w = dict(want, log_entries=run["log_entries_in_double"])
        if "unnamed_entries" in s:  # every entry of the double's log names its event
            w["unnamed_entries"] = 0
        if n > 1:  # everything is on the raw topic now
            w.update(recovered=0, already_there=len(gave_up) - len(unparsable))
        for k, v in w.items():
            if s.get(k) != v:
                problems.append(f"reconcile run {n}: {k} {s.get(k)}, expected {v}")
        if run["api_key_leaked"]:
            problems.append(f"reconcile run {n}: the API key in its output")
    if runs and runs[0]["log_entries_in_double"] != attempts:
        problems.append(f"the double's log holds {runs[0]['log_entries_in_double']} entries, "
                        f"the senders made {attempts} attempts")

    dup = sorted(i for i, k in written.items() if k > 1)
    extra = sorted(set(written) - want_recovered)
    missing = sorted(want_recovered - set(written))
    bad = []
    for r in rec_raw:
        i = enrichertest.raw_event_id(r)
        e = entries.get(i)
        if e is None:
            continue  # extra: said above
        body = _json_or_none(e["body"])
        name = kinds.get(i)
        res = resource_of(body) if isinstance(body, dict) and name in DEFAULT_MIX else None
        kind = res[0] if res else "unknown"
        why = []
        if _json_or_none(r.value) != body:
            why.append("value is not the payload Duro sent")
        if (r.header("duro-resource-kind") or b"").decode() != kind:
            why.append(f"duro-resource-kind {r.header('duro-resource-kind')!r} != {kind}")
        if res and (r.key or b"").decode() != res[1]:
            why.append(f"key {r.key!r} != {res[1]}")
        if (r.header("duro-event") or b"").decode() != (name or ""):
            why.append(f"duro-event {r.header('duro-event')!r} != {name}")
        if (r.header("duro-webhook-id") or b"").decode() != webhook_id:
            why.append(f"duro-webhook-id {r.header('duro-webhook-id')!r}")
        if why:
            bad.append(f"{i} [{r.partition}]@{r.offset}: {'; '.join(why)}")
    for what, lst in (("written by reconcile more than once", dup),
                      ("written by reconcile, not given up or already on the raw topic", extra),
                      ("given up and absent from the raw topic, not written by reconcile",
                       missing),
                      ("reconcile raw records stamped wrongly", bad),
                      ("given up, neither an output nor a DLQ record at the end", not_delivered),
                      ("given up, more than one output+DLQ record", doubled)):
        if lst:
            problems.append(f"{len(lst)} {what}, e.g. {lst[:5]}")
    o = outage or {}
    return {
        "outage": o, "runs": runs, "given_up": len(gave_up),
        "given_up_with_lost_answers": len(gave_up & lost_answers),
        "given_up_on_raw_before": len(want_already),
        "given_up_absent_before": len(want_recovered),
        "given_up_not_json": len(unparsable),
        "raw_written": len(rec_raw), "given_up_exactly_once": once,
        "given_up_not_delivered": len(not_delivered),
        "log_attempts": attempts,
        "problems": problems, "failures": len(problems),
    }


def _json_or_none(text):
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return None


def check_state(named: set, outputs: list, dlq_ids: set, states: dict, progress: list,
                progress_prefix: str, expected_doc, deleted: set) -> dict:
    """The state topics against the enricher's contract, precisely.

    The batches the enricher committed are read back from the progress topic (every
    transaction writes, per raw partition it consumed, the next offset there:
    consecutive committed values bound one batch). The committed outputs say what became
    of each event (found, not_found, deleted; an event that went to the DLQ has no
    output and writes no state). Per resource, per batch, its last output event that is
    not a live not_found decides: deleted -> a tombstone, found -> a record of the
    document as of that event; a batch whose every event of it was a live not_found
    writes nothing (the previous state stays); a snapshot's ping answered not_found
    writes a tombstone (as a delete does). So the expected state records of
    each resource follow, in order; the records on its state topic must be exactly those
    (event id header, tombstone or not), and the reduced state must be the double's
    document as the enricher's query selects it (as before the run deleted it, for a
    resource whose last found event preceded the deletion) with as_of that event, or
    absent. A not_found for a resource the double never lost is a mismatch too."""
    problems: list[str] = []
    ends: dict[int, list[int]] = collections.defaultdict(list)
    for r in progress:  # one partition, in offset order
        k = (r.key or b"").decode(errors="replace")
        if not k.startswith(progress_prefix) or r.value is None:
            continue
        try:
            part, nxt = int(k[len(progress_prefix):]), json.loads(r.value)["next_offset"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"state: unreadable progress record {k!r}: {r.value[:80]!r}")
            continue
        if ends[part] and nxt <= ends[part][-1]:
            problems.append(f"state: progress of raw partition {part} went from "
                            f"{ends[part][-1]} to {nxt}")
        ends[part].append(nxt)

    events: dict[tuple[str, str], list] = collections.defaultdict(list)
    for r in outputs:
        try:
            v = json.loads(r.value)
            res, src = v["resource"], v["source"]
        except (ValueError, KeyError, TypeError):
            continue  # not an output of ours: the balance checks say so
        if res.get("kind") in STATE_KINDS:
            status = res["status"]
            if status == "not_found" and str((v.get("event") or {}).get("type", "")).endswith(
                    "_SNAPSHOT"):
                status = "snapshot_not_found"  # a snapshot's ping: a tombstone
            events[(res["kind"], res["id"])].append(
                (src["partition"], src["offset"], v.get("idempotency_key"), status))

    actual: dict[tuple[str, str], list] = collections.defaultdict(list)
    n_records = n_tombs = 0
    for kind, recs in states.items():
        for r in recs:  # a key's records are on one partition, in offset order
            actual[(kind, (r.key or b"").decode())].append(r)
            n_records += 1
            n_tombs += r.value is None

    c = collections.Counter()
    samples: list[dict] = []
    for res in sorted(named | set(events) | set(actual)):
        kind, rid = res
        evs = sorted(events.get(res, []), key=lambda e: (e[0], e[1]))
        why = []
        if res not in named:
            why.append("a state record for a resource no event of the run named")
        if len({e[0] for e in evs}) > 1:
            why.append("its events on several raw partitions")
        # the expected state records: per batch, its last event of the resource that is
        # not a live not_found
        batches: dict[int, tuple] = {}
        nf_batches: set[int] = set()
        kept_after_delete = False
        for e in evs:
            b = bisect.bisect_right(ends.get(e[0], []), e[1])
            if b >= len(ends.get(e[0], [])):
                why.append(f"output of raw [{e[0]}]@{e[1]} beyond the committed progress")
            if e[3] == "not_found":
                nf_batches.add(b)
                if b in batches and batches[b][3] in TOMBSTONE_STATUSES:
                    kept_after_delete = True  # delete, then not_found, in one batch
                continue
            batches[b] = e  # sorted by offset: the last one stays
        c["live_not_found_batches"] += len(nf_batches - set(batches))
        want = []
        for b in sorted(batches):
            e = batches[b]
            if e[3] in TOMBSTONE_STATUSES:
                want.append(("tombstone", e[2]))
            elif e[3] == "found":
                want.append(("document", e[2]))
            else:
                why.append(f"status {e[3]!r}")
        if res not in deleted and any(e[3] in ("not_found", "snapshot_not_found")
                                      for e in evs):
            why.append("not_found for a resource the double never lost")
        recs = actual.get(res, [])
        got = [("tombstone" if r.value is None else "document",
                (r.header("duro-event-id") or b"").decode()) for r in recs]
        if got != want:
            dl = [e for e in got if e[1] in dlq_ids]
            why.append(f"state records {got} != expected {want}"
                       + (f" ({len(dl)} of a DLQ'd event)" if dl else ""))
        last_want = want[-1] if want else None
        if kept_after_delete and not why:
            c["deleted_kept_same_batch"] += 1  # tombstoned all the same
        if last_want is None or last_want[0] == "tombstone":
            if recs and recs[-1].value is not None:
                why.append("present, expected absent")
            elif not why:
                c["tombstoned" if last_want else "absent_never_written"] += 1
        else:
            try:
                st = json.loads(recs[-1].value) if recs and recs[-1].value is not None else None
            except ValueError:
                st = {"unreadable": True}
            doc = expected_doc(kind, rid)
            if st is None:
                why.append("absent, expected a document")
            elif doc is None:
                why.append("the double never had it, yet found")
            elif (st.get("schema"), st.get("kind"), st.get("id")) != ("duro.state.v1", kind, rid):
                why.append(f"header fields {st.get('schema')}/{st.get('kind')}/{st.get('id')}")
            elif st.get("document") != doc:
                why.append("document differs from the double's")
            elif (st.get("as_of") or {}).get("event_id") != last_want[1]:
                why.append(f"as_of {(st.get('as_of') or {}).get('event_id')} != {last_want[1]}")
            if not why:
                c["equal"] += 1
                if evs and evs[-1][3] == "not_found":
                    c["kept_last_found"] += 1  # its last event not_found: an earlier document
        if why:
            c["mismatches"] += 1
            if len(samples) < 50:
                samples.append({"kind": kind, "id": rid, "why": why, "events": evs,
                                "records": [f"[{r.partition}]@{r.offset}" for r in recs]})
    return {"resources_checked": len(named | set(events) | set(actual)),
            "equal": c["equal"], "tombstoned": c["tombstoned"],
            "absent_never_written": c["absent_never_written"],
            "kept_last_found": c["kept_last_found"],
            "deleted_kept_same_batch": c["deleted_kept_same_batch"],
            "live_not_found_batches": c["live_not_found_batches"],
            "mismatches": c["mismatches"], "records": n_records, "tombstone_records": n_tombs,
            "committed_batches": {str(p): len(v) for p, v in sorted(ends.items())},
            "samples": samples, "problems": problems}


def check_snapshots(phases: list, sets: dict, raw: list, records: list, dlq: str,
                    template: str, states: dict, deleted: set) -> dict:
    """The snapshot phases, per run id: its committed pings on the raw topic (one per
    key, event id snapshot:<run>:<key>, as many as the final summary's written +
    swept), what became of them (each pinged id exactly once on its snapshot event
    topic or in the DLQ: none duplicated, none missing, none unexpected), the listing
    (every resource in the double from the phase's start to its end pinged; nothing
    pinged that the library never had) and the sweep (every resource deleted without
    a webhook before the phase is absent from the state topics at the end)."""
    final = {kind: {} for kind in STATE_KINDS}
    for kind, recs in states.items():
        for r in recs:  # in offset order per key
            final[kind][(r.key or b"").decode()] = r.value is not None
    by_run_raw: dict[str, list] = collections.defaultdict(list)
    for r in raw:
        by_run_raw[(r.header("duro-snapshot-id") or b"").decode()].append(r)
    by_run_out: dict[str, list] = collections.defaultdict(list)
    for r in records:
        eid = enrichertest.record_event_id(r, dlq)
        by_run_out[eid.split(":", 2)[1] if eid.count(":") >= 2 else ""].append((eid, r))
    runs = [ph["run"] for ph in phases]
    out = {"phases": [], "failures": 0, "problems": []}
    for run in sorted(set(by_run_raw) - set(runs)):
        out["problems"].append(f"{len(by_run_raw[run])} raw ping(s) of a run never started: "
                               f"{run!r}")
    for run in sorted(set(by_run_out) - set(runs)):
        out["problems"].append(f"{len(by_run_out[run])} output/DLQ record(s) of a run never "
                               f"started: {run!r}")
    for ph in phases:
        run = ph["run"]
        st = sets.get(run, {"silent": set(), "library_start": set(), "must_list": set()})
        problems = list(ph["problems"])
        s = ph.get("summary") or {}
        pings = by_run_raw.get(run, [])
        keys = collections.Counter(((r.header("duro-resource-kind") or b"").decode(),
                                    (r.key or b"").decode()) for r in pings)
        dup_keys = sorted(k for k, n in keys.items() if n > 1)
        bad_ids = [r for r in pings if enrichertest.raw_event_id(r) !=
                   f"snapshot:{run}:{(r.key or b'').decode()}"]
        pinged_ids = {f"snapshot:{run}:{rid}": (kind, rid) for kind, rid in keys}
        ids = collections.Counter()
        statuses = collections.Counter()
        dlq_by_class = collections.Counter()
        wrong_topic = []
        for eid, r in by_run_out.get(run, []):
            ids[eid] += 1
            if r.topic == dlq:
                dlq_by_class[(r.header("error-class") or b"?").decode()] += 1
                continue
            try:
                v = json.loads(r.value)
                kind, rid, ev = v["resource"]["kind"], v["resource"]["id"], v["event"]["type"]
                statuses[v["resource"]["status"]] += 1
            except (ValueError, KeyError, TypeError):
                wrong_topic.append(f"{r.topic}[{r.partition}]@{r.offset} unreadable")
                continue
            if (pinged_ids.get(eid) != (kind, rid) or ev != SNAPSHOT_EVENT.get(kind)
                    or r.topic != enrichertest.topic_for(template, ev)):
                wrong_topic.append(f"{eid} {kind}/{rid} {ev} on {r.topic}")
        duplicated = sorted(i for i, n in ids.items() if n > 1)
        missing = sorted(i for i in pinged_ids if not ids.get(i))
        unexpected = sorted(i for i in ids if i not in pinged_ids)
        once = sum(1 for i in pinged_ids if ids.get(i) == 1)
        not_listed = sorted(st["must_list"] - set(keys))
        never_had = sorted(k for k in keys if k not in st["library_start"] and k not in deleted)
        silent = st["silent"]
        swept_silent = len(silent & set(keys))
        still_there = sorted(k for k in silent if final[k[0]].get(k[1]))
        want = (s.get("written"), s.get("swept"))
        if not ph.get("finished"):
            problems.append("the snapshot never exited 0")
        elif len(pings) != (want[0] or 0) + (want[1] or 0):
            problems.append(f"{len(pings)} raw pings, the summary says written {want[0]} + "
                            f"swept {want[1]}")
        if ph.get("finished") and ph["kills"] < min(1, ph["kills_wanted"]):
            problems.append("never killed mid-run")
        for what, lst in (("duplicated raw keys", dup_keys), ("pings with a wrong event id",
                                                              [r.key for r in bad_ids]),
                          ("duplicated (>1 output+DLQ record)", duplicated),
                          ("missing (pinged, no output nor DLQ record)", missing),
                          ("unexpected (never pinged)", unexpected),
                          ("on the wrong topic or of the wrong resource", wrong_topic),
                          ("in the double throughout, never pinged", not_listed),
                          ("pinged, never in the library", never_had),
                          ("deleted without a webhook, still in the state topic",
                           still_there)):
            if lst:
                problems.append(f"{len(lst)} {what}, e.g. {[str(x) for x in lst[:5]]}")
        out["failures"] += len(problems)
        out["phases"].append({
            "run": run, "start_s": ph["start_s"], "end_s": ph["end_s"],
            "processes": ph["processes"], "kills": ph["kills"],
            "kills_inside_a_transaction": ph["kills_inside_a_transaction"],
            "failed_exits": ph["failed_exits"], "finished": ph.get("finished", False),
            "summary": s or None, "confirm": ph.get("confirm"),
            "list_requests": ph.get("list_requests"),
            "library_at_start": ph.get("library_at_start"),
            "in_double_throughout": len(st["must_list"]),
            "listed": s.get("listed"), "written": s.get("written"), "swept": s.get("swept"),
            "raw_pings": len(pings), "raw_distinct_keys": len(keys),
            "raw_duplicated_keys": len(dup_keys), "bad_event_ids": len(bad_ids),
            "snapshot_outputs": sum(statuses.values()),
            "outputs_by_status": dict(sorted(statuses.items())),
            "dlq_by_class": dict(sorted(dlq_by_class.items())),
            "exactly_once": once, "duplicated": len(duplicated), "missing": len(missing),
            "unexpected": len(unexpected), "wrong_topic": len(wrong_topic),
            "not_listed": len(not_listed), "never_in_library": len(never_had),
            "silent_deletes": len(silent), "silent_swept": swept_silent,
            "silent_still_in_state": len(still_there),
            "problems": problems,
        })
    out["failures"] += len(out["problems"])
    return out


def judge(ledger: dict) -> tuple[int, str, list[str]]:
    """(exit code, verdict, reasons): FAIL 1 (lost, duplicated, misrouted, a state
    mismatch, a snapshot or reconcile problem), VOID 2 (the ledger does not balance), PASS 0."""
    fail = [f"{ledger[k]} {k}" for k in ("lost", "duplicated", "misrouted", "state_mismatches",
                                         "snapshot_failures", "reconcile_failures")
            if ledger.get(k)]
    snap = ledger.get("snapshot") or {}
    fail += snap.get("problems", [])
    fail += [f"snapshot {ph['run']}: {x}" for ph in snap.get("phases", []) for x in ph["problems"]]
    fail += [f"reconcile: {x}" for x in (ledger.get("reconcile") or {}).get("problems", [])]
    void = list(ledger.get("balance_problems", []))
    if fail:
        return 1, "FAIL", fail + void
    if void:
        return 2, "VOID", void
    return 0, "PASS", []


def format_ledger(L: dict) -> str:
    w = [
        ("events sent", f"{L['events_sent']} ({L['events_valid_known']} known, "
                        f"{L['events_unknown_type']} unknown type, "
                        f"{L['events_signed_invalid']} signed-but-invalid)"),
        ("acknowledged (2xx at least once)", L["acknowledged"]),
        ("given up by the sender", L["given_up"]),
        ("still pending", L["pending"]),
        ("deliveries (repeats)", f"{L['deliveries']} ({L['repeats']})"),
        ("attempts by answer", f"{L['attempts']} {L['attempt_statuses']}"),
        ("raw records (distinct ids)", f"{L['raw_records']} ({L['raw_distinct_ids']})"),
        ("outputs", L["outputs"]),
        ("DLQ records (by class)", f"{L['dlq_records']} {L['dlq_by_class']}"),
        ("acknowledged exactly once", L["acknowledged_exactly_once"]),
        ("invalid events in the DLQ once", f"{L['invalid_in_dlq_once']} of "
                                           f"{L['events_signed_invalid']}"),
        ("LOST (acked, no output nor DLQ)", f"{L['lost']} (of which not even raw: "
                                           f"{L['lost_at_bridge']})"),
        ("DUPLICATED (>1 output+DLQ record)", L["duplicated"]),
        ("UNEXPECTED (ids never sent)", L["unexpected"]),
        ("MISROUTED", L["misrouted"]),
        ("valid events DLQ'd as resource-error", L["valid_dlq_resource_error"]),
        ("not acknowledged but delivered", L["not_acknowledged_but_delivered"]),
        ("given up and not delivered", L["given_up_not_delivered"]),
    ]
    if "state" in L:
        S = L["state"]
        w += [
            ("state: resources checked", f"{S['resources_checked']} ({S['records']} records, "
                                         f"{S['tombstone_records']} tombstones; "
                                         f"{S['double_deleted_resources']} deleted in the "
                                         f"double by {S['double_deletes']} delete events)"),
            ("state: equal to the double", f"{S['equal']} (of which last event not_found, "
                                           f"earlier document kept: {S['kept_last_found']}; "
                                           "deleted, then not_found in one batch "
                                           "(a tombstone all the same): "
                                           f"{S['deleted_kept_same_batch']})"),
            ("state: tombstoned", S["tombstoned"]),
            ("state: absent, never written", S["absent_never_written"]),
            ("STATE MISMATCHES", S["mismatches"]),
        ]
    if "snapshot" in L:
        for P in L["snapshot"]["phases"]:
            n = f"snapshot {P['run']}"
            fx = ", ".join(f"rc={x['rc']}{' hung' if x['hung'] else ''} at {x['at_s']:.0f}s"
                           for x in P["failed_exits"]) or "none"
            conf = P.get("confirm") or {}
            w += [
                (f"{n}: processes", f"{P['processes']} in {P['start_s']:.0f}-"
                                    f"{(P['end_s'] or 0):.0f}s (kill -9: {P['kills']}, "
                                    f"{P['kills_inside_a_transaction']} inside an open "
                                    f"transaction; failed exits: {fx}; finished: "
                                    f"{'yes' if P['finished'] else 'NO'}; rerun after: "
                                    f"finished_earlier={conf.get('finished_earlier')})"),
                (f"{n}: final --json", f"listed {P['listed']}, written {P['written']}, "
                                       f"swept {P['swept']} ({P['list_requests']} listing "
                                       "requests)"),
                (f"{n}: raw pings", f"{P['raw_pings']} ({P['raw_distinct_keys']} distinct keys, "
                                    f"{P['raw_duplicated_keys']} duplicated, "
                                    f"{P['bad_event_ids']} bad event ids)"),
                (f"{n}: snapshot topics", f"{P['exactly_once']} ids exactly once "
                                          f"({P['snapshot_outputs']} outputs "
                                          f"{P['outputs_by_status']}, DLQ {P['dlq_by_class']}); "
                                          f"DUPLICATED {P['duplicated']}, MISSING "
                                          f"{P['missing']}, unexpected {P['unexpected']}, "
                                          f"wrong topic {P['wrong_topic']}"),
                (f"{n}: listing", f"library {P['library_at_start']} at the start, "
                                  f"{P['in_double_throughout']} throughout; not pinged "
                                  f"{P['not_listed']}, pinged but never in it "
                                  f"{P['never_in_library']}"),
                (f"{n}: sweep", f"{P['silent_deletes']} deleted without a webhook, "
                                f"{P['silent_swept']} of them swept, "
                                f"{P['silent_still_in_state']} still in the state topic"),
            ]
        w.append(("SNAPSHOT FAILURES", L["snapshot"]["failures"]))
    if "reconcile" in L:
        R = L["reconcile"]
        O = R["outage"] or {}
        w.append(("bridge outage", f"down {O.get('down_s')}s at {O.get('start_s', 0):.0f}-"
                                   f"{(O.get('end_s') or 0):.0f}s, longer than the retry span "
                                   f"{O.get('retry_span_s', 0):.1f}s (schedule "
                                   f"x{O.get('scale')}) of the events of its first "
                                   f"{O.get('give_up_window_s')}s: "
                                   f"{O.get('events_short_schedule')} + "
                                   f"{O.get('lost_answer_events')} with lost answers; "
                                   f"{O.get('given_up')} given up, {O.get('acknowledged')} "
                                   "acknowledged"))
        for run in R["runs"]:
            s = run.get("summary") or {}
            w.append((f"reconcile run {run['n']}",
                      f"exit {run['rc']} in {run['seconds']}s: {s.get('webhooks')} webhook(s), "
                      f"{s.get('log_entries')} log entries"
                      + (f" ({s['unnamed_entries']} naming no event)"
                         if s.get("unnamed_entries") else "")
                      + f", {s.get('events_failed')} not "
                      f"delivered: {s.get('recovered')} recovered, {s.get('already_there')} "
                      f"already there, {s.get('not_recoverable')} not recoverable "
                      f"{s.get('not_recoverable_by_kind')}" if s else
                      f"exit {run['rc']}, no summary: {run['stderr_tail'][-2:]}"))
        w += [
            ("given up by Duro (all senders)",
             f"{R['given_up']} ({R['given_up_with_lost_answers']} with lost answers): "
             f"{R['given_up_on_raw_before']} on the raw topic before the reconcile, "
             f"{R['given_up_absent_before']} absent, {R['given_up_not_json']} not JSON"),
            ("reconcile raw records", f"{R['raw_written']} (log attempts {R['log_attempts']})"),
            ("given up: exactly once at the end", f"{R['given_up_exactly_once']} of "
                                                  f"{R['given_up']}; NOT DELIVERED "
                                                  f"{R['given_up_not_delivered']}"),
            ("RECONCILE FAILURES", R["failures"]),
        ]
    if "kills" in L:
        w += [
            ("kills -9 (bridge, enricher)", f"{L['kills']['bridge']}, {L['kills']['enricher']} "
                                            f"({L['enricher_kills_inside_a_transaction']} of the "
                                            "enricher's inside an open transaction)"),
            ("unplanned exits (restarted)", ", ".join(f"{u['program']} rc={u['rc']} at "
                                                      f"{u['at_s']}s" for u in
                                                      L["unplanned_exits"]) or "none"),
            ("broker restarts", L["broker_restarts"]),
            ("enricher peak RSS (largest process)", f"{L['enricher_peak_rss_mib']} MiB"),
            ("dedupe sets after assignments", L["dedupe_rebuilds"]),
            ("GraphQL fault windows", ", ".join(
                f"{x['name']} {x['start_s']:.0f}-{x['end_s']:.0f}s ({x['graphql_requests']} req)"
                for x in L["fault_windows"]) or "none"),
            ("final SIGTERM exit codes", L["final_exit_codes"]),
            ("GraphQL answers by status", L.get("double_requests_by_status")),
            ("sending phase", f"{L['sending_s']:.0f}s"),
            ("wall time", f"{L['wall_s']:.0f}s"),
        ]
    width = max(len(k) for k, _ in w)
    lines = ["=" * 72, "FAULT RUN LEDGER", "-" * 72]
    lines += [f"{k:<{width}} : {v}" for k, v in w]
    lines.append("-" * 72)
    lines.append(f"VERDICT: {L.get('verdict', '?')}" +
                 ("" if not L.get("reasons") else " - " + "; ".join(L["reasons"])))
    lines.append("=" * 72)
    return "\n".join(lines)


# ---------------------------------------------------------------- command line

def main(argv=None) -> int:
    d = FaultConfig()
    p = argparse.ArgumentParser(prog="fault_run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=d.events)
    p.add_argument("--rate", type=float, default=d.rate, help="events per second")
    p.add_argument("--scale", type=float, default=d.scale, help="retry schedule multiplier")
    p.add_argument("--repeat-probability", type=float, default=d.repeat_probability)
    p.add_argument("--bridge-kills", type=int, default=d.bridge_kills)
    p.add_argument("--enricher-kills", type=int, default=d.enricher_kills)
    p.add_argument("--broker-restarts", type=int, default=d.broker_restarts)
    p.add_argument("--windows", default=",".join(d.windows),
                   help=f"GraphQL failure windows, from {','.join(WINDOWS)} ('' for none)")
    p.add_argument("--window-s", type=float, default=d.window_s)
    p.add_argument("--invalid-every", type=int, default=d.invalid_every)
    p.add_argument("--unknown-every", type=int, default=d.unknown_every)
    p.add_argument("--sender-workers", type=int, default=d.sender_workers)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--components", type=int, default=d.components,
                   help="the double's library: components (items)")
    p.add_argument("--change-orders", type=int, default=d.change_orders)
    p.add_argument("--snapshot-phases", type=int, default=d.snapshot_phases,
                   help="snapshot runs during the sending (0: none)")
    p.add_argument("--snapshot-kills", type=int, default=d.snapshot_kills,
                   help="kill -9s of each phase's snapshot")
    p.add_argument("--snapshot-rate", type=int, default=d.snapshot_rate,
                   help="DURO_SNAPSHOT_RATE (ids/s)")
    p.add_argument("--snapshot-page-size", type=int, default=d.snapshot_page_size)
    p.add_argument("--snapshot-deletes", type=int, default=d.snapshot_deletes,
                   help="resources deleted without a webhook before each phase")
    p.add_argument("--bridge-outage", action=argparse.BooleanOptionalAction,
                   default=d.bridge_outage,
                   help="the bridge outage longer than the retry span, then reconcile")
    p.add_argument("--outage-at", type=float, default=d.outage_at,
                   help="its start, as a part of the sending time")
    p.add_argument("--outage-give-up-s", type=float, default=d.outage_give_up_s,
                   help="the events of its first seconds are given up")
    p.add_argument("--outage-scale", type=float, default=d.outage_scale,
                   help="their retry schedule multiplier (the bridge is down for longer)")
    p.add_argument("--outage-lost-answers", type=int, default=d.outage_lost_answers,
                   help="events whose 2xx answers Duro takes for time-outs")
    p.add_argument("--log-shape", default=d.log_shape,
                   choices=[x for x in LOG_SHAPES if x != "details"],
                   help="the double's webhook log metadata (the payload as an object or "
                        "as a JSON string)")
    p.add_argument("--assignment", default=d.assignment,
                   choices=["eager", "cooperative", "consumer"],
                   help="the enricher's DURO_ASSIGNMENT (cooperative needs librdkafka 2.10, "
                        "consumer 2.12)")
    p.add_argument("--drain-timeout-s", type=float, default=d.drain_timeout_s)
    p.add_argument("--bootstrap", help="use this running broker (with --kafka-work to "
                                       "restart it); default: start one")
    p.add_argument("--kafka-work", help="KAFKA_WORK of the --bootstrap broker")
    p.add_argument("--workdir", help="logs of the programs (default: a temporary folder)")
    p.add_argument("--ledger", help="write the ledger as JSON here (default: WORKDIR/ledger.json)")
    a = p.parse_args(argv)
    windows = tuple(w for w in a.windows.split(",") if w)
    bad = [w for w in windows if w not in WINDOWS]
    if bad:
        p.error(f"unknown windows {bad}; choose from {list(WINDOWS)}")
    cfg = FaultConfig(events=a.events, rate=a.rate, scale=a.scale,
                      repeat_probability=a.repeat_probability, bridge_kills=a.bridge_kills,
                      enricher_kills=a.enricher_kills, broker_restarts=a.broker_restarts,
                      windows=windows, window_s=a.window_s, invalid_every=a.invalid_every,
                      unknown_every=a.unknown_every, sender_workers=a.sender_workers,
                      seed=a.seed, drain_timeout_s=a.drain_timeout_s,
                      components=a.components, change_orders=a.change_orders,
                      snapshot_phases=a.snapshot_phases, snapshot_kills=a.snapshot_kills,
                      snapshot_rate=a.snapshot_rate, snapshot_page_size=a.snapshot_page_size,
                      snapshot_deletes=a.snapshot_deletes, bridge_outage=a.bridge_outage,
                      outage_at=a.outage_at, outage_give_up_s=a.outage_give_up_s,
                      outage_scale=a.outage_scale, outage_lost_answers=a.outage_lost_answers,
                      log_shape=a.log_shape, assignment=a.assignment)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="duro-fault-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ledger_path = Path(a.ledger) if a.ledger else workdir / "ledger.json"
    log = Log()

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    broker = None
    try:
        if a.bootstrap:
            broker = kafkatest.Broker(a.kafka_work or "", port=int(a.bootstrap.rsplit(":", 1)[1]))
            broker.bootstrap = a.bootstrap
            broker.external = True
            if cfg.broker_restarts and not a.kafka_work:
                p.error("--broker-restarts needs --kafka-work for a --bootstrap broker")
        else:
            broker = kafkatest.Broker(str(workdir / "kafka-work"), port=0)
            log(f"starting a broker in {broker.work_dir}")
            broker.start()
        log(f"broker {broker.bootstrap}; logs in {workdir}")
        run = FaultRun(cfg, broker, workdir, log)
        ledger = run.run()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); everything started was killed")
        return 2
    except Exception as e:  # noqa: BLE001 - a harness failure voids the run
        log(f"harness error: {e!r}\n{traceback.format_exc()}")
        return 2
    finally:
        if broker is not None and broker.owned:
            try:
                broker.stop()
            except Exception as e:  # noqa: BLE001
                log(f"broker stop: {e}")
    print(format_ledger(ledger), flush=True)
    ledger_path.write_text(json.dumps(ledger, indent=1, default=str))
    log(f"ledger written to {ledger_path}")
    return ledger["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
