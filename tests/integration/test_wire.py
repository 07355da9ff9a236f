"""The wire conventions of issue 20 against the real broker, bridge, enricher and double:
CloudEvents in binary content mode (Kafka protocol binding 1.0.2: one ``ce_<attribute>``
header per attribute, the value untouched) on every output, state and DLQ record, and
W3C trace context (``traceparent``, ``tracestate``) from the webhook request through the
raw record to everything the enricher and its commands write.

The records are read by real consumers of the conventions: the CloudEvents Python SDK's
Kafka binding (``cloudevents.core.bindings.kafka``, which validates the attributes, and
the older ``cloudevents.v1.kafka``, through an unmarshaller that takes a tombstone's null
value), and a traceparent parser that follows the W3C recommendation (version 00: exactly
55 characters, lower-case hex, neither id all zeros)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import urllib.parse

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1 import kafka as ce_v1_kafka
from dateutil.parser import isoparse

import kafkatest
from bridgetest import WEBHOOK_PATH, body_of, event, new_id, read_http_response, rfc3339, sign
from enrichertest import (KNOWN_EVENTS, Rig, check_dlq, check_output, co_event, double,  # noqa: F401
                          enricher_bin, enricher_env, enrichers, item_event, parse_output,
                          run_enricher_once)
from proctest import run_once

WH = "webhook_wire"
EVENTS = KNOWN_EVENTS + ("FOO_BAR", "ITEM_SNAPSHOT", "CO_SNAPSHOT")
KINDS = ("item", "change_order")

TRACEPARENT_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
ZERO_TRACE, ZERO_SPAN = "0" * 32, "0" * 16
UNRESERVED_OR_PCT = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+")


@pytest.fixture
def rig(broker, double, tmp_path):  # noqa: F811 - every event topic, the snapshots' too
    r = Rig(broker, double, tmp_path, events=EVENTS, prefix="wire")
    yield r
    r.close()


# ---------------------------------------------------------------- trace context

def new_ids() -> tuple[str, str]:
    """A random (trace id, parent id), neither all zeros."""
    return secrets.token_hex(16), secrets.token_hex(8)


def header_values(rec: kafkatest.Record, name: str) -> list[bytes]:
    return [v for k, v in rec.headers if k == name]


def trace_of(rec: kafkatest.Record) -> tuple[str, str, str]:
    """(trace id, span id, flags) of the record's one traceparent header, which must be
    a valid version-00 traceparent."""
    vals = header_values(rec, "traceparent")
    assert len(vals) == 1, f"{rec.topic}@{rec.offset}: {len(vals)} traceparent headers: {rec.headers}"
    m = TRACEPARENT_00.fullmatch(vals[0].decode("ascii", "replace"))
    assert m, f"{rec.topic}@{rec.offset}: traceparent {vals[0]!r} is not a valid version 00"
    assert m[1] != ZERO_TRACE and m[2] != ZERO_SPAN, f"all-zero id in {vals[0]!r}"
    return m[1], m[2], m[3]


def tracestate_of(rec: kafkatest.Record) -> str | None:
    vals = header_values(rec, "tracestate")
    assert len(vals) <= 1, f"{len(vals)} tracestate headers: {rec.headers}"
    return vals[0].decode() if vals else None


def ce_names(rec: kafkatest.Record) -> list[str]:
    return [k for k, _ in rec.headers if k.lower().startswith("ce_")]


# ---------------------------------------------------------------- CloudEvents

def json_or_null(value):
    """The data unmarshaller of a consumer of compacted topics and dead letters: a
    tombstone's null value is no data; a value that is not JSON (a dead letter's) is
    its text."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value.decode("utf-8", "replace")


def read_ce(rec: kafkatest.Record):
    """The record as the CloudEvents SDK's Kafka binding reads it (binary content mode):
    the validated core event, after the v1 binding agreed on its attributes."""
    names = [k.lower() for k, _ in rec.headers
             if k.lower().startswith("ce_") or k.lower() == "content-type"]
    assert len(names) == len(set(names)), f"a CloudEvents header twice: {rec.headers}"
    headers = {k: v for k, v in rec.headers}
    ev = ce_kafka.from_binary(ce_kafka.KafkaMessage(headers=headers, key=rec.key, value=rec.value),
                              JSONFormat())
    old = ce_v1_kafka.from_binary(ce_v1_kafka.KafkaMessage(headers, rec.key, rec.value),
                                  data_unmarshaller=json_or_null)
    for attr in ("specversion", "id", "source", "type"):
        assert old[attr] == ev.get_attributes()[attr], (attr, old[attr], ev.get_attributes())
    assert old.get("subject") == ev.get_subject()
    assert old.data == ev.get_data()
    return ev


