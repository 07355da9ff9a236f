"""Tests of the Duro test double (tests/duro_double): the GraphQL API stand-in and the
webhook sender. No Kafka needed. Everything runs on 127.0.0.1, every wait is bounded, and
an autouse fixture checks that each test leaves no thread behind."""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn

import pytest
from graphql import build_schema, parse, validate

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from duro_double import (SCHEDULE_S, DuroData, DuroDouble, RemoteDeliveryLog,  # noqa: E402
                         WebhookSender, co_event, item_event, random_events)
from proctest import wait_until  # noqa: E402

REPO_ROOT = TESTS_DIR.parent
SDL = REPO_ROOT / "schemas" / "duro-api.graphql"
COMPONENTS_Q = (REPO_ROOT / "schemas" / "graphql" / "components.graphql").read_text()
CHANGE_ORDERS_Q = (REPO_ROOT / "schemas" / "graphql" / "change_orders.graphql").read_text()
KEY = "test-api-key-0123456789"

pytestmark = pytest.mark.timeout_s(30)


# ---------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def no_thread_left():
    before = set(threading.enumerate())
    yield
    wait_until(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
               5.0, "every thread started by the test to end", interval=0.01)


@pytest.fixture
def double():
    d = DuroDouble(api_key=KEY, seed=7, components=60, change_orders=20).start()
    yield d
    d.close()


class Client:
    """One keep-alive connection to the double; a fresh one after any failure."""

    def __init__(self, double: DuroDouble, timeout: float = 5.0):
        self.port, self.timeout = double.port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float | None = None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout or self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        if r.will_close:
            self.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def gql(self, query: str, variables: dict | None = None, key: str | None = KEY,
            headers: dict | None = None, timeout: float | None = None, op: str | None = None):
        h = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            h["x-api-key"] = key
        body = json.dumps({"query": query, "variables": variables or {}, "operationName": op}).encode()
        status, hdrs, data = self.raw("POST", "/graphql", body, h, timeout)
        return status, hdrs, json.loads(data)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@pytest.fixture
def client(double):
    c = Client(double)
    yield c
    c.close()


def nodes(body, ns="components"):
    return [e["node"] for e in body["data"][ns]["get"]["connection"]["edges"]]


def comp_ids(double, n):
    return double.data.component_ids()[:n]


# ---------------------------------------------------------------- schema and queries

def test_enricher_queries_validate_against_sdl():
    schema = build_schema(SDL.read_text())
    snapshot = [(REPO_ROOT / "schemas" / "graphql" / f).read_text()
                 for f in ("snapshot_components.graphql", "snapshot_change_orders.graphql")]
    for q in (COMPONENTS_Q, CHANGE_ORDERS_Q, *snapshot):
        assert validate(schema, parse(q)) == []
    assert set(schema.type_map["WebhookEvent"].values) == {
        "ITEM_CREATE", "ITEM_UPDATE", "ITEM_DELETE", "CO_OPEN", "CO_UPDATE", "CO_DELETE",
        "CO_STAGE_TRANSITION", "CO_STAGE_REVIEWER_DECISION", "CO_RESOLUTION"}
    assert "subset" in SDL.read_text().splitlines()[0]
    # a field the SDL does not have is refused
    assert validate(schema, parse("{ components { get { connection { edges { node { bogus } } } } } }"))


def test_components_query_returns_existing_ids_in_order(double, client):
    c = comp_ids(double, 10)
    asked = [c[5], "comp_999999", c[2], c[9], "co_000001", c[2]]
    status, _, body = client.gql(COMPONENTS_Q, {"ids": asked})
    assert status == 200 and "errors" not in body
    got = nodes(body)
    assert [n["id"] for n in got] == [c[5], c[2], c[9]]
    conn = body["data"]["components"]["get"]["connection"]
    assert conn["pageInfo"] == {"hasNextPage": False, "endCursor": conn["pageInfo"]["endCursor"]}
    doc = double.data.component(c[5])
    assert got[0] == {k: doc[k] for k in ("id", "cpn", "name", "description", "revision",
                                           "status", "category")}
    assert doc["cpn"][:3].isdigit() and doc["cpn"][3] == "-" and len(doc["cpn"]) == 9
    assert set(doc["category"]) == {"name", "code"}


def test_change_orders_query(double, client):
    cos = double.data.change_order_ids()[:4]
    status, _, body = client.gql(CHANGE_ORDERS_Q, {"ids": [cos[3], "co_424242", cos[0]]})
    assert status == 200 and "errors" not in body
    got = nodes(body, "changeOrders")
    assert [n["id"] for n in got] == [cos[3], cos[0]]
    for n in got:
        assert 1 <= len(n["stages"]) <= 3
        for st in n["stages"]:
            assert st["decisionState"] in ("pending", "approved", "rejected")
            assert 1 <= len(st["reviewers"]) <= 3
            assert all("@" in r["user"]["primaryEmail"] for r in st["reviewers"])
        assert n["resolution"] in ("pending", "approved", "rejected", "withdrawn")


def test_data_is_deterministic_and_editable():
    a, b = DuroData(seed=3, components=30, change_orders=5), DuroData(seed=3, components=30, change_orders=5)
    ids = a.component_ids()
    assert ids[0] == "comp_000001" and ids == b.component_ids()
    assert a.get("component", ids) == b.get("component", ids)
    assert a.change_order_ids()[0] == "co_000001"
    assert DuroData(seed=4, components=30).component(ids[0]) != a.component(ids[0])
    now = [1000.0]
    d = DuroData(seed=1, components=5, change_orders=2, clock=lambda: now[0])
    new = d.add_component(name="Late part", visible_at=1010.0)
    assert d.component(new) is None and d.exists(new)
    now[0] = 1010.0
    assert d.component(new)["name"] == "Late part"
    d.appear_later("comp_000001", delay_s=5)
    assert d.component("comp_000001") is None
    now[0] += 5
    assert d.component("comp_000001") is not None
    old = d.component("comp_000002")
    before = dict(old)
    d.update("comp_000002", status="ARCHIVED")
    assert d.component("comp_000002")["status"] == "ARCHIVED" and old == before  # copy on write
    assert d.delete("comp_000002") and d.component("comp_000002") is None


