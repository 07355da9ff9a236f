"""Capacity of the Duro double: how many ids per second it serves for the enricher's
components query.

  PYTHONPATH=tests python -m duro_double.bench [--threads 1,4] [--ids 100] [--seconds 5]
                                               [--in-process]

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m duro_double.bench")
    p.add_argument("--threads", default="1,4")
    p.add_argument("--ids", type=int, default=100)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--components", type=int, default=2000)
    p.add_argument("--in-process", action="store_true")
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
            for n in (int(x) for x in a.threads.split(",")):
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
