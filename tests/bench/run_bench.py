"""The benchmarks of docs/benchmarks.md, run one after the other against one real broker.
scripts/bench.sh installs, builds, starts the broker and calls this; run it through that.

  PYTHONPATH=tests python tests/bench/run_bench.py --bootstrap H:P --kafka-pid-file F \
      --bin-dir BUILD --bench-bin-dir BENCHBUILD --work DIR --doc OUT.md [--quick] [...]

Ingress: wrk posts pre-signed webhooks (tests/bench/gen_pool.py, tests/bench/post.lua) at
several connection counts to (1) the HTTP ceiling (tests/bench/http_ceiling.c), (3)
duro-bridge and (4) the Node.js reference (tests/bench/node-ref); (2) the Kafka ceiling
(tests/bench/kafka_ceiling.c) produces the same records with the bridge's producer settings.
Enricher: a preload of raw events drained by duro-enricher (default settings, then with the
GraphQL request-rate limit off), by a naive enricher (tests/bench/naive_enricher.py), and the
capacity of the GraphQL double (duro_double.bench) alone; then event-to-output latency at a
moderate rate. State topics: duro-enricher's events/s with DURO_STATE_TOPICS on and off on
one preload, alternated, and the ratio on / off. Wire headers: the same with DURO_CLOUDEVENTS
(the ce_* headers) on and off. Dedupe rebuild: per window size, raw partitions filled with
tests/bench/rawpart and committed at their ends; duro-enricher's rebuild rate against a
plain librdkafka read of the same partition, then the pause a second member's joining
causes, for the partition that stays and the one that moves. Snapshot: the GraphQL
double's capacity for listing the library (one client following the pages), for 100-id
lookups, and for both at once
(duro_double.bench); `duro-enricher snapshot` listing alone, unpaced; the snapshot with a
running enricher behind it, unpaced, until every ping is enriched, and the same at the
default rates on a smaller library. Everything is loopback, bounded in count and time; every
process started here is stopped here. Nothing is asserted: the output is a table of ratios
(and goals met or not). A run of some sections (--only) keeps the others' on the page.
librdkafka versions (--bin-dir-current, from scripts/bench.sh --rdkafka both): the ingress
and enricher sections' librdkafka-dependent parts once per build (system and current
librdkafka), interleaved (the build going first alternates from step to step and, for each
step, from round to round), each its own
section of the page with the ratios current ÷ system; the other processes' CPU on the shared
machine is estimated for every run.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import libversion as ck_libversion
from confluent_kafka import version as ck_version
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench"
sys.path.insert(0, str(ROOT / "tests"))
from duro_double import bench as double_bench  # noqa: E402
from duro_double.sender import DEFAULT_MIX  # noqa: E402

SECRET = "bench-webhook-secret-not-a-real-one"
API_KEY = double_bench.KEY  # what duro_double.bench sends
PARTITIONS = 6
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

class Proc:
    """A process started by the benchmark, in its own session, output to files."""
    live: list["Proc"] = []

    def __init__(self, name: str, argv: list[str], work: Path, env: dict | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.out_path = work / f"{name}.out"
        self.err_path = work / f"{name}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.p = subprocess.Popen(argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, **(env or {})), cwd=cwd,
                                  start_new_session=True)
        self.pid = self.p.pid
        Proc.live.append(self)

    def text(self, which: str = "out") -> str:
        path = self.out_path if which == "out" else self.err_path
        return path.read_text(errors="replace")

    def wait_for(self, pattern: str, which: str = "out", timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.text(which))
            if m:
                return m
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.p.returncode}) before "
                                   f"{pattern!r}: {self.text('err')[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no {pattern!r} within {timeout}s: "
                           f"{self.text('err')[-2000:]}")

    def status(self, field: str) -> int | None:
        """A kB field of /proc/PID/status (VmHWM, VmRSS)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self, timeout: float = 20) -> int | None:
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in {timeout}s: SIGKILL")
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(10)
        self._out.close()
        self._err.close()
        if self in Proc.live:
            Proc.live.remove(self)
        return self.p.returncode

    @classmethod
    def stop_all(cls) -> None:
        for p in list(cls.live):
            p.stop(10)


def cpu_ticks(pid: int | None) -> int | None:
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def http_post_json(url: str, obj: dict, timeout: float = 10) -> dict:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def metric(text: str, name: str) -> float:
    """Sum of the samples of one Prometheus metric (all label sets)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total


# ---------------------------------------------------------------- Kafka helpers

def state_env(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> dict:
    """Creates the compacted state and progress topics the enricher checks at start
    (prefix + "state.item", ... + "progress") and returns the settings naming them."""
    create_topics(bootstrap, [prefix + "state.item", prefix + "state.change_order"],
                  partitions=partitions, config={"cleanup.policy": "compact"})
    create_topics(bootstrap, [prefix + "progress"], partitions=1,
                  config={"cleanup.policy": "compact"})
    return {"DURO_STATE_TOPIC_TEMPLATE": prefix + "state.{kind}",
            "DURO_PROGRESS_TOPIC": prefix + "progress"}


def create_topics(bootstrap: str, names: list[str], partitions: int = PARTITIONS,
                  config: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    new = [NewTopic(n, partitions, 1, config=config or {}) for n in names if n not in existing]
    if new:
        for _, fut in admin.create_topics(new).items():
            fut.result(timeout=30)
    # wait until every partition has a leader in the metadata
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10).topics
        if all(n in md and len(md[n].partitions) == partitions and
               all(p.leader >= 0 for p in md[n].partitions.values()) for n in names):
            return
        time.sleep(0.2)
    raise RuntimeError(f"topics {names} have no leaders after 30 s")


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)}
    finally:
        c.close()


# ---------------------------------------------------------------- ingress

def wrk_run(url: str, pool: Path, conns: int, threads: int, seconds: float) -> dict:
    argv = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{seconds:g}s", "--latency",
            "--timeout", "5s", "-s", str(BENCH / "post.lua"), url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                       env=dict(os.environ, BENCH_POOL=str(pool)))
    m = re.search(r"^BENCHJSON (\{.*\})$", r.stdout, re.M)
    if not m:
        raise RuntimeError(f"wrk printed no result (exit {r.returncode}): {r.stdout[-800:]} "
                           f"{r.stderr[-800:]}")
    res = json.loads(m.group(1))
    secs = res["duration_us"] / 1e6
    res["accepted"] = res["requests"] - res["non2xx"]
    res["accepted_per_s"] = res["accepted"] / secs if secs else 0.0
    res["errors"] = (res["non2xx"] + res["connect_errors"] + res["read_errors"] +
                     res["write_errors"] + res["timeouts"])
    return res


def run_server_sweep(name: str, proc: Proc, url: str, a, pool: Path, broker_pid: int | None,
                     metrics_url: str | None = None) -> dict:
    """Warm-up, then one wrk run per connection count; CPU and peak RSS of the server."""
    warm_up_server(url, a, pool)
    runs = {}
    for c in a.conns:
        runs[c] = server_run(name, proc, url, a, pool, broker_pid, c, metrics_url)
    return {"runs": runs, "vm_hwm_kib": proc.status("VmHWM")}


def warm_up_server(url: str, a, pool: Path) -> None:
    wrk_run(url, pool, 8, a.wrk_threads, max(1.0, min(3.0, a.seconds / 5)))


def server_run(name: str, proc: Proc, url: str, a, pool: Path, broker_pid: int | None, c: int,
               metrics_url: str | None = None) -> dict:
    """One wrk run of c connections against a running server: its CPU (and the broker's)
    over the run, and with metrics_url (duro-bridge's /metrics) the mean produce→ack."""
    m0 = http_get(metrics_url)[1] if metrics_url else ""
    s0, b0, t0 = cpu_ticks(proc.pid), cpu_ticks(broker_pid), time.monotonic()
    res = wrk_run(url, pool, c, a.wrk_threads, a.seconds)
    s1, b1, t1 = cpu_ticks(proc.pid), cpu_ticks(broker_pid), time.monotonic()
    wall = t1 - t0
    if s0 is not None and s1 is not None:
        res["server_cpu_pct"] = 100.0 * (s1 - s0) / CLK_TCK / wall
        res["server_cpu_us_per_accepted"] = ((s1 - s0) / CLK_TCK * 1e6 / res["accepted"]
                                             if res["accepted"] else None)
    if b0 is not None and b1 is not None:
        res["broker_cpu_pct"] = 100.0 * (b1 - b0) / CLK_TCK / wall
    if metrics_url:
        m1 = http_get(metrics_url)[1]
        n = (metric(m1, "duro_bridge_ack_latency_seconds_count") -
             metric(m0, "duro_bridge_ack_latency_seconds_count"))
        s = (metric(m1, "duro_bridge_ack_latency_seconds_sum") -
             metric(m0, "duro_bridge_ack_latency_seconds_sum"))
        res["ack_latency_mean_ms"] = 1000 * s / n if n else None
    log(f"{name} c={c}: {res['accepted_per_s']:.0f} accepted/s, p50 "
        f"{res['lat_p50_us'] / 1000:.2f} ms, p99 {res['lat_p99_us'] / 1000:.2f} ms, "
        f"errors {res['errors']}, server CPU {res.get('server_cpu_pct', 0):.0f}%")
    return res


def ingress_pool(a, work: Path) -> tuple[Path, Path]:
    """The webhook secret's file and a pool of a.pool_n pre-signed webhooks."""
    secret_file = work / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    pool = work / "pool.tsv"
    if not pool.exists():
        subprocess.run([sys.executable, str(BENCH / "gen_pool.py"), "--out", str(pool),
                        "--n", str(a.pool_n), "--secret-file", str(secret_file)], check=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "tests")), timeout=300)
    return secret_file, pool


def pool_body_bytes(pool: Path) -> int:
    lines = pool.read_text().splitlines()
    return round(sum(len(x.split("\t", 5)[5]) for x in lines) / len(lines))


def kafka_ceiling_run(a, bench_bin_dir: Path, topic: str, pool: Path, inflight: int,
                      what: str = "kafka_ceiling") -> dict:
    """tests/bench/kafka_ceiling: as fast as it can (inflight 0), or a closed loop of
    inflight records outstanding, for a.seconds."""
    r = subprocess.run([str(bench_bin_dir / "kafka_ceiling"), "--bootstrap", a.bootstrap,
                        "--topic", topic, "--pool", str(pool), "--seconds",
                        f"{a.seconds:g}", "--inflight", str(inflight)],
                       capture_output=True, text=True, timeout=a.seconds + 120)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"kafka_ceiling failed ({r.returncode}): {r.stderr[-1500:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    log(f"{what} inflight={inflight or 'unbounded'}: {res['records_per_s']:.0f} "
        f"records/s, p50 {res['lat_p50_us'] / 1000:.2f} ms, p99 "
        f"{res['lat_p99_us'] / 1000:.2f} ms")
    return res


def start_bridge(a, work: Path, name: str, bin_dir: Path, topic: str,
                 secret_file: Path) -> tuple[Proc, int, int]:
    """duro-bridge of bin_dir on free ports, waited for until ready: (proc, port, admin)."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": a.bootstrap, "DURO_RAW_TOPIC": topic,
           "DURO_BRIDGE_LISTEN": "127.0.0.1:0", "DURO_BRIDGE_ADMIN_LISTEN": "127.0.0.1:0",
           "DURO_WEBHOOK_SECRETS_FILE": str(secret_file), "DURO_BRIDGE_DRAIN_DELAY_MS": "0",
           "DURO_LOG_LEVEL": "info"}
    p = Proc(name, [str(bin_dir / "duro-bridge")], work, env=env)
    try:
        m = p.wait_for(r"webhooks on port (\d+).*admin on port (\d+)", "err")
        port, admin = int(m.group(1)), int(m.group(2))
        deadline = time.monotonic() + 60
        while http_get(f"http://127.0.0.1:{admin}/readyz")[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready within 60 s")
            time.sleep(0.2)
    except BaseException:
        p.stop()
        raise
    return p, port, admin


def bench_ingress(a, work: Path, broker_pid: int | None) -> dict:
    secret_file, pool = ingress_pool(a, work)
    topics = {"kafka": "bench.raw.kafka-ceiling", "bridge": "bench.raw.duro-bridge",
              "node": "bench.raw.node-ref"}
    create_topics(a.bootstrap, list(topics.values()))
    out: dict = {"pool_n": a.pool_n, "conns": a.conns, "seconds": a.seconds,
                 "wrk_threads": a.wrk_threads}

    # (2) Kafka ceiling: as fast as it can, then closed loops of c records in flight.
    def kafka_ceiling(inflight: int) -> dict:
        return kafka_ceiling_run(a, a.bench_bin_dir, topics["kafka"], pool, inflight)
    out["kafka_ceiling"] = kafka_ceiling(0)
    out["kafka_closed_loop"] = {c: kafka_ceiling(c) for c in a.conns}

    # (1) HTTP ceiling
    p = Proc("http_ceiling", [str(a.bench_bin_dir / "http_ceiling"), "--port", "0"], work,
             env={"DURO_WEBHOOK_SECRETS_FILE": str(secret_file)})
    try:
        port = int(p.wait_for(r"listening on port (\d+)").group(1))
        out["http_ceiling"] = run_server_sweep("http_ceiling", p,
                                               f"http://127.0.0.1:{port}/webhooks/duro", a, pool,
                                               broker_pid)
    finally:
        p.stop()
    ceiling_tail = p.text().strip().splitlines()[-1]
    out["http_ceiling"]["final"] = json.loads(ceiling_tail) if ceiling_tail.startswith("{") else None

    # (3) duro-bridge
    p, port, admin = start_bridge(a, work, "duro-bridge", a.bin_dir, topics["bridge"],
                                  secret_file)
    try:
        out["bridge"] = run_server_sweep("duro-bridge", p, f"http://127.0.0.1:{port}/webhooks/duro",
                                         a, pool, broker_pid,
                                         metrics_url=f"http://127.0.0.1:{admin}/metrics")
        out["bridge"]["metrics"] = {
            k: metric(http_get(f"http://127.0.0.1:{admin}/metrics")[1], k)
            for k in ("duro_bridge_producer_errors_total", "duro_bridge_late_delivery_reports_total")}
    finally:
        out.setdefault("bridge", {})["exit_code"] = p.stop(60)
    out["bridge"]["records_on_topic"] = sum(end_offsets(a.bootstrap, topics["bridge"]).values())

    # (4) Node.js reference
    p = Proc("node-ref", ["node", str(BENCH / "node-ref" / "server.js")], work,
             env={"KAFKA_BOOTSTRAP_SERVERS": a.bootstrap, "DURO_RAW_TOPIC": topics["node"],
                  "DURO_WEBHOOK_SECRETS_FILE": str(secret_file), "PORT": "0"},
             cwd=BENCH / "node-ref")
    try:
        port = int(p.wait_for(r"listening on port (\d+)", timeout=60).group(1))
        out["node"] = run_server_sweep("node-ref", p, f"http://127.0.0.1:{port}/webhooks/duro",
                                       a, pool, broker_pid)
    finally:
        p.stop()
    out["node"]["records_on_topic"] = sum(end_offsets(a.bootstrap, topics["node"]).values())
    return out


# ---------------------------------------------------------------- enricher

class EventMaker:
    """Raw events as duro-bridge writes them, in Duro's event mix, over the double's library:
    a fraction `repeat` of the events names a resource that one of the recent events of its
    kind named (bursts of updates to one item), the others a resource not named before."""

    def __init__(self, seed: int, repeat: float, components: int, change_orders: int):
        self.rng = random.Random(seed)
        self.repeat = repeat
        self.lib = {"comp": components, "co": change_orders}
        self.next = {"comp": 0, "co": 0}
        self.recent = {"comp": collections.deque(maxlen=200), "co": collections.deque(maxlen=200)}
        self.names, self.weights = list(DEFAULT_MIX), list(DEFAULT_MIX.values())

    def _rid(self, kind: str) -> str:
        if self.recent[kind] and self.rng.random() < self.repeat:
            return self.rng.choice(self.recent[kind])
        self.next[kind] = self.next[kind] % self.lib[kind] + 1
        rid = f"{kind}_{self.next[kind]:06d}"
        self.recent[kind].append(rid)
        return rid

    def make(self) -> tuple[str, str, bytes, str]:
        name = self.rng.choices(self.names, self.weights)[0]
        kind = "co" if name.startswith("CO_") else "comp"
        rid = self._rid(kind)
        eid = f"evt_{uuid.uuid4().hex}"  # unique across runs, too
        now = dt.datetime.now(dt.timezone.utc)
        data = {"change_order_id": rid} if kind == "co" else {"item_id": rid}
        if name == "CO_RESOLUTION":
            data["resolution"] = "approved"
        body = json.dumps({"id": eid, "webhook_id": "webhook_bench", "event": name,
                           "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.") +
                           f"{now.microsecond // 1000:03d}Z", "data": data},
                          separators=(",", ":")).encode()
        return rid, name, body, eid

    @staticmethod
    def headers(name: str, eid: str, body: bytes) -> list:
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        now = dt.datetime.now(dt.timezone.utc)
        return [("duro-event", name.encode()), ("duro-event-id", eid.encode()),
                ("duro-webhook-id", b"webhook_bench"), ("duro-signature", sig.encode()),
                ("received-at", (now.strftime("%Y-%m-%dT%H:%M:%S.") +
                                 f"{now.microsecond // 1000:03d}Z").encode()),
                ("content-type", b"application/json")]


def new_producer(bootstrap: str, linger_ms: int) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": linger_ms, "partitioner": "murmur2_random",
                     "queue.buffering.max.messages": 200000})


def preload(bootstrap: str, topic: str, maker: EventMaker, n: int) -> dict:
    prod = new_producer(bootstrap, 20)
    failed = []
    t0 = time.monotonic()
    for _ in range(n):
        rid, name, body, eid = maker.make()
        while True:
            try:
                prod.produce(topic, key=rid.encode(), value=body,
                             headers=EventMaker.headers(name, eid, body),
                             on_delivery=lambda err, _m: err and failed.append(err))
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)
    left = prod.flush(120)
    secs = time.monotonic() - t0
    if left or failed:
        raise RuntimeError(f"preload: {left} undelivered, {len(failed)} failed: {failed[:3]}")
    return {"events": n, "seconds": round(secs, 2), "events_per_s": round(n / secs)}


class CommittedWatch:
    """The group's committed offsets on the raw topic, asked through one consumer for the
    whole drain (a new consumer per question would load the broker being measured)."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        self.tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "enable.auto.commit": False})

    def sum(self) -> int:
        return sum(max(tp.offset, 0) for tp in self.c.committed(self.tps, timeout=10))

    def close(self):
        self.c.close()


def start_double(a, work: Path, components: int, change_orders: int,
                 name: str = "duro-double") -> tuple[Proc, int]:
    keyf = work / "api-key"
    keyf.write_text(API_KEY + "\n")
    p = Proc(name, [sys.executable, "-m", "duro_double", "serve", "--port", "0",
                             "--api-key-file", str(keyf), "--seed", "1",
                             "--components", str(components), "--change-orders",
                             str(change_orders), "--latency-ms", str(a.double_latency_ms)],
             work, env={"PYTHONPATH": str(ROOT / "tests")})
    port = int(p.wait_for(r"listening on http://127\.0\.0\.1:(\d+)/graphql", timeout=120).group(1))
    return p, port


def double_stats(port: int, reset: bool = False) -> dict:
    st = json.loads(http_get(f"http://127.0.0.1:{port}/_stats")[1])
    if reset:
        http_post_json(f"http://127.0.0.1:{port}/_reset", {})
    return {"requests_total": st["requests_total"], "ids_total": st["ids_total"],
            "requests_by_status": st["requests_by_status"],
            "lookup_requests": st.get("lookup_requests"),
            "list_requests": st.get("list_requests"),
            "list_ids_returned": st.get("list_ids_returned")}


def output_topics(prefix: str) -> list[str]:
    return [prefix + n.lower() for n in DEFAULT_MIX]