def test_appear_later_and_delete_through_the_api(double, client):
    c = comp_ids(double, 3)
    double.data.appear_later(c[0], delay_s=3600)
    double.data.delete(c[1])
    _, _, body = client.gql(COMPONENTS_Q, {"ids": c})
    assert [n["id"] for n in nodes(body)] == [c[2]]
    double.data.show(c[0])
    _, _, body = client.gql(COMPONENTS_Q, {"ids": c})
    assert [n["id"] for n in nodes(body)] == [c[0], c[2]]


def test_pagination_first_after(double, client):
    c = comp_ids(double, 5)
    pages, after = [], None
    for _ in range(10):
        status, _, body = client.gql(COMPONENTS_Q, {"ids": c, "first": 2, "after": after})
        assert status == 200 and "errors" not in body
        conn = body["data"]["components"]["get"]["connection"]
        pages.append([e["node"]["id"] for e in conn["edges"]])
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert pages == [c[0:2], c[2:4], c[4:5]]
    q = "query($ids:[ID!]!){components{get(filter:{ids:$ids}){connection(first:2){totalCount edges{cursor}}}}}"
    _, _, body = client.gql(q, {"ids": c + ["comp_999999"]})
    conn = body["data"]["components"]["get"]["connection"]
    assert conn["totalCount"] == 5 and all(isinstance(e["cursor"], str) for e in conn["edges"])
    status, _, body = client.gql(COMPONENTS_Q, {"ids": c, "first": 2, "after": "not-a-cursor"})
    assert status == 200 and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# ---------------------------------------------------------------- listing the whole library

# what `duro-enricher snapshot` sends: get without a filter, paged by keyset cursors
LIST_Q = {ns: f"""query DuroList{ns[0].upper()}{ns[1:]}($first: Int, $after: String) {{
  {ns} {{ get {{ connection(first: $first, after: $after) {{
    totalCount edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage endCursor }} }} }} }} }}"""
          for ns in ("components", "changeOrders")}
KIND_NS = {"component": "components", "change_order": "changeOrders"}


@pytest.fixture
def big_double():
    d = DuroDouble(api_key=KEY, seed=11, components=3000, change_orders=2000).start()
    yield d
    d.close()


@pytest.fixture
def big_client(big_double):
    c = Client(big_double)
    yield c
    c.close()


def list_page(client, ns, first, after=None):
    """One listing page: (ids, connection) after checking it answered without errors."""
    status, _, body = client.gql(LIST_Q[ns], {"first": first, "after": after})
    assert status == 200 and "errors" not in body, body
    conn = body["data"][ns]["get"]["connection"]
    return [e["node"]["id"] for e in conn["edges"]], conn


def list_all(client, ns, first, between=lambda page_no, conn: None, limit=1000):
    """Every page of a listing; ``between(page_no, conn)`` runs after each page but the last."""
    pages, after = [], None
    for page_no in range(limit):
        ids, conn = list_page(client, ns, first, after)
        pages.append(ids)
        if not conn["pageInfo"]["hasNextPage"]:
            return pages
        after = conn["pageInfo"]["endCursor"]
        assert after == conn["edges"][-1]["cursor"]
        between(page_no, conn)
    raise AssertionError(f"listing did not end within {limit} pages")


def refused_cursor(body):
    assert body["data"] is None, body
    (err,) = body["errors"]
    assert err["message"].startswith("Invalid cursor") and err["extensions"]["code"] == "BAD_USER_INPUT"
    return err


