"""DuroDouble: a stand-in for Duro's GraphQL API (``POST /graphql``) on 127.0.0.1.

The schema is ``schemas/duro-api.graphql`` (or its "renamed" variant, see ``VARIANTS``); graphql-core (the Python port of graphql-js)
parses, validates and executes every request against it, with resolvers over a
:class:`duro_double.data.DuroData` library and an in-memory webhook store.

Threading model: one accept thread (``serve_forever``) and one handler thread per TCP
connection (HTTP/1.1 keep-alive, so a client that reuses its connection keeps its thread).
Knobs, counters and the webhook store sit behind one lock; the library has its own. Waits
(latency, hangs) are waits on the double's stop event, so :meth:`DuroDouble.close` never
waits for them: it stops accepting, shuts every open connection down and joins every thread.

Request pipeline for ``POST /graphql`` (the first step that answers wins):

1. counted (requests total, by operation name, and at the end by HTTP status); the
   ``x-organization`` / ``x-library`` headers are recorded;
2. ``latency_ms``: the request waits that long;
3. ``outage``: ``503`` (until cleared);
4. ``rate_limit_429`` > 0: ``429`` with ``Retry-After: retry_after_s`` (counts down by one);
5. ``x-api-key`` missing or wrong: ``401`` ``{"errors":[{... "extensions":{"code":"UNAUTHENTICATED"}}]}``;
6. ``forbidden``: ``403`` with code ``FORBIDDEN``;
7. ``error_rate_500``: with that probability, ``500``;
8. body not JSON / no query: ``400``; parse or validation errors: ``validation_status``
   (default ``400``, as Apollo; ``200`` as GraphQL-over-HTTP servers answering
   application/json), with Apollo's codes ``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED``;
9. ``graphql_rate_limited`` > 0: ``200`` ``{"errors":[{"message":"Rate limit exceeded",
   "extensions":{"code":"RATE_LIMITED","retryAfter":retry_after_s}}]}`` and no data (counts down);
10. execution. ``components.get`` / ``changeOrders.get`` with ``filter.ids`` (a lookup,
    counted in ``lookup_requests``) record the ids asked and answer those that exist in the
    order asked, their cursors positions in that list; more than ``max_ids_per_request``
    ids: a GraphQL error (``BAD_USER_INPUT``), data null. Without ids (no filter, or a
    filter without ids: a listing, counted in ``list_requests``, its edges in
    ``list_ids_returned``) they page the whole library in id order with keyset cursors:
    a cursor holds the id of its edge and ``cursor_generation``; the page after it starts
    at the first id greater than that id, so resources deleted or added between pages
    neither shift nor repeat the others (an id deleted after its cursor was handed out
    still works: it is a place in the order, not a lookup); only the page's documents are
    read; ``totalCount`` is the whole kind's. A cursor of another generation, of the other
    path or kind, or garbage: a GraphQL error ``Invalid cursor: ...`` (``BAD_USER_INPUT``),
    data null (as when Duro refuses a saved cursor on resume). An id in ``per_id_errors``:
    its node is null and an error names it (message and ``path``) with
    ``extensions.code`` = ``per_id_error_code`` (or the code given per id); the other
    nodes are still returned;
11. an id in ``poison_ids``: the whole request answers ``500``; a lookup naming ids of a
    kind in ``failing_lookups`` (``"component"``, ``"change_order"``) answers ``500`` too
    (a partial outage: listings, lookups of an empty id list and the other kind still
    answer);
12. an id in ``timeout_ids``: the answer is held back ``hang_ms`` first (a client with a
    shorter timeout gives up).

Out of process, ``GET/POST /_control`` reads/sets knobs (and ``api_key``, ``reset_stats``),
``GET /_stats`` returns counters (``lookup_requests`` / ``list_requests`` and
``list_ids_returned`` count lookups by id and listings apart; a request doing both counts
in both), ``POST /_data`` edits the library, ``POST /_webhook_logs``
appends a webhook delivery log entry (the arguments of :meth:`DuroDouble.record_delivery`
as a JSON object, ``payload`` included), ``GET /healthz`` answers ``ok``.

Webhook delivery log (``webhooks.getLogs``): each entry's ``metadata`` is shaped, when the
entry is recorded, by the ``log_shape`` knob: ``"details"`` (default) the delivery details
the sender gives (``event_id``, ``attempt``, ``repeat``, ``url``, ``duration_ms``, ``error``
when there is one; no resource, no payload); ``"object"`` the same plus ``"payload"``: the
delivered payload as a JSON object; ``"string"`` the ``"object"`` form serialised as a JSON
string (``metadata`` is then a string).
"""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import json
import os
import random
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any

import copy

from graphql import (GraphQLError, NameNode, Visitor, build_schema, execute, get_operation_ast,
                     parse, print_ast, validate, visit)

from .data import CHANGE_ORDER, COMPONENT, DuroData, rfc3339