def check_ce(rec: kafkatest.Record, *, id: str, type: str, source: str, subject: str | None,
             time: str | None, data="value"):
    """Asserts the record's CloudEvent: id, type, source, subject and time (absent when
    None), content type, partition key, and data (by default: the record's value parsed,
    so the value is untouched)."""
    ev = read_ce(rec)
    where = f"{rec.topic}@{rec.partition}/{rec.offset}"
    assert ev.get_specversion() == "1.0"
    assert ev.get_id() == id, f"{where}: ce id {ev.get_id()!r}, want {id!r}"
    assert ev.get_type() == type, f"{where}: ce type {ev.get_type()!r}, want {type!r}"
    assert ev.get_source() == source or same_source(ev.get_source(), source), \
        f"{where}: ce source {ev.get_source()!r}, want {source!r}"
    assert ev.get_subject() == subject, f"{where}: ce subject {ev.get_subject()!r}, want {subject!r}"
    if time is None:
        # the SDK fills in "now" for an absent time: the header itself must be absent
        assert rec.header("ce_time") is None, f"{where}: ce_time {rec.header('ce_time')!r}"
    else:
        assert rec.header("ce_time") == time.encode(), f"{where}: ce_time {rec.header('ce_time')!r}"
        assert ev.get_time() == isoparse(time)
    assert ev.get_datacontenttype() == content_type(rec.value)
    assert rec.header("ce_partitionkey") == rec.key, \
        f"{where}: ce_partitionkey {rec.header('ce_partitionkey')!r}, key {rec.key!r}"
    assert ev.get_extension("partitionkey") == rec.key.decode()
    want = json_or_null(rec.value) if data == "value" else data
    assert ev.get_data() == want, f"{where}: data {ev.get_data()!r}"
    return ev


def webhook_source(origin: str, webhook_id: str) -> str:
    return f"{origin}/webhooks/{urllib.parse.quote(webhook_id, safe='-._~')}"


def same_source(got: str, want: str) -> bool:
    """The same URI, whatever the case of the percent-encoding's hex digits; the path's
    last segment only unreserved characters and %XX."""
    last = got.rsplit("/", 1)[-1]
    return (urllib.parse.unquote(got) == urllib.parse.unquote(want)
            and bool(UNRESERVED_OR_PCT.fullmatch(last)) and got.lower() == want.lower())


def assert_unique_events(records) -> None:
    """The consumer's dedupe rule (source, id): no two records share it."""
    seen: dict[tuple, tuple] = {}
    for r in records:
        ev = read_ce(r)
        k = (ev.get_source(), ev.get_id())
        assert k not in seen, f"{k} on {seen[k]} and {(r.topic, r.partition, r.offset)}"
        seen[k] = (r.topic, r.partition, r.offset)


# ---------------------------------------------------------------- reading the topics

def read_state(rig, kind: str) -> list[kafkatest.Record]:
    return kafkatest.read_all(rig.bootstrap, rig.state_topic(kind), isolation="read_committed",
                              timeout=30)


def state_event_id(rec: kafkatest.Record) -> str:
    """The dedupe key of the event a state record follows (a tombstone says it only in
    its duro-event-id header)."""
    if rec.value is not None:
        return json.loads(rec.value)["as_of"]["event_id"]
    return rec.header("duro-event-id").decode()


def content_type(value: bytes | None) -> str:
    """What the enricher says its record's value is: application/json, but for a DLQ
    record whose raw value is not JSON (application/octet-stream)."""
    if value is None:
        return "application/json"
    try:
        json.loads(value)
        return "application/json"
    except ValueError:
        return "application/octet-stream"


def check_dlq_wire(rig, rec: kafkatest.Record, raw: kafkatest.Record, error_class: str) -> None:
    """The DLQ record contract (enrichertest.check_dlq: the raw record's headers but its
    trace and content type, the DLQ's own, the value and key untouched) with one
    content-type: application/json, or application/octet-stream when the value is not
    JSON (the raw one is dropped, the DLQ's written)."""
    check_dlq(rig, rec, error_class=error_class, raw=raw)
    assert header_values(rec, "content-type") == [content_type(rec.value).encode()], \
        rec.headers


