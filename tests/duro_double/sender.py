"""WebhookSender: Duro's webhook sender, for tests.

It signs each event as Duro documents (``X-Duro-Signature: sha256=<hex HMAC-SHA256 of the raw
body>``, ``Content-Type: application/json``), POSTs it over keep-alive connections, and
retries every non-2xx answer, connection error or timeout on Duro's schedule
5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h multiplied by ``scale`` (0.001: 5 ms, 30 ms, ...). After
the last retry fails it gives up (at most 9 attempts per delivery).

Threading model: ``workers`` threads take attempts from a queue, each with its own
keep-alive connection; one scheduler thread holds the retries that are not due yet (a heap)
and queues them when due, so a pending retry never occupies a worker. Everything the sender
learns goes into a thread-safe :class:`Ledger`. :meth:`WebhookSender.close` drops what is not
sent yet (counted as pending), aborts the requests in flight and joins every thread.

Duplicate deliveries: with ``repeat_probability`` p, an event acknowledged for the first time
is delivered again 1-2 more times (same body, same id) after a short random delay
(up to the first scaled retry delay); :meth:`WebhookSender.repeat` does it on demand.
Each repeat is a delivery of its own (retried on failure like any other).

Lost answers: with ``lose_answers`` (event ids), every 2xx answer to a delivery of one of
those events is treated as no answer at all, as Duro does when its request times out after
the endpoint committed the event: the attempt is logged with response code None,
acknowledged False and error ``"answer lost: timed out"``, and the delivery is retried on the
schedule like any failure, then given up. The endpoint sees (and accepts) every attempt.

Delivery log: with ``delivery_log`` (a :class:`~duro_double.server.DuroDouble`, or a
:class:`RemoteDeliveryLog` for one out of process), each attempt is recorded through
``record_delivery(webhook_id=, event=, metadata=, response_code=, acknowledged=,
created_at=, payload=)``; ``metadata`` holds the delivery details (event_id, attempt, repeat,
url, duration_ms, error when there is one) and ``payload`` the delivered body parsed as JSON
(left out when the body is not JSON). The double decides how much of it its log keeps (its
``log_shape`` knob).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import queue
import random
import socket
import ssl
import threading
import time
import urllib.request
import uuid
from typing import Iterable
from urllib.parse import urlsplit

from .data import DuroData, rfc3339

SCHEDULE_S = (5, 30, 120, 600, 1800, 3600, 7200, 14400)

ITEM_EVENTS = ("ITEM_CREATE", "ITEM_UPDATE", "ITEM_DELETE")
CO_EVENTS = ("CO_OPEN", "CO_UPDATE", "CO_DELETE", "CO_STAGE_TRANSITION",
             "CO_STAGE_REVIEWER_DECISION", "CO_RESOLUTION")
DEFAULT_MIX = {"ITEM_UPDATE": 40, "ITEM_CREATE": 15, "ITEM_DELETE": 5, "CO_OPEN": 5,
               "CO_UPDATE": 10, "CO_DELETE": 2, "CO_STAGE_TRANSITION": 8,
               "CO_STAGE_REVIEWER_DECISION": 10, "CO_RESOLUTION": 5}
USER_AGENT = "Duro-Webhooks/1.0 (duro-double)"
LOST_ANSWER_ERROR = "answer lost: timed out"


# ---------------------------------------------------------------- events

def sign(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def new_event_id(rng: random.Random | None = None) -> str:
    u = uuid.UUID(int=rng.getrandbits(128), version=4) if rng is not None else uuid.uuid4()
    return f"evt_{u.hex}"


def _event(name: str, data: dict, webhook_id, created_at, event_id, rng) -> dict:
    ev = {"id": event_id or new_event_id(rng)}
    if webhook_id is not None:
        ev["webhook_id"] = webhook_id
    ev["event"] = name
    ev["created_at"] = created_at or rfc3339()
    ev["data"] = data
    return ev


def _full_name(prefix: str, kind: str) -> str:
    k = kind.upper()
    return k if k.startswith(prefix) else prefix + k


def item_event(kind: str, comp_id: str, *, webhook_id: str | None = None,
               created_at: str | None = None, event_id: str | None = None,
               rng: random.Random | None = None) -> dict:
    """``item_event("update", "comp_000001")`` (or "ITEM_UPDATE"). ``webhook_id`` None: the
    sender fills in its own."""
    return _event(_full_name("ITEM_", kind), {"item_id": comp_id}, webhook_id, created_at,
                  event_id, rng)


def co_event(kind: str, co_id: str, *, stage_id: str | None = None, decision: str | None = None,
             resolution: str | None = None, data: DuroData | None = None,
             webhook_id: str | None = None, created_at: str | None = None,
             event_id: str | None = None, rng: random.Random | None = None) -> dict:
    """``co_event("resolution", "co_000001")`` (or "CO_RESOLUTION"). Stage events carry
    ``stage_id`` and ``decision`` (a stage of the change order when ``data`` knows it),
    CO_RESOLUTION carries ``resolution``, as in Duro's documentation."""
    name = _full_name("CO_", kind)
    r = rng or random
    d: dict = {"change_order_id": co_id}
    if name in ("CO_STAGE_TRANSITION", "CO_STAGE_REVIEWER_DECISION"):
        if stage_id is None:
            doc = data.change_order(co_id) if data is not None else None
            stage_id = (r.choice(doc["stages"])["id"] if doc and doc["stages"]
                        else f"stage_{r.randrange(1, 10**6):06d}")
        d["stage_id"] = stage_id
        d["decision"] = decision or r.choice(["approved", "rejected"])
    elif name == "CO_RESOLUTION":
        d["resolution"] = resolution or r.choice(["approved", "rejected", "withdrawn"])
    return _event(name, d, webhook_id, created_at, event_id, rng)