REPO_ROOT = Path(__file__).resolve().parents[2]
SDL_PATH = Path(os.environ.get("DURO_DOUBLE_SDL", REPO_ROOT / "schemas" / "duro-api.graphql"))

# Schema variants (``DuroDouble(variant=...)``, ``serve --variant``):
#   "default"  schemas/duro-api.graphql as it is;
#   "renamed"  the same operations (those of Duro's webhook documentation, which names no
#              input type) with other names for the webhook input types and enums, and no
#              ``Webhook.secret``: a server written from the documentation that guessed
#              differently. A client that names a type or asks for ``secret`` fails here.
VARIANTS = ("default", "renamed")
RENAMED_TYPES = {"CreateWebhookInput": "WebhookCreate", "UpdateWebhookInput": "WebhookPatch",
                 "WebhookFilterInput": "WebhookSelector", "WebhookLogOrderBy": "WebhookLogSort",
                 "WebhookEvent": "WebhookEventKind", "SortDirection": "WebhookSortOrder"}

KNOB_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,               # every /graphql request waits this long
    "error_rate_500": 0.0,         # probability of HTTP 500
    "rate_limit_429": 0,           # the next K requests get 429 + Retry-After
    "graphql_rate_limited": 0,     # the next K requests get 200 + RATE_LIMITED error
    "retry_after_s": 1,            # S in Retry-After / extensions.retryAfter
    "per_id_errors": {},           # id -> code (None: per_id_error_code); partial results
    "per_id_error_code": "INTERNAL_SERVER_ERROR",
    "poison_ids": set(),           # a request holding one answers 500
    "failing_lookups": set(),      # kinds whose lookups by id answer 500
    "timeout_ids": set(),          # a request holding one is held back hang_ms
    "hang_ms": 0,
    "outage": False,               # every /graphql request 503
    "forbidden": False,            # every authenticated /graphql request 403 FORBIDDEN
    "max_ids_per_request": None,   # larger id lists get a GraphQL error
    "default_page_size": None,     # page size when `first` is not given (None: everything)
    "max_page_size": None,         # `first` above this is clamped
    "validation_status": 400,      # HTTP status of a parse/validation error answer (Apollo: 400;
                                   # GraphQL-over-HTTP servers answering application/json: 200)
    "cursor_generation": 0,        # embedded in listing cursors; one of another generation is
                                   # refused (BAD_USER_INPUT "Invalid cursor")
    "log_shape": "details",        # webhook log metadata: "details" (delivery details only),
                                   # "object" (details + "payload": the delivered payload),
                                   # "string" (the "object" form as a JSON string)
}
LOG_SHAPES = ("details", "object", "string")
_SET_KNOBS = {"poison_ids", "timeout_ids", "failing_lookups"}
LOG_PAGE_SIZE = 20
ID_LOG_LIMIT = 100_000
REQUEST_LOG_LIMIT = 10_000


def _gql_error(message: str, code: str, **ext) -> dict:
    return {"message": message, "extensions": {"code": code, **ext}}


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=_json_default).encode()


def _json_default(o):
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _normalise_knob(name: str, value):
    if name in _SET_KNOBS:
        return set(value or ())
    if name == "per_id_errors":
        if not value:
            return {}
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return {str(k): None for k in value}
    if name == "outage" or name == "forbidden":
        return bool(value)
    if name in ("rate_limit_429", "graphql_rate_limited"):
        return max(0, int(value or 0))
    if name in ("latency_ms", "hang_ms", "error_rate_500", "retry_after_s"):
        return value or 0
    if name == "validation_status":
        return int(value or 400)
    if name == "cursor_generation":
        return int(value or 0)
    if name == "log_shape":
        shape = value or "details"
        if shape not in LOG_SHAPES:
            raise ValueError(f"log_shape must be one of {', '.join(LOG_SHAPES)}, not {value!r}")
        return shape
    return value


_NO_PAYLOAD = object()


def shape_log_metadata(shape: str, metadata, payload=_NO_PAYLOAD):
    """A delivery log entry's metadata in ``shape`` (see ``LOG_SHAPES``): "details" is
    ``metadata`` as given; "object" adds ``"payload": payload`` to a copy (when a payload was
    given and ``metadata`` is a dict or None); "string" is the "object" form serialised with
    ``json.dumps`` (compact). Metadata None with no payload stays None in every shape."""
    if shape == "details":
        return metadata
    obj = metadata
    if payload is not _NO_PAYLOAD and (metadata is None or isinstance(metadata, dict)):
        obj = dict(metadata or {}, payload=payload)
    if shape == "string" and obj is not None:
        return json.dumps(obj, separators=(",", ":"))
    return obj