def raw_at(rig, resp) -> kafkatest.Record:
    """The raw record the bridge's answer names."""
    ans = resp.json()
    return kafkatest.read_at(rig.bootstrap, rig.raw, ans["partition"], ans["offset"], timeout=10)


def post_lines(bridge, payload, lines: list[str], timeout: float = 20.0):
    """POSTs a signed payload with ``lines`` ("Name: value") as header lines, in order
    (http.client sends one line per header name)."""
    body = body_of(payload)
    head = [f"POST {WEBHOOK_PATH} HTTP/1.1", f"Host: 127.0.0.1:{bridge.port}",
            "Content-Type: application/json", f"Content-Length: {len(body)}",
            f"X-Duro-Signature: {sign(bridge.secrets_[0], body)}", "Connection: close"] + lines
    s = socket.create_connection(("127.0.0.1", bridge.port), timeout=timeout)
    try:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        r = read_http_response(s, timeout)
    finally:
        s.close()
    assert r is not None, "the bridge closed the connection without an answer"
    return r


def traced(trace: str, parent: str, flags: str = "01", state: str | None = None) -> dict:
    h = {"traceparent": f"00-{trace}-{parent}-{flags}"}
    if state is not None:
        h["tracestate"] = state
    return h


# ---------------------------------------------------------------- 1, 2, 6: end to end

