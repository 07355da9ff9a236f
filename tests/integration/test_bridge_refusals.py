"""Bad input gets a precise answer and touches nothing (the guarantees, the bridge's contract): each
refusing row answers its status, counts it in /metrics, and publishes nothing.

"Publishes nothing" is shown with a barrier: after the refused request, a valid
webhook on the test's 1-partition topic must land at offset 0 (anything the
refused request had produced would sit before it), and the end offset is 1."""

import datetime as dt
import re
import socket
import time

import pytest

from bridgetest import (DEFAULT_MAX_BODY, WEBHOOK_PATH, body_of, event, post_declared_size,
                        read_http_response, readable_within, response_or_closed, rfc3339, sign)
from kafkatest import end_offsets, read_all


def _assert_nothing_published(broker, bridge, topic, base=0):
    """Nothing was added after offset ``base`` (the end offset before the refused
    request): the end offset has not moved, and a valid barrier lands at base."""
    assert end_offsets(broker.bootstrap, topic) == {0: base}
    barrier = event("ITEM_UPDATE")
    r = bridge.post(barrier)
    assert r.status == 200, r
    assert (r.json()["partition"], r.json()["offset"]) == (0, base), \
        "the refused request left a record on the raw topic"
    assert end_offsets(broker.bootstrap, topic) == {0: base + 1}
    assert read_all(broker.bootstrap, topic)[-1].value == body_of(barrier)


def _error_body(r):
    j = r.json()
    assert j["status"] == "error" and isinstance(j["error"], str) and j["error"], j
    return j


def _refusal(broker, bridge, topic, status, send):
    base = end_offsets(broker.bootstrap, topic)[0]
    before = bridge.metrics()
    r = send()
    assert r.status == status, r
    _error_body(r)
    after = bridge.metrics()
    assert after.requests(status) == before.requests(status) + 1
    assert after.requests(200) == before.requests(200)
    assert after.requests(202) == before.requests(202)
    _assert_nothing_published(broker, bridge, topic, base)
    return r


def test_bad_signature_401(broker, bridge, topic):
    p = event("ITEM_UPDATE")
    other = body_of(event("ITEM_UPDATE"))
    _refusal(broker, bridge, topic, 401,
             lambda: bridge.post(p, signature=sign(bridge.secrets_[0], other)))


def test_signature_by_another_secret_401(broker, bridge, topic):
    _refusal(broker, bridge, topic, 401,
             lambda: bridge.post(event("ITEM_UPDATE"), secret="not-the-secret"))


def test_missing_signature_401(broker, bridge, topic):
    _refusal(broker, bridge, topic, 401, lambda: bridge.post(event("ITEM_UPDATE"), sign_=False))


@pytest.mark.parametrize("mangle", [
    lambda s: "sha1=" + s[len("sha256="):],
    lambda s: s[len("sha256="):],
    lambda s: "sha256:" + s[len("sha256="):],
    lambda s: s[:-1],
    lambda s: s + "0",
    lambda s: s[:-1] + "g",
    lambda s: "",
], ids=["wrong-prefix", "no-prefix", "colon", "63-hex", "65-hex", "non-hex", "empty"])
def test_malformed_signature_401(broker, bridge, topic, mangle):
    p = event("ITEM_UPDATE")
    sig = mangle(sign(bridge.secrets_[0], body_of(p)))
    _refusal(broker, bridge, topic, 401, lambda: bridge.post(p, signature=sig))


@pytest.mark.parametrize("where", ["last", "first"])
def test_secret_one_byte_off_401(broker, bridge, topic, where):
    s = bridge.secrets_[0]
    off = s[:-1] + chr(ord(s[-1]) ^ 1) if where == "last" else chr(ord(s[0]) ^ 1) + s[1:]
    assert len(off) == len(s) and off != s
    _refusal(broker, bridge, topic, 401, lambda: bridge.post(event("ITEM_UPDATE"), secret=off))


def test_secret_prefix_or_extension_401(broker, bridge, topic):
    s = bridge.secrets_[0]
    _refusal(broker, bridge, topic, 401, lambda: bridge.post(event("ITEM_UPDATE"), secret=s[:-1]))
    _refusal(broker, bridge, topic, 401, lambda: bridge.post(event("ITEM_UPDATE"), secret=s + "x"))


def test_wrong_content_type_415(broker, bridge, topic):
    _refusal(broker, bridge, topic, 415,
             lambda: bridge.post(event("ITEM_UPDATE"), content_type="text/plain"))


@pytest.mark.parametrize("ct", ["text/plain", "application/x-www-form-urlencoded",
                                "application/xml", "application/jsonx", "multipart/form-data"])
