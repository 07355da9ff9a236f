"""A real Kafka Streams application as a test oracle for the state topics.

``tests/kstreams`` is a small Kafka Streams application (Java 17, Maven, kafka-streams
at the broker's version) that reads ONE state topic with ``builder.table(topic)``
(exactly_once_v2, so read_committed), waits until it has applied every record that
was committed when it started, and dumps its materialised store as JSON
``{key: value parsed as JSON}`` (tombstoned keys absent). KTableDump.java's header
says how it decides it has caught up.

API (all bounded in time; every process started here is killed and every temporary
directory removed before the call returns):

    build(timeout=900.0) -> Path
        Builds the application once per source version (hash of tests/kstreams/pom.xml
        and src/) into $DURO_CACHE/kstreams/<hash>/ and returns that directory. Maven
        runs offline first (scripts/setup.sh has filled ~/.m2), then online through
        the user's Maven settings if that fails. Memoised per process; call it from a
        session fixture so a first (downloading) build does not count against a test's
        time limit.

    dump_table(bootstrap, topic, *, timeout=120.0, store=None, application_id=None)
        -> dict[str, object]
        Runs the application against ``topic``; returns the store's content. Raises
        KStreamsError (returncode, stderr) if it fails or does not catch up within
        ``timeout`` seconds (the process itself gets ``timeout`` + 60 s for JVM
        start-up and shutdown before it is killed).

    reduce_state(records) -> dict[str, object]
        What a KTable must hold after ``records`` (kafkatest.Record, e.g. from
        kafkatest.read_all(bootstrap, topic, isolation="read_committed")): per key
        (UTF-8) the last value, parsed as JSON, a tombstone (None value) removing the
        key; records without a key are skipped, as a KTable does. Raises ValueError if
        a key appears in two partitions (the KTable's result would then be undefined).

    java_partition(key: bytes | str, partitions: int) -> int
        The partition the Java producer's default partitioner (murmur2) gives a key,
        i.e. librdkafka's murmur2_random.

    python -m kstreamstest build    (from tests/integration): build() once, for setup.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proctest import pdeathsig

REPO_ROOT = Path(__file__).resolve().parents[2]
KSTREAMS_DIR = REPO_ROOT / "tests" / "kstreams"
POM = KSTREAMS_DIR / "pom.xml"
MAIN_CLASS = "duro.kstreams.KTableDump"
DEFAULT_STORE = "duro-state-store"
_JAR = "kstreams-dump.jar"
_COMPLETE = ".build-complete"
_RUN_GRACE_S = 60.0  # JVM start-up, Kafka Streams' close, beyond the catch-up bound

_built: Path | None = None


class KStreamsError(RuntimeError):
    """The build or a run failed; ``returncode`` and ``stderr`` say how."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


# ---------------------------------------------------------------- build

def _cache_root() -> Path:
    cache = os.environ.get("DURO_CACHE", "").strip() or str(Path.home() / ".cache" / "duro-kafka-bridge")
    return Path(cache) / "kstreams"


def source_hash() -> str:
    """sha256 of the application's sources (pom.xml and everything under src/)."""
    h = hashlib.sha256()
    files = [POM] + sorted(p for p in (KSTREAMS_DIR / "src").rglob("*") if p.is_file())
    for p in files:
        rel = p.relative_to(KSTREAMS_DIR).as_posix().encode()
        data = p.read_bytes()
        h.update(b"%d:%s:%d:" % (len(rel), rel, len(data)))
        h.update(data)
    return h.hexdigest()


def _java() -> str:
    home = os.environ.get("JAVA_HOME", "").strip()
    return str(Path(home, "bin", "java")) if home else "java"


def _complete(d: Path) -> bool:
    return (d / _COMPLETE).is_file() and (d / _JAR).is_file() and (d / "lib").is_dir()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _mvn(build_dir: Path, offline: bool, timeout: float) -> tuple[int, str]:
    argv = ["mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(POM),
            f"-Dkstreams.build.dir={build_dir}", "package"]
    if offline:
        argv.insert(1, "-o")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, preexec_fn=pdeathsig, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=30)
        raise KStreamsError(f"mvn package did not finish within {timeout:.0f}s:\n"
                            + _ANSI.sub("", out.decode(errors="replace"))[-4000:])
    return p.returncode, _ANSI.sub("", out.decode(errors="replace"))


def _kafka_version(pom: Path) -> str:
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not m:
        raise KStreamsError(f"no <kafka.version> in {pom}")
    return m.group(1).strip()