@pytest.mark.timeout_s(240)
def test_cloudevents_and_traces_from_request_to_outputs_state_dlq_and_redrive(
        rig, double, bridges, enrichers):
    """Every output, state and DLQ record is a CloudEvent the SDK reads with the right
    attributes; the trace each request started is on its raw record (same parent id)
    and continued (same trace id and flags, a new span) on everything written for it,
    through the DLQ and a redrive; the DLQ's log lines carry the trace id."""
    origin = double.base_url
    comps, cos = double.data.component_ids(), double.data.change_order_ids()
    poison = comps[4]
    double.poison_ids = {poison}
    double.data.delete(comps[1])  # what the ITEM_DELETE below says
    bridge = bridges(rig.raw)
    enricher = enrichers(rig.env(rig.txn("a"), DURO_GRAPHQL_MAX_ATTEMPTS=2))

    odd_wh = "wh/\u00e4 x"
    events = {
        "update": item_event("ITEM_UPDATE", comps[0], webhook_id=WH),
        "co": co_event("CO_UPDATE", cos[0], webhook_id=WH),
        "unknown": {"id": new_id("evt"), "webhook_id": WH, "event": "FOO_BAR",
                    "created_at": rfc3339(), "data": {"note": "no ids"}},
        "delete": item_event("ITEM_DELETE", comps[1], webhook_id=WH),
        "odd-webhook": item_event("ITEM_UPDATE", comps[2], webhook_id=odd_wh),
        "untraced": item_event("ITEM_UPDATE", comps[3], webhook_id=WH),
        # signed but invalid (an item event without its item_id): captured, then DLQ
        "invalid": event("ITEM_CREATE", data={"name": "x"}, webhook_id=WH),
        # valid, but Duro fails on its resource: DLQ (resource-error), redriven later
        "poison": item_event("ITEM_UPDATE", poison, webhook_id=WH),
    }
    flags = {"invalid": "00"}  # not sampled: the flags travel too
    states = {"update": "duro=a1,vendor@tenant=x y", "invalid": "duro=b1", "poison": "duro=c1",
              "co": None}
    req = {}  # name -> (trace id, parent id, flags, tracestate) of the request
    raw = {}
    for name, p in events.items():
        if name == "untraced":
            r = bridge.post(p)
        else:
            t, parent = new_ids()
            req[name] = (t, parent, flags.get(name, "01"), states.get(name))
            r = bridge.post(p, headers=traced(*req[name]))
        assert r.status == (202 if name == "invalid" else 200), (name, r)
        raw[name] = raw_at(rig, r)

    # the raw records: the request's trace as it came (no span of the bridge's own)
    for name, rec in raw.items():
        assert ce_names(rec) == [], f"{name}: ce_* on a raw record: {rec.headers}"
        if name == "untraced":
            t, s, f = trace_of(rec)
            assert f == "01" and tracestate_of(rec) is None
            req[name] = (t, s, f, None)
        else:
            t, parent, f, st = req[name]
            assert trace_of(rec) == (t, parent, f), f"{name}: {rec.headers}"
            assert tracestate_of(rec) == st, f"{name}: {rec.headers}"
    assert raw["invalid"].header("duro-invalid")
    assert len({req[n][0] for n in req}) == len(req)

    ids = [p["id"] for p in events.values()]
    rig.wait_for_ids(ids, timeout=120, procs=[enricher])
    rig.wait_drained(timeout=60, procs=[enricher])
    by = rig.assert_exactly_once(ids)
    rec = {name: by[p["id"]][0] for name, p in events.items()}

    # outputs: the contract as before, plus the event and the trace continued
    out_span = {}
    for name in ("update", "co", "unknown", "delete", "odd-webhook", "untraced"):
        p, r = events[name], rec[name]
        assert r.topic != rig.dlq, f"{name} went to the DLQ: {r.headers}"
        if name == "delete":
            v = check_output(rig, r, p, status="deleted")
        elif name == "unknown":
            v = check_output(rig, r, p, status="unsupported", kind="unknown")
        else:
            v = check_output(rig, r, p, status="found")
        check_ce(r, id=p["id"], type=f"com.durohub.webhook.{p['event'].lower()}",
                 source=webhook_source(origin, p["webhook_id"]),
                 subject=v["resource"]["id"] or None, time=p["created_at"])
        t, s, f = trace_of(r)
        assert (t, f) == (req[name][0], req[name][2]), f"{name}: {r.headers}"
        assert s != req[name][1], f"{name}: the output reuses the raw record's span id"
        assert tracestate_of(r) == req[name][3]
        out_span[name] = s
    assert rec["unknown"].header("ce_subject") is None

    # state records: the as_of event's CloudEvent attributes as state, its trace
    state_recs = []
    for kind in KINDS:
        state_recs += read_state(rig, kind)
    by_event = {n: p["id"] for n, p in events.items()}
    names_of = {v: k for k, v in by_event.items()}
    seen_states = set()
    for s_rec in state_recs:
        name = names_of.get(state_event_id(s_rec))
        assert name is not None, f"a state record of no event of this test: {s_rec.headers}"
        p = events[name]
        kind = "change_order" if p["event"].startswith("CO_") else "item"
        ev = check_ce(s_rec, id=p["id"] + "/state", type=f"com.durohub.state.{kind}",
                      source=webhook_source(origin, p["webhook_id"]), subject=s_rec.key.decode(),
                      time=p["created_at"])
        assert s_rec.topic == rig.state_topic(kind)
        assert (s_rec.value is None) == (name == "delete")
        t, s, f = trace_of(s_rec)
        assert (t, f) == (req[name][0], req[name][2]), f"state of {name}: {s_rec.headers}"
        assert s not in (req[name][1], out_span[name]), f"state of {name}: span not its own"
        assert tracestate_of(s_rec) == req[name][3]
        assert ev.get_data() == json_or_null(s_rec.value)
        seen_states.add(name)
    assert seen_states == {"update", "co", "delete", "odd-webhook", "untraced"}

    # DLQ records: the raw headers but the trace, the error, the event as a dead letter
    dlq_span = {}
    for name, cls, subject in (("invalid", "invalid-payload", None),
                               ("poison", "resource-error", poison)):
        p, d = events[name], rec[name]
        check_dlq_wire(rig, d, raw[name], cls)
        check_ce(d, id=p["id"] + "/dlq", type=f"com.durohub.dlq.{cls}",
                 source=webhook_source(origin, WH), subject=subject, time=p["created_at"])
        t, s, f = trace_of(d)
        assert (t, f) == (req[name][0], req[name][2]), f"DLQ of {name}: {d.headers}"
        assert s != req[name][1]
        assert tracestate_of(d) == req[name][3]
        dlq_span[name] = s

    # 6: the log lines about them carry the trace id
    for name, cls in (("invalid", "invalid-payload"), ("poison", "resource-error")):
        r = raw[name]
        line = enricher.wait_log(
            lambda m, r=r, cls=cls: f"{rig.raw} [{r.partition}] at {r.offset} to the DLQ ({cls})" in m,
            20, f"the DLQ line of {name}")
        assert line.get("trace_id") == req[name][0], line
    cap = bridge.wait_log(lambda ln: "captured invalid signed payload" in ln.get("msg", ""), 10,
                          "the bridge's capture line")
    assert cap.get("trace_id") == req["invalid"][0], cap

    first_round = rig.final_records() + state_recs
    assert_unique_events(first_round)

    # the API is fixed; both dead letters are redriven; the trace goes on
    double.poison_ids = set()
    rc, out, err = run_enricher_once(rig.env(rig.txn("cli")), ("dlq", "redrive", "--json"),
                                     timeout=60)
    assert rc == 0, err
    redrive = {r["event_id"]: r["redrive_id"] for r in json.loads(out)}
    assert set(redrive) == {events["invalid"]["id"], events["poison"]["id"]}, out
    rig.wait_drained(timeout=90, procs=[enricher])

    for r in [r for r in rig.raw_records() if r.header("duro-redrive-id")]:
        name = names_of[r.header("duro-event-id").decode()]
        assert ce_names(r) == [], f"ce_* on a redriven raw record: {r.headers}"
        assert header_values(r, "content-type") == [b"application/json"], r.headers
        assert r.header("error-class") is None
        t, s, f = trace_of(r)
        assert (t, f) == (req[name][0], req[name][2]), f"redriven {name}: {r.headers}"
        assert s not in (req[name][1], dlq_span[name]), f"redriven {name}: not a new span"
        assert tracestate_of(r) == req[name][3]

    records = rig.final_records()
    again = [r for r in records if r.header("duro-origin") == b"redrive"]
    assert len(again) == 2, [(r.topic, r.headers) for r in again]
    for r in again:
        name = names_of[r.header("duro-event-id").decode()]
        p, key = events[name], f"{events[name]['id']}#{redrive[events[name]['id']]}"
        t, s, f = trace_of(r)
        assert (t, f) == (req[name][0], req[name][2]), f"after the redrive of {name}: {r.headers}"
        assert s not in (req[name][1], dlq_span[name])
        if name == "poison":  # enrichable now: an output of the original request's trace
            assert r.topic == rig.topic("ITEM_UPDATE"), r.headers
            check_output(rig, r, p, status="found")
            check_ce(r, id=key, type="com.durohub.webhook.item_update",
                     source=webhook_source(origin, WH), subject=poison, time=p["created_at"])
        else:  # still invalid: a dead letter again, of this redrive
            assert r.topic == rig.dlq, r.headers
            assert r.header("duro-redrive-id") == redrive[p["id"]].encode()
            check_ce(r, id=key + "/dlq", type="com.durohub.dlq.invalid-payload",
                     source=webhook_source(origin, WH), subject=None, time=p["created_at"])
    redriven_state = [s for s in read_state(rig, "item") if s.key == poison.encode()]
    assert len(redriven_state) == 1, [s.headers for s in redriven_state]
    key = f"{events['poison']['id']}#{redrive[events['poison']['id']]}"
    check_ce(redriven_state[0], id=key + "/state", type="com.durohub.state.item",
             source=webhook_source(origin, WH), subject=poison,
             time=events["poison"]["created_at"])
    assert trace_of(redriven_state[0])[0] == req["poison"][0]

    everything = records
    for kind in KINDS:
        everything += read_state(rig, kind)
    assert_unique_events(everything)