def run_enricher(a, work: Path, variant: str, raw: str, double_port: int, n_events: int,
                 extra_env: dict, moderate: EventMaker | None, pids: dict,
                 bin_dir: Path | None = None) -> dict:
    """duro-enricher (of bin_dir, default a.bin_dir) draining raw until its group's committed
    offsets reach the topic's end (then the moderate load, given a maker)."""
    prefix = f"bench.{variant}."
    create_topics(a.bootstrap, output_topics(prefix) + [prefix + "dlq"])
    admin_port = free_port()
    group = f"bench-enricher-{variant}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": a.bootstrap, "DURO_RAW_TOPIC": raw,
           "DURO_DLQ_TOPIC": prefix + "dlq", "DURO_TOPIC_TEMPLATE": prefix + "{event}",
           "DURO_ENRICHER_GROUP": group, "DURO_TRANSACTIONAL_ID": group + "-tx",
           "DURO_ENRICHER_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
           "DURO_API_URL": f"http://127.0.0.1:{double_port}/graphql",
           "DURO_API_KEY_FILE": str(work / "api-key"), "DURO_LOG_LEVEL": "info",
           **state_env(a.bootstrap, prefix), **extra_env}
    raw_end = sum(end_offsets(a.bootstrap, raw).values())
    double_stats(double_port, reset=True)
    cpu0 = {k: cpu_ticks(v) for k, v in pids.items()}
    t0 = time.monotonic()
    p = Proc(f"duro-enricher-{variant}", [str((bin_dir or a.bin_dir) / "duro-enricher")], work,
             env=env)
    res: dict = {"variant": variant, "env": extra_env, "events": raw_end}
    watch = CommittedWatch(a.bootstrap, group, raw)
    try:
        deadline = t0 + a.drain_timeout
        done = 0
        timeline = []  # (seconds since start, committed) at each change
        while True:
            if p.p.poll() is not None:
                raise RuntimeError(f"duro-enricher exited ({p.p.returncode}): "
                                   f"{p.text('err')[-2000:]}")
            done = watch.sum()
            if not timeline or timeline[-1][1] != done:
                timeline.append((round(time.monotonic() - t0, 2), done))
            if done >= raw_end:
                break
            if time.monotonic() > deadline:
                log(f"enricher {variant}: drain not finished within {a.drain_timeout}s "
                    f"({done}/{raw_end})")
                res["timed_out"] = True
                break
            time.sleep(0.1)
        secs = time.monotonic() - t0
        cpu = {k: cpu_ticks(v) for k, v in dict(pids, enricher=p.pid).items()}
        cpu0["enricher"] = 0
        res["cpu_pct"] = {k: round(100.0 * (cpu[k] - cpu0[k]) / CLK_TCK / secs)
                          for k in cpu if cpu[k] is not None and cpu0.get(k) is not None}
        st = double_stats(double_port)
        mtext = http_get(f"http://127.0.0.1:{admin_port}/metrics")[1]
        res.update({"committed": done, "seconds": round(secs, 2), "timeline": timeline,
                    "events_per_s": done / secs, "graphql_requests": st["requests_total"],
                    "ids_pulled": st["ids_total"], "ids_per_s": st["ids_total"] / secs,
                    "requests_per_event": st["requests_total"] / max(done, 1),
                    "double_statuses": st["requests_by_status"],
                    "vm_hwm_kib_drain": p.status("VmHWM"),
                    "dedupe_set_size": metric(mtext, "duro_enricher_dedupe_set_size"),
                    "produced": metric(mtext, "duro_enricher_produced_total"),
                    "dlq": metric(mtext, "duro_enricher_dlq_total"),
                    "deduplicated": metric(mtext, "duro_enricher_deduplicated_total"),
                    "transactions": metric(mtext, "duro_enricher_transactions_committed_total"),
                    "state_records": labelled(mtext, "duro_enricher_state_records_total"),
                    "aborted": metric(mtext, "duro_enricher_transactions_aborted_total")})
        log(f"enricher {variant}: {done} events in {secs:.1f}s = {done / secs:.0f} events/s, "
            f"{res['requests_per_event']:.4f} GraphQL requests/event, VmHWM "
            f"{res['vm_hwm_kib_drain']} KiB, CPU % {res['cpu_pct']}")
        if moderate is not None:
            res["moderate"] = moderate_phase(a, raw, prefix, moderate,
                                             f"http://127.0.0.1:{admin_port}/metrics")
            res["vm_hwm_kib"] = p.status("VmHWM")
    finally:
        watch.close()
        res["exit_code"] = p.stop(60)
    res.setdefault("vm_hwm_kib", res.get("vm_hwm_kib_drain"))
    return res


def hist_buckets(text: str, name: str) -> dict[float, float]:
    out = {}
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M):
        out[float(m.group(1))] = float(m.group(2))
    return out


def hist_quantile(b0: dict, b1: dict, q: float) -> float | None:
    """Upper bound (seconds) of the bucket holding quantile q of the samples between two
    scrapes of a cumulative Prometheus histogram."""
    les = sorted(b1)
    d = [b1[le] - b0.get(le, 0) for le in les]
    if not d or d[-1] <= 0:
        return None
    for le, c in zip(les, d):
        if c >= q * d[-1]:
            return le
    return None


def moderate_phase(a, raw: str, prefix: str, maker: EventMaker, metrics_url: str) -> dict:
    """Events at a fixed rate into the raw topic; a read_committed consumer of the output
    topics notes when each event's output becomes visible."""
    topics = output_topics(prefix) + [prefix + "dlq"]
    starts = []
    for t in topics:
        for p, off in end_offsets(a.bootstrap, t).items():
            starts.append(TopicPartition(t, p, off))
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()
    total = int(a.moderate_rate * a.moderate_seconds)

    def consume():
        # fetch.wait.max.ms low: the time measured is when the output became visible,
        # not when a long-polling consumer happened to ask again
        c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "bench-latency",
                      "enable.auto.commit": False, "isolation.level": "read_committed",
                      "fetch.wait.max.ms": 10})
        c.assign(starts)
        try:
            while not stop.is_set():
                for m in c.consume(500, 0.1):
                    if m.error():
                        continue
                    now = time.time()
                    key = dict(m.headers() or []).get("idempotency-key") or \
                        dict(m.headers() or []).get("duro-event-id")
                    if key:
                        with lock:
                            seen.setdefault(key.decode(), now)
        finally:
            c.close()

    hname = "duro_enricher_event_latency_seconds"
    h0 = hist_buckets(http_get(metrics_url)[1], hname)
    th = threading.Thread(target=consume, daemon=True)
    th.start()
    time.sleep(2)  # the consumer's fetchers are up
    prod = new_producer(a.bootstrap, 0)
    # the producer's own start (connection, metadata, producer id) before the clock runs:
    # one record to a side topic, delivered
    warm = prefix + "moderate-warmup"
    create_topics(a.bootstrap, [warm])
    prod.produce(warm, value=b"warm-up")
    if prod.flush(30) != 0:
        raise RuntimeError("moderate load: the producer's warm-up record was not delivered")
    t0 = time.monotonic()
    for i in range(total):
        target = t0 + i / a.moderate_rate
        d = target - time.monotonic()
        if d > 0:
            time.sleep(d)
        rid, name, body, eid = maker.make()
        with lock:
            sent[eid] = time.time()
        prod.produce(raw, key=rid.encode(), value=body, headers=EventMaker.headers(name, eid, body))
        prod.poll(0)
    prod.flush(60)
    send_secs = time.monotonic() - t0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if all(e in seen for e in sent):
                break
        time.sleep(0.1)
    stop.set()
    th.join(30)
    h1 = hist_buckets(http_get(metrics_url)[1], hname)
    with lock:
        t_first = min(sent.values()) if sent else 0
        series = sorted((round(sent[e] - t_first, 3), round(seen[e] - sent[e], 3))
                        for e in sent if e in seen)
        lat = sorted(x[1] for x in series)
        missing = sum(1 for e in sent if e not in seen)

    def q(x):
        return round(1000 * lat[min(len(lat) - 1, int(x * len(lat)))], 1) if lat else None
    res = {"rate": a.moderate_rate, "seconds": round(send_secs, 1), "events": total,
           "seen": len(lat), "missing": missing, "p50_ms": q(0.50), "p90_ms": q(0.90),
           "p99_ms": q(0.99), "max_ms": round(1000 * lat[-1], 1) if lat else None,
           # the enricher's own view: raw record timestamp -> transaction committed
           "enricher_p50_le_s": hist_quantile(h0, h1, 0.50),
           "enricher_p99_le_s": hist_quantile(h0, h1, 0.99),
           "series": series}
    log(f"moderate load {a.moderate_rate}/s: p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, "
        f"missing {missing}; enricher's histogram p50 <= {res['enricher_p50_le_s']} s, "
        f"p99 <= {res['enricher_p99_le_s']} s")
    return res


# (name, label, environment, with the moderate-load phase)
ENRICHER_VARIANTS = [
    ("default", "duro-enricher, default settings (DURO_GRAPHQL_RATE=20, DURO_BATCH_MAX=500, "
     "DURO_GRAPHQL_CONCURRENCY=4)", {}, True),
    ("norate", "duro-enricher, DURO_GRAPHQL_RATE=0 (no request-rate limit)",
     {"DURO_GRAPHQL_RATE": "0"}, False),
    ("saturation", "duro-enricher set for throughput: DURO_GRAPHQL_RATE=0, DURO_BATCH_MAX=2000, "
     "DURO_GRAPHQL_CONCURRENCY=8",
     {"DURO_GRAPHQL_RATE": "0", "DURO_BATCH_MAX": "2000", "DURO_GRAPHQL_CONCURRENCY": "8"},
     False),
    ("saturation-serial", "the same with DURO_PULL_AHEAD=false (one batch after the other)",
     {"DURO_GRAPHQL_RATE": "0", "DURO_BATCH_MAX": "2000", "DURO_GRAPHQL_CONCURRENCY": "8",
      "DURO_PULL_AHEAD": "false"}, False),
]


def naive_run(a, work: Path, raw: str, port: int) -> dict:
    double_stats(port, reset=True)
    create_topics(a.bootstrap, output_topics("bench.naive."))
    r = subprocess.run([sys.executable, str(BENCH / "naive_enricher.py"), "--bootstrap",
                        a.bootstrap, "--topic", raw, "--api-url",
                        f"http://127.0.0.1:{port}/graphql", "--api-key-file",
                        str(work / "api-key"), "--out-prefix", "bench.naive.",
                        "--max-seconds", f"{a.naive_seconds:g}", "--max-events",
                        str(a.enricher_n)], capture_output=True, text=True,
                       timeout=a.naive_seconds + 120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "tests")))
    if r.returncode != 0:
        raise RuntimeError(f"naive_enricher failed: {r.stderr[-1500:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["double"] = double_stats(port)
    log(f"naive enricher: {res['events_per_s']} events/s")
    return res


def enricher_library(a) -> tuple[int, int, float]:
    """The double's library for the enricher section: (components, change orders, the
    ITEM_* share of the mix)."""
    total = a.enricher_n + int(a.moderate_rate * a.moderate_seconds)
    # resources named: (1 - repeat) of the events; ITEM_* / CO_* shares from the mix
    item_share = sum(w for n, w in DEFAULT_MIX.items() if n.startswith("ITEM_")) / \
        sum(DEFAULT_MIX.values())
    comps = max(1000, int(total * (1 - a.repeat) * item_share * 1.1) + 200)
    cos = max(200, int(total * (1 - a.repeat) * (1 - item_share) * 1.1) + 200)
    return comps, cos, item_share


def double_capacity(a, port: int, comps: int, cos: int, item_share: float) -> tuple[dict, list]:
    """The double's capacity alone: 100-id requests, its fixed latency, the same mix of
    component and change-order requests as the enricher sends; 4 and 8 clients (the
    enricher's default concurrency and twice that), the better one is its capacity."""
    caps = []
    for clients in (4, 8):
        c = double_bench.run(port, clients, 100, a.capacity_seconds, min(comps, 2000),
                             min(cos, 2000), 1 - item_share)
        caps.append(c)
        log(f"double capacity, {clients} clients: {c['ids_per_s']} ids/s "
            f"({c['requests_per_s']} requests/s, p50 {c['latency_ms_p50']} ms, "
            f"errors {c['errors']})")
    return max(caps, key=lambda c: c["ids_per_s"]), caps


def bench_enricher(a, work: Path, broker_pid: int | None) -> dict:
    comps, cos, item_share = enricher_library(a)
    out: dict = {"events": a.enricher_n, "repeat": a.repeat, "latency_ms": a.double_latency_ms,
                 "library": {"components": comps, "change_orders": cos}, "variants": {}}
    double, port = start_double(a, work, comps, cos)
    try:
        cap, caps = double_capacity(a, port, comps, cos, item_share)
        out["double_capacity"] = cap
        out["double_capacity_all"] = caps
        if not a.quick:
            # warm-up, not reported: a fresh broker spends its first seconds of
            # transactions compiling (JIT); measured drains should not pay for that
            raw = "bench.warmup.raw"
            create_topics(a.bootstrap, [raw])
            n = min(40000, a.enricher_n)
            preload(a.bootstrap, raw, EventMaker(11, a.repeat, comps, cos), n)
            w = run_enricher(a, work, "warmup", raw, port, n,
                             {"DURO_GRAPHQL_RATE": "0", "DURO_BATCH_MAX": "2000"}, None,
                             {"broker": broker_pid, "double": double.pid})
            out["warmup"] = {k: w.get(k) for k in ("events", "seconds", "events_per_s")}
        for name, label, env, moderate in (a.variants or ENRICHER_VARIANTS):
            # each variant: its own raw topic holding the same preload (same seed), its own
            # group, output topics and DLQ
            raw = f"bench.{name}.raw"
            create_topics(a.bootstrap, [raw])
            maker = EventMaker(7, a.repeat, comps, cos)
            pre = preload(a.bootstrap, raw, maker, a.enricher_n)
            log(f"preloaded {a.enricher_n} events into {raw} ({pre['events_per_s']}/s)")
            if name == "default" and not a.no_naive:
                # the naive enricher on the same preload, for a bounded time
                out["naive"] = naive_run(a, work, raw, port)
            r = run_enricher(a, work, name, raw, port, a.enricher_n, env,
                             maker if moderate else None,
                             {"broker": broker_pid, "double": double.pid})
            r["label"], r["preload"] = label, pre
            out["variants"][name] = r
    finally:
        double.stop()
    return out


# ---------------------------------------------------------------- a setting on / off

STATE_SETUP = ("the throughput set-up: DURO_GRAPHQL_RATE=0, DURO_BATCH_MAX=2000, "
               "DURO_GRAPHQL_CONCURRENCY=8",
               {"DURO_GRAPHQL_RATE": "0", "DURO_BATCH_MAX": "2000",
                "DURO_GRAPHQL_CONCURRENCY": "8"})
# the wire section: the same set-up, state topics on (the default, said outright) so that
# state records carry the headers too
WIRE_SETUP = (STATE_SETUP[0] + ", DURO_STATE_TOPICS=true",
              dict(STATE_SETUP[1], DURO_STATE_TOPICS="true"))


def topic_log_bytes(a, prefix: str) -> int | None:
    """Bytes of the broker's log segments (*.log files in its data folder, KAFKA_WORK/data
    next to the pid file) of the topics named prefix...: what the records, headers
    included, take on the broker. None without a pid file."""
    if not a.kafka_pid_file:
        return None
    data = Path(a.kafka_pid_file).parent / "data"
    if not data.is_dir():
        return None
    total = 0
    for d in data.iterdir():
        if not d.name.startswith(prefix):
            continue
        for f in d.glob("*.log"):
            try:
                total += f.stat().st_size
            except FileNotFoundError:  # a segment deleted meanwhile (compaction)
                pass
    return total


def bench_onoff(a, work: Path, broker_pid: int | None, section: str, var: str, flag: str,
                what: str, setup: tuple[str, dict], pairs: int,
                values: tuple[str, str] = ("true", "false"),
                log_bytes: bool = False) -> dict:
    """duro-enricher's events/s with var=values[0] ("on") and =values[1] ("off") on the
    same raw topic (one preload; each drain in a group of its own, so each reads all of it),
    alternated on, off, on, off, ... (pairs of them) so that a drift of the shared machine
    weighs on both; the ratio is of the medians. Each run's dict has flag: True when on;
    the drains are named section-on-1, section-off-1, ...; log_bytes adds each drain's
    bytes on the broker (its output, DLQ, state and progress topics)."""
    item_share = sum(w for n, w in DEFAULT_MIX.items() if n.startswith("ITEM_")) / \
        sum(DEFAULT_MIX.values())
    comps = max(1000, int(a.enricher_n * (1 - a.repeat) * item_share * 1.1) + 200)
    cos = max(200, int(a.enricher_n * (1 - a.repeat) * (1 - item_share) * 1.1) + 200)
    label, env = setup
    out: dict = {"events": a.enricher_n, "repeat": a.repeat, "latency_ms": a.double_latency_ms,
                 "pairs": pairs, "setup": label, "runs": []}
    double, port = start_double(a, work, comps, cos)
    pids = {"broker": broker_pid, "double": double.pid}
    try:
        raw = f"bench.{section}.raw"
        create_topics(a.bootstrap, [raw])
        out["preload"] = preload(a.bootstrap, raw, EventMaker(7, a.repeat, comps, cos),
                                 a.enricher_n)
        log(f"{section}: preloaded {a.enricher_n} events into {raw}")
        if not a.quick:
            # warm-up, not reported (a fresh broker's first transactions are slow: JIT)
            w = run_enricher(a, work, f"{section}-warmup", raw, port, a.enricher_n,
                             dict(env, **{var: values[0]}), None, pids)
            out["warmup"] = {k: w.get(k) for k in ("events", "seconds", "events_per_s")}
        for i in range(pairs):
            for on in (True, False):
                variant = f"{section}-{'on' if on else 'off'}-{i + 1}"
                r = run_enricher(a, work, variant, raw, port, a.enricher_n,
                                 dict(env, **{var: values[0] if on else values[1]}),
                                 None, pids)
                r[flag] = on
                if log_bytes:
                    r["log_bytes"] = topic_log_bytes(a, f"bench.{variant}.")
                    if r["log_bytes"] is not None:
                        log(f"enricher {variant}: {r['log_bytes']} bytes of log segments "
                            f"({r['log_bytes'] / max(r['committed'], 1):.0f} per event)")
                out["runs"].append(r)
    finally:
        double.stop()
    on_eps = [r["events_per_s"] for r in out["runs"] if r[flag]]
    off_eps = [r["events_per_s"] for r in out["runs"] if not r[flag]]
    out["on_events_per_s"], out["off_events_per_s"] = median(on_eps), median(off_eps)
    out["ratio"] = (out["on_events_per_s"] / out["off_events_per_s"]
                    if out["off_events_per_s"] else None)
    log(f"{what} on ÷ off: {out['on_events_per_s']:.0f} ÷ {out['off_events_per_s']:.0f} "
        f"events/s = {out['ratio']:.3f}")
    return out


def bench_state(a, work: Path, broker_pid: int | None) -> dict:
    """DURO_STATE_TOPICS=true ÷ false (--state-repeat pairs)."""
    return bench_onoff(a, work, broker_pid, "state", "DURO_STATE_TOPICS", "state_topics",
                       "state topics", STATE_SETUP, a.state_repeat)


def bench_wire(a, work: Path, broker_pid: int | None) -> dict:
    """DURO_CLOUDEVENTS=true ÷ false (--wire-repeat pairs): the ce_* headers on every
    output, state and DLQ record; the trace headers are written either way."""
    return bench_onoff(a, work, broker_pid, "wire", "DURO_CLOUDEVENTS", "cloudevents",
                       "CloudEvents headers", WIRE_SETUP, a.wire_repeat, log_bytes=True)


# ---------------------------------------------------------------- librdkafka versions

# scripts/bench.sh --rdkafka both: a second release build against the current librdkafka
# (scripts/rdkafka.sh); its duro-bridge, duro-enricher and kafka_ceiling come in through
# --bin-dir-current / --bench-bin-dir-current. "system" is the usual build.
RDK_BUILDS = ("system", "current")


def rdk_builds(a) -> dict[str, dict[str, Path]]:
    return {"system": {"bin_dir": a.bin_dir, "bench_bin_dir": a.bench_bin_dir},
            "current": {"bin_dir": a.bin_dir_current, "bench_bin_dir": a.bench_bin_dir_current}}


def rdk_order(rnd: int, i: int) -> tuple[str, str]:
    """Which build runs first at step i of round rnd: swapped from one step to the next and,
    for each step, from one round to the next, so that a drift of the shared machine (or
    going first) weighs on both alike."""
    return RDK_BUILDS if (rnd + i) % 2 == 0 else RDK_BUILDS[::-1]


def rdkafka_version_of(binary: Path) -> str:
    """The librdkafka a program runs on, from its --version ("... (librdkafka X)")."""
    r = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20)
    m = re.search(r"\(librdkafka ([^)]+)\)", r.stdout)
    if not m:
        raise RuntimeError(f"{binary} --version named no librdkafka ({r.returncode}): "
                           f"{(r.stdout + r.stderr)[-500:]}")
    return m.group(1)


