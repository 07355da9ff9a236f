"""Connection handling (the bridge's contract): pipelined requests are answered in order;
slow clients are cut off by the whole-request deadline or the idle timeout; a
client that gives up half-way publishes nothing and leaves nothing in flight."""

import socket
import time

from bridgetest import (WEBHOOK_PATH, body_of, event, read_http_response, readable_within,
                        response_or_closed, sign)
from proctest import wait_until
from kafkatest import end_offsets, read_all


def _head(port, body, sig, extra=()):
    lines = [f"POST {WEBHOOK_PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json", f"X-Duro-Signature: {sig}",
             f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_pipelined_requests_answered_in_order(broker, bridge, topic):
    p1, p2, p3 = event("ITEM_UPDATE"), event("CO_OPEN"), event("ITEM_DELETE")
    data = b""
    for p in (p1, p2, p3):
        body = body_of(p)
        data += _head(bridge.port, body, sign(bridge.secrets_[0], body)) + body
    s = socket.create_connection(("127.0.0.1", bridge.port), timeout=10)
    try:
        s.sendall(data)
        answers = [read_http_response(s, 15) for _ in range(3)]
    finally:
        s.close()
    assert [a.status for a in answers] == [200, 200, 200], answers
    assert [a.json()["event_id"] for a in answers] == [p1["id"], p2["id"], p3["id"]]
    assert [r.value for r in read_all(broker.bootstrap, topic)] == [body_of(p) for p in (p1, p2, p3)]


def test_trickling_client_cut_by_request_deadline(broker, bridges, topic):
    b = bridges(topic, DURO_BRIDGE_REQUEST_TIMEOUT_MS=1000, DURO_BRIDGE_IDLE_TIMEOUT_S=30)
    body = body_of(event("ITEM_UPDATE"))
    s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
    t0 = time.monotonic()
    outcome = None
    try:
        s.sendall(_head(b.port, body, sign(b.secrets_[0], body)))
        for i in range(len(body)):
            if readable_within(s, 0.1):  # one byte per 100 ms, unless cut or answered
                break
            try:
                s.sendall(body[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                outcome = "closed"
                break
            if time.monotonic() - t0 > 8:
                break
        if outcome is None:
            outcome = response_or_closed(s, 5)
    finally:
        s.close()
    elapsed = time.monotonic() - t0
    assert outcome == "closed" or outcome.status >= 400, outcome
    assert elapsed < 1.0 + 3.0, f"cut only after {elapsed:.1f}s (deadline 1 s)"
    assert end_offsets(broker.bootstrap, topic) == {0: 0}
    cut = b.metrics().by_name("duro_bridge_connections_cut_total")
    assert sum(cut.values()) >= 1, f"duro_bridge_connections_cut_total did not rise: {cut}"


def test_idle_half_written_request_cut_by_idle_timeout(broker, bridges, topic):
    b = bridges(topic, DURO_BRIDGE_IDLE_TIMEOUT_S=1)
    body = body_of(event("ITEM_UPDATE"))
    s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
    t0 = time.monotonic()
    try:
        s.sendall(_head(b.port, body, sign(b.secrets_[0], body)) + body[:len(body) // 2])
        assert readable_within(s, 6.0), "the bridge kept an idle half-written request open"
        try:
            r = read_http_response(s, 2)
        except ConnectionError:
            r = None
    finally:
        s.close()
    assert r is None or r.status >= 400, r
    assert time.monotonic() - t0 < 6.0
    assert end_offsets(broker.bootstrap, topic) == {0: 0}
    wait_until(lambda: b.metrics().value("duro_bridge_inflight_requests") == 0, 10,
               "no request left in flight")


def test_client_abort_mid_body_publishes_nothing(broker, bridges, topic):
    # libmicrohttpd may notice a close that arrives with the data only at the idle
    # timeout; a short one bounds how long the aborted request may linger
    bridge = bridges(topic, DURO_LOG_LEVEL="debug", DURO_BRIDGE_IDLE_TIMEOUT_S=2)
    body = body_of(event("ITEM_UPDATE"))
    s = socket.create_connection(("127.0.0.1", bridge.port), timeout=10)
    try:
        s.sendall(_head(bridge.port, body, sign(bridge.secrets_[0], body)) + body[:10])
    finally:
        s.close()
    try:
        wait_until(lambda: bridge.metrics().value("duro_bridge_inflight_requests") == 0, 2 + 5,
                   "the aborted request to be forgotten (idle timeout 2 s)")
    except AssertionError as e:
        raise AssertionError(f"{e}\nbridge log:\n{bridge.stderr_text()[-4000:]}") from None
    # still serving, and the aborted body was not published
    r = bridge.post(event("ITEM_UPDATE"))
    assert r.status == 200 and r.json()["offset"] == 0, r
    assert end_offsets(broker.bootstrap, topic) == {0: 1}


def test_connection_limit(broker, bridges, topic):
    b = bridges(topic, DURO_BRIDGE_MAX_CONNECTIONS=4, DURO_BRIDGE_IDLE_TIMEOUT_S=30)
    held = []
    try:
        for _ in range(4):  # four connections, each in the middle of a request
            s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
            s.sendall(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\n".encode())
            held.append(s)
        extra = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        try:
            extra.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                r = read_http_response(extra, 3)
            except (ConnectionError, TimeoutError):
                r = None  # closed, or left waiting: not served either way
            assert r is None or r.status == 503, f"a 5th connection was served: {r!r}"
        finally:
            extra.close()
    finally:
        for s in held:
            s.close()
    # capacity comes back once the held connections are gone
    r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(b.post(event("ITEM_UPDATE"))),
                   15, "a 200 after the held connections closed", interval=0.2)
    assert r.json()["offset"] == 0