def test_wrong_content_type_variants_415(bridge, ct):
    before = bridge.metrics().requests(415)
    r = bridge.post(event("ITEM_UPDATE"), content_type=ct)
    assert r.status == 415, r
    _error_body(r)
    assert bridge.metrics().requests(415) == before + 1


def test_stale_created_at_422(broker, bridge, topic):
    stale = rfc3339(time.time() - 2 * 86400)
    _refusal(broker, bridge, topic, 422,
             lambda: bridge.post(event("ITEM_UPDATE", created_at=stale)))


def test_max_event_age_setting(broker, bridges, topic):
    b = bridges(topic, DURO_BRIDGE_MAX_EVENT_AGE_S=60)
    _refusal(broker, b, topic, 422,
             lambda: b.post(event("CO_OPEN", created_at=rfc3339(time.time() - 300))))
    # 0 disables the check
    b0 = bridges(topic, DURO_BRIDGE_MAX_EVENT_AGE_S=0)
    r = b0.post(event("ITEM_UPDATE", created_at="2001-01-01T00:00:00Z"))
    assert r.status == 200, r


@pytest.mark.parametrize("path", ["/", "/webhooks", "/webhooks/duro/", "/webhooks/duro/x",
                                  "/webhooks/DURO", "/healthz", "/metrics"])
def test_wrong_path_404(broker, bridge, topic, path):
    _refusal(broker, bridge, topic, 404, lambda: bridge.post(event("ITEM_UPDATE"), path=path))


def test_wrong_path_404_before_method_check(bridge):
    r = bridge.post(b"", method="GET", path="/nope", sign_=False, content_type=None)
    assert r.status == 404, r


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_405(broker, bridge, topic, method):
    p = event("ITEM_UPDATE")
    body = b"" if method in ("GET", "DELETE") else body_of(p)
    r = _refusal(broker, bridge, topic, 405,
                 lambda: bridge.post(body, method=method,
                                     signature=sign(bridge.secrets_[0], body)))
    assert r.header("allow") == "POST"


def _raw_headers(port, lines):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return s


def test_oversize_body_by_content_length_413(broker, bridge, topic):
    body = b'{"pad":"' + b"x" * (DEFAULT_MAX_BODY) + b'"}'
    headers = {"Content-Type": "application/json",
               "X-Duro-Signature": sign(bridge.secrets_[0], body)}

    def send():
        r = post_declared_size(bridge.port, body, headers)
        assert r is not None, "connection closed without an answer"
        return r

    _refusal(broker, bridge, topic, 413, send)


def test_body_at_limit_not_refused_as_too_large(broker, bridges, topic):
    b = bridges(topic, DURO_BRIDGE_MAX_BODY=2048)
    p = event("ITEM_UPDATE")
    base = body_of(dict(p, pad=""))
    exact = body_of(dict(p, pad="x" * (2048 - len(base))))
    assert len(exact) == 2048
    r = b.post(exact)
    assert r.status == 200, r
    over = body_of(dict(p, pad="x" * (2049 - len(base))))
    _refusal(broker, b, topic, 413, lambda: post_declared_size(
        b.port, over, {"Content-Type": "application/json",
                       "X-Duro-Signature": sign(b.secrets_[0], over)}))
    assert end_offsets(broker.bootstrap, topic) == {0: 2}  # the exact one and the barrier


def test_oversize_chunked_upload_cut(broker, bridge, topic):
    before = bridge.metrics()
    body = b'{"pad":"' + b"y" * (4 * DEFAULT_MAX_BODY) + b'"}'
    sig = sign(bridge.secrets_[0], body)
    s = _raw_headers(bridge.port, [
        f"POST {WEBHOOK_PATH} HTTP/1.1", f"Host: 127.0.0.1:{bridge.port}",
        "Content-Type: application/json", f"X-Duro-Signature: {sig}",
        "Transfer-Encoding: chunked"])
    outcome = None
    try:
        try:
            for i in range(0, len(body), 4096):
                chunk = body[i:i + 4096]
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                if readable_within(s, 0):
                    break  # the bridge answered or closed: stop sending
            else:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            outcome = "closed"
        if outcome is None:
            outcome = response_or_closed(s, 10)
    finally:
        s.close()
    assert outcome == "closed" or outcome.status == 413, outcome
    after = bridge.metrics()
    cut_before = sum(before.by_name("duro_bridge_connections_cut_total").values())
    cut_after = sum(after.by_name("duro_bridge_connections_cut_total").values())
    assert cut_after > cut_before or after.requests(413) > before.requests(413), \
        "neither duro_bridge_connections_cut_total nor requests_total{status=413} rose"
    assert after.requests(200) == before.requests(200)
    _assert_nothing_published(broker, bridge, topic)


