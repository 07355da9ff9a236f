"""Hostile input (the guarantees "Bad input gets a clear answer and touches nothing", the bridge's
check table): a table of malformed or malicious requests, each written byte for byte on
a raw socket to ONE duro-bridge shared by the module, each with its expected answer
(a status, or the connection closed).

After every case:
* the raw topic holds exactly as many new records as the case got 2xx answers (a refused
  request moves no offset), checked with the end offset and a barrier: a valid webhook
  right after must land at exactly that offset;
* a 202 ("captured") record carries a ``duro-invalid`` header and the body byte for byte;
* ``/healthz`` and ``/readyz`` answer 200 and the barrier webhook gets 200.

The last test runs duro-enricher over the module's raw topic: every captured record ends
in the DLQ exactly once (``invalid-payload``, matched by source offset), every accepted
one in an output topic exactly once, and nothing else exists.

Expected statuses come from the bridge's contract (404 path, 405 method, 415 content type, 413 size,
401 signature, 202 captured, 422 stale) and from HTTP/1.1 as libmicrohttpd implements it
(400 malformed, 431 header fields too large, 414 URI too long, 505 version; or it closes
the connection). Cases the contract does not pin down say what they accept and why.

The last case of the file (its own bridge with a small connection limit): a normal
client is still served promptly while slowloris clients and a connection flood hold the
bridge past its connection limit.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

import bridgetest
import kafkatest
from bridgetest import (WEBHOOK_PATH, body_of, event, new_secret, read_http_response,
                        readable_within, rfc3339, sign, wait_until)
from enrichertest import (KNOWN_EVENTS, check_dlq, create_state_topics,  # noqa: F401
                          create_topics, double, enrichers, record_event_id, topic_for)

CLOSED = "closed"
MAX_BODY = 65536
MHD_HEADER_LIMIT = 16 * 1024  # the bridge's libmicrohttpd memory per connection (headers)
IDLE_TIMEOUT_S = 4
REQUEST_TIMEOUT_MS = 4000
READ_TIMEOUT_S = 12.0  # > the bridge's request deadline: a silent server is cut by then


# ---------------------------------------------------------------- module state

class Hostile:
    """The module's bridge and what each case left on its raw topic."""

    def __init__(self, broker, bridge: bridgetest.Bridge, topic: str, secret: str):
        self.broker = broker
        self.bridge = bridge
        self.topic = topic
        self.secret = secret
        self.port = bridge.port
        self.captured: dict[int, bytes] = {}  # raw offset -> body (202)
        self.accepted: dict[int, str] = {}    # raw offset -> event id (200)
        self.n = 0

    def comp(self) -> str:
        """An item id the enricher's double knows (so the final drain is quick)."""
        self.n += 1
        return f"comp_{1 + self.n % 300:06d}"

    def valid(self, name: str = "ITEM_UPDATE") -> dict:
        return event(name, data={"item_id": self.comp()})

    def valid_body(self) -> bytes:
        return body_of(self.valid())

    def sig(self, body: bytes) -> str:
        return sign(self.secret, body)

    def end(self) -> int:
        return kafkatest.end_offsets(self.broker.bootstrap, self.topic)[0]


@pytest.fixture(scope="module")
def hostile(broker, tmp_path_factory):
    topic = kafkatest.unique_name("hostile-raw")
    kafkatest.create_topic(broker.bootstrap, topic, partitions=1)
    secret = new_secret()
    env = bridgetest.bridge_env(broker.bootstrap, topic, secret,
                                DURO_BRIDGE_IDLE_TIMEOUT_S=IDLE_TIMEOUT_S,
                                DURO_BRIDGE_REQUEST_TIMEOUT_MS=REQUEST_TIMEOUT_MS)
    b = bridgetest.Bridge(env=env, args=[], workdir=tmp_path_factory.mktemp("hostile"),
                          secrets_=[secret])
    try:
        b.start()
        b.wait_ready()
        yield Hostile(broker, b, topic, secret)
    finally:
        b.kill()
    b.assert_no_secret_in_output()


# ---------------------------------------------------------------- raw HTTP