def schema_sdl(variant: str = "default", path: str | os.PathLike | None = None) -> str:
    """The SDL the double serves for ``variant`` (see ``VARIANTS``), from ``path`` (default
    ``SDL_PATH``). "renamed" is made from the same file through graphql-core's AST, and
    fails loudly when a name it renames or the field it drops is no longer there."""
    text = Path(path or SDL_PATH).read_text()
    if variant == "default":
        return text
    if variant != "renamed":
        raise ValueError(f"unknown schema variant {variant!r} (known: {', '.join(VARIANTS)})")
    seen: set[str] = set()

    class _Rename(Visitor):
        def enter_name(self, node, *_):
            new = RENAMED_TYPES.get(node.value)
            if new is None:
                return None
            seen.add(node.value)
            return NameNode(value=new)

        def enter_object_type_definition(self, node, *_):
            if node.name.value != "Webhook":
                return None
            kept = tuple(f for f in node.fields if f.name.value != "secret")
            if len(kept) == len(node.fields):
                raise ValueError("schema variant renamed: Webhook has no field secret to drop")
            seen.add("Webhook.secret")
            node = copy.copy(node)
            node.fields = kept
            return node

    out = print_ast(visit(parse(text), _Rename()))
    missing = (set(RENAMED_TYPES) | {"Webhook.secret"}) - seen
    if missing:
        raise ValueError(f"schema variant renamed: not in {path or SDL_PATH}: {sorted(missing)}")
    return out


# ---------------------------------------------------------------- cursors
#
# Opaque to clients: URL-safe base64 without padding of
#   "duro-double:{kind}:{n}"                       a position n (lookups by id, webhook logs)
#   "duro-double:list:{kind}:{generation}:{id}"    a listing's keyset cursor (the edge's id)
# Each decoder refuses the other's cursors, another kind's and garbage.