# ---------------------------------------------------------------- 3: hostile trace headers

HOSTILE_TRACEPARENTS = {
    "version-ff": "ff-{t}-{p}-01",
    "upper-case-hex": "00-{T}-{p}-01",
    "upper-case-parent": "00-{t}-{P}-01",
    "all-zero-trace-id": "00-" + ZERO_TRACE + "-{p}-01",
    "all-zero-parent-id": "00-{t}-" + ZERO_SPAN + "-01",
    "short-trace-id": "00-{t31}-{p}-01",
    "long-parent-id": "00-{t}-{p}0-01",
    "version-00-extra-field": "00-{t}-{p}-01-extra",
    "non-hex-trace-id": "00-{tg}-{p}-01",
    "non-hex-flags": "00-{t}-{p}-0g",
    "later-version-no-dash": "01-{t}-{p}-01x",
    "garbage": "hello, world",
    "dashes": "---",
}
LATER_VERSIONS = {  # version 01..fe: parsed from the first 55 characters
    "v01-extra-fields": ("01-{t}-{p}-01-what-ever", "01"),
    "vfe": ("fe-{t}-{p}-00", "00"),
    "vcc-extra": ("cc-{t}-{p}-01-x", "01"),
}


def _fill(tmpl: str, t: str, p: str) -> str:
    return tmpl.format(t=t, p=p, T=t.upper(), P=p.upper(), t31=t[:31], tg=t[:-1] + "g")