def rdk_versions(a, program: str) -> dict[str, str]:
    vers = {b: rdkafka_version_of(d["bin_dir"] / program) for b, d in rdk_builds(a).items()}
    if vers["system"] == vers["current"]:
        raise RuntimeError(f"both builds' {program} run on librdkafka {vers['system']}: "
                           f"nothing to compare")
    return vers


def machine_busy_ticks() -> int | None:
    """CPU time the machine spent in processes so far (/proc/stat: user + nice + system,
    guest time being part of user; interrupts and steal left out), in clock ticks."""
    try:
        f = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(f[1]) + int(f[2]) + int(f[3])
    except (OSError, IndexError, ValueError):
        return None


class OthersCpu:
    """The CPU that processes not of this benchmark took between start and stop: the
    machine's (machine_busy_ticks) less this process's, its reaped children's (wrk,
    kafka_ceiling, programs stopped meanwhile) and the given processes' that run throughout
    (the broker, servers). An estimate: the kernel's work for our loopback traffic done in
    no process's time lands in neither."""

    def __init__(self, pids: list[int | None]):
        self.pids = [p for p in pids if p]
        self.t0, self.m0, self.o0 = time.monotonic(), machine_busy_ticks(), self._ours()

    def _ours(self) -> float | None:
        t = os.times()
        s = t.user + t.system + t.children_user + t.children_system
        for pid in self.pids:
            c = cpu_ticks(pid)
            if c is None:
                return None
            s += c / CLK_TCK
        return s

    def stop(self) -> float | None:
        """Others' CPU % over the interval (100 = one CPU's worth)."""
        wall = time.monotonic() - self.t0
        m1, o1 = machine_busy_ticks(), self._ours()
        if None in (m1, self.m0, o1, self.o0) or wall <= 0:
            return None
        return round(max(0.0, 100.0 * ((m1 - self.m0) / CLK_TCK - (o1 - self.o0)) / wall), 1)


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_ingress_versions(a, work: Path, broker_pid: int | None) -> dict:
    """The ingress section's librdkafka-dependent parts once per build, interleaved: each
    build's Kafka ceiling (unbounded, then c in flight), then duro-bridge of both builds,
    running side by side, each connection count on one build and then the other."""
    builds = rdk_builds(a)
    vers = rdk_versions(a, "duro-bridge")
    secret_file, pool = ingress_pool(a, work)
    topics = {b: f"bench.raw.rdk-bridge-{b}" for b in RDK_BUILDS}
    ktopics = {b: f"bench.raw.rdk-kafka-{b}" for b in RDK_BUILDS}
    create_topics(a.bootstrap, list(topics.values()) + list(ktopics.values()))
    out: dict = {"versions": vers, "conns": a.conns, "seconds": a.seconds,
                 "rounds": a.rdkafka_repeat, "pool_n": a.pool_n, "wrk_threads": a.wrk_threads,
                 "pool_body_bytes": pool_body_bytes(pool), "kafka_runs": [],
                 "bridge_runs": [], "bridges": {b: {} for b in RDK_BUILDS},
                 "load_avg_start": load_avg()}
    section = OthersCpu([broker_pid])
    for r in range(a.rdkafka_repeat):
        for i, inflight in enumerate([0] + a.conns):
            for b in rdk_order(r, i):
                m = OthersCpu([broker_pid])
                res = kafka_ceiling_run(a, builds[b]["bench_bin_dir"], ktopics[b], pool, inflight,
                                        f"kafka_ceiling ({res_v(vers, b)})")
                res.update(build=b, round=r + 1, inflight=inflight, others_cpu_pct=m.stop())
                out["kafka_runs"].append(res)
    procs: dict = {}
    try:
        for b in RDK_BUILDS:
            procs[b] = start_bridge(a, work, f"duro-bridge-{b}", builds[b]["bin_dir"], topics[b],
                                    secret_file)
        url = {b: f"http://127.0.0.1:{procs[b][1]}/webhooks/duro" for b in RDK_BUILDS}
        murl = {b: f"http://127.0.0.1:{procs[b][2]}/metrics" for b in RDK_BUILDS}
        for b in RDK_BUILDS:
            warm_up_server(url[b], a, pool)
        live = [broker_pid] + [procs[b][0].pid for b in RDK_BUILDS]
        for r in range(a.rdkafka_repeat):
            for i, c in enumerate(a.conns):
                for b in rdk_order(r, i):
                    m = OthersCpu(live)
                    res = server_run(f"duro-bridge ({res_v(vers, b)})", procs[b][0], url[b], a,
                                     pool, broker_pid, c, murl[b])
                    res.update(build=b, round=r + 1, conns=c, others_cpu_pct=m.stop())
                    out["bridge_runs"].append(res)
        for b in RDK_BUILDS:
            text = http_get(murl[b])[1]
            out["bridges"][b].update({
                "vm_hwm_kib": procs[b][0].status("VmHWM"),
                "metrics": {k: metric(text, k) for k in ("duro_bridge_producer_errors_total",
                                                         "duro_bridge_late_delivery_reports_total")}})
    finally:
        for b, (p, _, _) in procs.items():
            out["bridges"][b]["exit_code"] = p.stop(60)
    for b in RDK_BUILDS:
        out["bridges"][b]["records_on_topic"] = sum(end_offsets(a.bootstrap, topics[b]).values())
    out["kafka_versions"] = {b: sorted({k.get("librdkafka") for k in out["kafka_runs"]
                                        if k["build"] == b}) for b in RDK_BUILDS}
    out["others_cpu_pct"] = section.stop()
    out["load_avg_end"] = load_avg()
    return out


def res_v(vers: dict, b: str) -> str:
    return f"librdkafka {vers[b]}"


def bench_enricher_versions(a, work: Path, broker_pid: int | None) -> dict:
    """The enricher section's duro-enricher drains once per build (per round): each set-up
    of the section drained by one build and then the other, each drain on its own copy of
    the preload (same maker and seed), the order swapped as rdk_order says. The double's
    capacity is measured once; the naive enricher does not depend on the build and is left
    out."""
    builds = rdk_builds(a)
    vers = rdk_versions(a, "duro-enricher")
    comps, cos, item_share = enricher_library(a)
    variants = a.variants or ENRICHER_VARIANTS
    out: dict = {"versions": vers, "events": a.enricher_n, "repeat": a.repeat,
                 "latency_ms": a.double_latency_ms, "rounds": a.rdkafka_repeat,
                 "capacity_seconds": a.capacity_seconds, "moderate_rate": a.moderate_rate,
                 "moderate_seconds": a.moderate_seconds,
                 "library": {"components": comps, "change_orders": cos},
                 "setups": {name: label for name, label, _, _ in variants},
                 "moderate_setups": [name for name, _, _, mod in variants if mod],
                 "runs": [], "load_avg_start": load_avg()}
    section = OthersCpu([broker_pid])
    double, port = start_double(a, work, comps, cos, name="duro-double-rdk")
    pids = {"broker": broker_pid, "double": double.pid}
    try:
        out["double_capacity"], out["double_capacity_all"] = double_capacity(
            a, port, comps, cos, item_share)
        if not a.quick:
            # warm-up, not reported (a fresh broker's first transactions are slow: JIT),
            # each build on the same preload, in groups of their own
            raw = "bench.rdk-warmup.raw"
            create_topics(a.bootstrap, [raw])
            n = min(40000, a.enricher_n)
            preload(a.bootstrap, raw, EventMaker(11, a.repeat, comps, cos), n)
            out["warmup"] = {}
            for b in RDK_BUILDS:
                w = run_enricher(a, work, f"rdk-warmup-{b}", raw, port, n,
                                 {"DURO_GRAPHQL_RATE": "0", "DURO_BATCH_MAX": "2000"}, None,
                                 pids, bin_dir=builds[b]["bin_dir"])
                out["warmup"][b] = {k: w.get(k) for k in ("events", "seconds", "events_per_s")}
        for r in range(a.rdkafka_repeat):
            for i, (name, _label, env, moderate) in enumerate(variants):
                for b in rdk_order(r, i):
                    variant = f"rdk-{b}-{name}-{r + 1}"
                    raw = f"bench.{variant}.raw"
                    create_topics(a.bootstrap, [raw])
                    maker = EventMaker(7, a.repeat, comps, cos)
                    pre = preload(a.bootstrap, raw, maker, a.enricher_n)
                    log(f"preloaded {a.enricher_n} events into {raw} ({pre['events_per_s']}/s); "
                        f"{name} on {res_v(vers, b)}")
                    m = OthersCpu([broker_pid, double.pid])
                    res = run_enricher(a, work, variant, raw, port, a.enricher_n, env,
                                       maker if moderate else None, pids,
                                       bin_dir=builds[b]["bin_dir"])
                    res.update(build=b, round=r + 1, setup=name, preload=pre,
                               others_cpu_pct=m.stop())
                    res.get("moderate", {}).pop("series", None)  # 1 pair per event: too long
                    out["runs"].append(res)
    finally:
        double.stop()
    out["others_cpu_pct"] = section.stop()
    out["load_avg_end"] = load_avg()
    return out


# ---------------------------------------------------------------- dedupe rebuild

REBUILD_PARTITIONS = 2
READY_RX = re.compile(r"^dedupe set of (\S+) \[(\d+)\] (kept|empty|rebuilt)")
REBUILT_RX = re.compile(r"rebuilt from offsets (\d+)\.\.(\d+): (\d+) keys, (\d+) records read "
                        r"in (\d+) ms")


def rawpart(a, *args: str, timeout: float = 900) -> dict:
    """tests/bench/rawpart fill|read ...: its one JSON line."""
    argv = [str(a.bench_bin_dir / "rawpart"), args[0], "--bootstrap", a.bootstrap, *args[1:]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"rawpart {args[0]} failed ({r.returncode}): {r.stderr[-1500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def log_records(p: Proc) -> list[dict]:
    """A program's JSON log lines (stderr), each with "t": its ts in epoch seconds."""
    out = []
    for line in p.text("err").splitlines():
        if not line.startswith("{"):
            continue
        try:
            r = json.loads(line)
            r["t"] = dt.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=dt.timezone.utc).timestamp()
        except (ValueError, KeyError):
            continue
        out.append(r)
    return out


def wait_logs(procs: list[Proc], done, timeout: float, what: str):
    """Polls the log lines of procs until done(list of each one's lines) returns something
    true, and returns it; fails when one of them exits or after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = done([log_records(p) for p in procs])
        if got:
            return got
        for p in procs:
            if p.p.poll() is not None:
                raise RuntimeError(f"{p.name} exited ({p.p.returncode}) before {what}: "
                                   f"{p.text('err')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout:g}s: " +
                               " | ".join(f"{p.name}: {p.text('err')[-800:]}" for p in procs))
        time.sleep(0.05)


def ready_lines(lines: list[dict], topic: str,
                after: float = 0.0) -> list[tuple[int, str, dict]]:
    """(partition, kept|empty|rebuilt, line) of each "dedupe set of <topic> [p] ..." line
    logged at or after `after`, in order."""
    out = []
    for r in lines:
        m = READY_RX.match(r.get("msg", ""))
        if m and m.group(1) == topic and r["t"] >= after:
            out.append((int(m.group(2)), m.group(3), r))
    return out


def labelled(text: str, name: str) -> dict[str, float]:
    """The samples of one Prometheus metric by their (only) label's value."""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(rf'^{name}{{\w+="([^"]*)"}} (\S+)$', text, re.M)}


def commit_window(bootstrap: str, group: str, topic: str,
                  ends: dict[int, tuple[int, int]]) -> None:
    """Commits the group's offsets {partition: (offset, last_ts)} with the metadata an
    enricher writes ('{"last_ts":<ms>}'; the enricher's own has a NUL after it), as if its
    last transaction had processed everything up to there. The group is new, so no member
    is in it."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, off, '{"last_ts":%d}' % ts)
                          for p, (off, ts) in ends.items()], asynchronous=False)
    finally:
        c.close()


def start_rebuild_enricher(a, work: Path, name: str, topic: str,
                           group: str) -> tuple[Proc, int]:
    """One duro-enricher on the rebuild benchmark's group; no GraphQL is needed (nothing
    after the committed offsets). Returns it and its admin port."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": a.bootstrap, "DURO_RAW_TOPIC": topic,
           "DURO_DLQ_TOPIC": "bench.rebuild.dlq", "DURO_TOPIC_TEMPLATE": "bench.rebuild.{event}",
           **state_env(a.bootstrap, "bench.rebuild."),
           "DURO_ENRICHER_GROUP": group, "DURO_TRANSACTIONAL_ID": f"{group}-{name}",
           "DURO_ENRICHER_ADMIN_LISTEN": "127.0.0.1:0",
           "DURO_API_URL": "http://127.0.0.1:1/graphql", "DURO_API_KEY": "bench-not-a-key",
           "DURO_LOG_LEVEL": "info",
           # quick rebalances (the broker of scripts/kafka.sh allows a session this short)
           "DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS": "3000",
           "DURO_RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "500"}
    p = Proc(f"rebuild-{group}-{name}", [str(a.bin_dir / "duro-enricher")], work, env=env)
    port = int(p.wait_for(r"admin on port (\d+)", "err", timeout=60).group(1))
    return p, port


def rebuild_run(a, work: Path, topic: str, n: int, ends: dict, rep: int) -> dict:
    """One run at window n: plain read of partition 0, enricher A rebuilds both partitions,
    plain read again, enricher B joins (one partition stays with A, one moves to B)."""
    group = f"bench-rebuild-{n}-{rep}"
    commit_window(a.bootstrap, group, topic, ends)
    res: dict = {"group": group}
    procs: list[Proc] = []
    try:
        res["plain_before"] = rawpart(a, "read", "--topic", topic, "--partition", "0")
        pa, port_a = start_rebuild_enricher(a, work, "a", topic, group)
        procs.append(pa)
        # A's rebuild: both partitions read, one after the other (a generous bound: 20,000
        # records/s at the least)
        def all_ready(L):
            r = ready_lines(L[0], topic)
            return r if len({x[0] for x in r}) >= REBUILD_PARTITIONS else None
        both = wait_logs([pa], all_ready, 120 + REBUILD_PARTITIONS * n / 20000,
                         "enricher A's rebuild")
        reads = []
        for i, (part, how, line) in enumerate(both[:REBUILD_PARTITIONS]):
            m = REBUILT_RX.search(line["msg"])
            if how != "rebuilt" or not m:
                raise RuntimeError(f"enricher A, partition {part}: {line['msg']}")
            records, ms = int(m.group(4)), int(m.group(5))
            # the partition read first: its own time; the one read second was planned at
            # the same moment, so its own time is from the first one's line to its own
            own_ms = ms if i == 0 else max(1.0, 1000 * (line["t"] - both[0][2]["t"]))
            reads.append({"partition": part, "records": records, "ms": ms, "own_ms": own_ms,
                          "rate": records * 1000 / own_ms})
        res["enricher_reads"] = reads
        r0 = next(r for r in reads if r["partition"] == 0)
        if r0["records"] != n:
            raise RuntimeError(f"enricher A read {r0['records']} records of partition 0, "
                               f"not {n}")
        res["rate"] = r0["rate"]
        # A now idle, both sets complete: the plain read again
        res["plain_after"] = rawpart(a, "read", "--topic", topic, "--partition", "0")
        res["plain"] = max(res["plain_before"]["rate"], res["plain_after"]["rate"])
        res["ratio"] = res["rate"] / res["plain"] if res["plain"] else None

        # B joins: A is revoked, one partition comes back to A, the other goes to B
        pb, port_b = start_rebuild_enricher(a, work, "b", topic, group)
        procs.append(pb)

        def settled(L):
            # B's set ready; the rebalance that gave it its partition began with A's last
            # revocation before that; then A's set of the partition it got back ready
            rb = ready_lines(L[1], topic)
            if not rb:
                return None
            revoked = [r["t"] for r in L[0] if r.get("msg", "").startswith("revoked") and
                       r["t"] <= rb[0][2]["t"]]
            ra = ready_lines(L[0], topic, after=revoked[-1]) if revoked else []
            return (revoked, ra[0], rb[0]) if ra else None
        revoked, (ps, hows, ls), (pm, howm, lm) = wait_logs(
            [pa, pb], settled, 120 + n / 20000, "the rebalance's end")
        t0 = revoked[-1]
        res.update({"revokes": len(revoked), "stay": {"partition": ps, "how": hows,
                                                      "pause_ms": 1000 * (ls["t"] - t0)},
                    "move": {"partition": pm, "how": howm, "pause_ms": 1000 * (lm["t"] - t0)}})
        m = REBUILT_RX.search(lm["msg"])
        if m:
            res["move"]["read_ms"] = int(m.group(5))
            res["move"]["records"] = int(m.group(4))
        # the start of each one's assignment after the revoke: the rebalance itself
        for who, lines in (("stay", log_records(pa)), ("move", log_records(pb))):
            asg = [r["t"] for r in lines if r.get("msg", "").startswith("assigned") and
                   r["t"] >= t0]
            res[who]["assigned_ms"] = 1000 * (asg[0] - t0) if asg else None
        for who, port in (("a", port_a), ("b", port_b)):
            text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
            res[f"metrics_{who}"] = {
                "rebuilds": labelled(text, "duro_enricher_dedupe_rebuilds_total"),
                "records": metric(text, "duro_enricher_dedupe_rebuild_records_total"),
                "seconds": metric(text, "duro_enricher_dedupe_rebuild_seconds_total")}
        res["vm_hwm_kib_a"] = pa.status("VmHWM")
    finally:
        for p in procs:
            res.setdefault("exit_codes", []).append(p.stop(30))
    log(f"rebuild {n:,}/partition run {rep + 1}: enricher {res['rate']:,.0f} records/s, plain "
        f"read {res['plain_before']['rate']:,.0f} / {res['plain_after']['rate']:,.0f} -> ratio "
        f"{res['ratio']:.2f}; pause stay [{res['stay']['partition']}] "
        f"{res['stay']['pause_ms']:.0f} ms ({res['stay']['how']}), move "
        f"[{res['move']['partition']}] {res['move']['pause_ms']:.0f} ms ({res['move']['how']})")
    return res


