"""Helpers for the duro-bridge integration tests.

The bridge runs as a real process (``build/duro-bridge`` or ``$DURO_BRIDGE_BIN``)
against the real test broker (kafkatest); :class:`Bridge` is its wrapper (on
proctest.Program, which the enricher's shares). Everything here is bounded in time:
waits poll a condition until a deadline and raise with a message, sockets carry
timeouts, and every process started is registered so that a fixture finalizer
kills it even when the test fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import select
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from proctest import Program, Resp, WaitTimeout, clean_env, http_request, run_once, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "schemas" / "duro-webhook.schema.json"
WEBHOOK_PATH = "/webhooks/duro"
DEFAULT_MAX_BODY = 65536

RFC3339_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def bridge_bin() -> str:
    return os.environ.get("DURO_BRIDGE_BIN") or str(REPO_ROOT / "build" / "duro-bridge")


# ---------------------------------------------------------------- payloads and signatures

def new_secret() -> str:
    """A random secret that cannot occur in a log by accident."""
    return "whsec-" + secrets.token_hex(20)


def sign(secret, body: bytes) -> str:
    if isinstance(secret, str):
        secret = secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def rfc3339(ts: float | None = None) -> str:
    t = dt.datetime.fromtimestamp(time.time() if ts is None else ts, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def event(event: str = "ITEM_UPDATE", *, data: dict | None = None, created_at: str | None = None,
          **fields) -> dict:
    """A Duro webhook payload (as a dict) with fresh ids. ``data`` defaults to the
    id the event kind needs; other keyword fields are added or override."""
    if data is None:
        if event.startswith("ITEM_"):
            data = {"item_id": new_id("comp")}
        elif event.startswith("CO_"):
            data = {"change_order_id": new_id("co")}
        else:
            data = {}
    p = {"id": new_id("evt"), "webhook_id": new_id("webhook"), "event": event,
         "created_at": created_at or rfc3339(), "data": data}
    p.update(fields)
    return p


def body_of(payload) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return json.dumps(payload, separators=(",", ":")).encode()


# ---------------------------------------------------------------- Java's murmur2 partitioner

def murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2: a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    rem = length % 4
    if rem == 3:
        h ^= data[tail + 2] << 16
    if rem >= 2:
        h ^= data[tail + 1] << 8
    if rem >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, num_partitions: int) -> int:
    """Utils.toPositive(Utils.murmur2(key)) % numPartitions."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


# ---------------------------------------------------------------- JSON Schema

def date_time_ok(s) -> bool:
    """RFC 3339 date-time (the JSON Schema "date-time" format), without relying on
    optional jsonschema extras."""
    if not isinstance(s, str):
        return True  # formats only apply to strings
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
                     r"([Zz]|[+-](\d{2}):(\d{2}))", s)
    if not m:
        return False
    try:
        dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    if int(m[4]) > 23 or int(m[5]) > 59 or int(m[6]) > 60:
        return False
    if m[9] is not None and (int(m[9]) > 23 or int(m[10]) > 59):
        return False
    return True


def webhook_validator():
    """A Draft 2020-12 validator of schemas/duro-webhook.schema.json that checks
    formats (date-time with our own checker)."""
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads(SCHEMA_PATH.read_text())
    fc = FormatChecker()
    fc.checks("date-time")(date_time_ok)
    return Draft202012Validator(schema, format_checker=fc)


# ---------------------------------------------------------------- HTTP