def test_chunked_body_within_limit_accepted(broker, bridge, topic):
    p = event("ITEM_UPDATE")
    body = body_of(p)
    sig = sign(bridge.secrets_[0], body)
    s = _raw_headers(bridge.port, [
        f"POST {WEBHOOK_PATH} HTTP/1.1", f"Host: 127.0.0.1:{bridge.port}",
        "Content-Type: application/json", f"X-Duro-Signature: {sig}",
        "Transfer-Encoding: chunked"])
    try:
        for i in range(0, len(body), 7):
            chunk = body[i:i + 7]
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        r = read_http_response(s, 15)
    finally:
        s.close()
    assert r is not None and r.status == 200, r
    assert read_all(broker.bootstrap, topic)[0].value == body


def test_refusals_are_logged(bridge):
    r = bridge.post(event("ITEM_UPDATE"), sign_=False)
    assert r.status == 401
    bridge.wait_log(lambda rec: "401" in rec.get("msg", ""), 5, "a log line about the 401")


def test_refusal_log_is_rate_limited(broker, bridges, topic):
    """An anonymous client does not set the log rate: 600 refusals of two reasons give
    one line each and a summary with the counts once the interval ends; /metrics
    counts every one, and nothing is published."""
    b = bridges(topic)
    before = b.metrics()
    n = 300
    for _ in range(n):
        assert b.post(event("ITEM_UPDATE"), sign_=False).status == 401
        assert b.post(event("ITEM_UPDATE"), path="/nope").status == 404
    after = b.metrics()
    assert after.requests(401) - before.requests(401) == n
    assert after.requests(404) - before.requests(404) == n
    summary = b.wait_log(lambda r: r.get("msg", "").startswith("refused, not logged one by one"),
                         30, "the refusal summary at the end of the interval")
    lines = [r["msg"] for r in b.logs() if r.get("msg", "").startswith("refused")]
    summaries = " ".join(m for m in lines if m.startswith("refused, not logged"))
    assert summary["msg"] in summaries
    for st in (401, 404):
        # the first of each reason in an interval in full (the burst may straddle two
        # intervals), the rest counted in the summaries
        full = [m for m in lines if m.startswith(f"refused {st} from")]
        counted = sum(int(c) for c in re.findall(rf"\b{st} [^:;]+: (\d+)", summaries))
        assert 1 <= len(full) <= 2 and len(full) + counted == n, (st, full, summaries)
    assert len(lines) <= 6, lines
    assert end_offsets(broker.bootstrap, topic) == {0: 0}


def test_checks_run_in_order(broker, bridge, topic):
    """The first failing check answers: path, method, content type, size,
    signature, (validity), age."""
    p = event("ITEM_UPDATE", created_at=rfc3339(time.time() - 3 * 86400))
    # wrong path and wrong method: 404
    assert bridge.post(p, path="/x", method="PUT", content_type="text/plain", sign_=False).status == 404
    # wrong method and wrong content type: 405
    assert bridge.post(p, method="PUT", content_type="text/plain", sign_=False).status == 405
    # wrong content type and no signature: 415
    assert bridge.post(p, content_type="text/plain", sign_=False).status == 415
    # too large and no signature: 413
    big = b'{"pad":"' + b"q" * DEFAULT_MAX_BODY + b'"}'
    r = post_declared_size(bridge.port, big, {"Content-Type": "application/json"})
    assert r is not None and r.status == 413, r
    # no signature and stale: 401
    assert bridge.post(p, sign_=False).status == 401
    # signed and stale: 422
    assert bridge.post(p).status == 422
    assert end_offsets(broker.bootstrap, topic) == {0: 0}


@pytest.mark.parametrize("offset", ["+05:30", "-08:00"])
def test_stale_created_at_with_offset_422(broker, bridge, topic, offset):
    """The age check honours the UTC offset of created_at."""
    sign_ = 1 if offset[0] == "+" else -1
    hh, mm = int(offset[1:3]), int(offset[4:6])
    tz = dt.timezone(sign_ * dt.timedelta(hours=hh, minutes=mm))
    # 24h + 1 hour ago, written in a local time that looks recent if the offset is ignored
    old = dt.datetime.now(tz) - dt.timedelta(hours=25)
    created = old.strftime("%Y-%m-%dT%H:%M:%S") + offset
    _refusal(broker, bridge, topic, 422, lambda: bridge.post(event("ITEM_UPDATE", created_at=created)))