@pytest.mark.parametrize("kind", ["component", "change_order"])
def test_listing_pages_every_id_once_in_order(big_double, big_client, kind):
    ns, expected = KIND_NS[kind], big_double.data.list_ids(kind)
    assert len(expected) == (3000 if kind == "component" else 2000)
    pages = list_all(big_client, ns, 250)
    assert [i for p in pages for i in p] == expected
    assert [len(p) for p in pages] == [250] * (len(expected) // 250)
    _, conn = list_page(big_client, ns, 250)
    assert conn["totalCount"] == len(expected)
    # any edge's cursor resumes right after it; first=0 says whether more follow
    ids, conn = list_page(big_client, ns, 3, conn["edges"][116]["cursor"])
    assert ids == expected[117:120] and conn["totalCount"] == len(expected)
    ids, conn = list_page(big_client, ns, 0)
    assert ids == [] and conn["pageInfo"] == {"hasNextPage": True, "endCursor": None}
    # one page of everything ends the listing; after the last id's cursor: an empty page
    ids, conn = list_page(big_client, ns, len(expected))
    assert ids == expected and conn["pageInfo"]["hasNextPage"] is False
    ids, conn = list_page(big_client, ns, 10, conn["pageInfo"]["endCursor"])
    assert ids == [] and conn["pageInfo"] == {"hasNextPage": False, "endCursor": None}
    # without first (default_page_size None): the whole library at once; with it: pages of it
    assert list_page(big_client, ns, None)[0] == expected
    big_double.default_page_size = 1000
    assert [len(p) for p in list_all(big_client, ns, None)] == [1000] * (len(expected) // 1000)
    # hidden resources (appear later) are neither listed nor counted
    big_double.data.appear_later(expected[5], delay_s=3600)
    ids, conn = list_page(big_client, ns, 6)
    assert ids == expected[:5] + expected[6:7] and conn["totalCount"] == len(expected) - 1


@pytest.mark.parametrize("kind", ["component", "change_order"])
def test_listing_neither_skips_nor_repeats_when_the_library_changes(big_double, big_client, kind):
    data, ns = big_double.data, KIND_NS[kind]
    start = data.list_ids(kind)
    deleted: dict[str, str] = {}       # id -> the saved cursor's id when it was deleted
    added: list[tuple[str, str]] = []  # (id, the saved cursor's id when it was added)

    def between(page_no, conn):
        last = conn["edges"][-1]["node"]["id"]  # the id the saved cursor (endCursor) holds
        i = bisect.bisect_right(start, last) - 1  # the last id of the start at or before it
        n = len(start) - 1
        # deleted: ids just ahead and far ahead of the cursor; on even pages also the
        # cursor's own id and ids already listed (a cursor that were a position would then
        # skip ids), on odd pages none behind it
        doomed = [start[min(n, i + 1)], start[min(n, i + 2)], start[min(n, i + 400)]]
        if page_no % 2 == 0:
            doomed += [start[i], start[i - 7], start[i - 20]]
        for rid in doomed:
            if rid not in deleted:
                assert data.delete(rid)
                deleted[rid] = last
        # added: one just ahead of the cursor (sorting between two ids of the start), one
        # generated over HTTP (sorting after every id); on odd pages also ids behind the
        # cursor (a cursor that were a position would then repeat ids)
        new = [f"{last}a{page_no}"]
        if page_no % 2 == 1:
            new += [f"{start[i - k]}b{page_no}" for k in (3, 5, 9)]
        for rid in new:
            data.add(kind, {"id": rid})
        status, _, out = big_client.raw("POST", "/_data", json.dumps({"op": "add", "kind": kind}).encode())
        assert status == 200
        added.extend((rid, last) for rid in new + [json.loads(out)["id"]])

    pages = list_all(big_client, ns, 150, between)
    listed = [rid for p in pages for rid in p]
    assert len(listed) == len(set(listed)), "an id was listed twice"
    assert listed == sorted(listed), "the listing left id order"
    throughout = [rid for rid in start if rid not in deleted]
    assert len(deleted) > 50 and len(throughout) > 1000 and len(added) > 30
    missing = set(throughout) - set(listed)
    assert not missing, f"{len(missing)} ids that existed throughout were skipped: {sorted(missing)[:5]}"
    listed_set = set(listed)
    # a deleted id was listed when it was deleted behind the cursor (or as its own id), not
    # when deleted ahead of it; an added id is listed when added ahead of the cursor only
    for rid, cursor_id in deleted.items():
        assert (rid in listed_set) == (rid <= cursor_id), (rid, cursor_id)
    for rid, cursor_id in added:
        assert (rid in listed_set) == (rid > cursor_id), (rid, cursor_id)
    _, conn = list_page(big_client, ns, 1)
    assert conn["totalCount"] == len(start) - len(deleted) + len(added)


def test_listing_cursor_of_another_generation_is_refused(big_double, big_client):
    ids, conn = list_page(big_client, "components", 100)
    saved = conn["pageInfo"]["endCursor"]
    assert list_page(big_client, "components", 5, saved)[0][0] == big_double.data.component_ids()[100]
    status, _, data = big_client.raw("POST", "/_control", json.dumps({"cursor_generation": 1}).encode())
    assert status == 200 and json.loads(data)["cursor_generation"] == 1 and big_double.cursor_generation == 1
    status, _, body = big_client.gql(LIST_Q["components"], {"first": 5, "after": saved})
    assert status == 200
    err = refused_cursor(body)
    assert err["path"] == ["components", "get", "connection"]
    # a listing started afresh gets cursors of the new generation, which work
    ids2, conn2 = list_page(big_client, "components", 100)
    assert ids2 == ids and conn2["pageInfo"]["endCursor"] != saved
    assert (list_page(big_client, "components", 5, conn2["pageInfo"]["endCursor"])[0][0]
            == big_double.data.component_ids()[100])
    # back to generation 0 (reset_knobs): the old cursor works, the new one is refused
    big_double.reset_knobs()
    assert big_double.cursor_generation == 0
    assert list_page(big_client, "components", 5, saved)[0][0] == big_double.data.component_ids()[100]
    refused_cursor(big_client.gql(LIST_Q["components"], {"first": 5,
                                                         "after": conn2["pageInfo"]["endCursor"]})[2])
    big_double.configure(cursor_generation=3)
    refused_cursor(big_client.gql(LIST_Q["components"], {"first": 5, "after": saved})[2])


def test_listing_garbage_cursor_is_refused(big_double, big_client):
    b64 = lambda raw: base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")  # noqa: E731
    _, comp_conn = list_page(big_client, "components", 2)
    _, co_conn = list_page(big_client, "changeOrders", 2)
    status, _, body = big_client.gql(COMPONENTS_Q, {"ids": comp_ids(big_double, 3), "first": 1})
    lookup_cursor = body["data"]["components"]["get"]["connection"]["pageInfo"]["endCursor"]
    for bad in ("not-a-cursor", "", "!!!", b64("\xff"), b64("duro-double:list:component:x:comp_000001"),
                b64("duro-double:list:component:0:"), b64("duro-double:list:component:0"),
                b64("duro-double:component:5"), lookup_cursor,          # a lookup's cursor
                co_conn["pageInfo"]["endCursor"]):                     # the other kind's
        status, _, body = big_client.gql(LIST_Q["components"], {"first": 5, "after": bad})
        assert status == 200, bad
        refused_cursor(body)
    # and a listing cursor is no lookup cursor (the lookup path keeps its position cursors)
    status, _, body = big_client.gql(COMPONENTS_Q, {"ids": comp_ids(big_double, 3), "first": 1,
                                                    "after": comp_conn["pageInfo"]["endCursor"]})
    assert status == 200 and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"].startswith("Invalid cursor")
    status, _, body = big_client.gql(COMPONENTS_Q, {"ids": comp_ids(big_double, 3), "first": 1,
                                                    "after": lookup_cursor})
    assert status == 200 and [n["id"] for n in nodes(body)] == comp_ids(big_double, 3)[1:2]


def test_stats_count_listing_and_lookup_requests_apart(big_double, big_client):
    big_double.reset_stats()
    pages = list_all(big_client, "components", 1000)            # 3 listing requests, 3000 ids
    list_all(big_client, "changeOrders", 1500)                   # 2 more, 2000 ids
    c = comp_ids(big_double, 4)
    big_client.gql(COMPONENTS_Q, {"ids": c})                     # 2 lookups
    big_client.gql(CHANGE_ORDERS_Q, {"ids": big_double.data.change_order_ids()[:2]})
    big_client.gql(LIST_Q["components"], {"first": 5, "after": "garbage"})  # a refused listing
    both = f"""query Both($ids: [ID!]!) {{ components {{
      a: get(filter: {{ ids: $ids }}) {{ connection {{ edges {{ node {{ id }} }} }} }}
      b: get(filter: {{}}) {{ connection(first: 7) {{ edges {{ node {{ id }} }} }} }} }} }}"""
    status, _, body = big_client.gql(both, {"ids": c[:1]})       # one lookup and one listing
    assert status == 200 and len(body["data"]["components"]["b"]["connection"]["edges"]) == 7
    big_client.gql(LIST_Q["components"], {"first": 5}, key="wrong")  # 401: neither
    stats = json.loads(big_client.raw("GET", "/_stats")[2])
    assert sum(map(len, pages)) == 3000
    assert stats["list_requests"] == 3 + 2 + 1 + 1
    assert stats["list_ids_returned"] == 3000 + 2000 + 0 + 7
    assert stats["lookup_requests"] == 3
    assert stats["ids_total"] == 4 + 2 + 1 and stats["ids_histogram"] == {"4": 1, "2": 1, "1": 1}
    assert stats["requests_total"] == 10 and stats["requests_by_status"] == {"200": 9, "401": 1}
    assert stats["requests_by_operation"]["DuroListComponents"] == 5
    assert big_double.list_requests == 7 and big_double.lookup_requests == 3
    big_client.raw("POST", "/_control", json.dumps({"reset_stats": True}).encode())
    stats = big_double.stats()
    assert stats["list_requests"] == stats["list_ids_returned"] == stats["lookup_requests"] == 0


# ---------------------------------------------------------------- auth and headers

def test_api_key_required(double, client, tmp_path):
    for key in (None, "wrong-key"):
        status, hdrs, body = client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]}, key=key)
        assert status == 401 and hdrs["content-type"] == "application/json"
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" and "data" not in body
    double.api_key = "rotated"
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})[0] == 401
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]}, key="rotated")[0] == 200
    f = tmp_path / "key"
    f.write_text("from-file\n")
    double.api_key_file = f
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]}, key="from-file")[0] == 200
    f.write_text("changed\n")  # re-read per request
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]}, key="from-file")[0] == 401
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]}, key="changed")[0] == 200
    assert double.requests_by_status[401] == 4