def read_http_response(sock: socket.socket, timeout: float) -> Resp | None:
    """Reads one HTTP/1.1 response (Content-Length framed) from a raw socket.
    None when the peer closed (or reset) the connection before sending a byte.
    Raises TimeoutError when nothing complete arrives within ``timeout``."""
    deadline = time.monotonic() + timeout
    buf = b""

    def more() -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete HTTP response within {timeout}s (got {buf[:200]!r})")
        sock.settimeout(left)
        try:
            return sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError(f"no complete HTTP response within {timeout}s (got {buf[:200]!r})") from e

    while b"\r\n\r\n" not in buf:
        try:
            chunk = more()
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            if not buf:
                return None
            raise ConnectionError(f"connection closed inside a response head: {buf[:200]!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = more()
        if not chunk:
            raise ConnectionError("connection closed inside a response body")
        rest += chunk
    return Resp(status, headers, rest[:n])


def response_or_closed(sock: socket.socket, timeout: float):
    """read_http_response, or "closed" when the connection closed (or broke) without
    an answer."""
    try:
        r = read_http_response(sock, timeout)
    except ConnectionError:
        r = None
    return "closed" if r is None else r


def readable_within(sock: socket.socket, timeout: float) -> bool:
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def post_declared_size(port: int, body: bytes, headers: dict, path: str = WEBHOOK_PATH,
                       wait_s: float = 3.0, timeout: float = 10.0) -> Resp | None:
    """POSTs on a raw socket: the head first (with Content-Length); the body only
    if no answer came within ``wait_s`` (a server may refuse on the declared size
    alone). Returns the response, or None when the connection closed unanswered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        if not readable_within(s, wait_s):
            try:
                s.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
        return read_http_response(s, timeout)
    finally:
        s.close()


# ---------------------------------------------------------------- the bridge process

@dataclass
class Bridge(Program):
    """A duro-bridge process. Use through the ``bridges`` fixture (which kills it)."""
    name: str = "bridge"
    port: int | None = None
    tls_context: ssl.SSLContext | None = None

    program = "duro-bridge"
    started_line = r"listening: webhooks on port (?P<port>\d+).*admin on port (?P<admin>\d+);"

    def binary(self) -> str:
        return bridge_bin()

    def start(self, timeout: float = 20.0) -> "Bridge":
        self.port = int(self._start(timeout)["port"])
        return self

    def wait_log(self, pred, timeout: float, what: str) -> dict:
        """The first log record for which pred(record) holds."""
        return wait_until(lambda: next((r for r in self.logs() if pred(r)), None),
                          timeout, f"log line: {what}")

    def wait_ready(self, timeout: float = 30.0) -> "Bridge":
        try:
            wait_until(lambda: self.readyz().status == 200, timeout, "GET /readyz -> 200")
        except WaitTimeout as e:
            last = None
            try:
                last = self.readyz()
            except Exception as ex:  # noqa: BLE001
                last = ex
            raise WaitTimeout(f"{e}; last /readyz: {last!r}\nstderr:\n{self.stderr_text()}") from None
        return self

    # -- webhooks ----------------------------------------------------------
    def post(self, payload, *, secret=None, signature=None, sign_=True,
             content_type: str | None = "application/json", path: str = WEBHOOK_PATH,
             method: str = "POST", headers: dict | None = None, timeout: float = 20.0) -> Resp:
        """POSTs payload (dict or bytes), signed with ``secret`` (default: the
        first of the bridge's secrets) unless ``signature`` is given or sign_ is
        False."""
        body = body_of(payload)
        h = {}
        if content_type is not None:
            h["Content-Type"] = content_type
        if signature is not None:
            h["X-Duro-Signature"] = signature
        elif sign_:
            h["X-Duro-Signature"] = sign(secret if secret is not None else self.secrets_[0], body)
        h.update(headers or {})
        return http_request(self.port, method, path, body=body, headers=h, timeout=timeout,
                            tls_context=self.tls_context)


def bridge_env(bootstrap: str, topic: str, secret: str | None = None, **settings) -> dict:
    """A clean environment for a test bridge on ephemeral loopback ports."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DURO_RAW_TOPIC": topic,
        "DURO_BRIDGE_LISTEN": "127.0.0.1:0",
        "DURO_BRIDGE_ADMIN_LISTEN": "127.0.0.1:0",
        "DURO_BRIDGE_DRAIN_DELAY_MS": "300",
    }
    if secret is not None:
        env["DURO_WEBHOOK_SECRET"] = secret
    env.update({k: str(v) for k, v in settings.items() if v is not None})
    return clean_env(env)


def run_bridge_once(env: dict, args: list, timeout: float = 15.0) -> tuple[int, str, str, float]:
    """Runs duro-bridge expecting it to exit by itself; returns (rc, stdout, stderr,
    seconds). Killed if it outlives ``timeout``."""
    return run_once([bridge_bin(), *args], env, timeout)


# ---------------------------------------------------------------- records

def check_raw_record(rec, *, body: bytes, key: bytes, signature: str, content_type: str,
                     t_before_ms: int, t_after_ms: int, payload: dict | None = None) -> None:
    """Asserts the raw-record contract (README: duro-bridge) for one published webhook."""
    assert rec.value == body, "value must be the request body, byte for byte"
    assert rec.key == key, f"key {rec.key!r}, want {key!r}"
    assert t_before_ms - 5 <= rec.timestamp_ms <= t_after_ms + 5, \
        f"timestamp {rec.timestamp_ms} outside the request window [{t_before_ms}, {t_after_ms}]"
    assert rec.header("duro-signature") == signature.encode()
    assert rec.header("content-type") == content_type.encode()
    ra = rec.header("received-at")
    assert ra is not None and RFC3339_MS_Z.match(ra.decode()), f"received-at {ra!r}"
    ra_ms = int(dt.datetime.strptime(ra.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
                .replace(tzinfo=dt.timezone.utc).timestamp() * 1000 + 0.5)
    assert t_before_ms - 5 <= ra_ms <= t_after_ms + 5, \
        f"received-at {ra!r} outside the request window [{t_before_ms}, {t_after_ms}]"
    if payload is not None:
        assert rec.header("duro-event") == payload["event"].encode()
        assert rec.header("duro-event-id") == payload["id"].encode()
        if "webhook_id" in payload:
            assert rec.header("duro-webhook-id") == payload["webhook_id"].encode()


def now_ms() -> int:
    return int(time.time() * 1000)