def random_events(n: int, data: DuroData, mix: dict | Iterable[str] | None = None,
                  rng: random.Random | int | None = None, webhook_id: str | None = None) -> list[dict]:
    """``n`` events over the library's existing resources; ``mix`` maps event names to
    weights (or lists names, equally weighted). ``rng`` (or an int seed) makes it repeatable."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    if mix is None:
        mix = DEFAULT_MIX
    if not isinstance(mix, dict):
        mix = {m: 1 for m in mix}
    names, weights = list(mix), list(mix.values())
    comps, cos = data.component_ids(), data.change_order_ids()
    out = []
    for name in rng.choices(names, weights, k=n):
        if name.startswith("ITEM_"):
            out.append(item_event(name, rng.choice(comps), webhook_id=webhook_id, rng=rng))
        elif name.startswith("CO_"):
            out.append(co_event(name, rng.choice(cos), data=data, webhook_id=webhook_id, rng=rng))
        else:  # an event this schema does not know: data names an item
            out.append(_event(name, {"item_id": rng.choice(comps)}, webhook_id, None, None, rng))
    return out


# ---------------------------------------------------------------- ledger

class Ledger:
    """Per event id: body, deliveries, attempts, statuses (None: no answer), errors,
    attempt times, first 2xx time, acknowledged / gave_up flags, answers_lost. Thread-safe.

    Everything is counted as Duro sees it. A lost answer (``WebhookSender(lose_answers=...)``:
    the endpoint answered 2xx, the sender took it for a time-out) is an attempt with status
    None and error ``"answer lost: timed out"``: it counts in ``failures``, not in ``acks``;
    an event whose answers were all lost is not ``acknowledged`` and ends ``gave_up``, although
    the endpoint accepted it (as many times as it was attempted). Those accepted attempts are
    counted apart, in ``answers_lost`` (per event and in :meth:`summary`): the endpoint
    accepted ``acks + answers_lost`` attempts in all."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}
        self.reconnects = 0

    def _new(self, event_id: str, event: str | None, body: bytes) -> dict:
        with self._lock:
            e = self._entries.get(event_id)
            if e is None:
                e = {"id": event_id, "event": event, "body": body.decode("utf-8", "replace"),
                     "deliveries": 0, "repeats": 0, "attempts": 0, "statuses": [], "errors": [],
                     "attempt_times": [], "attempt_wall": [], "first_ack_at": None,
                     "first_ack_mono": None, "acks": 0, "answers_lost": 0, "acknowledged": False,
                     "gave_up": False, "finished_deliveries": 0}
                self._entries[event_id] = e
            return e

    def _delivery_started(self, event_id: str, repeat: bool) -> None:
        with self._lock:
            e = self._entries[event_id]
            e["deliveries"] += 1
            if repeat:
                e["repeats"] += 1

    def _attempt(self, event_id: str, t_mono: float, t_wall: float, status: int | None,
                 error: str | None, answer_lost: bool = False) -> bool:
        """Records one attempt; True when it was the event's first 2xx. ``answer_lost``: the
        endpoint answered 2xx but the answer counts as none (``status`` is None)."""
        with self._lock:
            e = self._entries[event_id]
            e["attempts"] += 1
            if answer_lost:
                e["answers_lost"] += 1
            e["statuses"].append(status)
            e["attempt_times"].append(t_mono)
            e["attempt_wall"].append(t_wall)
            if error:
                e["errors"].append(error)
            if status is not None and 200 <= status < 300:
                e["acks"] += 1
                if not e["acknowledged"]:
                    e["acknowledged"] = True
                    e["gave_up"] = False
                    e["first_ack_at"] = rfc3339(time.time())
                    e["first_ack_mono"] = time.monotonic()
                    return True
            return False

    def _delivery_finished(self, event_id: str, gave_up: bool) -> None:
        with self._lock:
            e = self._entries[event_id]
            e["finished_deliveries"] += 1
            if gave_up and not e["acknowledged"]:
                e["gave_up"] = True

    def get(self, event_id: str) -> dict:
        with self._lock:
            e = self._entries[event_id]
            return {k: (list(v) if isinstance(v, list) else v) for k, v in e.items()}

    def __contains__(self, event_id) -> bool:
        with self._lock:
            return event_id in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def entries(self) -> dict[str, dict]:
        with self._lock:
            ids = list(self._entries)
        return {i: self.get(i) for i in ids}

    def acknowledged_ids(self) -> list[str]:
        with self._lock:
            return [i for i, e in self._entries.items() if e["acknowledged"]]

    def summary(self) -> dict:
        """Totals as Duro sees them: ``acknowledged`` / ``gave_up`` / ``pending`` events,
        ``attempts`` = ``acks`` + ``failures`` (a lost answer is a failure), and
        ``answers_lost``: attempts the endpoint answered 2xx that counted as no answer."""
        with self._lock:
            es = list(self._entries.values())
            s = {"sent": len(es),
                 "acknowledged": sum(e["acknowledged"] for e in es),
                 "gave_up": sum(e["gave_up"] for e in es),
                 "deliveries": sum(e["deliveries"] for e in es),
                 "repeats": sum(e["repeats"] for e in es),
                 "attempts": sum(e["attempts"] for e in es),
                 "acks": sum(e["acks"] for e in es),
                 "answers_lost": sum(e["answers_lost"] for e in es),
                 "failures": sum(sum(1 for st in e["statuses"] if st is None or not 200 <= st < 300)
                                 for e in es),
                 "unfinished_deliveries": sum(e["deliveries"] - e["finished_deliveries"] for e in es),
                 "reconnects": self.reconnects}
        s["pending"] = s["sent"] - s["acknowledged"] - s["gave_up"]
        s["balanced"] = (s["pending"] >= 0 and s["attempts"] == s["acks"] + s["failures"]
                         and s["deliveries"] == s["sent"] + s["repeats"])
        return s

    def to_json(self) -> dict:
        return {"summary": self.summary(), "events": self.entries()}