def _ignored(bridge, header: str) -> float:
    return bridge.metrics().get("duro_bridge_trace_context_ignored_total", 0.0, header=header)


@pytest.mark.timeout_s(120)
def test_hostile_trace_headers_are_ignored_counted_and_replaced(broker, bridge, topic):
    """Nothing refuses a request for its trace headers: an invalid traceparent is
    counted and the raw record gets a new trace; an invalid tracestate is counted and
    left out; a later version's traceparent parses; tracestate lines are joined."""
    def post(headers=None, lines=None, payload=None):
        p = payload if payload is not None else event("ITEM_UPDATE")
        r = post_lines(bridge, p, lines) if lines is not None else bridge.post(p, headers=headers)
        assert r.status in (200, 202), r
        ans = r.json()
        return kafkatest.read_at(broker.bootstrap, topic, ans["partition"], ans["offset"], timeout=10)

    assert _ignored(bridge, "traceparent") == 0 and _ignored(bridge, "tracestate") == 0
    seen_traces = set()
    for name, tmpl in HOSTILE_TRACEPARENTS.items():
        t, p = new_ids()
        before = _ignored(bridge, "traceparent")
        rec = post({"traceparent": _fill(tmpl, t, p)})
        nt, ns, nf = trace_of(rec)
        assert nt != t.lower() and ns != p.lower(), f"{name}: the hostile ids were kept: {rec.headers}"
        assert nf == "01" and tracestate_of(rec) is None, f"{name}: {rec.headers}"
        assert _ignored(bridge, "traceparent") == before + 1, name
        seen_traces.add(nt)
    # signed but invalid: captured (202) all the same, with a new trace
    before = _ignored(bridge, "traceparent")
    rec = post({"traceparent": "garbage"}, payload=event("ITEM_CREATE", data={}))
    assert rec.header("duro-invalid")
    seen_traces.add(trace_of(rec)[0])
    assert _ignored(bridge, "traceparent") == before + 1

    # no traceparent: a new trace, nothing counted
    before = _ignored(bridge, "traceparent")
    for _ in range(3):
        rec = post()
        t, s, f = trace_of(rec)
        assert f == "01" and tracestate_of(rec) is None
        seen_traces.add(t)
    assert len(seen_traces) == len(HOSTILE_TRACEPARENTS) + 1 + 3, "new traces must be distinct"
    assert _ignored(bridge, "traceparent") == before

    # later versions: the first 55 characters, written back as version 00
    for name, (tmpl, want_flags) in LATER_VERSIONS.items():
        t, p = new_ids()
        rec = post(traced(t, p) | {"traceparent": _fill(tmpl, t, p), "tracestate": "v=1"})
        assert trace_of(rec) == (t, p, want_flags), f"{name}: {rec.headers}"
        assert tracestate_of(rec) == "v=1", name
    assert _ignored(bridge, "traceparent") == before

    # tracestate: kept when valid (empty members, 32 members, 512 bytes, several lines)
    big = "a=" + "x" * 250 + ",b=" + "y" * 250 + ",c="  # 505 + 3 characters so far
    valid_states = ["congo=t61rcWkgMzE", "a=1,,b=2", "rojo=00f067aa0ba902b7,tenant@sys=x y",
                    ",".join(f"k{i:02d}=v" for i in range(32)), big + "1234"]
    assert len(valid_states[-1]) == 512
    before_ts = _ignored(bridge, "tracestate")
    for st in valid_states:
        t, p = new_ids()
        rec = post(traced(t, p, state=st))
        assert trace_of(rec) == (t, p, "01")
        assert tracestate_of(rec) == st, rec.headers
    t, p = new_ids()
    rec = post(lines=[f"traceparent: 00-{t}-{p}-01", "tracestate: rojo=1", "tracestate: congo=2"])
    assert trace_of(rec) == (t, p, "01")
    assert tracestate_of(rec) == "rojo=1,congo=2", rec.headers
    assert _ignored(bridge, "tracestate") == before_ts

    # invalid tracestates: the traceparent is kept, the tracestate left out and counted
    invalid_states = {
        "no-equals": "novalue",
        "upper-case-key": "Rojo=1",
        "equals-in-value": "k=a=b",
        "33-members": ",".join(f"k{i:02d}=v" for i in range(33)),
        "513-bytes": big + "12345",
    }
    for name, st in invalid_states.items():
        t, p = new_ids()
        before_ts = _ignored(bridge, "tracestate")
        rec = post(traced(t, p, state=st))
        assert trace_of(rec) == (t, p, "01"), f"{name}: {rec.headers}"
        assert tracestate_of(rec) is None, f"{name}: {rec.headers}"
        assert _ignored(bridge, "tracestate") == before_ts + 1, name
    assert bridge.metrics().value("duro_bridge_trace_context_ignored_total",
                                  header="tracestate") >= len(invalid_states)

    # a valid tracestate with an invalid traceparent: a new trace, no tracestate
    before = _ignored(bridge, "traceparent")
    rec = post({"traceparent": "00-zz", "tracestate": "rojo=1"})
    trace_of(rec)
    assert tracestate_of(rec) is None
    assert _ignored(bridge, "traceparent") == before + 1
    m = bridge.metrics()
    assert m.requests(200) + m.requests(202) == kafkatest.end_offsets(broker.bootstrap, topic)[0]
    assert "# TYPE duro_bridge_trace_context_ignored_total counter" in m.text