def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _unb64(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def _invalid_cursor(cursor, why: str = "") -> GraphQLError:
    return GraphQLError(f"Invalid cursor: {cursor!r}{why}", extensions={"code": "BAD_USER_INPUT"})


def encode_cursor(kind: str, n: int) -> str:
    return _b64(f"duro-double:{kind}:{n}")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        prefix, k, n = _unb64(cursor).split(":")
        if prefix != "duro-double" or k != kind:
            raise ValueError
        return int(n)
    except Exception:
        raise _invalid_cursor(cursor) from None


def encode_list_cursor(kind: str, generation: int, rid: str) -> str:
    return _b64(f"duro-double:list:{kind}:{generation}:{rid}")


def decode_list_cursor(kind: str, generation: int, cursor: str | None) -> str | None:
    """The id a listing cursor holds (None: no cursor); refuses one of another generation."""
    if cursor is None:
        return None
    try:
        prefix, tag, k, gen, rid = _unb64(cursor).split(":", 4)
        if prefix != "duro-double" or tag != "list" or k != kind or not rid:
            raise ValueError
        gen_n = int(gen)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid_cursor(cursor) from None
    if gen_n != generation:
        raise _invalid_cursor(cursor, f" (generation {gen_n}, the server is at {generation})")
    return rid


# ---------------------------------------------------------------- resolvers

class _RequestContext:
    def __init__(self, double: "DuroDouble", knobs: dict):
        self.double = double
        self.knobs = knobs
        self.ids: list[str] = []
        self.asked_ids = False      # a get with filter.ids ran (a lookup)
        self.listed = False         # a get without ids ran (a listing of the whole library)
        self.listed_ids = 0         # edges the listings returned
        self.failed_lookup = False  # a lookup of a kind in failing_lookups


def _page_size(ctx: _RequestContext, first, default=None):
    if first is not None and first < 0:
        raise GraphQLError("`first` must not be negative", extensions={"code": "BAD_USER_INPUT"})
    if first is None:
        first = default if default is not None else ctx.knobs["default_page_size"]
    mx = ctx.knobs["max_page_size"]
    if first is not None and mx is not None:
        first = min(first, mx)
    return first


class _ResourceResult:
    """What ``get(filter)`` returns. With ``filter.ids``: the resolved id list, which
    ``connection`` pages by position. Without: the whole library, which ``connection`` pages
    by keyset (see ``_listing``), reading only the page's documents."""

    def __init__(self, ctx: _RequestContext, kind: str, filt):
        self.kind = kind
        ids = (filt or {}).get("ids")
        self.listing = ids is None
        if self.listing:
            ctx.listed = True
            return
        ids = list(dict.fromkeys(ids))  # each id once, first occurrence order
        ctx.asked_ids = True
        ctx.failed_lookup |= bool(ids) and kind in ctx.knobs["failing_lookups"]
        ctx.ids.extend(ids)
        mx = ctx.knobs["max_ids_per_request"]
        if mx is not None and len(ids) > mx:
            raise GraphQLError(f"Too many ids: {len(ids)} requested, at most {mx} allowed",
                               extensions={"code": "BAD_USER_INPUT"})
        self.docs = ctx.double.data.get(kind, ids)
        self.positions = [(i, rid) for i, rid in enumerate(ids) if rid in self.docs]

    def connection(self, info, first=None, after=None):
        ctx: _RequestContext = info.context
        first = _page_size(ctx, first)
        if self.listing:
            return self._listing(ctx, first, after)
        start = decode_cursor(self.kind, after)
        items = self.positions if start is None else [p for p in self.positions if p[0] > start]
        page = items if first is None else items[:first]
        edges = [{"cursor": encode_cursor(self.kind, pos), "node": _node(ctx, rid, self.docs[rid])}
                 for pos, rid in page]
        return {"edges": edges,
                "pageInfo": {"hasNextPage": len(items) > len(page),
                             "endCursor": edges[-1]["cursor"] if edges else None},
                "totalCount": len(self.positions)}

    def _listing(self, ctx: _RequestContext, first: int | None, after: str | None) -> dict:
        """A page of the whole library in id order: the ids after the one ``after`` holds
        (keyset, so deletions and additions between pages shift nothing)."""
        gen = ctx.knobs["cursor_generation"]
        after_id = decode_list_cursor(self.kind, gen, after)
        page, more, total = ctx.double.data.page(self.kind, after_id, first)
        ctx.listed_ids += len(page)
        edges = [{"cursor": encode_list_cursor(self.kind, gen, rid), "node": _node(ctx, rid, doc)}
                 for rid, doc in page]
        return {"edges": edges,
                "pageInfo": {"hasNextPage": more,
                             "endCursor": edges[-1]["cursor"] if edges else None},
                "totalCount": total}


def _node(ctx: _RequestContext, rid: str, doc: dict):
    """An edge's node: the document, or a resolver that fails when ``rid`` is in per_id_errors."""
    per_id = ctx.knobs["per_id_errors"]
    if rid in per_id:
        return _failing_node(rid, per_id[rid] or ctx.knobs["per_id_error_code"])
    return doc


def _failing_node(rid: str, code: str):
    def resolve(info, **_):
        ext = {"code": code}
        if code == "FORBIDDEN":
            ext["classification"] = "AuthorizationError"
        what = "Component" if rid.startswith("comp_") else "ChangeOrder"
        msg = (f"Not authorized to access {what} {rid}" if code == "FORBIDDEN"
               else f"Failed to load {what} {rid}")
        raise GraphQLError(msg, extensions=ext)
    return resolve


class _ComponentsNS:
    def get(self, info, filter=None):
        return _ResourceResult(info.context, COMPONENT, filter)


class _ChangeOrdersNS:
    def get(self, info, filter=None):
        return _ResourceResult(info.context, CHANGE_ORDER, filter)


class _LogsResult:
    def __init__(self, webhook_id: str, order_by):
        self.webhook_id = webhook_id
        self.asc = any((o or {}).get("createdAt") == "ASC" for o in (order_by or []))

    def connection(self, info, first=None, after=None):
        ctx: _RequestContext = info.context
        first = _page_size(ctx, first, default=LOG_PAGE_SIZE)
        start = decode_cursor("log", after)
        logs = ctx.double.webhook_logs(self.webhook_id)  # oldest first
        if self.asc:
            items = [l for l in logs if start is None or l["seq"] > start]
        else:
            items = [l for l in reversed(logs) if start is None or l["seq"] < start]
        page = items if first is None else items[:first]
        edges = [{"cursor": encode_cursor("log", l["seq"]), "node": l} for l in page]
        return {"edges": edges,
                "pageInfo": {"hasNextPage": len(items) > len(page),
                             "endCursor": edges[-1]["cursor"] if edges else None},
                "totalCount": len(logs)}


class _WebhooksQuery:
    def get(self, info, filter=None):
        return info.context.double.webhooks_list((filter or {}).get("ids"))

    def getLogs(self, info, webhookID, orderBy=None):
        return _LogsResult(webhookID, orderBy)


class _WebhooksMutation:
    def create(self, info, input):
        return info.context.double.webhook_create(input)

    def update(self, info, filter, input):
        return info.context.double.webhook_update(filter.get("ids"), input)


class _Query:
    components = _ComponentsNS()
    changeOrders = _ChangeOrdersNS()
    webhooks = _WebhooksQuery()


class _Mutation:
    webhooks = _WebhooksMutation()


def _never_awaitable(_value) -> bool:  # every resolver is synchronous: skip the check
    return False


_OP_NAME_RE = re.compile(r"^\s*(?:#[^\n]*\n\s*)*(query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")


# ---------------------------------------------------------------- HTTP

class _Server(ThreadingMixIn, HTTPServer):
    allow_reuse_address = True
    request_queue_size = 128
    daemon_threads = True

    def __init__(self, addr, handler, double: "DuroDouble"):
        self.double = double
        self._threads_lock = threading.Lock()
        self._handler_threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._closing = False
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name="duro-double-conn", daemon=True)
        with self._threads_lock:
            self._handler_threads = [x for x in self._handler_threads if x.is_alive()]
            self._handler_threads.append(t)
        t.start()

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._threads_lock:
            if add:
                self._conns.add(conn)
                closing = self._closing
            else:
                self._conns.discard(conn)
                closing = False
        if closing:
            _shutdown_socket(conn)

    def close_connections(self) -> None:
        with self._threads_lock:
            self._closing = True
            conns = list(self._conns)
        for c in conns:
            _shutdown_socket(c)

    def join_threads(self, timeout: float) -> list[threading.Thread]:
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._handler_threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t for t in threads if t.is_alive()]