# ---------------------------------------------------------------- delivery log sinks

class RemoteDeliveryLog:
    """Appends delivery attempts to an out-of-process DuroDouble (``POST /_webhook_logs``)."""

    def __init__(self, base_url: str, timeout_s: float = 5.0):
        self.url = base_url.rstrip("/") + "/_webhook_logs"
        self.timeout_s = timeout_s

    def record_delivery(self, **entry) -> None:
        req = urllib.request.Request(self.url, data=json.dumps(entry).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
            r.read()


# ---------------------------------------------------------------- sender

_NOT_JSON = object()


def _reject_constant(name: str):
    raise ValueError(f"not JSON: {name}")


def _parse_payload(body: bytes):
    """The body parsed as (strict) JSON, or ``_NOT_JSON``."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError:  # also UnicodeDecodeError
        return _NOT_JSON


class _Delivery:
    __slots__ = ("event_id", "event", "body", "attempt", "repeat", "number", "_payload")

    def __init__(self, event_id, event, body, repeat, number):
        self.event_id, self.event, self.body = event_id, event, body
        self._payload = None  # parsed on first use (only when there is a delivery log)
        self.attempt = 0  # index of the next attempt; retry k waits schedule[k-1]
        self.repeat, self.number = repeat, number

    @property
    def payload(self):
        if self._payload is None:
            self._payload = _parse_payload(self.body)
        return self._payload


class _Conn:
    __slots__ = ("conn", "used")

    def __init__(self):
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0


class WebhookSender:
    """Delivers events to ``url`` signed with ``secret``. Use as a context manager or call
    :meth:`close`. ``send`` queues and returns at once; :meth:`wait` waits for every
    delivery to end (acknowledged or given up).

    ``lose_answers``: event ids whose 2xx answers the sender treats as no answer (logged
    with response code None, not acknowledged, error ``"answer lost: timed out"``; retried,
    then given up), as Duro does when it times out after the endpoint committed the event.
    The ledger counts such an event as Duro does (not acknowledged, given up) and the lost
    answers apart (``answers_lost``), see :class:`Ledger`."""

    def __init__(self, url: str, secret: str | bytes, *, webhook_id: str = "webhook_test",
                 scale: float = 1.0, schedule: Iterable[float] = SCHEDULE_S, workers: int = 8,
                 timeout_s: float = 10.0, repeat_probability: float = 0.0, seed: int | None = None,
                 delivery_log=None, headers: dict | None = None,
                 ssl_context: ssl.SSLContext | None = None, lose_answers: Iterable[str] = ()):
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"bad webhook url {url!r}")
        self.url = url
        self._scheme, self._host, self._port = u.scheme, u.hostname, u.port
        self._path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self._ssl = ssl_context
        self.secret = secret
        self.webhook_id = webhook_id
        self.scale = scale
        self.delays = [d * scale for d in schedule]
        self.timeout_s = timeout_s
        self.repeat_probability = repeat_probability
        self.delivery_log = delivery_log
        self.lose_answers = frozenset(lose_answers or ())
        self.extra_headers = dict(headers or {})
        self.ledger = Ledger()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._heap: list = []
        self._seq = itertools.count()
        self._cv = threading.Condition()  # guards _heap, _outstanding, _closed
        self._outstanding = 0
        self._closed = False
        self._closed_event = threading.Event()
        self._holders = [_Conn() for _ in range(workers)]
        self._threads = [threading.Thread(target=self._worker, args=(h,), daemon=True,
                                          name=f"duro-sender-{i}")
                         for i, h in enumerate(self._holders)]
        self._threads.append(threading.Thread(target=self._scheduler, daemon=True,
                                              name="duro-sender-sched"))
        for t in self._threads:
            t.start()

    # -- public

    def body_of(self, event: dict) -> bytes:
        ev = dict(event)
        if ev.get("webhook_id") is None:
            ev = {"id": ev.get("id"), "webhook_id": self.webhook_id,
                  **{k: v for k, v in ev.items() if k not in ("id", "webhook_id")}}
        return json.dumps(ev, separators=(",", ":")).encode()

    def send(self, event: dict | bytes) -> str:
        """Queues one event (a dict, or raw bytes sent as they are, signed). Returns its id
        (``sha256:<hex>`` of the body when it has none)."""
        if isinstance(event, (bytes, bytearray)):
            body = bytes(event)
            try:
                parsed = json.loads(body)
                eid, name = parsed.get("id"), parsed.get("event")
            except Exception:
                eid, name = None, None
            if not isinstance(eid, str):
                eid = "sha256:" + hashlib.sha256(body).hexdigest()
        else:
            body = self.body_of(event)
            eid, name = event["id"], event.get("event")
        if eid in self.ledger:
            raise ValueError(f"event {eid} already sent; use repeat()")
        self.ledger._new(eid, name, body)
        self._start_delivery(_Delivery(eid, name, body, False, 0), delay=0.0)
        return eid

    def send_many(self, events: Iterable) -> list[str]:
        return [self.send(e) for e in events]

    def send_stream(self, events: Iterable, rate_per_s: float) -> list[str]:
        """Queues events at a steady rate (a pacing loop in the calling thread); returns the
        ids once all are queued (or the sender was closed)."""
        interval = 1.0 / rate_per_s
        t0 = time.monotonic()
        ids = []
        for i, ev in enumerate(events):
            delay = t0 + i * interval - time.monotonic()
            if delay > 0 and self._closed_event.wait(delay):
                break
            ids.append(self.send(ev))
        return ids

    def repeat(self, event: dict | str, times: int = 1, delay_s: float = 0.0) -> None:
        """Delivers an already-sent event again (same body, same id), ``times`` more times."""
        eid = event if isinstance(event, str) else event["id"]
        e = self.ledger.get(eid)
        for _ in range(times):
            self._start_delivery(_Delivery(eid, e["event"], e["body"].encode(), True, 0), delay_s)

    def wait(self, timeout: float) -> bool:
        """Waits until every delivery ended; False when ``timeout`` passed first."""
        with self._cv:
            return self._cv.wait_for(lambda: self._outstanding == 0 or self._closed, timeout) \
                and self._outstanding == 0

    @property
    def outstanding(self) -> int:
        with self._cv:
            return self._outstanding

    def summary(self) -> dict:
        return self.ledger.summary()

    def close(self, timeout: float = 10.0) -> None:
        """Stops: unsent deliveries are dropped (their events stay pending in the ledger),
        requests in flight are aborted, all threads are joined."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._heap.clear()
            self._cv.notify_all()
        self._closed_event.set()
        for h in self._holders:
            c = h.conn
            if c is not None and c.sock is not None:
                try:
                    c.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for _ in self._holders:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"webhook sender threads did not stop: {alive}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- internals

    def _start_delivery(self, d: _Delivery, delay: float) -> None:
        with self._cv:
            if self._closed:
                raise RuntimeError("webhook sender closed")
            self._outstanding += 1
        self.ledger._delivery_started(d.event_id, d.repeat)
        self._schedule(d, delay)

    def _schedule(self, d: _Delivery, delay: float) -> None:
        if delay <= 0:
            self._queue.put(d)
            return
        with self._cv:
            if self._closed:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), d))
            self._cv.notify_all()

    def _end_delivery(self, d: _Delivery, gave_up: bool) -> None:
        self.ledger._delivery_finished(d.event_id, gave_up)
        with self._cv:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._cv.notify_all()

    def _scheduler(self) -> None:
        with self._cv:
            while not self._closed:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    self._queue.put(heapq.heappop(self._heap)[2])
                timeout = (self._heap[0][0] - now) if self._heap else None
                self._cv.wait(timeout)

    def _worker(self, holder: _Conn) -> None:
        while True:
            d = self._queue.get()
            if d is None or self._closed:
                break
            self._attempt(holder, d)
        if holder.conn is not None:
            holder.conn.close()

    def _new_conn(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s,
                                               context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)

    def _post(self, holder: _Conn, body: bytes) -> tuple[int | None, str | None]:
        headers = {"Content-Type": "application/json", "X-Duro-Signature": sign(self.secret, body),
                   "User-Agent": USER_AGENT, **self.extra_headers}
        for retry_stale in (True, False):
            if holder.conn is None:
                holder.conn, holder.used = self._new_conn(), 0
            conn, reused = holder.conn, holder.used > 0
            try:
                conn.request("POST", self._path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                holder.used += 1
                if resp.will_close:
                    conn.close()
                    holder.conn = None
                return resp.status, None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                holder.conn = None
                if reused and retry_stale and not self._closed:
                    # the server closed an idle keep-alive connection: reconnect once
                    with self.ledger._lock:
                        self.ledger.reconnects += 1
                    continue
                return None, f"{type(e).__name__}: {e}"
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                holder.conn = None
                return None, f"{type(e).__name__}: {e}"
        return None, "unreachable"

    def _attempt(self, holder: _Conn, d: _Delivery) -> None:
        t_mono, t_wall = time.monotonic(), time.time()
        status, error = self._post(holder, d.body)
        if self._closed:
            return  # aborted by close(): not an answer, not recorded
        ok = status is not None and 200 <= status < 300
        lost = ok and d.event_id in self.lose_answers
        if lost:  # the endpoint accepted it; Duro timed out first
            status, error, ok = None, LOST_ANSWER_ERROR, False
        first_ack = self.ledger._attempt(d.event_id, t_mono, t_wall, status, error, lost)
        attempt_no = d.attempt + 1
        if self.delivery_log is not None:
            meta = {"event_id": d.event_id, "attempt": attempt_no, "repeat": d.repeat,
                    "url": self.url, "duration_ms": round((time.monotonic() - t_mono) * 1000, 3)}
            if error:
                meta["error"] = error
            extra = {} if d.payload is _NOT_JSON else {"payload": d.payload}
            try:
                self.delivery_log.record_delivery(
                    webhook_id=self.webhook_id, event=d.event or "", metadata=meta,
                    response_code=status, acknowledged=ok, created_at=rfc3339(t_wall), **extra)
            except Exception:
                pass  # the log is best effort; delivery goes on
        if ok:
            self._end_delivery(d, gave_up=False)
            if first_ack and not d.repeat and self.repeat_probability > 0:
                with self._rng_lock:
                    hit = self._rng.random() < self.repeat_probability
                    times = self._rng.choice((1, 2))
                    delays = [self._rng.uniform(0, self.delays[0] if self.delays else 0)
                              for _ in range(times)]
                if hit:
                    for delay in delays:
                        try:
                            self._start_delivery(_Delivery(d.event_id, d.event, d.body, True, 0), delay)
                        except RuntimeError:
                            break
            return
        if d.attempt < len(self.delays):
            delay = self.delays[d.attempt]
            d.attempt += 1
            self._schedule(d, delay)
        else:
            self._end_delivery(d, gave_up=True)