def median(xs: list) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def bench_rebuild(a, work: Path) -> dict:
    """Per window size: a raw topic of 2 partitions each holding that many records, then
    a.rebuild_repeat runs (rebuild_run), each on a fresh group committed at the ends."""
    create_topics(a.bootstrap, ["bench.rebuild.dlq", "bench.rebuild.item_update"])
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    out: dict = {"windows": [], "repeat": a.rebuild_repeat, "partitions": REBUILD_PARTITIONS}
    for n in a.rebuild_windows:
        topic = f"bench.rebuild.w{n}.raw"
        create_topics(a.bootstrap, [topic], partitions=REBUILD_PARTITIONS)
        fills = {p: rawpart(a, "fill", "--topic", topic, "--partition", str(p), "--count",
                            str(n), "--prefix", f"evt_rb{n}p{p}")
                 for p in range(REBUILD_PARTITIONS)}
        for p, f in fills.items():
            log(f"rebuild: {topic} [{p}] filled with {f['count']:,} records in "
                f"{f['seconds']:.1f} s")
        ends = {p: (f["last_offset"] + 1, f["last_ts"]) for p, f in fills.items()}
        runs = [rebuild_run(a, work, topic, n, ends, rep) for rep in range(a.rebuild_repeat)]
        w = {"records": n, "fill_seconds": [f["seconds"] for f in fills.values()], "runs": runs,
             "rate": median([r["rate"] for r in runs]),
             # A's rate for the partition it read second (the same records as the first),
             # and B's for the partition that moved to it: for comparison only
             "rate_second": median([r["enricher_reads"][-1]["rate"] for r in runs]),
             "rate_move": median([r["move"]["records"] * 1000 / r["move"]["read_ms"]
                                  for r in runs if r["move"].get("read_ms")]),
             "plain": median([r["plain"] for r in runs]),
             "plain_before": median([r["plain_before"]["rate"] for r in runs]),
             "plain_after": median([r["plain_after"]["rate"] for r in runs]),
             "ratio": median([r["ratio"] for r in runs]),
             "stay_ms": median([r["stay"]["pause_ms"] for r in runs]),
             "move_ms": median([r["move"]["pause_ms"] for r in runs]),
             "move_read_ms": median([r["move"].get("read_ms") for r in runs]),
             "stay_assigned_ms": median([r["stay"].get("assigned_ms") for r in runs]),
             "stay_range": [min(r["stay"]["pause_ms"] for r in runs),
                            max(r["stay"]["pause_ms"] for r in runs)],
             "move_range": [min(r["move"]["pause_ms"] for r in runs),
                            max(r["move"]["pause_ms"] for r in runs)],
             "ratio_range": [min(r["ratio"] for r in runs), max(r["ratio"] for r in runs)],
             "stay_hows": sorted({r["stay"]["how"] for r in runs}),
             "move_hows": sorted({r["move"]["how"] for r in runs}),
             "revokes": max(r["revokes"] for r in runs),
             "vm_hwm_kib_a": max(r.get("vm_hwm_kib_a") or 0 for r in runs)}
        out["windows"].append(w)
        # the next window's records need the disk more than this topic does
        for _, fut in admin.delete_topics([topic]).items():
            try:
                fut.result(timeout=30)
            except Exception as e:  # noqa: BLE001 - only space; the broker is thrown away
                log(f"rebuild: could not delete {topic}: {e}")
    return out


# ---------------------------------------------------------------- snapshot

# The batch settings of the snapshot section, the defaults, set explicitly so that the page
# states what ran: the snapshot's page (ids per listing request and per transaction), the
# enricher's batch and its requests.
SNAP_SETTINGS = {"DURO_SNAPSHOT_PAGE_SIZE": "100"}
SNAP_ENRICHER = {"DURO_BATCH_MAX": "500", "DURO_GRAPHQL_MAX_IDS": "100",
                 "DURO_BATCH_WAIT_MS": "100", "DURO_GRAPHQL_CONCURRENCY": "4"}
SNAP_UNLIMITED = {"DURO_SNAPSHOT_RATE": "0", "DURO_GRAPHQL_RATE": "0"}
SNAP_DEFAULT_RATE = 200  # DURO_SNAPSHOT_RATE's default, ids/s
SNAP_TIMEOUT = 240  # s, each run of the section at most (the whole section: ~5 minutes)


# a token of this run in the snapshot's run ids and topics: a broker kept from an earlier
# run (run_bench.py called by hand) must not find a run of the same id finished there
SNAP_TOKEN = uuid.uuid4().hex[:6]


class SnapWatch:
    """Polls a running snapshot's /metrics (DURO_SNAPSHOT_ADMIN_LISTEN) every 50 ms on a
    thread and keeps (seconds since start, {kind: listed}, {kind: phase}, transactions) at
    each change: when each kind's pages were committed."""

    def __init__(self, port: int, t0: float):
        self.url, self.t0 = f"http://127.0.0.1:{port}/metrics", t0
        self.samples: list = []
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop_ev.is_set():
            code, text = http_get(self.url, timeout=1)
            if code == 200:
                lab = {k: labelled(text, f"duro_snapshot_{k}") for k in ("ids_listed_total",
                                                                          "phase")}
                snap = (lab["ids_listed_total"], lab["phase"],
                        metric(text, "duro_snapshot_transactions_total"))
                if not self.samples or self.samples[-1][1:] != snap:
                    self.samples.append((round(time.monotonic() - self.t0, 3), *snap))
            self.stop_ev.wait(0.05)

    def stop(self) -> None:
        self.stop_ev.set()
        self.th.join(5)

    def listing(self) -> dict:
        """Per kind: the time of its first and last page's commit as seen here, and the ids
        listed in between; all: the same summed (the listing's pace while it lists, without
        the command's start, the time between kinds and its end)."""
        out: dict = {"kinds": {}}
        for kind in ("item", "change_order"):
            pts = [(t, listed.get(kind, 0)) for t, listed, _, _ in self.samples
                   if listed.get(kind, 0) > 0]
            if not pts:
                continue
            first, last = pts[0], next(p for p in pts if p[1] == pts[-1][1])
            out["kinds"][kind] = {"first_page_s": first[0], "last_page_s": last[0],
                                  "ids_between": last[1] - first[1]}
        secs = sum(k["last_page_s"] - k["first_page_s"] for k in out["kinds"].values())
        ids = sum(k["ids_between"] for k in out["kinds"].values())
        out.update({"seconds_between": round(secs, 3), "ids_between": ids,
                    "ids_per_s": ids / secs if secs > 0 else None})
        return out


def data_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition, the offset after its last committed data record (0 if none): the raw
    end less the transaction markers behind that record. An enricher that has processed
    every record need not have committed past a marker that follows its last one (no
    record comes after it to process), so "all enriched" is committed ≥ this."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-data-ends",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True})
    out: dict[int, int] = {}
    try:
        marks = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                 for p in range(PARTITIONS)}
        back = 200
        while len(out) < PARTITIONS:
            todo = {p: max(lo, hi - back) for p, (lo, hi) in marks.items() if p not in out}
            c.assign([TopicPartition(topic, p, off) for p, off in todo.items()])
            last: dict[int, int] = {}
            open_ = set(todo)
            deadline = time.monotonic() + 60
            while open_ and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    open_.discard(m.partition())  # its end (EOF)
                else:
                    last[m.partition()] = m.offset()
            if open_:
                raise RuntimeError(f"{topic}: partitions {sorted(open_)} not read to their end")
            for p, off in todo.items():
                if p in last:
                    out[p] = last[p] + 1
                elif off <= marks[p][0]:
                    out[p] = 0  # no data record at all
            back *= 10
    finally:
        c.close()
    return out


def snapshot_proc(a, work: Path, name: str, port: int, raw: str, prefix: str, group: str,
                  env: dict, kinds: str | None = None, admin_port: int | None = None) -> Proc:
    """`duro-enricher snapshot --id <name> --json` on raw, with the state and progress topics
    of prefix (state_env made them) and the group's transactional.id."""
    if admin_port:
        env = dict(env, DURO_SNAPSHOT_ADMIN_LISTEN=f"127.0.0.1:{admin_port}")
    e = {"KAFKA_BOOTSTRAP_SERVERS": a.bootstrap, "DURO_RAW_TOPIC": raw,
         "DURO_ENRICHER_GROUP": group, "DURO_STATE_TOPIC_TEMPLATE": prefix + "state.{kind}",
         "DURO_PROGRESS_TOPIC": prefix + "progress",
         "DURO_API_URL": f"http://127.0.0.1:{port}/graphql",
         "DURO_API_KEY_FILE": str(work / "api-key"), "DURO_LOG_LEVEL": "info",
         **SNAP_SETTINGS, **env}
    argv = [str(a.bin_dir / "duro-enricher"), "snapshot", "--id", name, "--json"]
    if kinds:
        argv += ["--kinds", kinds]
    return Proc(f"snapshot-{name}", argv, work, env=e)


def snapshot_summary(p: Proc) -> dict:
    text = p.text()
    if p.p.returncode != 0 or "{" not in text:
        raise RuntimeError(f"{p.name} failed ({p.p.returncode}): {p.text('err')[-2000:]}")
    return json.loads(text[text.index("{"):])  # --json prints one object, indented


def snap_listing(a, work: Path, port: int, tag: str) -> dict:
    """The snapshot alone, unpaced, listing only (no sweep), no enricher: listed ids/s."""
    tag = f"{tag}-{SNAP_TOKEN}"
    prefix = f"bench.snap-{tag}."
    raw = prefix + "raw"
    create_topics(a.bootstrap, [raw])
    state_env(a.bootstrap, prefix)
    double_stats(port, reset=True)
    admin = free_port()
    t0 = time.monotonic()
    p = snapshot_proc(a, work, tag, port, raw, prefix, f"bench-snap-{tag}",
                      dict(SNAP_UNLIMITED, DURO_STATE_TOPICS="false"), admin_port=admin)
    watch = SnapWatch(admin, t0)
    try:
        while p.p.poll() is None:
            if time.monotonic() - t0 > min(a.drain_timeout, SNAP_TIMEOUT):
                raise RuntimeError(f"{p.name}: not done within "
                                   f"{min(a.drain_timeout, SNAP_TIMEOUT):g} s")
            time.sleep(0.02)
        wall = time.monotonic() - t0
    finally:
        watch.stop()
        p.stop()
    summ = snapshot_summary(p)
    if summ.get("finished_earlier"):
        raise RuntimeError(f"{p.name}: a run of that id had finished earlier")
    st = double_stats(port)
    res = {"summary": summ, "seconds": summ["seconds"], "wall_seconds": round(wall, 2),
           "listed": summ["listed"], "written": summ["written"],
           "ids_per_s": summ["listed"] / summ["seconds"],
           "list_requests": st["list_requests"], "lookup_requests": st["lookup_requests"],
           "raw_records": sum(end_offsets(a.bootstrap, raw).values()),
           "pages": watch.listing(), "metrics_samples": watch.samples}
    pg = res["pages"]
    log(f"snapshot listing ({tag}): {res['listed']} ids in {res['seconds']:.2f} s = "
        f"{res['ids_per_s']:.0f} ids/s (process wall {wall:.2f} s), "
        f"{res['list_requests']} listing requests; between each kind's first and last page: "
        f"{pg['ids_between']} ids in {pg['seconds_between']:.2f} s = "
        f"{fmt(pg['ids_per_s'])} ids/s; pages by kind {pg['kinds']}")
    return res


def snap_e2e(a, work: Path, port: int, tag: str, snap_env: dict, enr_env: dict,
             pids: dict, kinds: str | None = None) -> dict:
    """A running enricher (joined, its partitions assigned) and then the snapshot (state
    topics on, so with its sweep), timed from the snapshot's start until the enricher's
    committed offsets reach the raw topic's end after the snapshot exited: every ping
    enriched and committed."""
    tag = f"{tag}-{SNAP_TOKEN}"
    prefix = f"bench.snap-{tag}."
    raw = prefix + "raw"
    create_topics(a.bootstrap, [raw, prefix + "dlq", prefix + "item_snapshot",
                                prefix + "co_snapshot"] + output_topics(prefix))
    senv = state_env(a.bootstrap, prefix)
    group = f"bench-snap-{tag}"
    admin_port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": a.bootstrap, "DURO_RAW_TOPIC": raw,
           "DURO_DLQ_TOPIC": prefix + "dlq", "DURO_TOPIC_TEMPLATE": prefix + "{event}",
           "DURO_ENRICHER_GROUP": group, "DURO_TRANSACTIONAL_ID": group + "-tx",
           "DURO_ENRICHER_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
           "DURO_API_URL": f"http://127.0.0.1:{port}/graphql",
           "DURO_API_KEY_FILE": str(work / "api-key"), "DURO_LOG_LEVEL": "info",
           "DURO_STATE_TOPICS": "true", **senv, **SNAP_ENRICHER, **enr_env}
    enr = Proc(f"duro-enricher-snap-{tag}", [str(a.bin_dir / "duro-enricher")], work, env=env)
    res: dict = {"tag": tag, "snapshot_env": snap_env, "enricher_env": enr_env}
    watch = snap = swatch = None
    try:
        def assigned(L):
            r = ready_lines(L[0], raw)
            return r if len({x[0] for x in r}) >= PARTITIONS else None
        wait_logs([enr], assigned, 90, "the enricher's assignment")
        watch = CommittedWatch(a.bootstrap, group, raw)
        double_stats(port, reset=True)
        cpu0 = {k: cpu_ticks(v) for k, v in dict(pids, enricher=enr.pid).items()}
        sadmin = free_port()
        t0 = time.monotonic()
        snap = snapshot_proc(a, work, tag, port, raw, prefix, group,
                             dict(snap_env, DURO_STATE_TOPICS="true"), kinds, sadmin)
        swatch = SnapWatch(sadmin, t0)
        ends: dict = {}  # the raw end and each partition's last ping, once the snapshot exited

        def read_ends():
            try:
                ends["raw_end"] = sum(end_offsets(a.bootstrap, raw).values())
                ends["targets"] = data_ends(a.bootstrap, raw)
            except Exception as e:  # noqa: BLE001 - raised below
                ends["error"] = e
        reader = None
        timeline = []  # (seconds since the start, committed) at each change
        reached: dict[int, list] = {p: [] for p in range(PARTITIONS)}  # (t, offset) changes
        deadline = t0 + min(a.drain_timeout, SNAP_TIMEOUT)
        while True:
            if enr.p.poll() is not None:
                raise RuntimeError(f"duro-enricher exited ({enr.p.returncode}): "
                                   f"{enr.text('err')[-2000:]}")
            if reader is None and snap.p.poll() is not None:
                res["snapshot_done_s"] = round(time.monotonic() - t0, 2)
                res["summary"] = snapshot_summary(snap)
                if res["summary"].get("finished_earlier"):
                    raise RuntimeError(f"{snap.name}: a run of that id had finished earlier")
                swatch.stop()
                # on a thread: the polling of the commits below goes on meanwhile
                reader = threading.Thread(target=read_ends, daemon=True)
                reader.start()
            now = round(time.monotonic() - t0, 3)
            com = {tp.partition: max(tp.offset, 0)
                   for tp in watch.c.committed(watch.tps, timeout=10)}
            for p, off in com.items():
                if not reached[p] or reached[p][-1][1] != off:
                    reached[p].append((now, off))
            done = sum(com.values())
            if not timeline or timeline[-1][1] != done:
                timeline.append((now, done))
            if "error" in ends:
                raise ends["error"]
            targets = ends.get("targets")
            if targets is not None and all(com.get(p, 0) >= t for p, t in targets.items()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"snapshot {tag}: not enriched within "
                                   f"{min(a.drain_timeout, SNAP_TIMEOUT):g} s (committed {com}, "
                                   f"last pings' ends {targets}, raw end {ends.get('raw_end')})")
            time.sleep(0.05)
        wall = time.monotonic() - t0
        # the moment each partition's commit first covered its last ping; the latest of them
        secs = max(next(t for t, off in reached[p] if off >= targets[p]) if targets[p] else 0
                   for p in range(PARTITIONS))
        raw_end = ends["raw_end"]
        res["data_end"] = sum(targets.values())
        # offsets the group's commits stopped short of the raw end (markers only)
        res["committed_short_of_end"] = raw_end - done
        cpu = {k: cpu_ticks(v) for k, v in dict(pids, enricher=enr.pid).items()}
        res["cpu_pct"] = {k: round(100.0 * (cpu[k] - cpu0[k]) / CLK_TCK / wall)
                          for k in cpu if cpu[k] is not None and cpu0.get(k) is not None}
        st = double_stats(port)
        mtext = http_get(f"http://127.0.0.1:{admin_port}/metrics")[1]
        summ = res["summary"]
        ids = summ["written"] + summ["swept"]
        res.update({"seconds": round(secs, 2), "raw_records": raw_end, "committed": done,
                    "timeline": timeline, "ids": ids, "listed": summ["listed"],
                    "ids_per_s": ids / secs,
                    "list_requests": st["list_requests"],
                    "list_ids_returned": st["list_ids_returned"],
                    "lookup_requests": st["lookup_requests"], "ids_looked_up": st["ids_total"],
                    "requests_total": st["requests_total"],
                    "double_statuses": st["requests_by_status"],
                    "list_per_id": st["list_requests"] / max(ids, 1),
                    "lookup_per_id": st["lookup_requests"] / max(ids, 1),
                    "produced": metric(mtext, "duro_enricher_produced_total"),
                    "dlq": metric(mtext, "duro_enricher_dlq_total"),
                    "transactions": metric(mtext, "duro_enricher_transactions_committed_total"),
                    "state_records": labelled(mtext, "duro_enricher_state_records_total"),
                    "vm_hwm_kib": enr.status("VmHWM"), "pages": swatch.listing()})
        res["requests_per_id"] = res["list_per_id"] + res["lookup_per_id"]
        log(f"snapshot end-to-end ({tag}): {ids} ids enriched in {secs:.1f} s = "
            f"{res['ids_per_s']:.0f} ids/s (snapshot exited after {res['snapshot_done_s']} s); "
            f"GraphQL requests per id: listing {res['list_per_id']:.4f} + enrichment "
            f"{res['lookup_per_id']:.4f}; CPU % {res['cpu_pct']}")
    finally:
        if swatch is not None:
            swatch.stop()
        if watch is not None:
            watch.close()
        if snap is not None:
            snap.stop(30)
        res["exit_code"] = enr.stop(60)
    return res


def bench_snapshot(a, work: Path, broker_pid: int | None) -> dict:
    """`duro-enricher snapshot` against the double's capacity, side by side in one run:
    (1) the double alone: listing the whole library (one client, the snapshot's page size),
    100-id lookups (4 and 8 clients), and both at once (one client listing, 4 or 8 threads
    looking the listed ids up); (2) the snapshot listing alone, unpaced; (3) the snapshot
    with a running enricher, both unpaced, until every ping is enriched; (4) the same at
    the default rates on a smaller library."""
    comps, cos = a.snapshot_library
    s_comps, s_cos = a.snapshot_small_library
    page = int(SNAP_SETTINGS["DURO_SNAPSHOT_PAGE_SIZE"])
    max_ids = int(SNAP_ENRICHER["DURO_GRAPHQL_MAX_IDS"])
    out: dict = {"library": {"components": comps, "change_orders": cos},
                 "small_library": {"components": s_comps, "change_orders": s_cos},
                 "latency_ms": a.double_latency_ms, "page_size": page,
                 "enricher": SNAP_ENRICHER, "default_rate": SNAP_DEFAULT_RATE}
    double, port = start_double(a, work, comps, cos)
    pids = {"broker": broker_pid, "double": double.pid}
    try:
        # (1) the double's capacity
        caps = []
        for clients in (4, 8):
            c = double_bench.run(port, clients, max_ids, a.capacity_seconds, comps, cos,
                                 cos / (comps + cos))
            caps.append(c)
            log(f"double, 100-id lookups, {clients} clients: {c['ids_per_s']} ids/s "
                f"({c['requests_per_s']} requests/s, p50 {c['latency_ms_p50']} ms)")
        out["lookup_capacity_all"] = caps
        out["lookup_capacity"] = max(caps, key=lambda c: c["ids_per_s"])
        pipes = []
        for threads in (4, 8):
            pp = double_bench.pipeline_run(port, page, max_ids, threads)
            pipes.append(pp)
            log(f"double, listing + lookups at once, {threads} lookup threads: "
                f"{pp['ids_per_s']} ids/s ({pp['looked_up']} ids in {pp['seconds']} s)")
        out["pipeline_capacity_all"] = pipes
        out["pipeline_capacity"] = max(pipes, key=lambda c: c["ids_per_s"])
        if not a.quick:
            # warm-up, not reported: a fresh broker's first transactions are slow (JIT); a
            # snapshot of the change orders alone left the broker at 43-49% CPU against 16%
            # on a broker that had run the section before, so the whole end-to-end run
            w = snap_e2e(a, work, port, "warmup", SNAP_UNLIMITED, {"DURO_GRAPHQL_RATE": "0"},
                         pids)
            out["warmup"] = {k: w.get(k) for k in ("ids", "seconds", "ids_per_s")}
        # (2) listing: the plain listing right before and right after the snapshot's, the
        # better of the two is the capacity
        lists = [double_bench.list_run(port, page)]
        log(f"double, listing alone (page {page}): {lists[0]['ids_per_s']} ids/s "
            f"({lists[0]['ids']} ids in {lists[0]['seconds']} s)")
        out["listing"] = snap_listing(a, work, port, "list")
        lists.append(double_bench.list_run(port, page))
        log(f"double, listing alone again: {lists[1]['ids_per_s']} ids/s")
        out["list_capacity_all"] = lists
        out["list_capacity"] = max(lists, key=lambda c: c["ids_per_s"])
        # (3) end-to-end, unpaced
        out["e2e"] = snap_e2e(a, work, port, "e2e", SNAP_UNLIMITED, {"DURO_GRAPHQL_RATE": "0"},
                              pids)
    finally:
        double.stop()
    # (4) the defaults, on the smaller library (its own double): its capacity first
    double, port = start_double(a, work, s_comps, s_cos, name="duro-double-small")
    pids = {"broker": broker_pid, "double": double.pid}
    try:
        threads = out["pipeline_capacity"]["threads"]
        out["small_pipeline_capacity"] = double_bench.pipeline_run(port, page, max_ids, threads)
        log(f"double (smaller library), listing + lookups at once, {threads} lookup threads: "
            f"{out['small_pipeline_capacity']['ids_per_s']} ids/s")
        out["defaults"] = snap_e2e(a, work, port, "defaults", {}, {}, pids)
    finally:
        double.stop()

    L, P = out["list_capacity"]["ids_per_s"], out["pipeline_capacity"]["ids_per_s"]
    out["listing_ratio"] = out["listing"]["ids_per_s"] / L if L else None
    out["e2e_ratio"] = out["e2e"]["ids_per_s"] / P if P else None
    sp = out["small_pipeline_capacity"]["ids_per_s"]
    out["defaults_ratio"] = out["defaults"]["ids_per_s"] / sp if sp else None
    out["defaults_pace_ratio"] = out["defaults"]["ids_per_s"] / SNAP_DEFAULT_RATE
    for line in snapshot_figures(out):
        log(line)
    return out


