"""duro-bridge publishes valid signed webhooks to the raw topic (the bridge's contract):
200 only after the broker acked, the raw-record contract (key, value, timestamp,
headers), Java-compatible partitioning, unknown events, and the payload schema."""

import datetime as dt
import json
import time

import pytest
from jsonschema import Draft202012Validator

import bridgetest
from bridgetest import (body_of, check_raw_record, event, java_partition, murmur2, now_ms, sign,
                        webhook_validator)
from kafkatest import create_topic, end_offsets, read_all, read_at, unique_name


# ---------------------------------------------------------------- helpers of the tests themselves

@pytest.mark.parametrize("data,expected", [
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_matches_java(data, expected):
    assert murmur2(data) == expected


# ---------------------------------------------------------------- the payload schema

def test_schema_is_valid_draft_2020_12():
    schema = json.loads(bridgetest.SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {"id", "event", "created_at", "data"}


SPEC_EXAMPLES = [
    {"id": "evt_abc123", "webhook_id": "webhook_xyz789", "event": "ITEM_UPDATE",
     "created_at": "2024-12-20T10:30:00Z", "data": {"item_id": "comp_123456"}},
    {"id": "evt_1", "webhook_id": "webhook_1", "event": "CO_STAGE_TRANSITION",
     "created_at": "2024-12-20T10:30:00.123+01:00",
     "data": {"change_order_id": "co_345678", "stage_id": "stage_901234", "decision": "approved"}},
    {"id": "evt_2", "event": "CO_RESOLUTION", "created_at": "2024-12-20T10:30:00Z",
     "data": {"change_order_id": "co_345678", "resolution": "approved"}},
    {"id": "evt_3", "event": "COMPONENT_ARCHIVED", "created_at": "2024-12-20T10:30:00Z", "data": {}},
    {"id": "evt_4", "event": "CATEGORY_UPDATE", "created_at": "2024-12-20T10:30:00Z",
     "data": {"category_id": "cat_1"}, "extra": [1, 2]},
]


@pytest.mark.parametrize("payload", SPEC_EXAMPLES, ids=lambda p: p["event"])
def test_schema_accepts_valid_payloads(payload):
    errors = list(webhook_validator().iter_errors(payload))
    assert errors == []


def _without(key):
    p = dict(SPEC_EXAMPLES[0])
    del p[key]
    return p


INVALID_PAYLOADS = {
    "not-an-object": ["evt_1"],
    "missing-id": _without("id"),
    "missing-event": _without("event"),
    "missing-created_at": _without("created_at"),
    "missing-data": _without("data"),
    "id-not-string": dict(SPEC_EXAMPLES[0], id=42),
    "empty-id": dict(SPEC_EXAMPLES[0], id=""),
    "webhook_id-not-string": dict(SPEC_EXAMPLES[0], webhook_id=7),
    "created_at-not-rfc3339": dict(SPEC_EXAMPLES[0], created_at="20/12/2024 10:30"),
    "created_at-no-offset": dict(SPEC_EXAMPLES[0], created_at="2024-12-20T10:30:00"),
    "created_at-bad-date": dict(SPEC_EXAMPLES[0], created_at="2024-02-30T10:30:00Z"),
    "data-not-object": dict(SPEC_EXAMPLES[0], data="comp_1"),
    "item-without-item_id": dict(SPEC_EXAMPLES[0], data={"change_order_id": "co_1"}),
    "item-empty-item_id": dict(SPEC_EXAMPLES[0], data={"item_id": ""}),
    "item-item_id-not-string": dict(SPEC_EXAMPLES[0], data={"item_id": 5}),
    "co-without-change_order_id": dict(SPEC_EXAMPLES[2], data={"item_id": "comp_1"}),
}


@pytest.mark.parametrize("name", sorted(INVALID_PAYLOADS))
def test_schema_rejects_invalid_payloads(name):
    assert not webhook_validator().is_valid(INVALID_PAYLOADS[name])


# ---------------------------------------------------------------- publishing

def _post_and_check(broker, bridge, topic, payload, *, key, content_type="application/json",
                    signature=None, expect_content_type=None):
    body = body_of(payload)
    sig = signature or sign(bridge.secrets_[0], body)
    t0 = now_ms()
    r = bridge.post(body, signature=sig, content_type=content_type)
    t1 = now_ms()
    assert r.status == 200, r
    ans = r.json()
    assert ans["status"] == "accepted"
    assert ans["event_id"] == payload["id"]
    assert ans["topic"] == topic
    assert isinstance(ans["partition"], int) and isinstance(ans["offset"], int)
    # the answer came after the ack: the record is readable at the position it names
    rec = read_at(broker.bootstrap, topic, ans["partition"], ans["offset"], timeout=5)
    check_raw_record(rec, body=body, key=key, signature=sig,
                     content_type=expect_content_type or content_type or "application/json",
                     t_before_ms=t0, t_after_ms=t1, payload=payload)
    assert rec.header("duro-invalid") is None
    webhook_validator().validate(json.loads(rec.value))
    return ans, rec


def test_valid_webhook_acked_after_record_is_on_topic(broker, bridge, topic):
    assert end_offsets(broker.bootstrap, topic) == {0: 0}
    p = event("ITEM_UPDATE")
    ans, rec = _post_and_check(broker, bridge, topic, p, key=p["data"]["item_id"].encode())
    assert (ans["partition"], ans["offset"]) == (0, 0)
    assert end_offsets(broker.bootstrap, topic) == {0: 1}
    assert [r.value for r in read_all(broker.bootstrap, topic)] == [body_of(p)]


def test_change_order_event_keyed_by_change_order_id(broker, bridge, topic):
    p = event("CO_RESOLUTION", data={"change_order_id": "co_345678", "resolution": "approved",
                                     "item_id": "comp_not_the_key"})
    _post_and_check(broker, bridge, topic, p, key=b"co_345678")


def test_item_event_keyed_by_item_id_even_with_change_order_id(broker, bridge, topic):
    p = event("ITEM_CREATE", data={"change_order_id": "co_not_the_key", "item_id": "comp_789012"})
    _post_and_check(broker, bridge, topic, p, key=b"comp_789012")


def test_body_published_byte_for_byte(broker, bridge, topic):
    """Whitespace, key order, escapes and non-ASCII text are kept as sent."""
    p = event("ITEM_UPDATE")
    body = (b'{ "data" : {"item_id":"comp_\\u00e9\xc3\xa9", "note":"tab\\there"},\n'
            b'  "event":"ITEM_UPDATE", "id":"' + p["id"].encode() + b'",'
            b' "webhook_id":"' + p["webhook_id"].encode() + b'",'
            b' "created_at":"' + p["created_at"].encode() + b'" }\n')
    sig = sign(bridge.secrets_[0], body)
    r = bridge.post(body, signature=sig)
    assert r.status == 200, r
    ans = r.json()
    rec = read_at(broker.bootstrap, topic, ans["partition"], ans["offset"], timeout=5)
    assert rec.value == body
    assert rec.key == "comp_\u00e9\u00e9".encode()


@pytest.mark.parametrize("sent,recorded", [
    (None, "application/json"),
    ("application/json; charset=utf-8", "application/json; charset=utf-8"),
    ("application/vnd.duro.webhook+json", "application/vnd.duro.webhook+json"),
    ("Application/JSON", "Application/JSON"),
])
def test_content_type_accepted_and_recorded(broker, bridge, topic, sent, recorded):
    p = event("ITEM_UPDATE")
    _post_and_check(broker, bridge, topic, p, key=p["data"]["item_id"].encode(),
                    content_type=sent, expect_content_type=recorded)


def test_signature_hex_in_upper_case_accepted(broker, bridge, topic):
    p = event("ITEM_DELETE")
    body = body_of(p)
    sig = "sha256=" + sign(bridge.secrets_[0], body)[len("sha256="):].upper()
    _post_and_check(broker, bridge, topic, p, key=p["data"]["item_id"].encode(), signature=sig)


def test_same_event_twice_is_accepted_and_published_twice(broker, bridge, topic):
    p = event("ITEM_UPDATE")
    a1, _ = _post_and_check(broker, bridge, topic, p, key=p["data"]["item_id"].encode())
    a2, _ = _post_and_check(broker, bridge, topic, p, key=p["data"]["item_id"].encode())
    assert a1["event_id"] == a2["event_id"] == p["id"]
    assert a2["offset"] == a1["offset"] + 1
    recs = read_all(broker.bootstrap, topic)
    assert [r.value for r in recs] == [body_of(p), body_of(p)]


def test_partition_matches_java_murmur2(broker, bridges):
    topic = unique_name("raw6")
    create_topic(broker.bootstrap, topic, partitions=6)
    b = bridges(topic)
    keys = ["comp_123456", "comp_789012", "co_345678", "21", "foobar", "x",
            "a-little-bit-long-string", "comp_\u00e9t\u00e9", "co_1", "comp_2", "comp_3", "co_4"]
    seen = set()
    for k in keys:
        ev = "CO_UPDATE" if k.startswith("co_") else "ITEM_UPDATE"
        data = {"change_order_id": k} if ev.startswith("CO_") else {"item_id": k}
        p = event(ev, data=data)
        r = b.post(p)
        assert r.status == 200, r
        want = java_partition(k.encode(), 6)
        assert r.json()["partition"] == want, f"key {k!r}"
        rec = read_at(broker.bootstrap, topic, want, r.json()["offset"], timeout=5)
        assert rec.key == k.encode() and rec.value == body_of(p)
        seen.add(want)
    assert len(seen) >= 3  # the keys really spread over partitions


@pytest.mark.parametrize("data,key_field", [
    ({"item_id": "comp_archived_1", "reason": "obsolete"}, "item_id"),
    ({"change_order_id": "co_archived_1"}, "change_order_id"),
    ({"item_id": "comp_first", "change_order_id": "co_second"}, "item_id"),
    ({"category_id": "cat_1"}, None),
    ({}, None),
], ids=["item_id", "change_order_id", "both", "other-id", "empty-data"])
def test_unknown_event_accepted_and_keyed(broker, bridge, topic, data, key_field):
    p = event("COMPONENT_ARCHIVED", data=data)
    key = data[key_field] if key_field else p["id"]
    _post_and_check(broker, bridge, topic, p, key=key.encode())


def test_replication_factor_warning_on_single_node_broker(bridge):
    rec = bridge.wait_log(lambda r: r.get("level") == "warn"
                          and "replication factor" in r.get("msg", ""),
                          15, "warn about the raw topic's replication factor")
    assert rec["prog"] == "duro-bridge"


def test_log_lines_are_json_objects(bridge):
    r = bridge.post(event("ITEM_UPDATE"))
    assert r.status == 200, r
    logs = bridge.logs()
    assert logs, "no log lines"
    for rec in logs:
        assert "raw" not in rec, f"not a JSON log line: {rec['raw']!r}"
        assert {"ts", "level", "prog", "msg"} <= set(rec), rec
        assert rec["prog"] == "duro-bridge"
        assert rec["level"] in ("debug", "info", "warn", "error")


@pytest.mark.parametrize("shape", ["offset", "fraction", "fraction-offset"])
def test_created_at_rfc3339_variants_accepted(broker, bridge, topic, shape):
    tz = dt.timezone(dt.timedelta(hours=-7)) if "offset" in shape else dt.timezone.utc
    t = dt.datetime.fromtimestamp(time.time() - 60, tz)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if "fraction" in shape:
        s += ".123456"
    s += "-07:00" if "offset" in shape else "Z"
    p = event("ITEM_UPDATE", created_at=s)
    _post_and_check(broker, bridge, topic, p, key=p["data"]["item_id"].encode())
