"""Signed but invalid payloads are captured, not refused (the guarantees, the bridge's contract): each is
published to the raw topic with a ``duro-invalid`` header naming the reason, and
answered 202 only after the broker acked it."""

import hashlib
import json

import pytest

from bridgetest import body_of, check_raw_record, event, now_ms, rfc3339, sign
from kafkatest import end_offsets, read_all, read_at


def _base():
    return event("ITEM_UPDATE", data={"item_id": "comp_fixed_1"})


def _drop(key):
    p = _base()
    del p[key]
    return p


def _body_dup_keys():
    p = _base()
    return (b'{"id":"' + p["id"].encode() + b'","id":"evt_other","webhook_id":"wh_1",'
            b'"event":"ITEM_UPDATE","created_at":"' + p["created_at"].encode() + b'",'
            b'"data":{"item_id":"comp_dup"}}')


def _body_dup_nested_keys():
    p = _base()
    return (b'{"id":"' + p["id"].encode() + b'","event":"ITEM_UPDATE","created_at":"'
            + p["created_at"].encode() + b'","data":{"item_id":"comp_a","item_id":"comp_b"}}')


# name -> (body, words the duro-invalid reason must mention (any of), expected key or
#          "sha256" for the body hash, or "id" / "item_id" / "change_order_id" of the payload)
CASES = {
    "not-json": (b"this is { not JSON", ["json"], "sha256"),
    "truncated-json": (lambda: body_of(_base())[:-3], ["json"], "sha256"),
    "empty-body": (b"", ["json"], "sha256"),
    "json-array": (b'[{"id":"evt_1"}]', ["object"], "sha256"),
    "duplicate-keys": (_body_dup_keys, ["duplicate"], "sha256-or-id"),
    "duplicate-nested-keys": (_body_dup_nested_keys, ["duplicate"], "sha256-or-id"),
    "missing-id": (lambda: _drop("id"), ["id"], "item_id"),
    "missing-event": (lambda: _drop("event"), ["event"], "item_id"),
    "missing-created_at": (lambda: _drop("created_at"), ["created_at"], "item_id"),
    "missing-data": (lambda: _drop("data"), ["data"], "id"),
    "id-not-string": (lambda: dict(_base(), id=12345), ["id"], "item_id"),
    "event-not-string": (lambda: dict(_base(), event=["ITEM_UPDATE"]), ["event"], "item_id"),
    "created_at-not-string": (lambda: dict(_base(), created_at=1734690600), ["created_at"], "item_id"),
    "created_at-not-rfc3339": (lambda: dict(_base(), created_at="20 Dec 2024 10:30"),
                               ["created_at", "rfc 3339", "rfc3339"], "item_id"),
    "data-not-object": (lambda: dict(_base(), data="comp_1"), ["data"], "id"),
    "item-without-item_id": (lambda: event("ITEM_CREATE", data={"note": "x"}), ["item_id"], "id"),
    "item-empty-item_id": (lambda: event("ITEM_CREATE", data={"item_id": ""}), ["item_id"], "id"),
    "item-item_id-not-string": (lambda: event("ITEM_DELETE", data={"item_id": 42}), ["item_id"], "id"),
    "co-without-change_order_id": (lambda: event("CO_RESOLUTION", data={"resolution": "approved"}),
                                   ["change_order_id"], "id"),
    "co-with-only-item_id": (lambda: event("CO_UPDATE", data={"item_id": "comp_9"}),
                             ["change_order_id"], "item_id"),
    "no-ids-at-all": (lambda: {"event": "ITEM_UPDATE", "created_at": rfc3339(),
                               "data": {}}, ["id"], "sha256"),
}


def _strict_json(body: bytes):
    """The parsed body, or None when it is not JSON or has a duplicate key."""
    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(pairs)
    try:
        return json.loads(body, object_pairs_hook=no_dups)
    except ValueError:
        return None


def _materialize(spec):
    body = spec() if callable(spec) else spec
    return body if isinstance(body, bytes) else body_of(body)


