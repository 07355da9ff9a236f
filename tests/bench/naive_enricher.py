"""A naive enricher, the baseline of the enricher benchmark (docs/benchmarks.md).

What a first version usually looks like: a consumer (confluent-kafka, read_committed,
manual commits) that takes one raw record at a time, in order, pulls its one resource with
one GraphQL request (keep-alive connection; none for *_DELETE events), produces the output
record, waits for its delivery, and commits that record's offset synchronously.
NOT transactional (at-least-once: a crash between produce and commit duplicates), no
dedupe, no batching. It stops after --max-seconds or --max-events, whichever comes first.

  PYTHONPATH=tests python tests/bench/naive_enricher.py --bootstrap H:P --topic RAW \
      --api-url http://127.0.0.1:PORT/graphql --api-key-file F [--group G] \
      [--out-prefix naive.events.] [--max-seconds 30] [--max-events 20000]

Prints one JSON line: events, GraphQL requests, seconds (first record to last commit),
events_per_s.
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.parse
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer

QUERIES = Path(__file__).resolve().parents[2] / "schemas" / "graphql"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--api-url", required=True)
    p.add_argument("--api-key-file", required=True)
    p.add_argument("--group", default="naive-enricher")
    p.add_argument("--out-prefix", default="naive.events.")
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--max-events", type=int, default=20000)
    a = p.parse_args(argv)
    if not 0 < a.max_seconds <= 3600:
        p.error("--max-seconds must be in (0, 3600]")
    key = Path(a.api_key_file).read_text().strip()
    comp_q = (QUERIES / "components.graphql").read_text()
    co_q = (QUERIES / "change_orders.graphql").read_text()
    url = urllib.parse.urlsplit(a.api_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"x-api-key": key, "Content-Type": "application/json"}

    consumer = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    producer = Producer({"bootstrap.servers": a.bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 0})
    consumer.subscribe([a.topic])
    events = requests = 0
    t_first = t_last = None
    deadline = time.monotonic() + a.max_seconds
    try:
        while events < a.max_events and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print(f"naive_enricher: {msg.error()}", file=sys.stderr)
                continue
            if t_first is None:
                t_first = time.monotonic()
            ev = json.loads(msg.value())
            name = ev.get("event", "")
            data = ev.get("data") or {}
            doc = None
            if not name.endswith("_DELETE"):
                if name.startswith("CO_"):
                    q, rid, field = co_q, data.get("change_order_id"), "changeOrders"
                else:
                    q, rid, field = comp_q, data.get("item_id"), "components"
                body = json.dumps({"query": q, "variables": {"ids": [rid], "first": 1}})
                conn.request("POST", url.path, body=body, headers=headers)
                r = conn.getresponse()
                ans = json.loads(r.read())
                requests += 1
                edges = (((ans.get("data") or {}).get(field) or {}).get("get") or {}) \
                    .get("connection", {}).get("edges", [])
                doc = edges[0]["node"] if edges else None
            out = {"schema": "naive.v1", "idempotency_key": ev.get("id"), "event": ev,
                   "document": doc}
            producer.produce(a.out_prefix + name.lower(), key=msg.key(),
                             value=json.dumps(out).encode(),
                             headers=[("idempotency-key", str(ev.get("id", "")).encode())])
            producer.flush(30)
            consumer.commit(message=msg, asynchronous=False)
            events += 1
            t_last = time.monotonic()
    finally:
        consumer.close()
        conn.close()
    secs = (t_last - t_first) if t_first is not None and t_last is not None else 0.0
    print(json.dumps({"program": "naive_enricher", "events": events, "graphql_requests": requests,
                      "seconds": round(secs, 3),
                      "events_per_s": round(events / secs, 1) if secs > 0 else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