def snapshot_figures(sn: dict) -> list[str]:
    """One line per figure: the ratio and its goal."""
    L, E, P = (sn[k]["ids_per_s"] for k in ("list_capacity", "lookup_capacity",
                                             "pipeline_capacity"))
    li, e2, d = sn["listing"], sn["e2e"], sn["defaults"]
    rq = e2["requests_per_id"]

    def met(ok):
        return "met" if ok else "not met"
    return [
        f"snapshot capacity of the double: listing {fmt(L)} ids/s (one client, pages of "
        f"{sn['page_size']}), 100-id lookups {fmt(E)} ids/s "
        f"({sn['lookup_capacity']['threads']} clients), both at once {fmt(P)} ids/s "
        f"({sn['pipeline_capacity']['threads']} lookup threads) = the end-to-end capacity",
        f"snapshot listing (unpaced, no enricher): {fmt(li['ids_per_s'])} ids/s ÷ listing "
        f"capacity {fmt(L)} = {fmt(sn['listing_ratio'], 2)} (goal ≥ 0.8: "
        f"{met(sn['listing_ratio'] >= 0.8)})",
        f"snapshot end-to-end (snapshot + enricher, unpaced): {fmt(e2['ids_per_s'])} ids/s ÷ "
        f"capacity {fmt(P)} = {fmt(sn['e2e_ratio'], 2)} (goal ≥ 0.5: "
        f"{met(sn['e2e_ratio'] >= 0.5)})",
        f"snapshot GraphQL requests per id: listing {fmt(e2['list_per_id'], 4)} + enrichment "
        f"{fmt(e2['lookup_per_id'], 4)} = {fmt(rq, 4)} (goal ≤ 0.02: {met(rq <= 0.02)})",
        f"snapshot end-to-end at the defaults (DURO_SNAPSHOT_RATE={sn['default_rate']}, "
        f"DURO_GRAPHQL_RATE=20; {fmt(d['ids'])} ids): {fmt(d['ids_per_s'])} ids/s ÷ capacity "
        f"{fmt(sn['small_pipeline_capacity']['ids_per_s'])} = {fmt(sn['defaults_ratio'], 3)}; "
        f"÷ the pace {sn['default_rate']} ids/s = {fmt(sn['defaults_pace_ratio'], 2)} "
        f"(no goal)",
    ]


# ---------------------------------------------------------------- report

def fmt(x, nd=0, unit=""):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}{unit}"


def mib(kib):
    return None if kib is None else kib / 1024