def test_organization_and_library_headers_recorded(double, client):
    client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]},
               headers={"x-organization": "@acme", "x-library": "@acme/parts"})
    client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})
    assert double.organizations == {"@acme": 1} and double.libraries == {"@acme/parts": 1}
    assert double.request_log[-2]["organization"] == "@acme"


def test_bad_requests(double, client):
    status, _, body = client.gql("{ components { nope } }")
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    status, _, body = client.gql("{ components {")
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    status, _, body = client.gql(COMPONENTS_Q, {"ids": "comp_000001x", "first": "two"})
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    status, _, _ = client.raw("POST", "/graphql", b"not json",
                              {"x-api-key": KEY, "Content-Type": "application/json"})
    assert status == 400
    assert client.raw("GET", "/graphql")[0] == 405
    assert client.raw("GET", "/nowhere")[0] == 404


# ---------------------------------------------------------------- knobs

def test_knob_error_rate_500(double, client):
    double.error_rate_500 = 1.0
    for _ in range(3):
        status, _, body = client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})
        assert status == 500 and body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    double.error_rate_500 = 0.0
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})[0] == 200


def test_knob_rate_limit_429(double, client):
    double.configure(rate_limit_429=2, retry_after_s=7)
    for _ in range(2):
        status, hdrs, body = client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})
        assert status == 429 and hdrs["retry-after"] == "7"
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})[0] == 200
    assert double.rate_limit_429 == 0


def test_knob_graphql_rate_limited(double, client):
    double.configure(graphql_rate_limited=1, retry_after_s=60)
    status, _, body = client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})
    assert status == 200 and "data" not in body
    assert body == {"errors": [{"message": "Rate limit exceeded",
                                "extensions": {"code": "RATE_LIMITED", "retryAfter": 60}}]}
    status, _, body = client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})
    assert status == 200 and nodes(body)[0]["id"] == "comp_000001"


@pytest.mark.parametrize("code", ["INTERNAL_SERVER_ERROR", "FORBIDDEN"])
def test_knob_per_id_errors_partial_data(double, client, code):
    c = comp_ids(double, 4)
    double.configure(per_id_errors={c[2]}, per_id_error_code=code)
    status, _, body = client.gql(COMPONENTS_Q, {"ids": c})
    assert status == 200
    edges = body["data"]["components"]["get"]["connection"]["edges"]
    assert [e["node"] and e["node"]["id"] for e in edges] == [c[0], c[1], None, c[3]]
    (err,) = body["errors"]
    assert c[2] in err["message"] and err["extensions"]["code"] == code
    assert err["path"] == ["components", "get", "connection", "edges", 2, "node"]
    double.per_id_errors = {c[0]: "FORBIDDEN"}  # a code per id
    _, _, body = client.gql(COMPONENTS_Q, {"ids": c[:2]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert nodes(body)[1]["id"] == c[1]


def test_knob_poison_ids(double, client):
    c = comp_ids(double, 3)
    double.poison_ids = {c[1]}
    status, _, body = client.gql(COMPONENTS_Q, {"ids": c})
    assert status == 500 and "data" not in body
    status, _, body = client.gql(COMPONENTS_Q, {"ids": [c[0], c[2]]})
    assert status == 200 and len(nodes(body)) == 2


def test_knob_hang_makes_the_client_time_out(double, client):
    c = comp_ids(double, 2)
    double.configure(timeout_ids={c[0]}, hang_ms=5000)
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout)):
        client.gql(COMPONENTS_Q, {"ids": c}, timeout=0.3)
    assert time.monotonic() - t0 < 3
    status, _, _ = client.gql(COMPONENTS_Q, {"ids": [c[1]]})  # without the id: at once
    assert status == 200
    # closing the double does not wait for the hang (fixture teardown; checked here too)
    t0 = time.monotonic()
    double.close()
    assert time.monotonic() - t0 < 3


def test_knob_outage_and_latency(double, client):
    double.outage = True
    for _ in range(2):
        status, _, body = client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})
        assert status == 503 and body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    double.outage = False
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})[0] == 200
    double.latency_ms = 150
    t0 = time.monotonic()
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})[0] == 200
    assert time.monotonic() - t0 >= 0.15


