"""Capacity of the Duro double: how many ids per second it serves for the enricher's
components query (``run``); for the listing ``duro-enricher snapshot`` sends, one client
following the pages of the whole library (``list_run``); and for both at once, a plain
client listing while its threads look the listed ids up (``pipeline_run``).

  PYTHONPATH=tests python -m duro_double.bench [--threads 1,4] [--ids 100] [--seconds 5]
                                               [--in-process] [--list PAGE_SIZE]

By default the double runs as its own process (``python -m duro_double serve``, latency 0) so
that the client threads here do not share its interpreter lock; ``--in-process`` runs it in
this process instead. Each client thread keeps one keep-alive connection and sends requests
of ``--ids`` distinct existing ids back to back. Prints one JSON line per thread count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_Q = Path(__file__).resolve().parents[2] / "schemas" / "graphql"
QUERY = (_Q / "components.graphql").read_text()
CO_QUERY = (_Q / "change_orders.graphql").read_text()
# the listing queries of `duro-enricher snapshot`, by kind as it names them, in its order
LIST_QUERIES = {"item": ((_Q / "snapshot_components.graphql").read_text(), "components"),
                "change_order": ((_Q / "snapshot_change_orders.graphql").read_text(),
                                 "changeOrders")}
LOOKUP_QUERIES = {"item": (QUERY, "components"), "change_order": (CO_QUERY, "changeOrders")}
KEY = "bench-key"


def _client(port: int, ids_sets: list, stop_at: float, out: list, lock: threading.Lock) -> None:
    """ids_sets: (query, field, ids) to send in turn."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"x-api-key": KEY, "Content-Type": "application/json"}
    bodies = [(json.dumps({"query": q, "variables": {"ids": ids, "first": len(ids)}}).encode(),
               field) for q, field, ids in ids_sets]
    n = ids_n = errors = 0
    lat = []
    i = 0
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        body, field = bodies[i % len(bodies)]
        conn.request("POST", "/graphql", body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        lat.append(time.monotonic() - t0)
        if r.status != 200:
            errors += 1
        else:
            ids_n += len(json.loads(data)["data"][field]["get"]["connection"]["edges"])
        n += 1
        i += 1
    conn.close()
    with lock:
        out.append((n, ids_n, errors, lat))


def run(port: int, threads: int, ids_per_request: int, seconds: float, components: int,
        change_orders: int = 0, co_share: float = 0.0) -> dict:
    """co_share: the share of change-order ids (and requests) in the mix; the rest are
    components, as the enricher asks for them."""
    comp_ids = [f"comp_{i:06d}" for i in range(1, components + 1)]
    co_ids = [f"co_{i:06d}" for i in range(1, change_orders + 1)]
    n_co = round(16 * co_share) if co_ids else 0
    sets = []
    for k in range(16):
        if (k + 1) * n_co // 16 != k * n_co // 16:  # n_co of the 16, spread out
            start = (k * ids_per_request) % max(1, change_orders - ids_per_request)
            sets.append((CO_QUERY, "changeOrders", co_ids[start:start + ids_per_request]))
        else:
            start = (k * ids_per_request) % (components - ids_per_request)
            sets.append((QUERY, "components", comp_ids[start:start + ids_per_request]))
    out: list = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    t0 = time.monotonic()
    ts = [threading.Thread(target=_client, args=(port, sets, stop_at, out, lock)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 60)
    wall = time.monotonic() - t0
    reqs = sum(o[0] for o in out)
    ids = sum(o[1] for o in out)
    lat = sorted(x for o in out for x in o[3])
    return {"threads": threads, "ids_per_request": ids_per_request, "seconds": round(wall, 2),
            "requests": reqs, "errors": sum(o[2] for o in out),
            "requests_per_s": round(reqs / wall, 1), "ids_per_s": round(ids / wall),
            "latency_ms_p50": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "latency_ms_p99": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None}


class _Client:
    """One keep-alive connection to the double's /graphql."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"x-api-key": KEY, "Content-Type": "application/json"}

    def post(self, query: str, variables: dict) -> dict:
        self.conn.request("POST", "/graphql", headers=self.headers,
                          body=json.dumps({"query": query, "variables": variables}).encode())
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"the double answered {r.status}: {data[:300]!r}")
        out = json.loads(data)
        if out.get("errors"):
            raise RuntimeError(f"the double answered errors: {out['errors'][:2]}")
        return out["data"]

    def close(self) -> None:
        self.conn.close()


def _pages(client: _Client, kind: str, page_size: int):
    """The listing of one kind as `duro-enricher snapshot` asks for it: pages of page_size
    after the last page's endCursor until hasNextPage is false. Yields each page's ids."""
    query, field = LIST_QUERIES[kind]
    after = None
    while True:
        conn = client.post(query, {"first": page_size, "after": after})[field]["get"]["connection"]
        yield [e["node"]["id"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return
        after = conn["pageInfo"]["endCursor"]


def list_run(port: int, page_size: int, kinds=("item", "change_order")) -> dict:
    """The listing capacity: one client, one keep-alive connection, lists every id of each
    kind in turn, page after page (a keyset cursor chain cannot be split: the next page
    needs the last one's endCursor), as `duro-enricher snapshot` does, without Kafka."""
    client = _Client(port)
    out: dict = {"page_size": page_size, "kinds": {}}
    t0 = time.monotonic()
    try:
        for kind in kinds:
            k0, n, reqs = time.monotonic(), 0, 0
            for ids in _pages(client, kind, page_size):
                n += len(ids)
                reqs += 1
            out["kinds"][kind] = {"ids": n, "requests": reqs,
                                  "seconds": round(time.monotonic() - k0, 3)}
    finally:
        client.close()
    wall = time.monotonic() - t0
    ids = sum(k["ids"] for k in out["kinds"].values())
    out.update({"ids": ids, "requests": sum(k["requests"] for k in out["kinds"].values()),
                "seconds": round(wall, 3), "ids_per_s": round(ids / wall) if wall else None})
    return out


def pipeline_run(port: int, page_size: int, ids_per_request: int, threads: int,
                 kinds=("item", "change_order")) -> dict:
    """Listing and lookups at once, as a snapshot with an enricher behind it needs them: one
    client lists (as list_run) and hands each page's ids, in requests of ids_per_request,
    to `threads` lookup clients (the enricher's query of that kind), each on its own
    keep-alive connection. ids/s = ids looked up ÷ time from the first listing request to
    the last lookup's answer."""
    import queue
    work: queue.Queue = queue.Queue()
    counts = {"listed": 0, "list_requests": 0, "looked_up": 0, "lookup_requests": 0}
    errors: list = []
    lock = threading.Lock()

    def lister():
        client = _Client(port)
        try:
            for kind in kinds:
                for ids in _pages(client, kind, page_size):
                    with lock:
                        counts["listed"] += len(ids)
                        counts["list_requests"] += 1
                    for i in range(0, len(ids), ids_per_request):
                        work.put((kind, ids[i:i + ids_per_request]))
        except Exception as e:  # noqa: BLE001 - reported
            errors.append(f"listing: {e}")
        finally:
            client.close()
            for _ in range(threads):
                work.put(None)

    def looker():
        client = _Client(port)
        try:
            while True:
                job = work.get()
                if job is None:
                    return
                kind, ids = job
                query, field = LOOKUP_QUERIES[kind]
                data = client.post(query, {"ids": ids, "first": len(ids)})
                got = len(data[field]["get"]["connection"]["edges"])
                with lock:
                    counts["looked_up"] += got
                    counts["lookup_requests"] += 1
        except Exception as e:  # noqa: BLE001 - reported
            errors.append(f"lookup: {e}")
            while work.get() is not None:  # let the lister finish
                pass
        finally:
            client.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=lister)] + [threading.Thread(target=looker)
                                               for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return dict(counts, page_size=page_size, ids_per_request=ids_per_request, threads=threads,
                seconds=round(wall, 3),
                ids_per_s=round(counts["looked_up"] / wall) if wall else None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m duro_double.bench")
    p.add_argument("--threads", default="1,4")
    p.add_argument("--ids", type=int, default=100)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--components", type=int, default=2000)
    p.add_argument("--in-process", action="store_true")
    p.add_argument("--list", type=int, metavar="PAGE_SIZE",
                   help="measure the listing (components only) with this page size instead")
    a = p.parse_args(argv)
    proc = double = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if a.in_process:
                from .server import DuroDouble
                double = DuroDouble(api_key=KEY, components=a.components).start()
                port = double.port
            else:
                keyf = Path(tmp, "key")
                keyf.write_text(KEY)
                env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
                proc = subprocess.Popen([sys.executable, "-m", "duro_double", "serve", "--port", "0",
                                         "--api-key-file", str(keyf), "--components", str(a.components)],
                                        stdout=subprocess.PIPE, env=env)
                r, _, _ = select.select([proc.stdout], [], [], 30)
                if not r:
                    raise SystemExit("the double did not start")
                line = proc.stdout.readline().decode()
                port = int(line.rsplit(":", 1)[1].split("/")[0])
            if a.list:
                res = list_run(port, a.list, ("item",))
                res["double"] = "in-process" if a.in_process else "own process"
                print(json.dumps(res), flush=True)
            for n in (int(x) for x in a.threads.split(",")) if not a.list else ():
                res = run(port, n, a.ids, a.seconds, a.components)
                res["double"] = "in-process" if a.in_process else "own process"
                print(json.dumps(res), flush=True)
        finally:
            if double is not None:
                double.close()
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                proc.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