def _shutdown_socket(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DuroDouble/1"
    timeout = 120  # an idle keep-alive connection is closed after this

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, fmt, *args):  # quiet; the double keeps its own counters
        if self.server.double.verbose:
            super().log_message(fmt, *args)

    # -- body and answer

    def _read_body(self) -> bytes | None:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        return self.rfile.read(int(length))

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]] = (),
                content_type: str = "application/json") -> None:
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}",
                f"Server: {self.server_version}", f"Date: {self.date_time_string()}",
                f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers]
        if self.close_connection:
            head.append("Connection: close")
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:  # the client went away (e.g. it timed out during a hang)
            self.close_connection = True
        self.log_request(status)

    def _json(self, status: int, obj) -> None:
        self._answer(status, _dumps(obj))

    # -- routes

    def do_POST(self):
        double = self.server.double
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return self._json(400, {"errors": [_gql_error("Bad request body", "BAD_REQUEST")]})
        path = self.path.split("?", 1)[0]
        if path == double.path:
            status, headers, out = double.handle_graphql(self.headers, body)
            return self._answer(status, out, headers)
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self._json(400, {"error": "body is not JSON"})
        try:
            if path == "/_control":
                return self._json(200, double.control(req))
            if path == "/_reset":
                double.reset_stats()
                return self._json(200, {"ok": True})
            if path == "/_data":
                return self._json(200, double.data_op(req))
            if path == "/_webhook_logs":
                return self._json(200, double.record_delivery(**req))
        except (KeyError, ValueError, TypeError) as e:
            return self._json(400, {"error": f"{type(e).__name__}: {e}"})
        self._json(404, {"error": "not found"})

    def do_GET(self):
        double = self.server.double
        path = self.path.split("?", 1)[0]
        if path == "/_stats":
            return self._json(200, double.stats())
        if path == "/_control":
            return self._json(200, double.knobs())
        if path == "/healthz":
            return self._answer(200, b"ok\n", content_type="text/plain")
        if path == double.path:
            return self._answer(405, _dumps({"errors": [_gql_error("Use POST", "METHOD_NOT_ALLOWED")]}),
                                [("Allow", "POST")])
        self._json(404, {"error": "not found"})


# ---------------------------------------------------------------- the double

def _locked(attr: str, convert=lambda v: v):
    """A property whose reads and writes of ``self.<attr>`` hold ``self._lock`` (a
    written value goes through ``convert`` first)."""
    def getter(self):
        with self._lock:
            return getattr(self, attr)

    def setter(self, value):
        with self._lock:
            setattr(self, attr, convert(value))

    return property(getter, setter)