# ---------------------------------------------------------------- 4: settings

@pytest.mark.timeout_s(120)
def test_cloudevents_false_writes_no_ce_header_but_the_trace(rig, double, enrichers):
    comps = double.data.component_ids()
    t, p = new_ids()
    up = item_event("ITEM_UPDATE", comps[0], webhook_id=WH)
    gone = item_event("ITEM_DELETE", comps[1], webhook_id=WH)
    rig.produce([up, gone], headers=traced(t, p, state="duro=1"))
    rig.produce([b"not json at all"])
    e = enrichers(rig.env(rig.txn("a"), DURO_CLOUDEVENTS="false"))
    rig.wait_drained(timeout=60, procs=[e])
    records = rig.final_records()
    for kind in KINDS:
        records += read_state(rig, kind)
    assert {r.topic for r in records} == {rig.topic("ITEM_UPDATE"), rig.topic("ITEM_DELETE"),
                                          rig.state_topic("item"), rig.dlq}, records
    assert len(records) == 2 + 2 + 1  # two outputs, a state and a tombstone, a dead letter
    for r in records:
        assert ce_names(r) == [], f"{r.topic}: ce_* with DURO_CLOUDEVENTS=false: {r.headers}"
        assert header_values(r, "content-type") == [content_type(r.value).encode()], r.headers
        tt, s, f = trace_of(r)
        if r.topic == rig.dlq:
            assert f == "01" and tracestate_of(r) is None  # its raw record had no trace
        else:
            assert (tt, f) == (t, "01") and s != p and tracestate_of(r) == "duro=1", r.headers
    for r in records:
        if r.topic == rig.topic("ITEM_UPDATE"):
            check_output(rig, r, up, status="found")


@pytest.mark.timeout_s(120)
def test_configured_source_and_traces_of_raw_records_without_one(rig, double, enrichers):
    """DURO_CE_SOURCE is every record's ce_source; a raw record without a valid
    traceparent gets a new trace, shared by everything written for it."""
    comps = double.data.component_ids()
    t, p = new_ids()
    with_trace = item_event("ITEM_UPDATE", comps[0], webhook_id=WH)
    without = item_event("ITEM_UPDATE", comps[1], webhook_id=WH)
    hostile = item_event("ITEM_UPDATE", comps[2], webhook_id=WH)
    rig.produce([with_trace], headers=traced(t, p))
    rig.produce([without])
    rig.produce([hostile], headers={"traceparent": f"00-{t.upper()}-{p}-01"})
    rig.produce([b"not json at all"])
    e = enrichers(rig.env(rig.txn("a"), DURO_CE_SOURCE="urn:test:x"))
    ids = [with_trace["id"], without["id"], hostile["id"]]
    rig.wait_for_ids(ids, timeout=60, procs=[e])
    rig.wait_drained(timeout=60, procs=[e])
    outs = rig.final_records()
    states = read_state(rig, "item")
    assert len(outs) == 4 and len(states) == 3, (outs, states)
    for r in outs + states:
        assert read_ce(r).get_source() == "urn:test:x", r.headers
    assert_unique_events(outs + states)
    by = rig.by_event_id(outs)
    st = {state_event_id(s): s for s in states}
    assert trace_of(by[with_trace["id"]][0])[0] == t and trace_of(st[with_trace["id"]])[0] == t
    new = set()
    for ev in (without, hostile):
        ot, os_, of = trace_of(by[ev["id"]][0])
        stt, ss, sf = trace_of(st[ev["id"]])
        assert ot == stt and of == sf == "01", (by[ev["id"]][0].headers, st[ev["id"]].headers)
        assert os_ != ss, "the output and the state share a span"
        assert ot != t.lower()
        new.add(ot)
    assert len(new) == 2
    [d] = [r for r in outs if r.topic == rig.dlq]
    check_ce(d, id=d.key.decode() + "/dlq", type="com.durohub.dlq.invalid-payload",
             source="urn:test:x", subject=None, time=None, data="not json at all")


