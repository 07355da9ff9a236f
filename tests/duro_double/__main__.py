"""Command line of the Duro test double. Run from the repository root with
``PYTHONPATH=tests``:

  python -m duro_double serve --port 0 --api-key-file key.txt [--seed S] [--components N]
                              [--change-orders M] [--latency-ms MS] [--error-rate-500 P]
                              [--max-ids-per-request N] [--default-page-size N]
                              [--variant default|renamed] [--validation-status 400|200]
                              [--log-shape details|object|string]
      Serves the GraphQL API on 127.0.0.1 until SIGTERM/SIGINT. The first line on stdout is
      ``listening on http://127.0.0.1:PORT/graphql``. Knobs can be changed at run time with
      ``POST /_control`` (JSON); counters are at ``GET /_stats``. --log-shape: what a webhook
      delivery log entry's metadata holds (the ``log_shape`` knob; default details).

  python -m duro_double send --url U --secret-file F --count N --rate R [--scale X]
                             [--repeat-probability P] [--ledger out.json] [--seed S]
                             [--double-url http://127.0.0.1:PORT]
      Sends N random events (over the library that ``serve --seed S`` holds) at R per second
      (0: as fast as the workers go), with Duro's retry schedule times X, waits until every
      delivery ended, prints the ledger summary as JSON and writes the whole ledger to
      --ledger. Exit 0 when every event was acknowledged, 1 otherwise.

Secrets and API keys come from files (or DURO_DOUBLE_API_KEY / DURO_DOUBLE_SECRET), never argv.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

from .data import DuroData
from .sender import SCHEDULE_S, RemoteDeliveryLog, WebhookSender, random_events
from .server import LOG_SHAPES, VARIANTS, DuroDouble


def _read_secret(path: str | None, env: str) -> str | None:
    if path:
        with open(path) as f:
            return f.read().strip()
    return os.environ.get(env) or None


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_serve(a) -> int:
    key = None if a.api_key_file else os.environ.get("DURO_DOUBLE_API_KEY") or None
    if not a.api_key_file and key is None:
        print("duro_double: no --api-key-file nor DURO_DOUBLE_API_KEY: any x-api-key is accepted",
              file=sys.stderr)
    knobs = {k: v for k, v in (("latency_ms", a.latency_ms), ("error_rate_500", a.error_rate_500),
                               ("max_ids_per_request", a.max_ids_per_request),
                               ("default_page_size", a.default_page_size),
                               ("max_page_size", a.max_page_size),
                               ("validation_status", a.validation_status),
                               ("log_shape", a.log_shape)) if v is not None}
    stop = _stop_event()
    double = DuroDouble(port=a.port, api_key=key, api_key_file=a.api_key_file, seed=a.seed,
                        components=a.components, change_orders=a.change_orders,
                        variant=a.variant, verbose=a.verbose, **knobs).start()
    try:
        print(f"listening on {double.url}", flush=True)
        stop.wait()
    finally:
        double.close()
    return 0


def cmd_send(a) -> int:
    secret = _read_secret(a.secret_file, "DURO_DOUBLE_SECRET")
    if not secret:
        print("duro_double send: --secret-file (or DURO_DOUBLE_SECRET) is required", file=sys.stderr)
        return 2
    mix = None
    if a.mix:
        mix = {}
        for part in a.mix.split(","):
            name, _, w = part.partition("=")
            mix[name.strip()] = float(w or 1)
    data = DuroData(a.seed, a.components, a.change_orders)
    events = random_events(a.count, data, mix, rng=a.seed)
    log = RemoteDeliveryLog(a.double_url) if a.double_url else None
    stop = _stop_event()
    wait_s = a.wait_s if a.wait_s is not None else sum(SCHEDULE_S) * a.scale + a.timeout_s * 10 + 30
    sender = WebhookSender(a.url, secret, webhook_id=a.webhook_id, scale=a.scale,
                           workers=a.workers, timeout_s=a.timeout_s,
                           repeat_probability=a.repeat_probability, seed=a.seed, delivery_log=log)
    feeder = threading.Thread(
        target=lambda: (sender.send_stream(events, a.rate) if a.rate > 0
                        else sender.send_many(events)), name="duro-send-feeder", daemon=True)
    deadline_hit = False
    try:
        feeder.start()
        end = time.monotonic() + wait_s
        while not stop.is_set():  # bounded: wakes up to notice a signal or the deadline
            if not feeder.is_alive() and sender.wait(0.2):
                break
            if time.monotonic() > end:
                deadline_hit = True
                break
            stop.wait(0.2)
    finally:
        sender.close()
        feeder.join(5)
    summary = sender.summary()
    summary["interrupted"] = stop.is_set()
    summary["deadline_hit"] = deadline_hit
    if a.ledger:
        with open(a.ledger, "w") as f:
            json.dump(sender.ledger.to_json(), f, indent=1)
    print(json.dumps(summary), flush=True)
    return 0 if summary["acknowledged"] == summary["sent"] == a.count else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m duro_double", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve the GraphQL API double")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--api-key-file")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--components", type=int, default=1000)
    s.add_argument("--change-orders", type=int, default=200)
    s.add_argument("--latency-ms", type=float)
    s.add_argument("--error-rate-500", type=float)
    s.add_argument("--max-ids-per-request", type=int)
    s.add_argument("--default-page-size", type=int)
    s.add_argument("--max-page-size", type=int)
    s.add_argument("--variant", choices=VARIANTS, default="default",
                   help="schema: default, or renamed (other input type names, no Webhook.secret)")
    s.add_argument("--validation-status", type=int,
                   help="HTTP status of parse/validation error answers (default 400)")
    s.add_argument("--log-shape", choices=LOG_SHAPES,
                   help="webhook log metadata: details (default), object (+ payload), "
                        "string (the object form as a JSON string)")
    s.add_argument("--verbose", action="store_true")
    s.set_defaults(func=cmd_serve)
    d = sub.add_parser("send", help="send signed webhooks with Duro's retry schedule")
    d.add_argument("--url", required=True)
    d.add_argument("--secret-file")
    d.add_argument("--count", type=int, required=True)
    d.add_argument("--rate", type=float, default=0.0, help="events per second (0: no pacing)")
    d.add_argument("--scale", type=float, default=1.0, help="multiplies Duro's retry delays")
    d.add_argument("--repeat-probability", type=float, default=0.0)
    d.add_argument("--ledger")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--components", type=int, default=1000)
    d.add_argument("--change-orders", type=int, default=200)
    d.add_argument("--mix", help="EVENT=weight,... (default: a realistic mix of all events)")
    d.add_argument("--webhook-id", default="webhook_test")
    d.add_argument("--workers", type=int, default=8)
    d.add_argument("--timeout-s", type=float, default=10.0)
    d.add_argument("--wait-s", type=float, help="longest wait for all deliveries to end")
    d.add_argument("--double-url", help="base URL of a DuroDouble whose webhook logs to fill")
    d.set_defaults(func=cmd_send)
    a = p.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