def build(timeout: float = 900.0) -> Path:
    """The directory holding kstreams-dump.jar and lib/ for the current sources,
    building it if needed (see the module docstring)."""
    global _built
    if _built is not None and _complete(_built):
        return _built
    broker_pom = REPO_ROOT / "scripts" / "kafka" / "pom.xml"
    ours, brokers = _kafka_version(POM), _kafka_version(broker_pom)
    if ours.split(".")[:2] != brokers.split(".")[:2]:
        raise KStreamsError(f"{POM} has kafka.version {ours} but the broker ({broker_pom}) is "
                            f"{brokers}: keep kafka-streams at the broker's major.minor")
    if shutil.which("mvn") is None:
        raise KStreamsError("mvn not found (scripts/setup.sh installs Maven; Debian: apt-get install maven)")
    deadline = time.monotonic() + timeout
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / source_hash()[:20]
    with open(root / ".build.lock", "w") as lock:
        # another session may be building the same sources: wait for it, bounded
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KStreamsError(f"timed out after {timeout:.0f}s waiting for another build "
                                        f"({root / '.build.lock'})")
                time.sleep(0.2)  # bounded retry interval of the lock
        if not _complete(final):
            tmp = Path(tempfile.mkdtemp(prefix="build.", dir=root))
            try:
                t0 = time.monotonic()
                rc, out = _mvn(tmp, True, max(1.0, deadline - time.monotonic()))
                mode = "offline"
                if rc != 0:
                    # not everything is in ~/.m2 yet: online, through the user's Maven settings
                    shutil.rmtree(tmp, ignore_errors=True)
                    tmp.mkdir()
                    rc, out = _mvn(tmp, False, max(1.0, deadline - time.monotonic()))
                    mode = "online"
                if rc != 0:
                    raise KStreamsError(f"mvn package ({mode}) failed with status {rc}:\n{out[-6000:]}",
                                        rc, out)
                if not (tmp / _JAR).is_file() or not any((tmp / "lib").glob("kafka-streams-*.jar")):
                    raise KStreamsError(f"mvn package left no {_JAR} or lib/kafka-streams-*.jar in {tmp}")
                for junk in ("classes", "generated-sources", "maven-archiver", "maven-status"):
                    shutil.rmtree(tmp / junk, ignore_errors=True)
                (tmp / _COMPLETE).write_text(f"{mode} build in {time.monotonic() - t0:.1f}s\n")
                shutil.rmtree(final, ignore_errors=True)
                tmp.rename(final)
                print(f"kstreamstest: built {final} ({mode}, {time.monotonic() - t0:.1f}s)",
                      file=sys.stderr)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            # builds of older sources are not used again
            for old in root.iterdir():
                if old.is_dir() and old != final and re.fullmatch(r"[0-9a-f]{20}", old.name):
                    shutil.rmtree(old, ignore_errors=True)
    _built = final
    return final


# ---------------------------------------------------------------- run

def dump_table(bootstrap: str, topic: str, *, timeout: float = 120.0, store: str | None = None,
               application_id: str | None = None) -> dict:
    """The store dump of a Kafka Streams application that read ``topic`` as a KTable
    (see the module docstring)."""
    d = build()
    work = Path(tempfile.mkdtemp(prefix="kstreams-dump."))
    out = work / "dump.json"
    argv = [_java(), "-Xms64m", "-Xmx512m", f"-Djava.io.tmpdir={work}",
            "-cp", f"{d / _JAR}:{d / 'lib'}/*", MAIN_CLASS,
            "--bootstrap", bootstrap, "--topic", topic, "--state-dir", str(work / "state"),
            "--output", str(out), "--timeout-ms", str(max(1, int(timeout * 1000)))]
    if store:
        argv += ["--store", store]
    if application_id:
        argv += ["--application-id", application_id]
    errf = open(work / "stderr", "w+b")
    p = None
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                             preexec_fn=pdeathsig, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout + _RUN_GRACE_S)
        except subprocess.TimeoutExpired:
            rc = None
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        if rc is None:
            raise KStreamsError(f"KTableDump on {topic} did not exit within {timeout + _RUN_GRACE_S:.0f}s "
                                f"(killed); output:\n{err[-6000:]}", None, err)
        if rc != 0:
            raise KStreamsError(f"KTableDump on {topic} exited with status {rc}:\n{err[-6000:]}", rc, err)
        try:
            return json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise KStreamsError(f"KTableDump on {topic} exited 0 but its dump is unreadable ({e}); "
                                f"output:\n{err[-6000:]}", rc, err) from e
    finally:
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=30)
        errf.close()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- expectations

def reduce_state(records) -> dict:
    """Last value per key, tombstones removing keys (see the module docstring)."""
    state: dict = {}
    home: dict = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        if r.key is None:
            continue
        key = r.key.decode("utf-8") if isinstance(r.key, (bytes, bytearray)) else str(r.key)
        if home.setdefault(key, r.partition) != r.partition:
            raise ValueError(f"key {key!r} is in partitions {home[key]} and {r.partition} "
                             f"(offset {r.offset}): a KTable of it is undefined")
        if r.value is None:
            state.pop(key, None)
        else:
            state[key] = json.loads(r.value)
    return state


def _murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 (signed 32-bit result)."""
    m, r = 0x5BD1E995, 24
    mask = 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key, partitions: int) -> int:
    """The Java producer's default partition for a non-null key (murmur2)."""
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return (_murmur2(data) & 0x7FFFFFFF) % partitions


if __name__ == "__main__":
    if sys.argv[1:] != ["build"]:
        print("usage: python kstreamstest.py build", file=sys.stderr)
        sys.exit(2)
    try:
        print(build())
    except KStreamsError as e:
        print(f"kstreamstest: {e}", file=sys.stderr)
        sys.exit(1)