def test_knob_max_ids_and_forbidden(double, client):
    c = comp_ids(double, 5)
    double.max_ids_per_request = 4
    status, _, body = client.gql(COMPONENTS_Q, {"ids": c})
    assert status == 200 and body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" and "5" in body["errors"][0]["message"]
    assert len(nodes(client.gql(COMPONENTS_Q, {"ids": c[:4]})[2])) == 4
    double.forbidden = True
    status, _, body = client.gql(COMPONENTS_Q, {"ids": c[:1]})
    assert status == 403 and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_control_and_stats_over_http(double, client):
    status, _, data = client.raw("POST", "/_control", json.dumps(
        {"outage": True, "poison_ids": ["comp_000002"], "api_key": "k2"}).encode())
    knobs = json.loads(data)
    assert status == 200 and knobs["outage"] is True and knobs["poison_ids"] == ["comp_000002"]
    assert double.outage and double.poison_ids == {"comp_000002"} and double.api_key == "k2"
    assert client.gql(COMPONENTS_Q, {"ids": ["comp_000001"]}, key="k2")[0] == 503
    client.raw("POST", "/_control", json.dumps({"reset_knobs": True, "reset_stats": True}).encode())
    assert not double.outage and double.requests_total == 0
    status, _, data = client.raw("POST", "/_data", json.dumps(
        {"op": "add", "kind": "component", "fields": {"name": "Added over HTTP"}}).encode())
    new_id = json.loads(data)["id"]
    _, _, body = client.gql(COMPONENTS_Q, {"ids": [new_id]}, key="k2")
    assert nodes(body)[0]["name"] == "Added over HTTP"
    stats = json.loads(client.raw("GET", "/_stats")[2])
    assert stats["requests_total"] == 1 and stats["id_log"] == [[new_id]]


def test_counters(double, client):
    c = comp_ids(double, 6)
    cos = double.data.change_order_ids()[:2]
    client.gql(COMPONENTS_Q, {"ids": c[:3]})
    client.gql(COMPONENTS_Q, {"ids": c})
    client.gql(CHANGE_ORDERS_Q, {"ids": cos})
    client.gql(COMPONENTS_Q, {"ids": c[:1]}, key="bad")
    assert double.requests_total == 4
    assert double.requests_by_operation == {"DuroComponents": 3, "DuroChangeOrders": 1}
    assert double.requests_by_status == {200: 3, 401: 1}
    assert double.ids_total == 3 + 6 + 2
    assert double.ids_histogram == {3: 1, 6: 1, 2: 1}
    assert double.id_log == [c[:3], c, cos]
    assert double.ids_requested() == c[:3] + c + cos
    double.reset_stats()
    assert double.requests_total == 0 and double.id_log == [] and double.stats()["ids_total"] == 0


def test_keep_alive_and_clean_close_with_idle_connections(double):
    conns = [Client(double) for _ in range(3)]
    for cl in conns:
        for _ in range(3):
            assert cl.gql(COMPONENTS_Q, {"ids": ["comp_000001"]})[0] == 200
    assert double.requests_total == 9
    t0 = time.monotonic()
    double.close()  # three idle keep-alive connections are open: close still returns at once
    assert time.monotonic() - t0 < 2
    for cl in conns:
        cl.close()


# ---------------------------------------------------------------- webhooks API

CREATE = """mutation Create($in: CreateWebhookInput!) { webhooks { create(input: $in) {
  id name description url events isEnabled createdAt secret } } }"""
LIST = "query { webhooks { get { id name description url events isEnabled createdAt secret } } }"
UPDATE = """mutation Update($ids: [ID!]) { webhooks { update(filter: { ids: $ids }, input: {
  events: [ITEM_CREATE, ITEM_UPDATE, ITEM_DELETE], isEnabled: false }) { id events isEnabled } } }"""
LOGS = """query Logs($id: ID!, $after: String, $dir: SortDirection) { webhooks { getLogs(webhookID: $id,
  orderBy: [{ createdAt: $dir }]) { connection(first: 20, after: $after) {
  edges { cursor node { id event metadata responseCode isAcknowledged createdAt } }
  pageInfo { hasNextPage endCursor } } } } }"""


def test_webhooks_create_get_update(double, client):
    status, _, body = client.gql(CREATE, {"in": {"name": "Sync", "description": "ERP",
                                                  "url": "https://example.com/hook",
                                                  "events": ["ITEM_CREATE", "CO_RESOLUTION"]}})
    assert status == 200 and "errors" not in body
    hook = body["data"]["webhooks"]["create"]
    assert hook["id"] == "webhook_1" and len(hook["secret"]) >= 32 and hook["isEnabled"] is True
    assert hook["events"] == ["ITEM_CREATE", "CO_RESOLUTION"]
    assert double.webhook_secret("webhook_1") == hook["secret"]
    _, _, body = client.gql(CREATE, {"in": {"name": "Two", "url": "https://e.com/2",
                                            "events": ["ITEM_DELETE"], "isEnabled": False}})
    assert body["data"]["webhooks"]["create"]["id"] == "webhook_2"
    _, _, body = client.gql(LIST)
    listed = body["data"]["webhooks"]["get"]
    assert [h["id"] for h in listed] == ["webhook_1", "webhook_2"]
    assert all(h["secret"] is None for h in listed)
    _, _, body = client.gql(UPDATE, {"ids": ["webhook_2", "webhook_9"]})
    assert body["data"]["webhooks"]["update"] == [
        {"id": "webhook_2", "events": ["ITEM_CREATE", "ITEM_UPDATE", "ITEM_DELETE"], "isEnabled": False}]
    _, _, body = client.gql(CREATE, {"in": {"name": "Bad", "url": "u", "events": ["NOPE"]}})
    assert "errors" in body


def test_webhook_logs_paginated_newest_first(double, client):
    for i in range(25):
        double.record_delivery("webhook_1", "ITEM_UPDATE", {"event_id": f"evt_{i}"},
                               200 if i % 2 else 503, bool(i % 2))
    double.record_delivery("webhook_other", "CO_OPEN", {}, 200, True)
    seen, after = [], None
    for _ in range(5):
        status, _, body = client.gql(LOGS, {"id": "webhook_1", "after": after})
        assert status == 200 and "errors" not in body
        conn = body["data"]["webhooks"]["getLogs"]["connection"]
        seen.append([e["node"]["metadata"]["event_id"] for e in conn["edges"]])
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert [len(p) for p in seen] == [20, 5]
    assert sum(seen, []) == [f"evt_{i}" for i in reversed(range(25))]
    _, _, body = client.gql(LOGS, {"id": "webhook_1", "dir": "ASC"})
    first = body["data"]["webhooks"]["getLogs"]["connection"]["edges"][0]["node"]
    assert first["metadata"] == {"event_id": "evt_0"} and first["responseCode"] == 503
    assert first["isAcknowledged"] is False and first["event"] == "ITEM_UPDATE"