class DuroDouble:
    """Duro's GraphQL API on ``127.0.0.1:port`` (0: ephemeral). Use as a context manager or
    call :meth:`start` / :meth:`close`. Knobs are attributes (see ``KNOB_DEFAULTS``) that may
    be set at any time from any thread; ``configure(**knobs)`` sets several at once."""

    path = "/graphql"

    def __init__(self, *, port: int = 0, api_key: str | None = "duro-test-key",
                 api_key_file: str | os.PathLike | None = None, data: DuroData | None = None,
                 seed: int = 0, components: int = 1000, change_orders: int = 200,
                 schema_path: str | os.PathLike | None = None, variant: str = "default",
                 verbose: bool = False, **knobs):
        unknown = set(knobs) - set(KNOB_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown knobs: {sorted(unknown)}")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._requested_port = port
        self._api_key = api_key
        self._api_key_file = Path(api_key_file) if api_key_file else None
        self.data = data if data is not None else DuroData(seed, components, change_orders)
        self.verbose = verbose
        self.variant = variant
        self.schema = build_schema(schema_sdl(variant, schema_path))
        self._rng = random.Random(seed)
        self._knobs = {k: _normalise_knob(k, v) for k, v in KNOB_DEFAULTS.items()}
        for k, v in knobs.items():
            self._knobs[k] = _normalise_knob(k, v)
        self._doc_cache: dict[str, tuple] = {}
        self._webhooks: dict[str, dict] = {}
        self._webhook_n = 0
        self._logs: dict[str, list[dict]] = collections.defaultdict(list)
        self._log_seq = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset_stats()

    # -- lifecycle

    def start(self) -> "DuroDouble":
        if self._server is not None:
            return self
        self._stop.clear()
        self._server = _Server(("127.0.0.1", self._requested_port), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="duro-double-accept", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stops accepting, releases waits, closes every connection, joins every thread."""
        srv, self._server = self._server, None
        if srv is None:
            return
        self._stop.set()
        srv.shutdown()
        self._thread.join(timeout)
        srv.close_connections()
        left = srv.join_threads(timeout)
        srv.server_close()
        if left or self._thread.is_alive():
            raise RuntimeError(f"duro double: {len(left)} handler thread(s) did not stop")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("duro double not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    # -- knobs

    def configure(self, **knobs) -> None:
        unknown = set(knobs) - set(KNOB_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown knobs: {sorted(unknown)}")
        with self._lock:
            for k, v in knobs.items():
                self._knobs[k] = _normalise_knob(k, v)

    def knobs(self) -> dict:
        with self._lock:
            out = {k: (sorted(v) if isinstance(v, set) else (dict(v) if isinstance(v, dict) else v))
                   for k, v in self._knobs.items()}
        out["api_key_file"] = str(self._api_key_file) if self._api_key_file else None
        return out

    def reset_knobs(self) -> None:
        with self._lock:
            self._knobs = {k: _normalise_knob(k, v) for k, v in KNOB_DEFAULTS.items()}

    api_key = _locked("_api_key")
    api_key_file = _locked("_api_key_file", lambda v: Path(v) if v else None)

    def control(self, req: dict) -> dict:
        """``POST /_control``: knobs by name, plus ``api_key``, ``api_key_file``,
        ``reset_stats`` (true), ``reset_knobs`` (true). Returns the knobs."""
        req = dict(req)
        if req.pop("reset_knobs", False):
            self.reset_knobs()
        if req.pop("reset_stats", False):
            self.reset_stats()
        if "api_key" in req:
            self.api_key = req.pop("api_key")
        if "api_key_file" in req:
            self.api_key_file = req.pop("api_key_file")
        self.configure(**req)
        return self.knobs()

    def data_op(self, req: dict) -> dict:
        """``POST /_data``: {"op": add|update|delete|appear_later|show, "kind":
        "component"|"change_order", "id", "fields": {...}, "delay_s" | "at"}."""
        op = req["op"]
        d = self.data
        if op == "add":
            rid = d.add(req.get("kind", COMPONENT), req.get("doc"), visible_at=req.get("visible_at"),
                        **req.get("fields", {}))
            return {"id": rid}
        if op == "update":
            return {"id": req["id"], "doc": d.update(req["id"], **req.get("fields", {}))}
        if op == "delete":
            return {"id": req["id"], "deleted": d.delete(req["id"])}
        if op == "appear_later":
            d.appear_later(req["id"], at=req.get("at"), delay_s=req.get("delay_s"))
            return {"id": req["id"]}
        if op == "show":
            d.show(req["id"])
            return {"id": req["id"]}
        if op == "get":
            return {"docs": d.get(req.get("kind", COMPONENT), req["ids"])}
        raise ValueError(f"unknown op {op!r}")

    # -- counters

    def reset_stats(self) -> None:
        with self._lock:
            self.requests_total = 0
            self.requests_by_operation: collections.Counter = collections.Counter()
            self.requests_by_status: collections.Counter = collections.Counter()
            self.ids_total = 0
            self.ids_histogram: collections.Counter = collections.Counter()
            self.lookup_requests = 0     # requests with a get(filter: {ids})
            self.list_requests = 0       # requests with a get without ids (a listing)
            self.list_ids_returned = 0   # edges those listings answered (200s only)
            self.id_log: list[list[str]] = []
            self.organizations: collections.Counter = collections.Counter()
            self.libraries: collections.Counter = collections.Counter()
            self.request_log: collections.deque = collections.deque(maxlen=REQUEST_LOG_LIMIT)

    def stats(self) -> dict:
        with self._lock:
            return {"requests_total": self.requests_total,
                    "requests_by_operation": dict(self.requests_by_operation),
                    "requests_by_status": {str(k): v for k, v in self.requests_by_status.items()},
                    "ids_total": self.ids_total,
                    "ids_histogram": {str(k): v for k, v in sorted(self.ids_histogram.items())},
                    "lookup_requests": self.lookup_requests,
                    "list_requests": self.list_requests,
                    "list_ids_returned": self.list_ids_returned,
                    "id_log": [list(x) for x in self.id_log],
                    "organizations": dict(self.organizations),
                    "libraries": dict(self.libraries)}

    def ids_requested(self) -> list[str]:
        """Every id asked for, request after request."""
        with self._lock:
            return [i for ids in self.id_log for i in ids]

    # -- webhooks store

    def webhook_create(self, inp: dict) -> dict:
        with self._lock:
            self._webhook_n += 1
            wid = f"webhook_{self._webhook_n}"
            hook = {"id": wid, "name": inp["name"], "description": inp.get("description"),
                    "url": inp["url"], "events": list(inp["events"]),
                    "isEnabled": True if inp.get("isEnabled") is None else inp["isEnabled"],
                    "createdAt": rfc3339(), "secret": secrets.token_hex(32)}
            self._webhooks[wid] = hook
            return dict(hook)

    def webhook_update(self, ids, inp: dict) -> list[dict]:
        out = []
        with self._lock:
            for wid in (ids if ids is not None else list(self._webhooks)):
                hook = self._webhooks.get(wid)
                if hook is None:
                    continue
                for k in ("name", "description", "url", "events", "isEnabled"):
                    if k in inp and (inp[k] is not None or k == "description"):
                        hook[k] = list(inp[k]) if k == "events" else inp[k]
                out.append(dict(hook, secret=None))
        return out

    def webhooks_list(self, ids=None) -> list[dict]:
        with self._lock:
            hooks = (list(self._webhooks.values()) if ids is None
                     else [self._webhooks[i] for i in ids if i in self._webhooks])
            return [dict(h, secret=None) for h in hooks]

    def webhook_secret(self, webhook_id: str) -> str:
        with self._lock:
            return self._webhooks[webhook_id]["secret"]

    def record_delivery(self, webhook_id: str, event: str, metadata: dict | None = None,
                        response_code: int | None = None, acknowledged: bool = False,
                        created_at: str | None = None, payload=_NO_PAYLOAD) -> dict:
        """Appends one delivery attempt to the webhook's log (what ``getLogs`` lists).
        ``metadata``: the delivery details; ``payload``: the delivered payload (parsed JSON;
        not given: unknown). The ``log_shape`` knob, as it is now, decides what the entry's
        metadata holds (see :func:`shape_log_metadata`); the entry keeps that shape."""
        with self._lock:
            metadata = shape_log_metadata(self._knobs["log_shape"], metadata, payload)
            self._log_seq += 1
            entry = {"seq": self._log_seq, "id": f"whlog_{self._log_seq:08d}", "event": event,
                     "metadata": metadata, "responseCode": response_code,
                     "isAcknowledged": bool(acknowledged), "createdAt": created_at or rfc3339()}
            self._logs[webhook_id].append(entry)
            return dict(entry)

    def webhook_logs(self, webhook_id: str) -> list[dict]:
        with self._lock:
            return list(self._logs.get(webhook_id, ()))

    # -- GraphQL

    def _document(self, query: str):
        """(document, errors) for a query text, parsed and validated once."""
        hit = self._doc_cache.get(query)
        if hit is not None:
            return hit
        try:
            doc = parse(query)
        except GraphQLError as e:
            hit = (None, [dict(e.formatted, extensions={"code": "GRAPHQL_PARSE_FAILED"})])
        else:
            errs = validate(self.schema, doc)
            hit = (doc, [dict(e.formatted, extensions={"code": "GRAPHQL_VALIDATION_FAILED"})
                         for e in errs])
        if len(self._doc_cache) > 512:
            self._doc_cache.clear()
        self._doc_cache[query] = hit
        return hit

    def _use_one(self, knob: str) -> bool:
        """Counts down a knob that fails the next K requests: True while one was left."""
        with self._lock:
            hit = self._knobs[knob] > 0
            if hit:
                self._knobs[knob] -= 1
        return hit

    def _check_key(self, given: str | None) -> bool:
        with self._lock:
            key, path = self._api_key, self._api_key_file
        if path is not None:
            try:
                key = path.read_text().strip()
            except OSError:
                return False
        if key is None:
            return True
        return given is not None and hmac.compare_digest(given.strip().encode(), key.encode())

    def execute(self, query: str, variables: dict | None = None, operation_name: str | None = None,
                headers: dict | None = None, api_key: str | None = ...) -> tuple[int, dict, Any]:
        """In-process request (no HTTP): returns (status, headers, parsed JSON body).
        ``api_key`` defaults to the current expected key."""
        h = {k.lower(): v for k, v in (headers or {}).items()}
        if api_key is ...:
            api_key = self.api_key
            if self.api_key_file is not None:
                try:
                    api_key = self.api_key_file.read_text().strip()
                except OSError:
                    api_key = None
        if api_key is not None:
            h.setdefault("x-api-key", api_key)
        status, hdrs, body = self.handle_graphql(
            h, _dumps({"query": query, "variables": variables, "operationName": operation_name}))
        return status, dict(hdrs), json.loads(body)

    def handle_graphql(self, headers, raw: bytes) -> tuple[int, list, bytes]:
        """One ``POST /graphql`` request: (status, extra headers, body)."""
        get = headers.get
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError
        except ValueError:
            req = None
        op_name = self._operation_name(req)
        with self._lock:
            knobs = dict(self._knobs)
            self.requests_total += 1
            self.requests_by_operation[op_name] += 1
            org, lib = get("x-organization"), get("x-library")
            if org is not None:
                self.organizations[org] += 1
            if lib is not None:
                self.libraries[lib] += 1
        status, extra, body, ctx = self._pipeline(knobs, get, req)
        ids = ctx.ids if ctx is not None and ctx.asked_ids else None
        with self._lock:
            self.requests_by_status[status] += 1
            if ctx is not None and ctx.listed:
                self.list_requests += 1
                if status == 200:
                    self.list_ids_returned += ctx.listed_ids
            if ids is not None:
                self.lookup_requests += 1
                self.ids_total += len(ids)
                self.ids_histogram[len(ids)] += 1
                if len(self.id_log) < ID_LOG_LIMIT:
                    self.id_log.append(ids)
            self.request_log.append({"t": time.time(), "operation": op_name, "status": status,
                                     "ids": ids, "organization": org, "library": lib})
        return status, extra, body

    def _operation_name(self, req) -> str:
        if not req:
            return "invalid"
        if isinstance(req.get("operationName"), str) and req["operationName"]:
            return req["operationName"]
        q = req.get("query")
        if isinstance(q, str):
            m = _OP_NAME_RE.match(q)
            if m:
                return m.group(2)
        return "anonymous"

    def _pipeline(self, knobs: dict, get, req) -> tuple[int, list, bytes, _RequestContext | None]:
        """Returns (status, headers, body, the execution's context or None when the request
        did not get as far as execution)."""
        def err(status, message, code, headers=(), **ext):
            return status, list(headers), _dumps({"errors": [_gql_error(message, code, **ext)]}), None

        if knobs["latency_ms"]:
            self._stop.wait(knobs["latency_ms"] / 1000.0)
        if knobs["outage"]:
            return err(503, "Service unavailable", "SERVICE_UNAVAILABLE")
        retry_after = knobs["retry_after_s"]
        if knobs["rate_limit_429"] and self._use_one("rate_limit_429"):
            return err(429, "Too many requests", "RATE_LIMITED",
                       [("Retry-After", str(int(retry_after)))], retryAfter=retry_after)
        if not self._check_key(get("x-api-key")):
            return err(401, "Unauthorized: missing or invalid API key", "UNAUTHENTICATED")
        if knobs["forbidden"]:
            return err(403, "Forbidden: the API key has no access to this library", "FORBIDDEN",
                       classification="AuthorizationError")
        if knobs["error_rate_500"]:
            with self._lock:
                boom = self._rng.random() < knobs["error_rate_500"]
            if boom:
                return err(500, "Internal server error", "INTERNAL_SERVER_ERROR")
        if req is None:
            return err(400, "Body must be a JSON object", "BAD_REQUEST")
        query, variables = req.get("query"), req.get("variables")
        if not isinstance(query, str) or not query.strip():
            return err(400, "Missing query", "BAD_REQUEST")
        if variables is not None and not isinstance(variables, dict):
            return err(400, "`variables` must be an object", "BAD_REQUEST")
        doc, errors = self._document(query)
        if errors:
            return knobs["validation_status"], [], _dumps({"errors": errors}), None
        if knobs["graphql_rate_limited"] and self._use_one("graphql_rate_limited"):
            return err(200, "Rate limit exceeded", "RATE_LIMITED", retryAfter=retry_after)
        op_name = req.get("operationName") or None
        op = get_operation_ast(doc, op_name)
        if op is None:
            return err(400, f"Unknown or ambiguous operation {op_name!r}", "BAD_USER_INPUT")
        ctx = _RequestContext(self, knobs)
        root = _Mutation() if op.operation.value == "mutation" else _Query()
        result = execute(self.schema, doc, root_value=root, context_value=ctx,
                         variable_values=variables, operation_name=op_name,
                         is_awaitable=_never_awaitable)
        ids = ctx.ids if ctx.asked_ids else None
        status = 200
        out = result.formatted
        if result.errors:
            if result.data is None and all(e.path is None for e in result.errors):
                status = 400  # variable coercion failed (Apollo answers 400 BAD_USER_INPUT)
            for e in out["errors"]:
                ext = e.setdefault("extensions", {})
                ext.setdefault("code", "BAD_USER_INPUT" if status == 400 else "INTERNAL_SERVER_ERROR")
        if ctx.failed_lookup or (ids and knobs["poison_ids"] and
                                 not knobs["poison_ids"].isdisjoint(ids)):
            return 500, [], _dumps({"errors": [_gql_error("Internal server error",
                                                          "INTERNAL_SERVER_ERROR")]}), ctx
        if ids and knobs["hang_ms"] and knobs["timeout_ids"] and not knobs["timeout_ids"].isdisjoint(ids):
            self._stop.wait(knobs["hang_ms"] / 1000.0)
        return status, [], _dumps(out), ctx


def _make_knob_property(name: str):
    def getter(self):
        with self._lock:
            v = self._knobs[name]
            return set(v) if isinstance(v, set) else (dict(v) if isinstance(v, dict) else v)

    def setter(self, value):
        self.configure(**{name: value})

    return property(getter, setter, doc=f"knob {name} (default {KNOB_DEFAULTS[name]!r})")


for _name in KNOB_DEFAULTS:
    setattr(DuroDouble, _name, _make_knob_property(_name))
del _name