def request(method: str = "POST", path: str | bytes = WEBHOOK_PATH, *, body: bytes = b"",
            sig: str | None = None, headers=(), version: str = "HTTP/1.1", host: bool = True,
            length: bool = True, ctype: str | None = "application/json") -> bytes:
    """One request, byte for byte. ``headers``: extra lines (str or bytes)."""
    p = path.encode() if isinstance(path, str) else path
    lines = [method.encode() + b" " + p + b" " + version.encode()]
    if host:
        lines.append(b"Host: 127.0.0.1")
    if ctype is not None:
        lines.append(b"Content-Type: " + ctype.encode())
    if sig is not None:
        lines.append(b"X-Duro-Signature: " + sig.encode())
    if length:
        lines.append(b"Content-Length: %d" % len(body))
    lines += [h.encode() if isinstance(h, str) else h for h in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(data: bytes, size: int = 16) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def exchange(port: int, chunks, *, answers: int = 1, shut_wr: bool = False,
             timeout: float = READ_TIMEOUT_S) -> list:
    """Writes ``chunks`` (bytes, or a list written one after another) on a fresh
    connection, optionally half-closes, and reads up to ``answers`` responses. Each
    outcome is a bridgetest.Resp or CLOSED (the connection closed, or was reset, before
    a complete answer); reading stops at CLOSED."""
    if isinstance(chunks, bytes):
        chunks = [chunks]
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out: list = []
    try:
        try:
            for c in chunks:
                s.sendall(c)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (or closed) early; read what it said
        for _ in range(answers):
            try:
                r = read_http_response(s, timeout)
            except (ConnectionError, OSError) as e:
                if isinstance(e, TimeoutError):
                    raise AssertionError(f"no answer and no close within {timeout}s") from None
                r = None
            if r is None:
                out.append(CLOSED)
                break
            out.append(r)
    finally:
        s.close()
    return out


# ---------------------------------------------------------------- the table

@dataclass
class Case:
    name: str
    send: Callable[[Hostile], list]  # returns the outcomes
    expect: list                     # per answer: a set of acceptable statuses / CLOSED
    why: str = ""


def one(h: Hostile, data, **kw) -> list:
    return exchange(h.port, data, **kw)


def signed_post(body: bytes, *, signed: bool, **kw):
    """A case body sent signed (correct signature) or unsigned."""
    def send(h: Hostile):
        return one(h, request(body=body, sig=h.sig(body) if signed else None, **kw))
    return send


def with_sig(make_sig: Callable[[Hostile, bytes], str]):
    def send(h: Hostile):
        body = h.valid_body()
        return one(h, request(body=body, sig=make_sig(h, body)))
    return send


def raw_headers(extra_lines: Callable[[Hostile, bytes], list], **kw):
    def send(h: Hostile):
        body = h.valid_body()
        return one(h, request(body=body, sig=h.sig(body), headers=extra_lines(h, body), **kw))
    return send


def _two_sig_headers(right_first: bool):
    def send(h: Hostile):
        body = h.valid_body()
        right, wrong = h.sig(body), sign(h.secret, body + b" ")
        a, b = (right, wrong) if right_first else (wrong, right)
        return one(h, request(body=body, sig=a, headers=[f"X-Duro-Signature: {b}"]))
    return send


def _secret_off_by_one(h: Hostile, body: bytes) -> str:
    s = h.secret
    return sign(s[:-1] + chr(ord(s[-1]) ^ 1), body)


def _truncated_headers(h: Hostile):
    return one(h, b"POST " + WEBHOOK_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: appl", shut_wr=True)


def _huge_header(h: Hostile):
    body = h.valid_body()
    return one(h, request(body=body, sig=h.sig(body),
                          headers=["X-Padding: " + "a" * (MHD_HEADER_LIMIT + 8192)]))


def _many_headers(h: Hostile):
    body = h.valid_body()
    return one(h, request(body=body, sig=h.sig(body),
                          headers=[f"X-Pad-{i}: {'b' * 90}" for i in range(450)]))


def _headers_8kib(h: Hostile):
    """Well under the bridge's 16 KiB per connection: still served."""
    body = h.valid_body()
    return one(h, request(body=body, sig=h.sig(body),
                          headers=[f"X-Pad-{i}: {'c' * 90}" for i in range(80)]))


def _pipelined(h: Hostile):
    b1, b2 = h.valid_body(), h.valid_body()
    out = one(h, request(body=b1, sig=h.sig(b1)) + request(body=b2, sig=h.sig(b2)), answers=2)
    ids = [json.loads(b)["id"] for b in (b1, b2)]
    got = [o.json().get("event_id") for o in out if o != CLOSED and o.status == 200]
    assert got == ids[:len(got)], f"pipelined answers out of order: {got} != {ids}"
    return out


def _te_and_cl(h: Hostile):
    """Transfer-Encoding: chunked AND a Content-Length (a smuggling shape): either the
    request is refused (400), or the chunked framing wins and the body published is the
    chunked one (signed); using the Content-Length would fail the signature (401)."""
    body = h.valid_body()
    framed = chunked(body)
    return one(h, request(body=framed, sig=h.sig(body), length=False,
                          headers=["Transfer-Encoding: chunked",
                                   f"Content-Length: {len(framed) // 2}"]))


def _cl_larger_then_close(h: Hostile):
    body = h.valid_body()
    head = request(body=b"", sig=h.sig(body), length=False,
                   headers=[f"Content-Length: {len(body) + 200}"])
    return one(h, [head, body], shut_wr=True)


def _chunk_lies_short(h: Hostile):
    body = h.valid_body()
    head = request(body=b"", sig=h.sig(body), length=False,
                   headers=["Transfer-Encoding: chunked"])
    return one(h, [head, b"a\r\n" + body[:5]], shut_wr=True)


def _chunk_over_limit(h: Hostile):
    head = request(body=b"", sig="sha256=" + "0" * 64, length=False,
                   headers=["Transfer-Encoding: chunked"])
    size = 2 * MAX_BODY
    data = [head, b"%x\r\n" % size] + [b"{" * 8192] * (size // 8192)
    return one(h, data)


def _chunk_bad_size(h: Hostile):
    head = request(body=b"", sig="sha256=" + "0" * 64, length=False,
                   headers=["Transfer-Encoding: chunked"])
    return one(h, [head, b"zz\r\nhello\r\n0\r\n\r\n"])


def _oversize(signed: bool):
    def send(h: Hostile):
        body = b'{"pad":"' + b"x" * MAX_BODY + b'"}'
        # head first; a server may refuse on the declared size alone
        head = request(body=b"", sig=h.sig(body) if signed else None, length=False,
                       headers=[f"Content-Length: {len(body)}"])
        s = socket.create_connection(("127.0.0.1", h.port), timeout=READ_TIMEOUT_S)
        try:
            s.sendall(head)
            if not readable_within(s, 3.0):
                try:
                    s.sendall(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            try:
                r = read_http_response(s, READ_TIMEOUT_S)
            except ConnectionError:
                r = None
        finally:
            s.close()
        return [CLOSED if r is None else r]
    return send


def _expect_continue(h: Hostile):
    body = h.valid_body()
    head = request(body=b"", sig=h.sig(body), length=False,
                   headers=[f"Content-Length: {len(body)}", "Expect: 100-continue"])
    s = socket.create_connection(("127.0.0.1", h.port), timeout=READ_TIMEOUT_S)
    try:
        s.sendall(head)
        first = read_http_response(s, 5)
        if first is None:
            return [CLOSED]
        if first.status != 100:
            return [first]
        s.sendall(body)
        second = read_http_response(s, READ_TIMEOUT_S)
        return [first, CLOSED if second is None else second]
    finally:
        s.close()


def _expect_continue_oversize(h: Hostile):
    head = request(body=b"", sig="sha256=" + "0" * 64, length=False,
                   headers=[f"Content-Length: {MAX_BODY + 1}", "Expect: 100-continue"])
    s = socket.create_connection(("127.0.0.1", h.port), timeout=READ_TIMEOUT_S)
    try:
        s.sendall(head)
        r = read_http_response(s, 5)  # the final answer, without sending the body
        return [CLOSED if r is None else r]
    finally:
        s.close()


def _invalid_utf8() -> bytes:
    p = event("ITEM_UPDATE", data={"item_id": "comp_000001"})
    return body_of(p).replace(b'"comp_000001"', b'"comp_\xff\xfe\xc3("')


def _deep_json() -> bytes:
    p = event("ITEM_UPDATE", data={"item_id": "comp_000002"})
    b = body_of(p)
    return b[:-1] + b',"deep":' + b"[" * 100 + b"1" + b"]" * 100 + b"}"


def _dup_keys() -> bytes:
    p = event("ITEM_UPDATE", data={"item_id": "comp_000003"})
    return body_of(p)[:-1] + b',"data":{"item_id":"comp_000004"}}'


def _typed(**over) -> Callable[[], bytes]:
    return lambda: body_of(dict(event("ITEM_UPDATE", data={"item_id": "comp_000005"}), **over))


def _nul_in_body() -> bytes:
    return body_of(event("ITEM_UPDATE", data={"item_id": "comp_000006"})).replace(b'"data"', b'"da\x00ta"')


def _space_before_colon(h: Hostile):
    body = h.valid_body()
    return one(h, request(body=body, headers=[f"X-Duro-Signature : {h.sig(body)}"]))


def _obs_fold(h: Hostile):
    body = h.valid_body()
    sig = h.sig(body)
    return one(h, request(body=body, headers=[f"X-Duro-Signature: {sig[:20]}", f" {sig[20:]}"]))


def _te_unknown(h: Hostile):
    body = h.valid_body()
    return one(h, request(body=chunked(body), sig=h.sig(body), length=False,
                          headers=["Transfer-Encoding: gzip, chunked"]))


def _ws(fmt: str):
    def send(h: Hostile):
        body = h.valid_body()
        return one(h, request(body=body, headers=[b"X-Duro-Signature:" + fmt.format(h.sig(body)).encode()]))
    return send


def _body_case(name: str, make: Callable[[], bytes], why: str) -> list[Case]:
    """A payload problem: unsigned -> 401 (nothing unauthenticated is parsed); signed ->
    202 captured (Duro signed it: the bridge's contract)."""
    def send(signed: bool):
        def f(h: Hostile):
            return signed_post(make(), signed=signed)(h)
        return f
    return [Case(f"{name}-unsigned", send(False), [{401}], why),
            Case(f"{name}-signed", send(True), [{202}], why)]


CASES: list[Case] = [
    # --- signatures (401 unless a valid signature of the exact body by an active secret)
    Case("sig-missing", with_sig(lambda h, b: None), [{401}]),
    Case("sig-empty", with_sig(lambda h, b: ""), [{401}]),
    Case("sig-prefix-only", with_sig(lambda h, b: "sha256="), [{401}]),
    Case("sig-63-hex", with_sig(lambda h, b: h.sig(b)[:-1]), [{401}]),
    Case("sig-65-hex", with_sig(lambda h, b: h.sig(b) + "0"), [{401}]),
    Case("sig-non-hex", with_sig(lambda h, b: h.sig(b)[:-2] + "zz"), [{401}]),
    Case("sig-uppercase-prefix", with_sig(lambda h, b: "SHA256=" + h.sig(b)[7:]), [{401}],
         "the prefix is sha256= (the bridge's contract; only the hex digits may be either case)"),
    Case("sig-uppercase-hex", with_sig(lambda h, b: "sha256=" + h.sig(b)[7:].upper()), [{200}],
         "the bridge's contract: 64 hex digits, either case"),
    Case("sig-sha1-prefix", with_sig(lambda h, b: "sha1=" + h.sig(b)[7:]), [{401}]),
    Case("sig-two-headers-right-first", _two_sig_headers(True), [{401}],
         "two fields combine to 'a, b' (RFC 9110 §5.3): not sha256= + 64 hex"),
    Case("sig-two-headers-right-second", _two_sig_headers(False), [{401}]),
    Case("sig-two-in-one-header", with_sig(lambda h, b: h.sig(b) + ", " + sign(h.secret, b"x")),
         [{401}]),
    Case("sig-whitespace-leading", _ws(" \t{}"), [{200}],
         "whitespace around a field value is not part of it (RFC 9110 §5.5)"),
    Case("sig-whitespace-trailing", _ws("{} \t"), [{200, 401}],
         "RFC 9110 §5.5 says 200; libmicrohttpd 0.9.75 keeps trailing whitespace: "
         "a refusal is acceptable (nothing published)"),
    Case("sig-whitespace-inside", with_sig(lambda h, b: "sha256= " + h.sig(b)[7:]), [{401}]),
    Case("sig-of-another-body", with_sig(lambda h, b: sign(h.secret, b + b"\n")), [{401}]),
    Case("sig-secret-one-byte-off", with_sig(_secret_off_by_one), [{401}]),
    # --- HTTP framing and headers
    Case("headers-truncated-then-close", _truncated_headers, [{CLOSED, 400}]),
    Case("header-over-16KiB", _huge_header, [{431, CLOSED}],
         "the bridge gives libmicrohttpd 16 KiB per connection for the request line and headers"),
    Case("headers-total-over-16KiB", _many_headers, [{431, CLOSED}]),
    Case("headers-8KiB-served", _headers_8kib, [{200}]),
    Case("header-line-without-colon",
         raw_headers(lambda h, b: ["ThisLineHasNoColon"]), [{400, CLOSED}]),
    Case("request-line-garbage", lambda h: one(h, b"\x16\x03\x01\x02\x00garbage\r\n\r\n"),
         [{400, CLOSED}]),
    Case("http-version-unknown", raw_headers(lambda h, b: [], version="HTTP/3.7"),
         [{505, 400, CLOSED}]),
    Case("http-1.0", raw_headers(lambda h, b: [], version="HTTP/1.0"), [{200}],
         "a valid webhook over HTTP/1.0 is still a valid webhook"),
    Case("http-1.1-without-host", raw_headers(lambda h, b: [], host=False), [{400, 200}],
         "RFC 9112 §3.2 wants 400; libmicrohttpd checks it only in strict mode, and a "
         "webhook endpoint has no virtual hosts: accepting it is harmless"),
    Case("header-space-before-colon", _space_before_colon, [{400, 401}],
         "RFC 9112 §5.1: 400; the field then is not X-Duro-Signature: 401 is a refusal too"),
    Case("header-obs-fold", _obs_fold, [{400, 401}],
         "RFC 9112 §5.2: reject (400) or unfold; a refusal either way is fine"),
    Case("transfer-encoding-unknown", _te_unknown, [{400, 501, CLOSED}],
         "RFC 9112 §6.1: 501 (or 400); libmicrohttpd waits, the request deadline closes it"),
    Case("pipelined-two-valid", _pipelined, [{200}, {200}]),
    Case("chunked-and-content-length", _te_and_cl, [{200, 400}],
         "never 401: that would mean the Content-Length framed the body"),
    Case("content-length-larger-than-body-then-close", _cl_larger_then_close, [{CLOSED}]),
    Case("content-length-negative", raw_headers(lambda h, b: ["Content-Length: -1"], length=False),
         [{400, 413}]),
    Case("content-length-not-a-number",
         raw_headers(lambda h, b: ["Content-Length: 12abc"], length=False), [{400, 413}]),
    Case("content-length-twice-different",
         raw_headers(lambda h, b: [f"Content-Length: {len(b)}", f"Content-Length: {len(b) + 5}"],
                     length=False), [{400}],
         "RFC 9112 §6.3: differing Content-Length fields are invalid framing: 400 (a "
         "request-smuggling shape: a proxy in front may frame by the other one)"),
    Case("chunk-says-10-sends-5-then-close", _chunk_lies_short, [{CLOSED, 400}]),
    Case("chunk-larger-than-limit", _chunk_over_limit, [{413, CLOSED}],
         "the bridge's contract: a chunked body growing past the limit: 413 or the connection closed"),
    Case("chunk-size-not-hex", _chunk_bad_size, [{400, CLOSED}]),
    Case("oversize-content-length-signed", _oversize(True), [{413}]),
    Case("oversize-content-length-unsigned", _oversize(False), [{413}]),
    Case("expect-100-continue", _expect_continue, [{100}, {200}]),
    Case("expect-100-continue-oversize", _expect_continue_oversize, [{413}],
         "refused on the declared size, before any 100 Continue"),
    # --- request target and method
    Case("nul-in-path", raw_headers(lambda h, b: [], path=WEBHOOK_PATH.encode() + b"\x00evil"),
         [{400, 404}], "the path is not the webhook path"),
    Case("percent-encoded-nul-in-path", raw_headers(lambda h, b: [], path=WEBHOOK_PATH + "%00evil"),
         [{400, 404}], "the path is not the webhook path (it decodes to /webhooks/duro NUL evil)"),
    Case("very-long-url", raw_headers(lambda h, b: [], path=WEBHOOK_PATH + "/" + "u" * 40000),
         [{414, 431, CLOSED}]),
    Case("long-url-under-limit", raw_headers(lambda h, b: [], path=WEBHOOK_PATH + "/" + "u" * 8000),
         [{404}]),
    Case("path-dot-segments", raw_headers(lambda h, b: [], path="/webhooks/x/../duro"), [{404}]),
    Case("path-with-query", raw_headers(lambda h, b: [], path=WEBHOOK_PATH + "?x=1"), [{200}],
         "the query is not part of the path"),
    Case("method-post-lower-case", raw_headers(lambda h, b: [], method="post"), [{405}],
         "methods are case-sensitive (RFC 9110 §9.1)"),
    Case("method-put", raw_headers(lambda h, b: [], method="PUT"), [{405}]),
    Case("method-get-with-body", raw_headers(lambda h, b: [], method="GET"), [{405}]),
    Case("method-unknown", raw_headers(lambda h, b: [], method="BREW"), [{405}]),
    # --- content type
    Case("content-type-text-plain", raw_headers(lambda h, b: [], ctype="text/plain"), [{415}]),
    Case("content-type-list", raw_headers(lambda h, b: [], ctype="application/json, text/plain"),
         [{415}]),
    Case("content-type-with-parameters",
         raw_headers(lambda h, b: [], ctype="application/json; charset=utf-8"), [{200}]),
    Case("content-type-plus-json",
         raw_headers(lambda h, b: [], ctype="application/vnd.duro.webhook+json"), [{200}]),
    Case("content-type-absent", raw_headers(lambda h, b: [], ctype=None), [{200}],
         "the bridge's contract: only a Content-Type that is present and not JSON is refused"),
    # --- age
    Case("stale-created_at-signed",
         lambda h: signed_post(body_of(event("ITEM_UPDATE", created_at=rfc3339(time.time() - 3 * 86400),
                                             data={"item_id": h.comp()})), signed=True)(h),
         [{422}]),
]

CASES += (_body_case("invalid-utf8", _invalid_utf8, "not JSON (RFC 8259 §8.1: UTF-8)")
          + _body_case("deep-json-100", _deep_json, "nesting deeper than 64")
          + _body_case("duplicate-keys", _dup_keys, "the bridge's contract")
          + _body_case("id-number", _typed(id=12345), "id mistyped")
          + _body_case("data-array", _typed(data=["comp_000005"]), "data mistyped")
          + _body_case("event-null", _typed(event=None), "event mistyped")
          + _body_case("empty-body", lambda: b"", "not JSON")
          + _body_case("not-json", lambda: b"<xml>not json</xml>", "not JSON")
          + _body_case("json-string", lambda: b'"just a string"', "not an object")
          + _body_case("nul-byte-in-body", _nul_in_body, "not JSON"))

assert len({c.name for c in CASES}) == len(CASES)


# ---------------------------------------------------------------- the tests

def _statuses(outcomes) -> list:
    return [o if o == CLOSED else o.status for o in outcomes]


# libmicrohttpd 0.9.75 hands the path to the application as a C string, so a raw NUL
# byte in the request target cuts it short before any code of ours sees it (the URI
# log and unescape callbacks get the same truncated string). Known, documented.
KNOWN_LIMITS = {
    "nul-in-path": "libmicrohttpd 0.9.75 truncates the request target at a raw NUL byte",
}
PARAMS = [pytest.param(c, id=c.name,
                       marks=[pytest.mark.xfail(reason=KNOWN_LIMITS[c.name], strict=True)]
                       if c.name in KNOWN_LIMITS else [])
          for c in CASES]


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("case", PARAMS)
def test_hostile_request(hostile, case):
    h = hostile
    assert h.bridge.proc.poll() is None, "the module's bridge died earlier"
    base = h.end()
    outcomes = case.send(h)
    got = _statuses(outcomes)
    final = [o for o in outcomes if o != CLOSED and o.status != 100]
    n2xx = sum(1 for o in final if 200 <= o.status < 300)
    # account for what the answers say was published first (the last test checks it all)
    for o in final:
        if o.status in (200, 202):
            ans = o.json()
            assert base <= ans["offset"] < base + n2xx, ans
            rec = kafkatest.read_at(h.broker.bootstrap, h.topic, 0, ans["offset"], timeout=10)
            (h.captured if o.status == 202 else h.accepted)[ans["offset"]] = \
                rec.value if o.status == 202 else rec.header("duro-event-id").decode()
            assert ans["status"] == ("accepted" if o.status == 200 else "captured"), ans
            if o.status == 202:
                assert rec.header("duro-invalid"), f"captured record without duro-invalid: {rec}"
                assert rec.header("duro-invalid").decode() == ans["reason"]
            else:
                assert rec.header("duro-invalid") is None, rec.headers
        elif o.status >= 400 and o.header("content-type") == "application/json":
            j = o.json()  # the bridge's own refusals: {"status":"error","error":...}
            assert j.get("status") == "error" and j.get("error"), j

    want = case.expect
    ok = len(got) == len(want) and all(g in w for g, w in zip(got, want))
    assert ok, (f"{case.name}: answers {got}, expected {[sorted(map(str, w)) for w in want]}"
                f" ({case.why})\n{outcomes}\nbridge log tail:\n"
                + "\n".join(h.bridge.stderr_text().splitlines()[-8:]))
    # the raw topic: exactly one record per 2xx
    assert h.end() == base + n2xx, f"{case.name}: raw end {h.end()}, want {base + n2xx}"

    # still alive and ready, and a valid webhook lands right after
    for path in ("/healthz", "/readyz"):
        r = h.bridge.admin(path)
        assert r.status == 200, f"{path} after {case.name}: {r}"
    barrier = h.valid()
    r = h.bridge.post(barrier)
    assert r.status == 200, f"valid webhook after {case.name}: {r}"
    assert r.json()["offset"] == base + n2xx, \
        f"{case.name} left a record on the raw topic: barrier at {r.json()['offset']}, want {base + n2xx}"
    h.accepted[r.json()["offset"]] = barrier["id"]


@pytest.mark.timeout_s(180)
def test_captured_invalid_end_in_the_dlq_exactly_once(hostile, broker, double, enrichers):
    """Runs duro-enricher over the module's raw topic: each captured record is in the DLQ
    once (invalid-payload, by source offset), each accepted one in an output once."""
    h = hostile
    assert h.captured, "no case was captured (run the whole module)"
    raw = kafkatest.read_all(broker.bootstrap, h.topic, timeout=30)
    invalid = {r.offset for r in raw if r.header("duro-invalid")}
    assert invalid == set(h.captured), \
        f"duro-invalid records {sorted(invalid)} != captured answers {sorted(h.captured)}"
    assert {r.offset for r in raw} == set(h.captured) | set(h.accepted), \
        "a raw record that no 2xx answer accounts for"

    prefix = h.topic.replace("hostile-raw", "hostile")
    dlq, template = f"{prefix}.dlq", f"{prefix}.events.{{event}}"
    outputs = [topic_for(template, e) for e in KNOWN_EVENTS]
    create_topics(broker.bootstrap, [dlq] + outputs)
    create_state_topics(broker.bootstrap, f"{prefix}.state.{{kind}}", f"{prefix}.progress")
    env = bridgetest.clean_env({
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "DURO_RAW_TOPIC": h.topic,
        "DURO_DLQ_TOPIC": dlq, "DURO_TOPIC_TEMPLATE": template,
        "DURO_STATE_TOPIC_TEMPLATE": f"{prefix}.state.{{kind}}",
        "DURO_PROGRESS_TOPIC": f"{prefix}.progress",
        "DURO_ENRICHER_GROUP": f"{prefix}-group", "DURO_ENRICHER_ADMIN_LISTEN": "127.0.0.1:0",
        "DURO_TRANSACTIONAL_ID": f"{prefix}-txn", "DURO_API_URL": double.url,
        "DURO_API_KEY": double.api_key, "DURO_NOT_FOUND_GRACE_MS": "0",
        "DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS": "3000",
        "DURO_RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "500"})
    e = enrichers(env, name="hostile-enricher")
    end = kafkatest.end_offsets(broker.bootstrap, h.topic)[0]

    def drained():
        assert e.alive, e.tail()
        cc = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"{prefix}-group",
                       "enable.auto.commit": False})
        try:
            return cc.committed([TopicPartition(h.topic, 0)], timeout=10)[0].offset >= end
        finally:
            cc.close()
    wait_until(drained, 90, "the enricher to commit the whole raw topic", interval=0.5)

    recs = []
    for t in outputs + [dlq]:
        recs += kafkatest.read_all(broker.bootstrap, t, timeout=30)
    by_src: dict[int, list] = {}
    for r in recs:
        if r.topic == dlq:
            src = int(r.header("source-offset"))
        else:
            src = json.loads(r.value)["source"]["offset"]
        by_src.setdefault(src, []).append(r)
    twice = {o: [(r.topic, r.offset) for r in rs] for o, rs in by_src.items() if len(rs) > 1}
    assert not twice, f"raw offsets with more than one record: {twice}"
    assert set(by_src) == set(h.captured) | set(h.accepted), \
        (f"missing {sorted(set(h.captured) | set(h.accepted) - set(by_src))}, "
         f"unexpected {sorted(set(by_src) - set(h.captured) - set(h.accepted))}")
    raw_at = {r.offset: r for r in raw}
    rig = SimpleNamespace(dlq=dlq, raw=h.topic, bootstrap=broker.bootstrap)  # for check_dlq
    for off in h.captured:
        (r,) = by_src[off]
        assert r.topic == dlq, f"captured raw offset {off} went to {r.topic}"
        check_dlq(rig, r, error_class="invalid-payload", raw=raw_at[off])
    for off, eid in h.accepted.items():
        (r,) = by_src[off]
        assert r.topic != dlq, f"accepted raw offset {off} went to the DLQ: {r.headers}"
        assert record_event_id(r, dlq) == eid
    e.terminate(30)


# ---------------------------------------------------------------- slowloris + flood

@pytest.mark.timeout_s(120)
def test_normal_client_served_during_slowloris_and_flood(broker, bridges, topic):
    """Slowloris clients (a header byte every 0.3 s, re-connecting when cut) and a flood of
    idle connections hold the bridge past its connection limit for ~12 s; a normal client
    (retrying a refused connection as Duro does, after 0.1 s) still gets each webhook
    answered 200 within a few request deadlines / idle timeouts (slots held by attackers
    are freed by them; until then the limit refuses everyone, the normal client too)."""
    limit, deadline_ms, idle_s = 24, 1000, 1
    bound_s = 3 * max(deadline_ms / 1000, idle_s) + 3.0
    b = bridges(topic, DURO_BRIDGE_MAX_CONNECTIONS=limit, DURO_BRIDGE_REQUEST_TIMEOUT_MS=deadline_ms,
                DURO_BRIDGE_IDLE_TIMEOUT_S=idle_s)
    stop = threading.Event()
    opened = {"slow": 0, "flood": 0}
    lock = threading.Lock()

    def slowloris():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", b.port), timeout=2)
            except OSError:
                stop.wait(0.05)
                continue
            with lock:
                opened["slow"] += 1
            try:
                s.sendall(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
                while not stop.wait(0.3):  # a slowloris client's pace
                    s.sendall(b"a")
            except OSError:
                pass  # cut: connect again
            finally:
                s.close()

    def flood():
        socks = []
        try:
            while not stop.is_set():
                if len(socks) < 2 * limit:
                    try:
                        socks.append(socket.create_connection(("127.0.0.1", b.port), timeout=2))
                        with lock:
                            opened["flood"] += 1
                    except OSError:
                        pass
                # drop the ones the bridge closed (readable: EOF), keep the pressure on
                alive = []
                for s in socks:
                    if readable_within(s, 0):
                        s.close()
                    else:
                        alive.append(s)
                socks = alive
                stop.wait(0.02)  # the flood's pace
        finally:
            for s in socks:
                s.close()

    threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(limit + 8)]
    threads.append(threading.Thread(target=flood, daemon=True))
    latencies = []
    try:
        for t in threads:
            t.start()
        wait_until(lambda: opened["slow"] >= limit, 10, "the slowloris clients to connect")
        t_attack = time.monotonic()
        while time.monotonic() - t_attack < 12:
            p = event("ITEM_UPDATE")
            t0 = time.monotonic()
            r = None
            while time.monotonic() - t0 < 15:
                try:
                    r = b.post(p, timeout=10)
                    break
                except (ConnectionError, OSError, http.client.HTTPException):
                    stop.wait(0.1)  # Duro-like quick retry of a refused connection
            latencies.append(time.monotonic() - t0)
            assert r is not None and r.status == 200, f"normal client not served: {r}"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    print(f"normal client latencies under attack: {[round(x, 2) for x in latencies]}; "
          f"connections opened: {opened}")
    assert len(latencies) >= 3
    worst = max(latencies)
    assert worst < bound_s, \
        f"a normal webhook waited {worst:.1f}s under attack (deadline {deadline_ms} ms, idle {idle_s} s)"
    assert b.readyz().status == 200
    cut = b.metrics().by_name("duro_bridge_connections_cut_total")
    assert sum(cut.values()) >= limit, f"slowloris connections were not cut: {cut}"