@pytest.mark.parametrize("name", list(CASES))
def test_signed_invalid_payload_captured_with_reason(broker, bridge, topic, name):
    spec, words, key_rule = CASES[name]
    body = _materialize(spec)
    sig = sign(bridge.secrets_[0], body)
    before = bridge.metrics()
    t0 = now_ms()
    r = bridge.post(body, signature=sig)
    t1 = now_ms()
    assert r.status == 202, r
    ans = r.json()
    assert ans["status"] == "captured"
    assert ans["topic"] == topic
    reason = ans["reason"]
    assert isinstance(reason, str) and reason
    assert any(w in reason.lower() for w in words), f"reason {reason!r} should name {words}"
    # on the raw topic by the time of the answer, at the position named
    rec = read_at(broker.bootstrap, topic, ans["partition"], ans["offset"], timeout=5)
    assert rec.header("duro-invalid") == reason.encode()

    payload = _strict_json(body)
    if key_rule == "sha256":
        key = ("sha256:" + hashlib.sha256(body).hexdigest()).encode()
    elif key_rule == "sha256-or-id":
        # a body that cannot be parsed at all has no ids to offer; one that names
        # them may use them: either way the key must be one of those
        key = rec.key
        assert key in (("sha256:" + hashlib.sha256(body).hexdigest()).encode(),
                       b"comp_a", b"comp_b", b"comp_dup", _body_id(body))
    elif key_rule == "id":
        key = payload["id"].encode()
    else:
        key = payload["data"][key_rule].encode()
    check_raw_record(rec, body=body, key=key, signature=sig, content_type="application/json",
                     t_before_ms=t0, t_after_ms=t1)
    if isinstance(payload, dict) and isinstance(payload.get("event"), str) and payload["event"]:
        assert rec.header("duro-event") == payload["event"].encode()
    if isinstance(payload, dict) and isinstance(payload.get("id"), str) and payload["id"]:
        assert rec.header("duro-event-id") == payload["id"].encode()

    after = bridge.metrics()
    assert after.requests(202) == before.requests(202) + 1
    assert after.value("duro_bridge_captured_invalid_total") == \
        before.value("duro_bridge_captured_invalid_total") + 1
    assert end_offsets(broker.bootstrap, topic) == {0: 1}


def _body_id(body: bytes) -> bytes:
    start = body.index(b'"id":"') + 6
    return body[start:body.index(b'"', start)]


def test_duplicate_keys_key_and_reason(broker, bridge, topic):
    """A body with a duplicate top-level key is not taken apart field by field:
    captured with a reason naming the duplicate."""
    body = _body_dup_keys()
    r = bridge.post(body)
    assert r.status == 202, r
    assert "duplicate" in r.json()["reason"].lower()
    recs = read_all(broker.bootstrap, topic)
    assert len(recs) == 1 and recs[0].value == body
    assert recs[0].header("duro-invalid") is not None


def test_invalid_but_unsigned_is_refused_not_captured(broker, bridge, topic):
    r = bridge.post(b"this is { not JSON", sign_=False)
    assert r.status == 401, r
    r = bridge.post(b"this is { not JSON", secret="wrong-secret")
    assert r.status == 401, r
    assert end_offsets(broker.bootstrap, topic) == {0: 0}


def test_invalid_and_stale_is_refused_422_not_captured(broker, bridge, topic):
    """The event age is checked before the capture whenever created_at can be read, so
    a signed invalid body cannot be replayed once the dedupe window has passed: old
    and invalid is refused (422), nothing published."""
    p = event("ITEM_UPDATE", data={}, created_at="2001-01-01T00:00:00Z")
    r = bridge.post(p)
    assert r.status == 422, r
    assert "too old" in r.json()["error"], r.json()
    assert end_offsets(broker.bootstrap, topic) == {0: 0}
    # an invalid body whose created_at cannot be read has no age: captured
    q = event("ITEM_UPDATE", data={}, created_at="last tuesday")
    r = bridge.post(q)
    assert r.status == 202, r
    assert end_offsets(broker.bootstrap, topic) == {0: 1}
    # and a recent invalid one still is
    r = bridge.post(event("ITEM_UPDATE", data={}))
    assert r.status == 202, r
    assert end_offsets(broker.bootstrap, topic) == {0: 2}