def _bad_env(**overrides) -> dict:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DURO_API_URL": "http://127.0.0.1:1/graphql",
           "DURO_ENRICHER_ADMIN_LISTEN": "127.0.0.1:0",
           "DURO_TRANSACTIONAL_ID": "enrichertest-wire", "DURO_API_KEY": "k-" + secrets.token_hex(8)}
    env.update(overrides)
    return enricher_env(env)


@pytest.mark.timeout_s(60)
@pytest.mark.parametrize("name,value", [
    ("DURO_CLOUDEVENTS", "maybe"),
    ("DURO_CLOUDEVENTS", ""),
    ("DURO_CE_SOURCE", "a b"),
    ("DURO_CE_SOURCE", ""),
    ("DURO_CE_SOURCE", "urn:x\ty"),
    ("DURO_CE_SOURCE", "urn:x\x01y"),
])
def test_bad_cloudevents_setting_stops_start_up(name, value):
    rc, out, err = run_enricher_once(_bad_env(**{name: value}), timeout=20)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc}, want 2; stderr:\n{err}"
    assert len(lines) == 1, f"want exactly one line, got {len(lines)}:\n{err}"
    rec = json.loads(lines[0])
    assert name in rec.get("msg", ""), f"the line must name {name}: {rec}"
    assert rec.get("level") in ("error", "fatal"), rec


# ---------------------------------------------------------------- 5: snapshot

@pytest.mark.timeout_s(240)
def test_snapshot_records_name_their_run_and_start_their_own_traces(rig, double, enrichers):
    run = "wire-run.1"
    env = rig.env(rig.txn("live"), DURO_SNAPSHOT_RATE=0, DURO_GRAPHQL_RATE=0)
    e = enrichers(env)
    rc, out, err, _ = run_once([enricher_bin(), "snapshot", "--id", run, "--json"], env, 120)
    assert rc == 0, err
    n = len(double.data.component_ids()) + len(double.data.change_order_ids())
    pings = [r for r in rig.raw_records() if r.header("duro-snapshot-id") == run.encode()]
    assert len(pings) == n
    trace = {}
    for pg in pings:
        t, s, f = trace_of(pg)
        assert f == "01" and tracestate_of(pg) is None and ce_names(pg) == [], pg.headers
        trace[pg.header("duro-event-id").decode()] = t
    assert len(set(trace.values())) == n, "two snapshot pings share a trace id"

    rig.wait_drained(timeout=180, procs=[e])
    source = f"{double.base_url}/snapshot/{run}"
    outs = []
    for ev in ("ITEM_SNAPSHOT", "CO_SNAPSHOT"):
        outs += kafkatest.read_all(rig.bootstrap, rig.topic(ev), isolation="read_committed",
                                   timeout=60)
    assert len(outs) == n
    for r in outs:
        v = parse_output(r)
        eid = v["event"]["id"]
        ct = v["event"]["created_at"]
        check_ce(r, id=eid, type="com.durohub.webhook." + v["event"]["type"].lower(),
                 source=source, subject=v["resource"]["id"], time=ct)
        assert trace_of(r)[0] == trace[eid], r.headers
    states = []
    for kind in KINDS:
        for s in read_state(rig, kind):
            eid = state_event_id(s)
            assert eid in trace, s.headers
            check_ce(s, id=eid + "/state", type=f"com.durohub.state.{kind}", source=source,
                     subject=s.key.decode(), time=json.loads(s.value)["as_of"]["created_at"])
            assert trace_of(s)[0] == trace[eid]
            states.append(s)
    assert len(states) == n
    assert_unique_events(outs + states)