# ---------------------------------------------------------------- webhook sender

class Receiver:
    """A tiny webhook endpoint on 127.0.0.1 that verifies X-Duro-Signature with hmac itself.
    ``answer(event_id, n)`` gives the status of the n-th (1-based) delivery of an event."""

    def __init__(self, secret: str, answer=None):
        self.secret = secret.encode()
        self.answer = answer or (lambda eid, n: 200)
        self.lock = threading.Lock()
        self.hits: list[dict] = []
        self.bad_signatures = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sig = self.headers.get("X-Duro-Signature", "")
                want = "sha256=" + hmac.new(outer.secret, body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(sig, want)
                try:
                    eid = json.loads(body).get("id") if ok else None
                except ValueError:  # a body that is not JSON (sent raw): no id
                    eid = None
                with outer.lock:
                    if not ok:
                        outer.bad_signatures += 1
                    n = 1 + sum(1 for h in outer.hits if h["id"] == eid)
                    status = outer.answer(eid, n) if ok else 401
                    outer.hits.append({"id": eid, "t": time.monotonic(), "body": body, "status": status,
                                       "content_type": self.headers.get("Content-Type")})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class S(ThreadingMixIn, HTTPServer):
            daemon_threads = True
            block_on_close = False

        self.server = S(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/duro"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def hits_of(self, eid):
        with self.lock:
            return [h for h in self.hits if h["id"] == eid]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver_factory():
    made = []

    def make(secret, answer=None):
        r = Receiver(secret, answer)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def test_sender_signs_as_duro(receiver_factory):
    secret = "whsec-test-secret"
    rx = receiver_factory(secret)
    data = DuroData(seed=2, components=20, change_orders=5)
    events = [item_event("update", "comp_000001"), co_event("CO_RESOLUTION", "co_000002"),
              co_event("stage_transition", "co_000003", data=data)]
    with WebhookSender(rx.url, secret, webhook_id="webhook_7", scale=0.001, workers=2) as s:
        ids = s.send_many(events)
        assert s.wait(10)
        summary = s.summary()
    assert rx.bad_signatures == 0 and len(rx.hits) == 3
    assert summary["sent"] == summary["acknowledged"] == 3 and summary["balanced"]
    bodies = {h["id"]: json.loads(h["body"]) for h in rx.hits}
    assert all(h["content_type"] == "application/json" for h in rx.hits)
    b = bodies[ids[0]]
    assert list(b) == ["id", "webhook_id", "event", "created_at", "data"]
    assert b["id"].startswith("evt_") and b["webhook_id"] == "webhook_7"
    assert b["event"] == "ITEM_UPDATE" and b["data"] == {"item_id": "comp_000001"}
    assert b["created_at"].endswith("Z") and "T" in b["created_at"]
    assert bodies[ids[1]]["data"]["resolution"] in ("approved", "rejected", "withdrawn")
    st = bodies[ids[2]]["data"]
    assert st["stage_id"] in [x["id"] for x in data.change_order("co_000003")["stages"]]
    assert st["decision"] in ("approved", "rejected")
    # a wrong secret is refused by the receiver, and the sender retries
    with WebhookSender(rx.url, "not-the-secret", scale=0.0001, schedule=(1, 1), workers=1) as s:
        eid = s.send(item_event("ITEM_DELETE", "comp_000002"))
        assert s.wait(10)
        assert s.ledger.get(eid)["statuses"] == [401, 401, 401] and s.summary()["gave_up"] == 1


def test_sender_retries_on_the_scaled_schedule(receiver_factory):
    secret = "s3cret"
    rx = receiver_factory(secret, lambda eid, n: 503 if n <= 2 else 200)
    with WebhookSender(rx.url, secret, scale=0.001, workers=4) as s:
        ids = s.send_many(item_event("ITEM_CREATE", f"comp_{i:06d}") for i in range(1, 6))
        assert s.wait(10)
        summary = s.summary()
    assert summary == dict(summary, sent=5, acknowledged=5, gave_up=0, attempts=15, balanced=True)
    for eid in ids:
        e = rx.hits_of(eid)
        assert [h["status"] for h in e] == [503, 503, 200]
        assert len({h["body"] for h in e}) == 1
        gaps = [b["t"] - a["t"] for a, b in zip(e, e[1:])]
        assert gaps[0] >= 5 * 0.001 and gaps[1] >= 30 * 0.001, gaps
    led = s.ledger.get(ids[0])
    assert led["attempts"] == 3 and led["statuses"] == [503, 503, 200] and led["acknowledged"]
    assert led["first_ack_at"] is not None


def test_sender_gives_up_after_the_schedule(receiver_factory):
    secret = "s3cret"
    scale = 0.0001  # the 8 retries take 2.78 s in all
    rx = receiver_factory(secret, lambda eid, n: 500)
    with WebhookSender(rx.url, secret, scale=scale, workers=2) as s:
        eid = s.send(item_event("ITEM_UPDATE", "comp_000009"))
        assert s.wait(15)
        led = s.ledger.get(eid)
        summary = s.summary()
    assert led["attempts"] == 1 + len(SCHEDULE_S) == 9 and led["gave_up"] and not led["acknowledged"]
    assert summary["gave_up"] == 1 and summary["acknowledged"] == 0 and summary["balanced"]
    times = [h["t"] for h in rx.hits_of(eid)]
    assert len(times) == 9
    for gap, delay in zip([b - a for a, b in zip(times, times[1:])], SCHEDULE_S):
        assert gap >= delay * scale
    # connection refused counts as a failure too
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/x"
    sock.close()
    with WebhookSender(dead, secret, scale=0.00002, workers=1, timeout_s=1) as s:
        eid = s.send(item_event("ITEM_UPDATE", "comp_000001"))
        assert s.wait(10)
        led = s.ledger.get(eid)
    assert led["statuses"] == [None] * 9 and led["gave_up"] and led["errors"]


def test_sender_repeats_deliveries(receiver_factory):
    secret = "s3cret"
    rx = receiver_factory(secret)
    with WebhookSender(rx.url, secret, scale=0.001, repeat_probability=1.0, seed=5, workers=4) as s:
        ids = s.send_many(item_event("ITEM_UPDATE", f"comp_{i:06d}") for i in range(1, 11))
        assert s.wait(10)
        s.repeat(ids[0], times=2)
        assert s.wait(10)
        summary = s.summary()
        ledger = s.ledger.entries()
    for eid in ids:
        hits = rx.hits_of(eid)
        assert 2 <= len(hits) <= 3 + (2 if eid == ids[0] else 0)
        assert len({h["body"] for h in hits}) == 1
        assert ledger[eid]["deliveries"] == len(hits) == ledger[eid]["acks"]
    assert summary["sent"] == summary["acknowledged"] == 10 and summary["balanced"]
    assert summary["deliveries"] == len(rx.hits) == 10 + summary["repeats"]
    assert summary["repeats"] >= 12


def test_sender_fills_the_doubles_webhook_log_and_streams(double, client, receiver_factory):
    secret = "s3cret"
    rx = receiver_factory(secret, lambda eid, n: 503 if n == 1 else 200)
    data = double.data
    events = random_events(20, data, rng=11, webhook_id=None)
    assert len({e["id"] for e in events}) == 20
    assert random_events(20, data, rng=11)[5]["data"] == events[5]["data"]
    with WebhookSender(rx.url, secret, webhook_id="webhook_1", scale=0.001, workers=4,
                       delivery_log=double) as s:
        t0 = time.monotonic()
        ids = s.send_stream(events, rate_per_s=200)
        assert time.monotonic() - t0 >= 19 / 200
        assert s.wait(10)
        summary = s.summary()
    assert summary["acknowledged"] == 20 and summary["attempts"] == 40 and summary["balanced"]
    _, _, body = client.gql(LOGS, {"id": "webhook_1"})
    conn = body["data"]["webhooks"]["getLogs"]["connection"]
    assert len(conn["edges"]) == 20 and conn["pageInfo"]["hasNextPage"]
    logged = double.webhook_logs("webhook_1")
    assert len(logged) == 40 and {l["metadata"]["event_id"] for l in logged} == set(ids)
    assert sorted(l["responseCode"] for l in logged) == [200] * 20 + [503] * 20


DETAIL_KEYS = {"event_id", "attempt", "repeat", "url", "duration_ms"}


def log_nodes(client, webhook_id):
    """Every getLogs node of a webhook through GraphQL, newest first (pages followed)."""
    out, after = [], None
    for _ in range(50):
        status, _, body = client.gql(LOGS, {"id": webhook_id, "after": after})
        assert status == 200 and "errors" not in body, body
        conn = body["data"]["webhooks"]["getLogs"]["connection"]
        out += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return out
        after = conn["pageInfo"]["endCursor"]
    raise AssertionError("getLogs pages never ended")


@pytest.mark.parametrize("shape", ["details", "object", "string"])
def test_webhook_log_shape(double, client, receiver_factory, shape):
    secret = "s3cret"
    rx = receiver_factory(secret, lambda eid, n: 503 if n == 1 else 200)
    if shape != "details":  # details is the default
        double.configure(log_shape=shape)
    assert double.log_shape == shape
    ev = co_event("CO_RESOLUTION", "co_000002", resolution="approved")
    with WebhookSender(rx.url, secret, webhook_id="webhook_1", scale=0.001, workers=2,
                       delivery_log=double) as s:
        eid = s.send(ev)
        assert s.wait(10)
    hits = rx.hits_of(eid)
    assert [h["status"] for h in hits] == [503, 200]
    sent = json.loads(hits[0]["body"])
    assert sent["id"] == eid and sent["data"] == ev["data"] and sent["webhook_id"] == "webhook_1"
    logged = log_nodes(client, "webhook_1")
    assert [(n["responseCode"], n["isAcknowledged"]) for n in logged] == [(200, True), (503, False)]
    for n in logged:
        meta = n["metadata"]
        if shape == "string":
            assert isinstance(meta, str)
            meta = json.loads(meta)
        assert isinstance(meta, dict)
        failed = n["responseCode"] == 503  # an answer: no "error" (that is for no answer)
        assert set(meta) == DETAIL_KEYS | ({"payload"} if shape != "details" else set()), meta
        assert meta["event_id"] == eid and meta["url"] == rx.url and meta["repeat"] is False
        assert meta["attempt"] == (1 if failed else 2)
        if shape != "details":
            assert meta["payload"] == sent
    # the shape is fixed when an entry is recorded
    double.configure(log_shape="details" if shape != "details" else "object")
    assert [n["metadata"] for n in log_nodes(client, "webhook_1")] == [n["metadata"] for n in logged]


def test_webhook_log_shape_knob_over_http_and_remote_senders(double, client, receiver_factory):
    status, _, data = client.raw("POST", "/_control", json.dumps({"log_shape": "string"}).encode())
    assert status == 200 and json.loads(data)["log_shape"] == "string" and double.log_shape == "string"
    status, _, data = client.raw("POST", "/_control", json.dumps({"log_shape": "yaml"}).encode())
    assert status == 400 and "log_shape" in json.loads(data)["error"]
    assert double.log_shape == "string"
    with pytest.raises(ValueError):
        double.configure(log_shape="nope")
    with pytest.raises(ValueError):
        DuroDouble(log_shape="nope")
    secret = "s3cret"
    rx = receiver_factory(secret)
    ev = item_event("update", "comp_000003")
    with WebhookSender(rx.url, secret, webhook_id="webhook_r", scale=0.001, workers=1,
                       delivery_log=RemoteDeliveryLog(double.base_url)) as s:
        eid = s.send(ev)
        assert s.wait(10)
        double.log_shape = "object"
        raw = s.send(b"not json")  # no payload to keep: "object" is the details alone
        assert s.wait(10)
    by_event = {}
    for n in log_nodes(client, "webhook_r"):
        meta = json.loads(n["metadata"]) if isinstance(n["metadata"], str) else n["metadata"]
        by_event[meta["event_id"]] = (n["metadata"], meta)
    as_string, meta = by_event[eid]
    assert isinstance(as_string, str) and meta["payload"] == json.loads(rx.hits_of(eid)[0]["body"])
    assert meta["payload"]["data"] == {"item_id": "comp_000003"}
    as_object, meta = by_event[raw]
    assert isinstance(as_object, dict) and set(meta) == DETAIL_KEYS and meta["attempt"] == 1
    # a caller that gives no payload: metadata as given, in every shape
    double.log_shape = "string"
    assert double.record_delivery("webhook_x", "ITEM_UPDATE", None)["metadata"] is None
    assert double.record_delivery("webhook_x", "ITEM_UPDATE", {"n": 1})["metadata"] == '{"n":1}'


def test_sender_lose_answers(double, client, receiver_factory):
    secret = "s3cret"
    scale = 0.0001  # the 8 retries take 2.78 s in all
    rx = receiver_factory(secret)  # always 200
    lost_ev, kept_ev = item_event("update", "comp_000004"), item_event("update", "comp_000005")
    lost = lost_ev["id"]
    with WebhookSender(rx.url, secret, webhook_id="webhook_1", scale=scale, workers=2,
                       delivery_log=double, lose_answers=[lost]) as s:
        _, kept = s.send_many([lost_ev, kept_ev])
        assert s.wait(15)
        led, led_kept = s.ledger.get(lost), s.ledger.get(kept)
        summary = s.summary()
    n = 1 + len(SCHEDULE_S)
    # the endpoint saw and accepted every attempt
    hits = rx.hits_of(lost)
    assert len(hits) == n and {h["status"] for h in hits} == {200} and len({h["body"] for h in hits}) == 1
    assert [h["status"] for h in rx.hits_of(kept)] == [200]
    # Duro's view: no answer each time, then given up
    assert led["statuses"] == [None] * n and led["errors"] == ["answer lost: timed out"] * n
    assert led["gave_up"] and not led["acknowledged"] and led["acks"] == 0 and led["answers_lost"] == n
    assert led_kept["acknowledged"] and led_kept["answers_lost"] == 0
    assert summary == dict(summary, sent=2, acknowledged=1, gave_up=1, pending=0, attempts=n + 1,
                           acks=1, failures=n, answers_lost=n, balanced=True)
    for gap, delay in zip([b["t"] - a["t"] for a, b in zip(hits, hits[1:])], SCHEDULE_S):
        assert gap >= delay * scale
    logged = log_nodes(client, "webhook_1")
    mine = [x for x in logged if x["metadata"]["event_id"] == lost]
    assert len(mine) == n and len(logged) == n + 1
    assert all(x["isAcknowledged"] is False and x["responseCode"] is None for x in mine)
    assert all(x["metadata"]["error"] == "answer lost: timed out" for x in mine)
    assert sorted(x["metadata"]["attempt"] for x in mine) == list(range(1, n + 1))
    other = [x for x in logged if x["metadata"]["event_id"] == kept]
    assert [(x["responseCode"], x["isAcknowledged"]) for x in other] == [(200, True)]


# ---------------------------------------------------------------- command line

def _env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURO_")}
    env["PYTHONPATH"] = str(TESTS_DIR)
    return env


def _read_line(proc, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"no line from the double (got {buf!r})")
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            buf += chunk
    return buf.decode().splitlines()[0]


@pytest.mark.timeout_s(40)
def test_cli_serve_and_send(tmp_path, receiver_factory):
    keyf = tmp_path / "key"
    keyf.write_text("cli-key\n")
    proc = subprocess.Popen([sys.executable, "-m", "duro_double", "serve", "--port", "0",
                             "--api-key-file", str(keyf), "--seed", "3", "--components", "40",
                             "--log-shape", "object"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=REPO_ROOT)
    try:
        line = _read_line(proc, 15)
        assert line.startswith("listening on http://127.0.0.1:") and line.endswith("/graphql")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/graphql", json.dumps({"query": COMPONENTS_Q,
                                                  "variables": {"ids": ["comp_000002"]}}),
                  {"x-api-key": "cli-key", "Content-Type": "application/json"})
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        assert r.status == 200
        assert body["data"]["components"]["get"]["connection"]["edges"][0]["node"] == {
            k: v for k, v in DuroData(3, 40, 200).component("comp_000002").items()
            if k not in ("createdAt", "updatedAt")}

        secret = "cli-secret"
        secf = tmp_path / "secret"
        secf.write_text(secret + "\n")
        rx = receiver_factory(secret, lambda eid, n: 500 if n == 1 else 200)
        ledger = tmp_path / "ledger.json"
        out = subprocess.run([sys.executable, "-m", "duro_double", "send", "--url", rx.url,
                              "--secret-file", str(secf), "--count", "8", "--rate", "400",
                              "--scale", "0.001", "--ledger", str(ledger), "--seed", "3",
                              "--components", "40", "--double-url", f"http://127.0.0.1:{port}"],
                             capture_output=True, env=_env(), cwd=REPO_ROOT, timeout=30)
        assert out.returncode == 0, out.stderr.decode()
        summary = json.loads(out.stdout.decode().strip().splitlines()[-1])
        assert summary["sent"] == summary["acknowledged"] == 8 and summary["attempts"] == 16
        full = json.loads(ledger.read_text())
        assert len(full["events"]) == 8 and rx.bad_signatures == 0
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/graphql", json.dumps({"query": LOGS, "variables": {"id": "webhook_test"}}),
                  {"x-api-key": "cli-key", "Content-Type": "application/json"})
        logs = json.loads(c.getresponse().read())["data"]["webhooks"]["getLogs"]["connection"]
        c.close()
        assert len(logs["edges"]) == 16 and not logs["pageInfo"]["hasNextPage"]
        # send --double-url hands the payload over; serve --log-shape object keeps it
        bodies = {h["id"]: json.loads(h["body"]) for h in rx.hits}
        for e in logs["edges"]:
            meta = e["node"]["metadata"]
            assert meta["payload"] == bodies[meta["event_id"]]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            proc.stdout.close()
            proc.stderr.close()
    assert rc == 0