def versions(a) -> dict:
    def cmd(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    def pc(mod):
        return cmd(["pkg-config", "--modversion", mod])
    kafkajs = "?"
    try:
        kafkajs = json.loads((BENCH / "node-ref" / "node_modules" / "kafkajs" /
                              "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        pass
    pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    m = re.search(r"<kafka.version>(.*?)</kafka.version>", pom)
    return {"librdkafka": pc("rdkafka"), "libmicrohttpd": pc("libmicrohttpd"),
            "openssl": " ".join(cmd(["openssl", "version"]).split()[:2]), "kafka": m.group(1) if m else "?",
            "java": cmd(["java", "-version"]), "wrk": cmd(["wrk", "-v"]).split(" [")[0],
            "node": cmd(["node", "--version"]), "kafkajs": kafkajs,
            "python": platform.python_version(),
            "confluent-kafka": ck_version() if isinstance(ck_version(), str) else ck_version()[0],
            "confluent-kafka librdkafka": ck_libversion()[0],
            "compiler": cmd(["cc", "--version"]),
            "git": cmd(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
            **({"librdkafka current": rdkafka_version_of(a.bin_dir_current / "duro-enricher")}
               if getattr(a, "bin_dir_current", None) else {})}


def machine() -> dict:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"nproc": os.cpu_count(), "cpu": model, "memory": mem, "kernel": platform.release()}


def onoff_table(sb: dict, title: str, var: str, flag: str, col: str,
                extra: list, tail: str = "") -> list[str]:
    """The lines of an on / off section (bench_onoff): heading, one row per drain (extra:
    (column, fn(run)) after "transactions"), the medians and their ratio (and tail)."""
    L = [f"### {title}: duro-enricher's events/s with {var} on ÷ off "
         f"(the same {fmt(sb['events'])} preloaded raw events, "
         f"{int(100 * sb['repeat'])}% repeated resource ids; {sb['setup']}; "
         f"{sb['pairs']} on/off pair{'s' if sb['pairs'] > 1 else ''}, alternated)\n"]
    L.append(f"| run | {col} | events | seconds | events/s | transactions | " +
             "".join(f"{c} | " for c, _ in extra) + "GraphQL requests/event | enricher peak "
             "RSS MiB | CPU %: enricher / broker / double |")
    L.append("|---|---|---:|---:|---:|---:|" + "---:|" * len(extra) + "---:|---:|---:|")
    for r in sb["runs"]:
        cpu = r.get("cpu_pct") or {}
        L.append(f"| {r['variant']} | {'on' if r[flag] else 'off'} | "
                 f"{fmt(r['committed'])} | {fmt(r['seconds'], 1)} | "
                 f"{fmt(r['events_per_s'])} | {fmt(r['transactions'])} | " +
                 "".join(f"{fn(r)} | " for _, fn in extra) +
                 f"{fmt(r['requests_per_event'], 4)} | {fmt(mib(r.get('vm_hwm_kib')), 1)} | "
                 f"{cpu.get('enricher', '–')} / {cpu.get('broker', '–')} / "
                 f"{cpu.get('double', '–')} |")
    L.append("")
    L.append(f"Median events/s: on {fmt(sb['on_events_per_s'])}, off "
             f"{fmt(sb['off_events_per_s'])}; **on ÷ off = {fmt(sb['ratio'], 3)}**.{tail}\n")
    return L


def rdk_median_span(xs: list, nd: int = 0) -> str:
    """The median of xs, with min–max in brackets when there are several."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0], nd)
    return f"{fmt(median(xs), nd)} ({fmt(min(xs), nd)}–{fmt(max(xs), nd)})"


def rdk_ratio(cur, sys_) -> float | None:
    return cur / sys_ if cur is not None and sys_ else None


def rdk_tables(res: dict) -> list[str]:
    """The librdkafka versions sections: side by side, current ÷ system of the medians."""
    L: list[str] = []
    iv, ev = res.get("rdkafka-ingress"), res.get("rdkafka-enricher")
    if iv:
        v0, v1 = iv["versions"]["system"], iv["versions"]["current"]
        rounds = iv["rounds"]

        def runs(kind, b, key, val):
            return [r for r in iv[kind] if r["build"] == b and r[key] == val]

        def med(rs, f):
            xs = [f(r) for r in rs]
            xs = [x for x in xs if x is not None]
            return median(xs) if xs else None
        L.append(f"### librdkafka versions: ingress — duro-bridge on {v0} and on {v1}, accepted "
                 f"webhooks per second (2xx only) and answer latency ("
                 + (f"medians of {rounds} rounds, min–max in brackets; " if rounds > 1 else
                    "one round; ") + f"ratios {v1} ÷ {v0})\n")
        L.append(f"| connections | accepted/s {v0} | accepted/s {v1} | **accepted/s {v1} ÷ {v0}** "
                 f"| p50 ms {v0} / {v1} | p50 {v1} ÷ {v0} | p99 ms {v0} / {v1} | "
                 f"p99 {v1} ÷ {v0} | mean produce→ack ms {v0} / {v1} | CPU µs per accepted "
                 f"{v0} / {v1} | errors {v0} / {v1} | Kafka ceiling, c in flight, records/s "
                 f"{v0} / {v1} | its {v1} ÷ {v0} | others' CPU % {v0} / {v1} |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        iv["ratios"] = {}
        for c in iv["conns"]:
            s0, s1 = runs("bridge_runs", "system", "conns", c), runs("bridge_runs", "current",
                                                                     "conns", c)
            k0, k1 = runs("kafka_runs", "system", "inflight", c), runs("kafka_runs", "current",
                                                                       "inflight", c)
            acc = [med(x, lambda r: r["accepted_per_s"]) for x in (s0, s1)]
            p50 = [med(x, lambda r: r["lat_p50_us"] / 1000) for x in (s0, s1)]
            p99 = [med(x, lambda r: r["lat_p99_us"] / 1000) for x in (s0, s1)]
            kc = [med(x, lambda r: r["records_per_s"]) for x in (k0, k1)]
            ra, r50, r99 = rdk_ratio(acc[1], acc[0]), rdk_ratio(p50[1], p50[0]), \
                rdk_ratio(p99[1], p99[0])
            iv["ratios"][c] = {"accepted_per_s": ra, "p50": r50, "p99": r99,
                               "kafka_c_in_flight": rdk_ratio(kc[1], kc[0])}
            L.append(f"| {c} | {rdk_median_span([r['accepted_per_s'] for r in s0])} | "
                     f"{rdk_median_span([r['accepted_per_s'] for r in s1])} | **{fmt(ra, 3)}** | "
                     f"{fmt(p50[0], 2)} / {fmt(p50[1], 2)} | {fmt(r50, 2)} | "
                     f"{fmt(p99[0], 1)} / {fmt(p99[1], 1)} | {fmt(r99, 2)} | "
                     f"{fmt(med(s0, lambda r: r.get('ack_latency_mean_ms')), 2)} / "
                     f"{fmt(med(s1, lambda r: r.get('ack_latency_mean_ms')), 2)} | "
                     f"{fmt(med(s0, lambda r: r.get('server_cpu_us_per_accepted')))} / "
                     f"{fmt(med(s1, lambda r: r.get('server_cpu_us_per_accepted')))} | "
                     f"{sum(r['errors'] for r in s0)} / {sum(r['errors'] for r in s1)} | "
                     f"{fmt(kc[0])} / {fmt(kc[1])} | {fmt(rdk_ratio(kc[1], kc[0]), 2)} | "
                     f"{fmt(med(s0, lambda r: r.get('others_cpu_pct')))} / "
                     f"{fmt(med(s1, lambda r: r.get('others_cpu_pct')))} |")
        L.append("")
        ku = [runs("kafka_runs", b, "inflight", 0) for b in RDK_BUILDS]
        kur = [med(x, lambda r: r["records_per_s"]) for x in ku]
        br = iv["bridges"]
        L.append(f"Kafka ceiling (queue kept full): {v0} {fmt(kur[0])}, {v1} {fmt(kur[1])} "
                 f"records/s ({v1} ÷ {v0} = {fmt(rdk_ratio(kur[1], kur[0]), 2)}; produce→ack "
                 f"p50 / p99 ms {fmt(med(ku[0], lambda r: r['lat_p50_us'] / 1000), 1)} / "
                 f"{fmt(med(ku[0], lambda r: r['lat_p99_us'] / 1000), 1)} and "
                 f"{fmt(med(ku[1], lambda r: r['lat_p50_us'] / 1000), 1)} / "
                 f"{fmt(med(ku[1], lambda r: r['lat_p99_us'] / 1000), 1)}). duro-bridge peak RSS: "
                 f"{v0} {fmt(mib(br['system'].get('vm_hwm_kib')), 1)} MiB, {v1} "
                 f"{fmt(mib(br['current'].get('vm_hwm_kib')), 1)} MiB; records on the bridges' "
                 f"topics afterwards {br['system'].get('records_on_topic')} / "
                 f"{br['current'].get('records_on_topic')} (warm-ups included); producer errors "
                 f"{fmt((br['system'].get('metrics') or {}).get('duro_bridge_producer_errors_total'))}"
                 f" / {fmt((br['current'].get('metrics') or {}).get('duro_bridge_producer_errors_total'))}"
                 f". Other processes' CPU over the whole section: "
                 f"{fmt(iv.get('others_cpu_pct'))}% of one CPU (load average over 1 min at its "
                 f"start {fmt(iv['load_avg_start'][0], 2)}, at its end "
                 f"{fmt(iv['load_avg_end'][0], 2)}).\n")
    if ev:
        v0, v1 = ev["versions"]["system"], ev["versions"]["current"]
        rounds = ev["rounds"]
        cap = ev["double_capacity"]["ids_per_s"]

        def eruns(b, setup):
            return [r for r in ev["runs"] if r["build"] == b and r["setup"] == setup]

        def med(rs, f):
            xs = [f(r) for r in rs]
            xs = [x for x in xs if x is not None]
            return median(xs) if xs else None

        def us_per_event(r):
            c = (r.get("cpu_pct") or {}).get("enricher")
            return c / 100 * r["seconds"] * 1e6 / r["committed"] if c is not None and \
                r.get("committed") else None
        L.append(f"### librdkafka versions: enricher — duro-enricher on {v0} and on {v1} "
                 f"draining {ev['events']:,} preloaded raw events ({int(100 * ev['repeat'])}% "
                 f"repeated resource ids), GraphQL double at {ev['latency_ms']:g} ms per request ("
                 + (f"medians of {rounds} rounds, min–max in brackets; " if rounds > 1 else
                    "one round; ") + f"ratios {v1} ÷ {v0})\n")
        L.append(f"| set-up | events/s {v0} | events/s {v1} | **events/s {v1} ÷ {v0}** | "
                 f"events/s ÷ double capacity {v0} / {v1} | GraphQL requests/event {v0} / {v1} | "
                 f"transactions {v0} / {v1} | peak RSS MiB {v0} / {v1} | CPU µs per event "
                 f"{v0} / {v1} | CPU % enricher / broker {v0} | CPU % enricher / broker {v1} | "
                 f"others' CPU % {v0} / {v1} |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        ev["ratios"] = {}
        for name, label in ev["setups"].items():
            r0, r1 = eruns("system", name), eruns("current", name)
            eps = [med(x, lambda r: r["events_per_s"]) for x in (r0, r1)]
            ratio = rdk_ratio(eps[1], eps[0])
            ev["ratios"][name] = ratio
            L.append(f"| {label} | {rdk_median_span([r['events_per_s'] for r in r0])} | "
                     f"{rdk_median_span([r['events_per_s'] for r in r1])} | **{fmt(ratio, 3)}** | "
                     f"{fmt(eps[0] / cap if cap and eps[0] else None, 2)} / "
                     f"{fmt(eps[1] / cap if cap and eps[1] else None, 2)} | "
                     f"{fmt(med(r0, lambda r: r['requests_per_event']), 4)} / "
                     f"{fmt(med(r1, lambda r: r['requests_per_event']), 4)} | "
                     f"{fmt(med(r0, lambda r: r['transactions']))} / "
                     f"{fmt(med(r1, lambda r: r['transactions']))} | "
                     f"{fmt(mib(med(r0, lambda r: r.get('vm_hwm_kib'))), 1)} / "
                     f"{fmt(mib(med(r1, lambda r: r.get('vm_hwm_kib'))), 1)} | "
                     f"{fmt(med(r0, us_per_event), 1)} / {fmt(med(r1, us_per_event), 1)} | "
                     + " | ".join(
                         f"{fmt(med(x, lambda r: (r.get('cpu_pct') or {}).get('enricher')))} / "
                         f"{fmt(med(x, lambda r: (r.get('cpu_pct') or {}).get('broker')))}"
                         for x in (r0, r1)) +
                     f" | {fmt(med(r0, lambda r: r.get('others_cpu_pct')))} / "
                     f"{fmt(med(r1, lambda r: r.get('others_cpu_pct')))} |")
        L.append("")
        for name in ev["moderate_setups"]:
            r0, r1 = eruns("system", name), eruns("current", name)
            q = {k: [med(x, lambda r: (r.get("moderate") or {}).get(k)) for x in (r0, r1)]
                 for k in ("p50_ms", "p99_ms", "max_ms")}
            miss = [sum((r.get("moderate") or {}).get("missing") or 0 for r in x)
                    for x in (r0, r1)]
            mo = (r0 + r1)[0].get("moderate") or {} if r0 + r1 else {}
            L.append(f"Moderate load ({name}: {fmt(mo.get('rate'))} events/s for "
                     f"{fmt(mo.get('seconds'))} s while the enricher runs, produce → seen by a "
                     f"read_committed consumer): p50 / p99 / max ms {v0} "
                     f"{fmt(q['p50_ms'][0])} / {fmt(q['p99_ms'][0])} / {fmt(q['max_ms'][0])}, "
                     f"{v1} {fmt(q['p50_ms'][1])} / {fmt(q['p99_ms'][1])} / "
                     f"{fmt(q['max_ms'][1])} ({v1} ÷ {v0}: p50 "
                     f"{fmt(rdk_ratio(q['p50_ms'][1], q['p50_ms'][0]), 2)}, p99 "
                     f"{fmt(rdk_ratio(q['p99_ms'][1], q['p99_ms'][0]), 2)}); not seen within "
                     f"60 s: {miss[0]} / {miss[1]}.\n")
        dc = ev["double_capacity"]
        wu = ev.get("warmup") or {}
        L.append(f"GraphQL double alone (100-id requests, {dc['threads']} clients): "
                 f"{fmt(cap)} ids/s, measured once (it does not depend on the build). "
                 + (f"Warm-up drains (not in the table, throughput set-up, "
                    f"{fmt((wu.get('system') or {}).get('events'))} events): {v0} "
                    f"{fmt((wu.get('system') or {}).get('events_per_s'))}, {v1} "
                    f"{fmt((wu.get('current') or {}).get('events_per_s'))} events/s. "
                    if wu else "") +
                 f"Other processes' CPU over the whole section: {fmt(ev.get('others_cpu_pct'))}% "
                 f"of one CPU (load average over 1 min at its start "
                 f"{fmt(ev['load_avg_start'][0], 2)}, at its end {fmt(ev['load_avg_end'][0], 2)}"
                 f").\n")
    return L


def report(res: dict, a) -> tuple[str, list[tuple[str, str, str]]]:
    L: list[str] = []
    goals: list[tuple[str, str, str]] = []
    ing, enr = res.get("ingress"), res.get("enricher")
    if ing:
        kc = ing["kafka_ceiling"]["records_per_s"]
        L.append("### Ingress: accepted webhooks per second (2xx only), answer latency\n")
        L.append("| connections | HTTP ceiling | Kafka ceiling | Kafka, c in flight | duro-bridge | "
                 "Node ref | bridge ÷ min(HTTP, Kafka) | bridge ÷ min(HTTP, Kafka c in flight) | "
                 "bridge ÷ Node | bridge p50 / p99 ms | "
                 "HTTP ceiling p50 / p99 ms | Node p50 / p99 ms | bridge errors | Node errors |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        worst_min = worst_node = None
        r_min, r_node = {}, {}
        for c in a.conns:
            h = ing["http_ceiling"]["runs"][c]
            b = ing["bridge"]["runs"][c]
            n = ing["node"]["runs"][c]
            k = ing["kafka_closed_loop"][c]
            ceil = min(h["accepted_per_s"], kc)
            r1 = b["accepted_per_s"] / ceil if ceil else None
            r2 = b["accepted_per_s"] / n["accepted_per_s"] if n["accepted_per_s"] else None
            ceil_c = min(h["accepted_per_s"], k["records_per_s"])
            r3 = b["accepted_per_s"] / ceil_c if ceil_c else None
            r_min[c], r_node[c] = r1, r2
            worst_min = r1 if worst_min is None or (r1 is not None and r1 < worst_min) else worst_min
            worst_node = r2 if worst_node is None or (r2 is not None and r2 < worst_node) else worst_node
            L.append(f"| {c} | {fmt(h['accepted_per_s'])} | {fmt(kc)} | {fmt(k['records_per_s'])} | "
                     f"{fmt(b['accepted_per_s'])} | {fmt(n['accepted_per_s'])} | "
                     f"{fmt(r1, 2)} | {fmt(r3, 2)} | {fmt(r2, 1)}× | "
                     f"{fmt(b['lat_p50_us'] / 1000, 2)} / {fmt(b['lat_p99_us'] / 1000, 1)} | "
                     f"{fmt(h['lat_p50_us'] / 1000, 2)} / {fmt(h['lat_p99_us'] / 1000, 1)} | "
                     f"{fmt(n['lat_p50_us'] / 1000, 2)} / {fmt(n['lat_p99_us'] / 1000, 1)} | "
                     f"{b['errors']} | {n['errors']} |")
        L.append("")
        L.append("| connections | CPU µs per accepted: HTTP ceiling / bridge / Node | server CPU %: "
                 "HTTP ceiling / bridge / Node | broker CPU % during bridge / Node | bridge mean "
                 "produce→ack ms | Kafka ceiling c in flight p50 / p99 ms |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        for c in a.conns:
            h, b, n = (ing[s]["runs"][c] for s in ("http_ceiling", "bridge", "node"))
            k = ing["kafka_closed_loop"][c]
            L.append(f"| {c} | {fmt(h.get('server_cpu_us_per_accepted'))} / "
                     f"{fmt(b.get('server_cpu_us_per_accepted'))} / "
                     f"{fmt(n.get('server_cpu_us_per_accepted'))} | "
                     f"{fmt(h.get('server_cpu_pct'))} / {fmt(b.get('server_cpu_pct'))} / "
                     f"{fmt(n.get('server_cpu_pct'))} | {fmt(b.get('broker_cpu_pct'))} / "
                     f"{fmt(n.get('broker_cpu_pct'))} | {fmt(b.get('ack_latency_mean_ms'), 2)} | "
                     f"{fmt(k['lat_p50_us'] / 1000, 2)} / {fmt(k['lat_p99_us'] / 1000, 1)} |")
        L.append("")
        kcl = ing["kafka_ceiling"]
        L.append(f"Kafka ceiling (queue kept full): {fmt(kc)} records/s, produce→ack p50 "
                 f"{fmt(kcl['lat_p50_us'] / 1000, 1)} ms / p99 {fmt(kcl['lat_p99_us'] / 1000, 1)} ms. "
                 f"Records on the topics afterwards: duro-bridge {ing['bridge'].get('records_on_topic')}"
                 f", Node {ing['node'].get('records_on_topic')} (warm-up included).\n")
        L.append("| peak RSS (VmHWM) | HTTP ceiling | Kafka ceiling | duro-bridge | Node ref |")
        L.append("|---|---:|---:|---:|---:|")
        L.append(f"| MiB | {fmt(mib(ing['http_ceiling']['vm_hwm_kib']), 1)} | "
                 f"{fmt(mib(kcl['vm_hwm_kib']), 1)} | {fmt(mib(ing['bridge']['vm_hwm_kib']), 1)} | "
                 f"{fmt(mib(ing['node']['vm_hwm_kib']), 1)} |")
        L.append("")
        def by_conns(r, f):
            return ", ".join(f"{c}: {f(v)}" for c, v in r.items())

        def verdict(r, ok):
            good = [c for c, v in r.items() if v is not None and ok(v)]
            return ("met" if len(good) == len(r) else
                    f"met at {', '.join(map(str, good))} connections only" if good else "not met")
        goals.append(("bridge ≥ 70% of min(HTTP ceiling, Kafka ceiling)",
                      "by connections: " + by_conns(r_min, lambda v: f"{fmt(100 * v)}%"),
                      verdict(r_min, lambda v: v >= 0.70)))
        goals.append(("bridge ≥ 5× the Node reference",
                      "by connections: " + by_conns(r_node, lambda v: f"{fmt(v, 1)}×"),
                      verdict(r_node, lambda v: v >= 5)))
        rss = mib(ing["bridge"]["vm_hwm_kib"])
        goals.append(("bridge RSS ≤ 32 MiB under load", f"{fmt(rss, 1)} MiB",
                      "met" if rss and rss <= 32 else "not met"))
    if enr:
        cap = enr["double_capacity"]["ids_per_s"]
        V = enr["variants"]
        nv = enr["naive"]
        L.append(f"### Enricher: draining {enr['events']:,} preloaded raw events "
                 f"({int(100 * enr['repeat'])}% repeated resource ids), GraphQL double at "
                 f"{enr['latency_ms']:g} ms per request\n")
        L.append("| | events/s | events/s ÷ double capacity | ids pulled/s ÷ capacity | "
                 "GraphQL requests/event | peak RSS MiB | dedupe set | time s | "
                 "CPU % enricher / double / broker | moderate load p50 / p99 ms |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        L.append(f"| GraphQL double alone: 100-id requests (components and change orders "
                 f"as in the mix), {enr['double_capacity']['threads']} clients "
                 f"({fmt(enr['double_capacity']['requests_per_s'], 1)} requests/s) | "
                 f"{fmt(cap)} ids/s | 1.00 | 1.00 | – | – | – | "
                 f"{fmt(enr['double_capacity']['seconds'], 1)} | – | – |")
        for name, r in V.items():
            mo = r.get("moderate") or {}
            lat = (f"{fmt(mo.get('p50_ms'))} / {fmt(mo.get('p99_ms'))}" if mo else "–")
            L.append(f"| {r['label']} | {fmt(r['events_per_s'])} | "
                     f"{fmt(r['events_per_s'] / cap if cap else None, 2)} | "
                     f"{fmt(r['ids_per_s'] / cap if cap else None, 2)} | "
                     f"{fmt(r['requests_per_event'], 4)} | {fmt(mib(r.get('vm_hwm_kib')), 1)} | "
                     f"{fmt(r['dedupe_set_size'])} | {fmt(r['seconds'], 1)} | "
                     f"{' / '.join(fmt(r.get('cpu_pct', {}).get(k)) for k in ('enricher', 'double', 'broker'))}"
                     f" | {lat} |")
        nreq = nv["double"]["requests_total"] / nv["events"] if nv["events"] else None
        L.append(f"| naive enricher (Python; 1 request per event, not transactional; "
                 f"{nv['events']} events in {nv['seconds']:g} s) | {fmt(nv['events_per_s'])} | "
                 f"{fmt((nv['events_per_s'] or 0) / cap if cap else None, 3)} | – | "
                 f"{fmt(nreq, 2)} | – | – | {fmt(nv['seconds'], 1)} | – | – |")
        L.append("")
        e = V["default"]
        if nv.get("events_per_s"):
            L.append("duro-enricher ÷ naive enricher: " + ", ".join(
                f"{fmt(r['events_per_s'] / nv['events_per_s'], 1)}× ({n})" for n, r in V.items())
                + ".\n")
        mo = e.get("moderate") or {}
        L.append(f"Moderate load: {fmt(mo.get('rate'))} events/s for {fmt(mo.get('seconds'))} s "
                 f"into the raw topic while the enricher runs; latency = produce time → seen by "
                 f"a read_committed consumer of the output topics. Default settings: p50 "
                 f"{fmt(mo.get('p50_ms'))}, p90 {fmt(mo.get('p90_ms'))}, p99 "
                 f"{fmt(mo.get('p99_ms'))}, max {fmt(mo.get('max_ms'))} ms, "
                 f"{mo.get('missing')} of {mo.get('events')} not seen within 60 s after the "
                 f"last one was produced.\n")
        best = max(V.values(), key=lambda r: r["events_per_s"])
        best_ids = max(V.values(), key=lambda r: r["ids_per_s"])
        goals.append(("enricher ≥ 80% of the double's capacity",
                      "; ".join(f"{n}: events/s {fmt(100 * r['events_per_s'] / cap if cap else None)}%, "
                                f"ids pulled/s {fmt(100 * r['ids_per_s'] / cap if cap else None)}%"
                                for n, r in V.items()),
                      ("in events/s: " + ("met" if cap and e["events_per_s"] >= 0.8 * cap else
                                          f"met by {best['variant']}" if cap and
                                          best["events_per_s"] >= 0.8 * cap else "not met")) +
                      ("; in ids pulled/s: " + ("met" if cap and best_ids["ids_per_s"] >= 0.8 * cap
                                                else "not met"))))
        rpes = {n: r["requests_per_event"] for n, r in V.items()}
        goals.append(("≤ 0.05 GraphQL requests per event at saturation",
                      ", ".join(f"{n}: {fmt(v, 4)}" for n, v in rpes.items()),
                      "met" if max(rpes.values()) <= 0.05 else
                      ("partly" if min(rpes.values()) <= 0.05 else "not met")))
        p99s = {n: (r.get("moderate") or {}).get("p99_ms") for n, r in V.items()
                if r.get("moderate")}
        ok = {n: v is not None and v <= 500 and not V[n]["moderate"].get("missing")
              for n, v in p99s.items()}
        goals.append(("p99 event-to-output ≤ 500 ms at moderate load",
                      ", ".join(f"{n}: {fmt(v)} ms" for n, v in p99s.items()),
                      "met" if ok.get("default") else
                      ("met only by " + ", ".join(n for n, v in ok.items() if v)
                       if any(ok.values()) else "not met")))
        rss = {n: mib(r.get("vm_hwm_kib")) for n, r in V.items()}
        dd = max(r["dedupe_set_size"] for r in V.values())
        # the dedupe set takes 24-byte slots, at least 2 per key (at most 4): the allowance
        # counts the least it can take
        allow = {n: 64 + r["dedupe_set_size"] * 48 / 2**20 for n, r in V.items()}
        goals.append(("enricher RSS ≤ 64 MiB + dedupe set",
                      f"at most {fmt(max(v or 0 for v in rss.values()), 1)} MiB, with at most "
                      f"{fmt(dd)} keys in the dedupe set (≥ 48 bytes each: "
                      f"{fmt(dd * 48 / 2**20, 1)} MiB)",
                      "met" if all(v is not None and v <= allow[n] for n, v in rss.items())
                      else "not met"))
    L += rdk_tables(res)
    sb = res.get("state")
    if sb:
        L += onoff_table(sb, "State topics", "DURO_STATE_TOPICS", "state_topics",
                         "state topics", [("state records (document / tombstone)", lambda r: (
                             f"{fmt((r.get('state_records') or {}).get('document'))} / "
                             f"{fmt((r.get('state_records') or {}).get('tombstone'))}"))])
        goals.append(("state topics: enricher events/s with them on ≥ 0.9 × off",
                      f"{fmt(sb['on_events_per_s'])} ÷ {fmt(sb['off_events_per_s'])} = "
                      f"{fmt(sb['ratio'], 3)} (medians of {sb['pairs']})",
                      "met" if sb["ratio"] is not None and sb["ratio"] >= 0.9 else "not met"))
    wb = res.get("wire")
    if wb:
        def bpe(r):  # bytes on the broker per event
            b, n = r.get("log_bytes"), r.get("committed")
            return b / n if b is not None and n else None
        on_b = median([bpe(r) for r in wb["runs"] if r["cloudevents"]])
        off_b = median([bpe(r) for r in wb["runs"] if not r["cloudevents"]])
        L += onoff_table(wb, "Wire headers", "DURO_CLOUDEVENTS", "cloudevents",
                         "ce_* headers", [
                             ("records written (output + state + DLQ)", lambda r: fmt(
                                 (r.get("produced") or 0) +
                                 sum((r.get("state_records") or {}).values()) +
                                 (r.get("dlq") or 0))),
                             ("bytes on the broker per event", lambda r: fmt(bpe(r)))],
                         tail=(f" Median bytes on the broker per event: on {fmt(on_b)}, off "
                               f"{fmt(off_b)} (on ÷ off = {fmt(on_b / off_b, 3)})."
                               if on_b and off_b else ""))
    rb = res.get("rebuild")
    if rb:
        W = rb["windows"]
        L.append(f"### Dedupe rebuild: reading a window back on assignment, and the pause of a "
                 f"rebalance ({rb['partitions']} raw partitions of N records each; " +
                 (f"median of {rb['repeat']} runs, min–max in brackets)\n" if rb["repeat"] > 1
                  else "one run)\n"))
        L.append("| window N (records per partition) | duro-enricher rebuild records/s | plain "
                 "librdkafka read records/s (before / after) | rebuild ÷ plain read | pause of "
                 "the partition that stays ms | pause of the partition that moves ms | of "
                 "which the new member's reading ms | enricher A peak RSS MiB |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")

        def span(v, r, nd=0):
            if rb["repeat"] == 1:
                return fmt(v, nd)
            return f"{fmt(v, nd)} ({fmt(r[0], nd)}–{fmt(r[1], nd)})"
        for w in W:
            L.append(f"| {fmt(w['records'])} | {fmt(w['rate'])} | {fmt(w['plain_before'])} / "
                     f"{fmt(w['plain_after'])} | {span(w['ratio'], w['ratio_range'], 2)} | "
                     f"{span(w['stay_ms'], w['stay_range'])} | "
                     f"{span(w['move_ms'], w['move_range'])} | {fmt(w['move_read_ms'])} | "
                     f"{fmt(mib(w['vm_hwm_kib_a']), 1)} |")
        L.append("")
        lo, hi = W[0], W[-1]
        stay_x = hi["stay_ms"] / lo["stay_ms"] if lo["stay_ms"] else None
        slope = ((hi["move_ms"] - lo["move_ms"]) / (hi["records"] - lo["records"]) * 1e5
                 if hi["records"] > lo["records"] else None)
        hows = sorted({h for w in W for h in w["stay_hows"]}), \
            sorted({h for w in W for h in w["move_hows"]})
        L.append(f"The partition that stays: its set {' / '.join(hows[0])} by the member that "
                 f"held it; the partition that moves: its set {' / '.join(hows[1])} by the "
                 f"member that joined. Pause of the partition that stays at the largest window "
                 f"÷ at the smallest: {fmt(stay_x, 2)}; the pause of the partition that moves "
                 f"grows by {fmt(slope)} ms per 100,000 records of window. Of the pause of the "
                 f"partition that stays, revoked → assigned again took " +
                 ", ".join(f"{fmt(w.get('stay_assigned_ms'))}" for w in W) +
                 " ms (by window); the rest is the wait until the member checked the "
                 f"partition's committed offset and kept its set. Revocations of the "
                 f"first member per run: at most {max(w['revokes'] for w in W)}. For comparison "
                 f"(not in the ratio), the rebuild records/s of the partition A read second "
                 f"(the same records as partition 0) and of the moved partition by B: " +
                 ", ".join(f"{fmt(w['records'])}: {fmt(w.get('rate_second'))} / "
                           f"{fmt(w.get('rate_move'))}" for w in W) + ".\n")
        ratios = {w["records"]: w["ratio"] for w in W}
        good = [n for n, v in ratios.items() if v is not None and v >= 0.5]
        goals.append(("dedupe rebuild ≥ 0.5 × a plain librdkafka read of the same partition",
                      "by window: " + ", ".join(f"{fmt(n)}: {fmt(v, 2)}"
                                                for n, v in ratios.items()),
                      "met" if len(good) == len(ratios) else
                      (f"met at {', '.join(fmt(n) for n in good)} only" if good else "not met")))
        goals.append(("dedupe rebuild: rebalance pause of a partition that stays, at the largest "
                      "window ≤ 1.5 × at the smallest",
                      f"{fmt(hi['stay_ms'])} ms at {fmt(hi['records'])}, {fmt(lo['stay_ms'])} ms "
                      f"at {fmt(lo['records'])}: {fmt(stay_x, 2)}×",
                      "met" if stay_x is not None and stay_x <= 1.5 else "not met"))
    sn = res.get("snapshot")
    if sn:
        lib, sm = sn["library"], sn["small_library"]
        L_, E_, P_ = (sn[k]["ids_per_s"] for k in ("list_capacity", "lookup_capacity",
                                                   "pipeline_capacity"))
        SP = sn["small_pipeline_capacity"]["ids_per_s"]
        li, e2, d = sn["listing"], sn["e2e"], sn["defaults"]
        en = sn["enricher"]
        L.append(f"### Snapshot: `duro-enricher snapshot` of a library of {fmt(lib['components'])} "
                 f"components and {fmt(lib['change_orders'])} change orders against the GraphQL "
                 f"double's capacity (double at {sn['latency_ms']:g} ms per request; listing "
                 f"pages of {sn['page_size']} ids, one page per transaction; enricher "
                 f"DURO_BATCH_MAX={en['DURO_BATCH_MAX']}, "
                 f"DURO_GRAPHQL_MAX_IDS={en['DURO_GRAPHQL_MAX_IDS']}, "
                 f"DURO_BATCH_WAIT_MS={en['DURO_BATCH_WAIT_MS']}, "
                 f"DURO_GRAPHQL_CONCURRENCY={en['DURO_GRAPHQL_CONCURRENCY']})\n")
        L.append("| | ids | seconds | ids/s | ÷ its capacity | GraphQL requests per id: "
                 "listing / enrichment | CPU % enricher / double / broker |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for c, what in ((sn["list_capacity"], f"GraphQL double alone: listing the library, one "
                         f"client following the pages (the better of a run right before and "
                         f"one right after the snapshot's) = **listing capacity**"),):
            L.append(f"| {what} | {fmt(c['ids'])} | {fmt(c['seconds'], 1)} | {fmt(c['ids_per_s'])} "
                     f"| 1.00 | {fmt(c['requests'] / max(c['ids'], 1), 4)} / – | – |")
        lc = sn["lookup_capacity"]
        L.append(f"| GraphQL double alone: 100-id lookups, components and change orders in the "
                 f"library's proportion, {lc['threads']} clients back to back (the better of 4 "
                 f"and 8) | – | {fmt(lc['seconds'], 1)} | {fmt(E_)} | – | – / "
                 f"{fmt(1 / lc['ids_per_request'], 4)} | – |")
        pc = sn["pipeline_capacity"]
        L.append(f"| GraphQL double alone: listing and lookups at once, one client listing, "
                 f"{pc['threads']} threads looking each page up as it comes (the better of 4 and "
                 f"8) = **end-to-end capacity** | {fmt(pc['looked_up'])} | {fmt(pc['seconds'], 1)} "
                 f"| {fmt(P_)} | 1.00 | {fmt(pc['list_requests'] / max(pc['looked_up'], 1), 4)} / "
                 f"{fmt(pc['lookup_requests'] / max(pc['looked_up'], 1), 4)} | – |")
        L.append(f"| snapshot listing: DURO_SNAPSHOT_RATE=0, DURO_GRAPHQL_RATE=0, "
                 f"DURO_STATE_TOPICS=false, no enricher (its own `seconds`) | {fmt(li['listed'])} "
                 f"| {fmt(li['seconds'], 1)} | {fmt(li['ids_per_s'])} | "
                 f"**{fmt(sn['listing_ratio'], 2)}** of listing | "
                 f"{fmt(li['list_requests'] / max(li['listed'], 1), 4)} / – | – |")

        def e2e_row(r, what, cap, ratio):
            cpu = r.get("cpu_pct") or {}
            return (f"| {what} | {fmt(r['ids'])} | {fmt(r['seconds'], 1)} | {fmt(r['ids_per_s'])} "
                    f"| **{fmt(ratio, 2 if ratio and ratio >= 0.1 else 3)}** of {fmt(cap)} | "
                    f"{fmt(r['list_per_id'], 4)} / {fmt(r['lookup_per_id'], 4)} | "
                    + " / ".join(str(cpu.get(k, "–")) for k in ("enricher", "double", "broker"))
                    + " |")
        L.append(e2e_row(e2, "snapshot + running enricher, both unpaced (DURO_SNAPSHOT_RATE=0, "
                         "DURO_GRAPHQL_RATE=0 in both), state topics on: start → all pings "
                         "enriched", P_, sn["e2e_ratio"]))
        L.append(e2e_row(d, f"the same at the defaults (DURO_SNAPSHOT_RATE={sn['default_rate']}, "
                         f"DURO_GRAPHQL_RATE=20 in both) on a library of "
                         f"{fmt(sm['components'])} + {fmt(sm['change_orders'])} (its capacity "
                         f"measured on it)", SP, sn["defaults_ratio"]))
        L.append("")
        L.append("\n".join("- " + x for x in snapshot_figures(sn)))
        L.append("")
        def pages_text(r):
            pg = r.get("pages") or {}
            ks = pg.get("kinds") or {}
            if not ks:
                return "–"
            return (", ".join(f"{k} {fmt(v['first_page_s'], 2)}–{fmt(v['last_page_s'], 2)} s"
                              for k, v in ks.items()) +
                    f": {fmt(pg['ids_between'])} ids in {fmt(pg['seconds_between'], 2)} s = "
                    f"{fmt(pg['ids_per_s'])} ids/s")
        lp = (li.get("pages") or {}).get("ids_per_s")
        L.append(f"Where the listing run's {fmt(li['seconds'], 2)} s went (the snapshot's "
                 f"`/metrics` polled every 50 ms): each kind's pages, from the first page "
                 f"committed to the last, {pages_text(li)} (÷ listing capacity = "
                 f"{fmt(lp / L_ if lp and L_ else None, 2)}); the rest is before the first "
                 f"page, between the kinds and after the last page. The same in the "
                 f"end-to-end run: {pages_text(e2)}.\n")
        ex = e2["ids"] / e2["snapshot_done_s"] if e2.get("snapshot_done_s") else None
        L.append(f"Snapshot + enricher, unpaced: the last ping was enriched after "
                 f"{fmt(e2['seconds'], 1)} s, the snapshot exited after "
                 f"{fmt(e2.get('snapshot_done_s'), 1)} s (after each kind's last page it "
                 f"sweeps it: reads the kind's state topic; counted to its exit, {fmt(ex)} "
                 f"ids/s = {fmt(ex / P_ if ex and P_ else None, 2)} of the capacity); "
                 f"{fmt(e2['list_requests'])} listing and "
                 f"{fmt(e2['lookup_requests'])} lookup requests ({fmt(e2['ids_looked_up'])} ids "
                 f"looked up) for {fmt(e2['ids'])} ids; the enricher committed "
                 f"{fmt(e2['transactions'])} transactions, {fmt(e2['dlq'])} records to the DLQ, "
                 f"and its committed offsets stopped {fmt(e2.get('committed_short_of_end'))} "
                 f"short of the raw end (trailing transaction markers); "
                 f"peak RSS {fmt(mib(e2.get('vm_hwm_kib')), 1)} MiB. At the defaults: the "
                 f"snapshot exited after {fmt(d.get('snapshot_done_s'), 1)} s, all enriched "
                 f"after {fmt(d['seconds'], 1)} s; requests per id listing / enrichment "
                 f"{fmt(d['list_per_id'], 4)} / {fmt(d['lookup_per_id'], 4)}. Min(listing, "
                 f"lookup capacity), the bound if listing and lookups did not share the double: "
                 f"{fmt(min(L_, E_))} ids/s.\n")
        goals.append(("snapshot listing ≥ 0.8 × the double's listing capacity",
                      f"{fmt(li['ids_per_s'])} ÷ {fmt(L_)} ids/s = {fmt(sn['listing_ratio'], 2)}",
                      "met" if sn["listing_ratio"] >= 0.8 else "not met"))
        goals.append(("snapshot end-to-end (with the enricher, unpaced) ≥ 0.5 × the double's "
                      "capacity for listing and lookups at once",
                      f"{fmt(e2['ids_per_s'])} ÷ {fmt(P_)} ids/s = {fmt(sn['e2e_ratio'], 2)}",
                      "met" if sn["e2e_ratio"] >= 0.5 else "not met"))
        goals.append(("snapshot: ≤ 0.02 GraphQL requests per snapshot id, listing and "
                      "enrichment together",
                      f"{fmt(e2['list_per_id'], 4)} + {fmt(e2['lookup_per_id'], 4)} = "
                      f"{fmt(e2['requests_per_id'], 4)}",
                      "met" if e2["requests_per_id"] <= 0.02 else "not met"))
    L.append("### Goals (reported, never asserted)\n")
    L.append("| goal | measured | |")
    L.append("|---|---|---|")
    for g in goals:
        L.append(f"| {g[0]} | {g[1]} | {g[2]} |")
    return "\n".join(L) + "\n", goals


NOTES_MARK = ("<!-- Hand-written notes: everything below this line is kept when "
              "scripts/bench.sh rewrites the page. -->")
# The page's sections; a run that leaves some out (--only) keeps theirs from the page as it
# was: their results (cut at the "### " headings report() writes), their goals' rows and
# their paragraphs of "What was run" (cut at their bold openings).
# The librdkafka versions sections (scripts/bench.sh --rdkafka both) are what the ingress
# and enricher sections become in such a run; on the page they sit next to those.
SECTIONS = {"ingress": "Ingress", "enricher": "Enricher",
            "rdkafka-ingress": "librdkafka versions: ingress",
            "rdkafka-enricher": "librdkafka versions: enricher", "state": "State topics",
            "wire": "Wire headers", "rebuild": "Dedupe rebuild", "snapshot": "Snapshot"}
HEADINGS = {"### Ingress": "ingress", "### Enricher": "enricher",
            "### librdkafka versions: ingress": "rdkafka-ingress",
            "### librdkafka versions: enricher": "rdkafka-enricher", "### State topics": "state",
            "### Wire headers": "wire", "### Dedupe rebuild": "rebuild",
            "### Snapshot": "snapshot", "### Goals": "goals"}
PARAGRAPHS = {"**Ingress.**": "ingress", "**Enricher.**": "enricher",
              "**librdkafka versions, ingress.**": "rdkafka-ingress",
              "**librdkafka versions, enricher.**": "rdkafka-enricher",
              "**State topics.**": "state", "**Wire headers.**": "wire",
              "**Dedupe rebuild.**": "rebuild", "**Snapshot.**": "snapshot"}
# what --only takes: the page's sections but the versions ones (--rdkafka both turns
# ingress and enricher into them)
ONLY = [s for s in SECTIONS if not s.startswith("rdkafka-")]
# which run wrote each section: a hidden line of the page, JSON
RUNS_MARK = "<!-- bench runs: "


def goal_section(goal: str) -> str:
    return ("ingress" if goal.startswith("bridge") else
            "rebuild" if goal.startswith("dedupe") else
            "snapshot" if goal.startswith("snapshot") else
            "state" if goal.startswith("state topics") else "enricher")


def page_parts(text: str) -> dict:
    """A results page (or report()'s table alone) cut into its parts: "results"
    {section: text from its heading}, "goals" {section: [table rows]}, "run" {section or
    "settings": its part of "What was run"}, "runs" {section: which run wrote it}."""
    out: dict = {"results": {}, "goals": {}, "run": {}, "runs": {}}
    body = text.split(NOTES_MARK, 1)[0]
    results, _, run = body.partition("## What was run\n")
    cur = None
    for line in results.splitlines(keepends=True):
        if line.startswith("### "):
            cur = next((s for h, s in HEADINGS.items() if line.startswith(h)), None)
        if cur == "goals":
            if line.startswith("| ") and not line.startswith("| goal |"):
                goal = line[2:].split(" | ", 1)[0]
                out["goals"].setdefault(goal_section(goal), []).append(line.rstrip("\n"))
        elif cur:
            out["results"][cur] = out["results"].get(cur, "") + line
    cur = "settings"
    for line in run.splitlines(keepends=True):
        cur = next((s for p, s in PARAGRAPHS.items() if line.startswith(p)), cur)
        out["run"][cur] = out["run"].get(cur, "") + line
    out["run"] = {k: v.strip("\n") + "\n" for k, v in out["run"].items() if v.strip()}
    m = re.search(re.escape(RUNS_MARK) + r"(\{.*?\}) -->", text)
    if m:
        out["runs"] = json.loads(m.group(1))
    else:
        # a page written before sections could come from different runs: all from one
        m = re.search(r"on (\d{4}-\d\d-\d\d \d\d:\d\d UTC) \((full|quick)", text)
        src = re.search(r"; source (\S+)\.\n", text)
        if m:
            out["runs"] = {s: f"{m.group(1)}, {m.group(2)} run, source "
                              f"{src.group(1) if src else '?'}" for s in out["results"]}
    return out


def rdk_noise(sec: dict) -> str:
    o = sec.get("others_cpu_pct")
    if o is None:
        return ""
    if o < 5:
        return (f"Other processes took {fmt(o)}% of one CPU over the section: the machine "
                f"was otherwise quiet.")
    return (f"Other work ran on the machine meanwhile: other processes took {fmt(o)}% of one "
            f"CPU over the section (load average over 1 min {fmt(sec['load_avg_start'][0], 2)} "
            f"at its start, {fmt(sec['load_avg_end'][0], 2)} at its end), noise this "
            f"benchmark cannot avoid; the per-run column says how much of it each version's "
            f"runs met.")


def write_doc(path: Path, res: dict, table: str, a) -> None:
    ver, mach = res["versions"], res["machine"]
    notes, old = "", page_parts("")
    if path.exists():
        text = path.read_text()
        old = page_parts(text)
        if NOTES_MARK in text:
            notes = text.split(NOTES_MARK, 1)[1]
    mode = "quick (smoke test; numbers not meaningful)" if a.quick else "full"
    new = page_parts(table)
    ran = [s for s in SECTIONS if s in res]
    kept = [s for s in SECTIONS if s not in res and s in old["results"]]
    runs = {s: f"{res['date']}, {'quick' if a.quick else 'full'} run, source {ver['git']}"
            for s in ran}
    runs.update({s: old["runs"].get(s, "an earlier run") for s in kept})
    shown = [s for s in SECTIONS if s in runs]

    results = "".join(new["results"].get(s, "") if s in res else old["results"][s]
                      for s in shown)
    goal_rows = [r for s in shown for r in (new if s in res else old)["goals"].get(s, [])]
    goals = ("### Goals (reported, never asserted)\n\n| goal | measured | |\n|---|---|---|\n" +
             "".join(r + "\n" for r in goal_rows))
    provenance = ""
    if kept:
        by_run: dict[str, list[str]] = {}
        for s in shown:
            by_run.setdefault(runs[s], []).append(SECTIONS[s])
        provenance = ("\n\nThis run measured only: " + ", ".join(SECTIONS[s] for s in ran) +
                      ". The sections come from these runs: " +
                      "; ".join(f"{', '.join(v)}: {k}" for k, v in by_run.items()) +
                      " (the Machine and Versions lines are this run's).")

    # "What was run": this run's paragraphs, the kept sections' as they were
    run = {}
    if "ingress" in res or "enricher" in res:
        run["settings"] = f"""\
Settings: connection counts {', '.join(map(str, a.conns))}, {a.seconds:g} s each per server,
{a.wrk_threads} wrk threads, keep-alive, wrk timeout 5 s, a warm-up run before each server's
series; a pool of {a.pool_n:,} distinct pre-signed webhooks (Duro's event mix, each with its own
event id and resource id, {res.get('ingress', {}).get('pool_body_bytes', '~190')} bytes of body
on average). Enricher: {a.enricher_n:,} preloaded events, {int(100 * a.repeat)}% of them naming
a resource that a recent event of the same kind named; the double at
{a.double_latency_ms:g} ms per request, its capacity measured for {a.capacity_seconds:g} s; the
naive enricher for at most {a.naive_seconds:g} s; the moderate load {a.moderate_rate:g}
events/s for {a.moderate_seconds:g} s.
"""
    elif "settings" in old["run"] and any(s in kept for s in ("ingress", "enricher")):
        run["settings"] = old["run"]["settings"]
    if "ingress" in res:
        run["ingress"] = f"""\
**Ingress.** `wrk --latency` with `tests/bench/post.lua` posts the pool in turn (each wrk
thread from its own place) to:
1. **HTTP ceiling** (`tests/bench/http_ceiling.c`): libmicrohttpd in duro-bridge's threading
   mode (`MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME`, a pool of one thread per
   CPU), reads the body, verifies the signature with the project's `common/dsig.c` and
   `common/dsecrets.c`, answers 200. No Kafka.
2. **Kafka ceiling** (`tests/bench/kafka_ceiling.c`): librdkafka with the bridge's producer
   settings (`enable.idempotence=true`, `acks=all`, `linger.ms=0.1`,
   `socket.nagle.disable=true`, `partitioner=murmur2_random`, `message.timeout.ms=9000`)
   producing the records the bridge would produce for the same pool (key, value, the six
   headers) as fast as it can with the queue kept full, for the same duration; records/s =
   delivery reports within the window. The "Kafka, c in flight" column is the same producer
   in a closed loop of at most c records outstanding: what the bridge could reach with c
   connections if HTTP cost nothing (each connection waits for its answer).
3. **duro-bridge** (release build), raw topic of {PARTITIONS} partitions, default settings
   (threads = CPUs, ack timeout 10 s).
4. **Node reference** (`tests/bench/node-ref/server.js`): `node:http` + kafkajs
   {ver['kafkajs']} (idempotent producer, `acks: -1`), HMAC-SHA256 hex compared with
   `crypto.timingSafeEqual`, one `producer.send()` per webhook, 200 after it resolved. One
   process, as a team would first write it from Duro's documentation.

Accepted/s counts 2xx only (wrk's non-2xx and socket errors are in the error columns);
latency percentiles are wrk's, over all answers. CPU % is a process's CPU time over the run's
wall time (200% = both CPUs); CPU µs per accepted is the server's CPU time divided by the 2xx
answers. Peak RSS is VmHWM from `/proc/PID/status` at the end of the server's series (the
Kafka ceiling's own, at its end). The single broker has replication factor 1, so `acks=all`
waits for the leader's log append only.
"""
    if "enricher" in res:
        run["enricher"] = f"""\
**Enricher.** Raw events as duro-bridge writes them (same key, value and headers) are
preloaded with confluent-kafka into a topic of {PARTITIONS} partitions; output topics have
{PARTITIONS} partitions each ({len(DEFAULT_MIX)} event types). The GraphQL double runs as its
own process (`python -m duro_double serve --latency-ms {a.double_latency_ms:g}`). Its capacity
alone is `duro_double.bench.run`: 4, then 8 client threads sending 100-id queries back to
back, components and change orders in the event mix's proportion (the enricher's own
queries); the better of the two is its capacity. duro-enricher (release build) then drains the preload in the set-ups of the table, each
with its own copy of the preload (same resources, fresh event ids), consumer group and output
topics, timed from its start until the group's committed offsets reach the end of the raw
topic (polled every 100 ms). GraphQL requests and ids come from the double's `/_stats`; peak
RSS is VmHWM (over the drain and, where run, the moderate load); the dedupe-set size comes from
`/metrics`; CPU % as above, over the drain. The moderate load then produces fresh events at a
fixed rate into the raw topic while the enricher runs, and a `read_committed` consumer of the
output topics (`fetch.wait.max.ms=10`, so that it asks often) notes when each event's output
becomes visible: latency = seen − produce time, both the wall clock of this machine. The naive
enricher (`tests/bench/naive_enricher.py`, Python: one GraphQL request per event, in order,
produce, wait for the delivery, commit synchronously; **not transactional**, no dedupe) reads
the first set-up's preload in its own group for a bounded time.
"""
    if "rdkafka-ingress" in res:
        iv = res["rdkafka-ingress"]
        v0, v1 = iv["versions"]["system"], iv["versions"]["current"]
        rounds = "once" if iv["rounds"] == 1 else f"{iv['rounds']} times"
        run["rdkafka-ingress"] = f"""\
**librdkafka versions, ingress.** `scripts/bench.sh --rdkafka both` builds the same source
twice (release): against the system librdkafka ({v0}, Debian 12's package) and against
{v1} (`scripts/rdkafka.sh`'s build, `-DDURO_RDKAFKA_PREFIX=<its prefix>`: the programs'
RPATH loads it; `duro-bridge --version` names the library each build runs on, and the run
stops if both name the same). The ingress section's parts that use librdkafka then run once
per build, on the same broker, pool ({iv['pool_n']:,} pre-signed webhooks,
{iv['pool_body_bytes']} bytes of body on average) and wrk settings ({iv['wrk_threads']} wrk
threads, keep-alive, timeout 5 s), {iv['seconds']:g} s per run; the HTTP ceiling and the
Node reference do not use it and are left out. First each build's Kafka ceiling
(`tests/bench/kafka_ceiling`, compiled in each build against its librdkafka): unbounded,
then closed loops of c records in flight for c = {', '.join(map(str, iv['conns']))}; then
both builds' duro-bridge (default settings, each on a raw topic of its own of {PARTITIONS}
partitions) are started, each warmed up (wrk, 8 connections), and wrk runs each connection
count against one build and then the other. All of this {rounds}; the build that goes
first alternates from one step (a connection count, or the ceiling's unbounded run) to the
next and, for each step, from one round to the next, so that a drift of the shared machine,
or going first, weighs on both alike. Both bridges run throughout the
bridge runs (the one not measured idles). Figures are medians over the rounds (min–max in
brackets when more than one); ratios are {v1} ÷ {v0} of the medians: above 1 is more
accepted/s, or a longer latency, on {v1}. Latency is wrk's, over all answers; mean
produce→ack is the bridge's `duro_bridge_ack_latency_seconds` over the run; CPU µs per
accepted as in the ingress section. *Others' CPU %*: the machine's CPU time in processes
(`/proc/stat` user + nice + system) less that of this benchmark's processes (the runner, its
reaped children such as wrk and kafka_ceiling, the bridges and the broker), over the run's
wall time: what other work on the machine took meanwhile (100 = one of its
{res['machine']['nproc']} CPUs). {rdk_noise(iv)}
"""
    if "rdkafka-enricher" in res:
        ev = res["rdkafka-enricher"]
        v0, v1 = ev["versions"]["system"], ev["versions"]["current"]
        rounds = "once" if ev["rounds"] == 1 else f"{ev['rounds']} times"
        lib = ev["library"]
        run["rdkafka-enricher"] = f"""\
**librdkafka versions, enricher.** The two builds of the section above; the enricher
section's duro-enricher drains run once per build: the GraphQL double as there ({lib['components']:,}
components, {lib['change_orders']:,} change orders, {ev['latency_ms']:g} ms per request), its
capacity measured once ({ev['capacity_seconds']:g} s, 4 then 8 clients, the better one);
{'a warm-up drain per build on one preload of its own comes first, not reported; ' if
ev.get('warmup') else 'no warm-up drains (quick run); '}then, {rounds}, each set-up of the
table is drained by one build and then the other (the build that goes first alternating
as above: from one set-up to the next and, for each set-up, from one round to the next),
each drain on a raw topic of its own ({PARTITIONS} partitions) preloaded right
before it with the same {ev['events']:,} events (same maker and seed,
{int(100 * ev['repeat'])}% repeated resource ids), in a consumer group of its own with its own
output, DLQ, state and progress topics, timed as in the enricher section (start to
committed offsets at the raw topic's end). The set-ups with a moderate-load phase run it
after the drain, per build, as in the enricher section ({ev['moderate_rate']:g} events/s for
{ev['moderate_seconds']:g} s). The naive enricher (Python, with confluent-kafka's own librdkafka)
does not depend on the build and is left out. Figures are medians over the rounds (min–max in brackets when more than one);
the ratio is {v1} ÷ {v0} of the median events/s. CPU µs per event = the enricher's CPU time
over the drain ÷ events. Others' CPU % as in the section above (this benchmark's processes
here: the runner, the enricher, the double and the broker), over each drain (and its
moderate load). {rdk_noise(ev)}
"""
    if "state" in res:
        sb = res["state"]
        run["state"] = f"""\
**State topics.** One raw topic of {PARTITIONS} partitions is preloaded with
{sb['events']:,} events as in the enricher section (same maker and seed, {int(100 * sb['repeat'])}%
repeated resource ids); the GraphQL double runs as there ({sb['latency_ms']:g} ms per request).
duro-enricher (release build, {sb['setup']}) drains it {2 * sb['pairs']} times, alternately
with `DURO_STATE_TOPICS=true` and `=false` (on first), each time in a consumer group of its
own with its own output, DLQ, state and progress topics (the compacted topics are created
beforehand either way; the progress topic is written either way), timed as in the enricher
section; {'a warm-up drain with them on comes first, not reported' if sb.get('warmup') else
'no warm-up drain (quick run)'}. The ratio is the median events/s with them on over the
median with them off. The state records come from `duro_enricher_state_records_total`.
"""
    if "wire" in res:
        wb = res["wire"]
        run["wire"] = f"""\
**Wire headers.** As the state topics section, with `DURO_CLOUDEVENTS` in place of
`DURO_STATE_TOPICS`: one raw topic of {PARTITIONS} partitions preloaded with {wb['events']:,}
events (same maker and seed, {int(100 * wb['repeat'])}% repeated resource ids; the preload
carries no `traceparent`, so the enricher starts a trace for each event, as for a raw
record written before duro-bridge wrote trace context); the GraphQL double at
{wb['latency_ms']:g} ms per request. duro-enricher (release build, {wb['setup']}) drains it
{2 * wb['pairs']} times, alternately with `DURO_CLOUDEVENTS=true` and `=false` (on first),
each time in a consumer group of its own with its own output, DLQ, state and progress topics,
timed as in the enricher section; {'a warm-up drain with them on comes first, not reported'
if wb.get('warmup') else 'no warm-up drain (quick run)'}. On, every output, state and DLQ
record carries the CloudEvents binary-mode `ce_*` headers and the W3C trace headers
(`traceparent`, `tracestate` when the raw record has one); off, the trace headers only. The
ratio is the median events/s with them on over the median with them off. Records written =
`duro_enricher_produced_total` + `duro_enricher_state_records_total` +
`duro_enricher_dlq_total`; bytes on the broker = the sizes of the log segments (`*.log` in
the broker's data folder) of the drain's output, DLQ, state and progress topics right after
it (transaction markers included, no compression), divided by the events.
"""
    if "rebuild" in res:
        rb = res["rebuild"]
        windows = ", ".join(f"{w['records']:,}" for w in rb["windows"])
        times = "once" if rb["repeat"] == 1 else f"{rb['repeat']} times"
        run["rebuild"] = f"""\
**Dedupe rebuild.** For each window N ({windows} records) a raw topic of
{rb['partitions']} partitions is filled, each partition with N records shaped as duro-bridge
writes them (`tests/bench/rawpart fill`: `ITEM_UPDATE`, distinct event ids, the bridge's six
headers); then, {times} for each N, a fresh consumer group's offsets are committed at both
partitions' ends with the metadata an enricher writes (`{{"last_ts":<ms>}}`, the last
record's timestamp), so that both partitions lie wholly in the dedupe window and an enricher
given one reads all of it back. *Rate:* a plain librdkafka consumer (`rawpart read`: assign,
`read_committed`, librdkafka's defaults otherwise) reads partition 0 from its first offset to
its end right before enricher A starts, and again right after A's rebuild, while A is idle.
duro-enricher A (release build, default settings but `session.timeout.ms=3000`,
`heartbeat.interval.ms=500`) is assigned both partitions and reads them one after the other;
its rate for partition 0 is the records over the reading time its log line gives (for the
partition read second: over the time between the two lines). Rebuild ÷ plain read = that
rate ÷ the better of the two plain reads. *Pause:* with A idle, holding both complete sets,
enricher B joins the group; the eager range assignment gives one partition back to A, which
keeps its set (its committed offset did not move), and the other to B, which reads it. A
partition's pause runs from A's "revoked" log line to the line saying its set is ready (A's
"kept", B's "rebuilt"): the time in which no record of it can be processed; both programs
log this machine's wall clock in ms. The figures are the medians of the runs; peak RSS is
A's VmHWM (both sets).
"""
    if "snapshot" in res:
        sn = res["snapshot"]
        lib, sm = sn["library"], sn["small_library"]
        en = sn["enricher"]
        warm = ("A warm-up (the end-to-end run once, on topics of its own) comes first, not "
                "reported." if sn.get("warmup") else "No warm-up (quick run).")
        run["snapshot"] = f"""\
**Snapshot.** One GraphQL double (`python -m duro_double serve --latency-ms
{sn['latency_ms']:g}`) holds {lib['components']:,} components and {lib['change_orders']:,}
change orders. *Capacity* (`tests/duro_double/bench.py`, no Kafka): (a) listing: one client
on one keep-alive connection lists both kinds with the snapshot's own queries
(`schemas/graphql/snapshot_*.graphql`), pages of {sn['page_size']} ids, each page after the
last one's `endCursor` (a keyset cursor chain cannot be split, so one client following it is
what any lister gets); run right before and right after the snapshot's listing, the better
of the two counts; (b) lookups: 4, then 8 clients sending the enricher's 100-id queries back
to back, components and change orders in the library's proportion, for
{a.capacity_seconds:g} s; (c) both at once, the end-to-end capacity: one client lists as in
(a) and hands each page, in requests of {en['DURO_GRAPHQL_MAX_IDS']} ids, to 4 (then 8)
threads that look it up; ids/s = ids looked up ÷ time from the first listing request to
the last lookup's answer. (c) is the capacity the end-to-end ratio uses: every id costs
the double a share of a listing and a lookup, and both run in the same process, so
min((a), (b)) would overstate what it can serve. *Listing*: `duro-enricher snapshot --json`
(release build) with `DURO_SNAPSHOT_RATE=0`, `DURO_GRAPHQL_RATE=0`,
`DURO_STATE_TOPICS=false`, no enricher, into a raw topic of its own ({PARTITIONS}
partitions); ids/s = `listed` ÷ its `seconds` (from its start, transactions' set-up
included). *End-to-end*: a duro-enricher (release build, `DURO_GRAPHQL_RATE=0`, state topics
on, `DURO_BATCH_MAX={en['DURO_BATCH_MAX']}`, `DURO_GRAPHQL_MAX_IDS={en['DURO_GRAPHQL_MAX_IDS']}`,
`DURO_BATCH_WAIT_MS={en['DURO_BATCH_WAIT_MS']}`,
`DURO_GRAPHQL_CONCURRENCY={en['DURO_GRAPHQL_CONCURRENCY']}`, the defaults) is started on a
fresh raw topic and waited for until its {PARTITIONS} partitions are assigned; then the
snapshot starts (unpaced, state topics on: after each kind's listing it sweeps that kind's
state topic) and the clock runs from its start to the moment the enricher group's committed
offsets (polled every 50 ms) first covered every ping: on each partition the raw topic's end
once the snapshot has exited, less the transaction markers behind the partition's last ping
(read back with a `read_committed` consumer; the enricher does not commit past a marker
that no record follows). GraphQL requests come from the double's `/_stats`, reset at the
snapshot's start: `list_requests` (listing) and `lookup_requests` (enrichment), each divided
by the ids the snapshot wrote. CPU % as above, from the snapshot's start to the last check.
{warm}
*Defaults*: the end-to-end run again with the rates left at their defaults
(`DURO_SNAPSHOT_RATE={sn['default_rate']}`, `DURO_GRAPHQL_RATE=20` in both programs) on a
second double holding {sm['components']:,} components and {sm['change_orders']:,} change
orders (the paced run takes library ÷ {sn['default_rate']} s), its capacity (c) measured on
it with the thread count that won on the larger one.
"""
    for s in kept:
        if s in old["run"]:
            run[s] = old["run"][s]
    what = "\n".join(run[k] for k in ("settings", *SECTIONS) if k in run)

    cur = ""
    if ver.get("librdkafka current") and any(s.startswith("rdkafka-") for s in res):
        cur = (f" and {ver['librdkafka current']} (`scripts/rdkafka.sh`'s build: the librdkafka "
               f"versions sections' second build)")
    txt = f"""# Benchmarks
{RUNS_MARK}{json.dumps(runs, ensure_ascii=False)} -->

Written by `scripts/bench.sh` on {res['date']} ({mode} run). Re-run: `scripts/bench.sh`
(`--quick` for a smoke test). The machine is small, shared and noisy: **absolute numbers are
noise; read the ratios**, which come from programs measured one after the other in the same
run, against the same broker, with the same load generator. Nothing here is asserted.{provenance}

Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['memory']} memory, Linux {mach['kernel']}.
Everything (load generator, servers, broker, GraphQL double) shares these CPUs.

Versions: librdkafka {ver['librdkafka']} (system; duro-bridge, duro-enricher, ceilings){cur},
libmicrohttpd {ver['libmicrohttpd']}, {ver['openssl']}, Apache Kafka {ver['kafka']}
(one KRaft node, `scripts/kafka.sh`; {ver['java']}), {ver['wrk']}, Node {ver['node']} with
kafkajs {ver['kafkajs']}, Python {ver['python']} with confluent-kafka {ver['confluent-kafka']}
(librdkafka {ver['confluent-kafka librdkafka']}), {ver['compiler']}; source {ver['git']}.

{results}{goals}
## What was run

{what}
{NOTES_MARK}"""
    path.write_text(txt + (notes or "\n"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--kafka-pid-file")
    p.add_argument("--bin-dir", type=Path, required=True, help="duro-bridge and duro-enricher")
    p.add_argument("--bench-bin-dir", type=Path, required=True, help="http_ceiling, kafka_ceiling")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--doc", type=Path, help="write the results page here")
    p.add_argument("--json", type=Path, help="write the raw results here")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", metavar="S[,S...]",
                   help="run these sections only (" + ", ".join(ONLY) + "); the page keeps "
                   "the others")
    p.add_argument("--bin-dir-current", type=Path,
                   help="a second build's duro-bridge and duro-enricher, against another "
                   "librdkafka (scripts/bench.sh --rdkafka both): the ingress and enricher "
                   "sections then run once per build, side by side (the librdkafka versions "
                   "sections) instead of their usual form")
    p.add_argument("--bench-bin-dir-current", type=Path,
                   help="that build's kafka_ceiling")
    p.add_argument("--rdkafka-repeat", type=int,
                   help="librdkafka versions: rounds, each running every step once per build "
                   "(default 2, quick 1)")
    p.add_argument("--seconds", type=float)
    p.add_argument("--conns")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--pool-n", type=int)
    p.add_argument("--enricher-n", type=int)
    p.add_argument("--repeat", type=float, default=0.30)
    p.add_argument("--double-latency-ms", type=float, default=20)
    p.add_argument("--capacity-seconds", type=float)
    p.add_argument("--naive-seconds", type=float)
    p.add_argument("--moderate-rate", type=float, default=200)
    p.add_argument("--moderate-seconds", type=float)
    p.add_argument("--drain-timeout", type=float, default=600)
    p.add_argument("--variant", action="append", default=[], metavar="NAME[+]:K=V,...",
                   help="experiment: run only these enricher set-ups (NAME+ adds the "
                   "moderate-load phase); repeatable")
    p.add_argument("--no-naive", action="store_true", help="skip the naive enricher")
    p.add_argument("--state-repeat", type=int,
                   help="state topics on / off: pairs of drains (default 2, quick 1)")
    p.add_argument("--wire-repeat", type=int,
                   help="CloudEvents headers on / off: pairs of drains (default 2, quick 1)")
    p.add_argument("--rebuild-windows", metavar="N,N,...",
                   help="dedupe rebuild: records per raw partition (default 50000,400000,2000000; "
                   "quick: 20000,100000)")
    p.add_argument("--rebuild-repeat", type=int,
                   help="dedupe rebuild: runs per window, the median reported (default 5, quick 1)")
    p.add_argument("--snapshot-library", metavar="COMPONENTS,CHANGE_ORDERS",
                   help="snapshot: the library (default 30000,6000; quick 3000,600)")
    p.add_argument("--snapshot-small-library", metavar="COMPONENTS,CHANGE_ORDERS",
                   help="snapshot at the default rates: its library (default 3000,600; "
                   "quick 500,100)")
    p.add_argument("--from-json", type=Path,
                   help="run nothing: render the table (and --doc) from a results.json")
    a = p.parse_args(argv)
    if a.only:
        a.only = [x.strip() for x in a.only.split(",") if x.strip()]
        bad = [x for x in a.only if x not in ONLY]
        if bad or not a.only:
            p.error(f"--only: {', '.join(bad) or 'nothing'}: not among {', '.join(ONLY)}")
    if (a.bin_dir_current is None) != (a.bench_bin_dir_current is None):
        p.error("--bin-dir-current and --bench-bin-dir-current go together")
    a.variants = []
    for v in a.variant:
        name, _, kvs = v.partition(":")
        env = dict(kv.split("=", 1) for kv in kvs.split(",") if kv)
        a.variants.append((name.rstrip("+"), f"experiment {name.rstrip('+')}: {kvs}", env,
                           name.endswith("+")))
    q = a.quick
    a.seconds = a.seconds or (3 if q else 15)
    a.conns = [int(x) for x in (a.conns or ("8,32" if q else "8,32,128,256")).split(",")]
    a.pool_n = a.pool_n or (2000 if q else 20000)
    a.enricher_n = a.enricher_n or (2000 if q else 60000)
    a.capacity_seconds = a.capacity_seconds or (3 if q else 10)
    a.naive_seconds = a.naive_seconds or (5 if q else 30)
    a.moderate_seconds = a.moderate_seconds or (5 if q else 30)
    a.rebuild_windows = [int(x) for x in (a.rebuild_windows or
                                          ("20000,100000" if q else "50000,400000,2000000"))
                         .split(",")]
    # 5 runs: a pause of the partition that stays is some tens of ms, its spread as large
    a.rebuild_repeat = a.rebuild_repeat or (1 if q else 5)
    a.state_repeat = a.state_repeat or (1 if q else 2)
    a.wire_repeat = a.wire_repeat or (1 if q else 2)
    a.rdkafka_repeat = a.rdkafka_repeat or (1 if q else 2)
    a.snapshot_library = [int(x) for x in (a.snapshot_library or
                                           ("3000,600" if q else "30000,6000")).split(",")]
    a.snapshot_small_library = [int(x) for x in (a.snapshot_small_library or
                                                 ("500,100" if q else "3000,600")).split(",")]
    for name, v, hi in (("--seconds", a.seconds, 600), ("--pool-n", a.pool_n, 1_000_000),
                        ("--enricher-n", a.enricher_n, 1_000_000),
                        ("--moderate-seconds", a.moderate_seconds, 600),
                        ("--naive-seconds", a.naive_seconds, 600),
                        ("--moderate-rate", a.moderate_rate, 5000),
                        ("--drain-timeout", a.drain_timeout, 3600)):
        if not 0 < v <= hi:
            p.error(f"{name} must be in (0, {hi}]")
    if any(not 1 <= c <= 1000 for c in a.conns):
        p.error("--conns: each 1..1000")
    if any(not 1000 <= n <= 10_000_000 for n in a.rebuild_windows):
        p.error("--rebuild-windows: each 1000..10000000")
    if not 1 <= a.state_repeat <= 10:
        p.error("--state-repeat must be in 1..10")
    if not 1 <= a.wire_repeat <= 10:
        p.error("--wire-repeat must be in 1..10")
    if not 1 <= a.rdkafka_repeat <= 10:
        p.error("--rdkafka-repeat must be in 1..10")
    if not 1 <= a.rebuild_repeat <= 20:
        p.error("--rebuild-repeat must be in 1..20")
    for name, lib in (("--snapshot-library", a.snapshot_library),
                      ("--snapshot-small-library", a.snapshot_small_library)):
        if len(lib) != 2 or not 100 <= lib[0] <= 1_000_000 or not 100 <= lib[1] <= 1_000_000:
            p.error(f"{name}: two counts, each 100..1000000")
    if a.from_json:
        # JSON turned the connection counts (dict keys) into strings
        res = json.loads(a.from_json.read_text(), object_hook=lambda d: {
            int(k) if k.isdigit() else k: v for k, v in d.items()})
        a.conns = sorted(res["ingress"]["bridge"]["runs"]) if "ingress" in res else a.conns
        a.quick = res.get("quick", False)
        table, _ = report(res, a)
        print(table)
        if a.doc:
            write_doc(a.doc, res, table, a)
        return 0
    a.work.mkdir(parents=True, exist_ok=True)
    os.environ.pop("DURO_CACHE", None)  # the programs warn about unknown DURO_* variables
    broker_pid = None
    if a.kafka_pid_file and Path(a.kafka_pid_file).exists():
        broker_pid = int(Path(a.kafka_pid_file).read_text().strip())

    def on_signal(signum, _frame):
        Proc.stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    res: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "machine": machine(), "versions": versions(a), "quick": q}
    def want(section: str) -> bool:
        return a.only is None or section in a.only
    if a.bin_dir_current and not (want("ingress") or want("enricher")):
        log("--bin-dir-current: no ingress or enricher section in this run, so no second build "
            "runs")
    try:
        if want("ingress") and a.bin_dir_current:
            res["rdkafka-ingress"] = bench_ingress_versions(a, a.work, broker_pid)
        elif want("ingress"):
            res["ingress"] = bench_ingress(a, a.work, broker_pid)
            res["ingress"]["pool_body_bytes"] = pool_body_bytes(a.work / "pool.tsv")
        if want("enricher") and a.bin_dir_current:
            res["rdkafka-enricher"] = bench_enricher_versions(a, a.work, broker_pid)
        elif want("enricher"):
            res["enricher"] = bench_enricher(a, a.work, broker_pid)
        if want("state"):
            res["state"] = bench_state(a, a.work, broker_pid)
        if want("wire"):
            res["wire"] = bench_wire(a, a.work, broker_pid)
        if want("rebuild"):
            res["rebuild"] = bench_rebuild(a, a.work)
        if want("snapshot"):
            res["snapshot"] = bench_snapshot(a, a.work, broker_pid)
    finally:
        Proc.stop_all()
        if a.json:
            a.json.write_text(json.dumps(res, indent=1, default=str))
    if a.variants and "rdkafka-enricher" in res:
        # experiment on both builds: the side-by-side table, no results page
        print("\n".join(rdk_tables(res)))
        return 0
    if a.variants:
        # experiment: no results page, one line per set-up
        cap = res.get("enricher", {}).get("double_capacity", {}).get("ids_per_s")
        for n, r in res.get("enricher", {}).get("variants", {}).items():
            mo = r.get("moderate") or {}
            print(f"{n}: {r['events_per_s']:.0f} events/s ({r['events_per_s'] / cap:.2f} of "
                  f"{cap:.0f} ids/s; ids {r['ids_per_s'] / cap:.2f}), "
                  f"{r['requests_per_event']:.4f} req/event, {r['transactions']} txns, "
                  f"RSS {r.get('vm_hwm_kib')} KiB, CPU % {r.get('cpu_pct')}, moderate p50/p99 "
                  f"{mo.get('p50_ms')}/{mo.get('p99_ms')} ms missing {mo.get('missing')}")
        return 0
    table, _ = report(res, a)
    print(table)
    if a.doc:
        write_doc(a.doc, res, table, a)
        log(f"wrote {a.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
