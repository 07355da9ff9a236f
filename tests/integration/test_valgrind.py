"""Memory errors and leaks under a real run (valgrind memcheck): duro-bridge and
duro-enricher both under ``valgrind --leak-check=full --errors-for-leak-kinds=definite
--error-exitcode=99``; ~50 webhooks (some delivered twice, some signed-but-invalid, one
of an unknown type) go through the bridge and the enricher enriches them from the Duro
double; then both get SIGTERM and must exit 0: no invalid read or write, no use of
uninitialised memory, no definite leak. valgrind's summaries are printed.

Runs on the release build (``build/``): valgrind and AddressSanitizer do not mix, so the
test skips when the binaries are an ASan build. Everything is ~20x slower under
valgrind: the waits here are long, and the programs get generous timeouts."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import stat
from pathlib import Path

import pytest

import bridgetest
import enrichertest
from duro_double import random_events
from enrichertest import double, enrichers, rig, senders  # noqa: F401

VALGRIND_ARGS = ["--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                 "--show-leak-kinds=definite,possible", "--num-callers=30",
                 "--track-origins=yes"]


def _is_asan(path: str) -> bool:
    if "asan" in path:
        return True
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def _wrapper(tmp_path: Path, name: str, real: str) -> tuple[str, Path]:
    """A script that execs the program under valgrind (so the test's process handles,
    signals and pid are valgrind's, which runs the program and forwards them)."""
    logs = tmp_path / f"valgrind-{name}"
    logs.mkdir()
    w = tmp_path / f"vg-{name}.sh"
    w.write_text("#!/bin/sh\nexec valgrind " + " ".join(VALGRIND_ARGS)
                 + f" --log-file={logs}/%p.log {real} \"$@\"\n")
    w.chmod(w.stat().st_mode | stat.S_IXUSR)
    return str(w), logs


def _summary(logs: Path) -> str:
    """valgrind's ERROR SUMMARY, LEAK SUMMARY and every error block, from its logs."""
    out = []
    for f in sorted(logs.glob("*.log")):
        text = f.read_text(errors="replace")
        lines = [re.sub(r"^==\d+== ?", "", ln) for ln in text.splitlines()]
        keep, block = [], []
        for ln in lines:
            if re.match(r"(Invalid |Conditional jump|Use of uninitialised|Syscall param|"
                        r"Mismatched free|Source and destination overlap|.*definitely lost in)", ln):
                block = [ln]
            elif block and ln.strip():
                block.append(ln)
                continue
            elif block:
                keep += block[:25] + ["..."]
                block = []
            if ln.strip().startswith(("ERROR SUMMARY", "HEAP SUMMARY", "LEAK SUMMARY",
                                      "definitely lost", "indirectly lost", "possibly lost",
                                      "still reachable", "in use at exit", "total heap usage")):
                keep.append(ln)
        out.append(f"--- {f.name}\n" + "\n".join(keep))
    return "\n".join(out)


@pytest.mark.timeout_s(900)
def test_bridge_and_enricher_clean_under_valgrind(rig, double, enrichers, senders, tmp_path,
                                                  monkeypatch):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    bridge_real, enricher_real = bridgetest.bridge_bin(), enrichertest.enricher_bin()
    for p in (bridge_real, enricher_real):
        if _is_asan(p):
            pytest.skip(f"{p} is an AddressSanitizer build: valgrind and ASan do not mix "
                        "(this test runs in the release build's ctest)")
        if not os.access(p, os.X_OK):
            pytest.skip(f"{p} not built")
    bwrap, blogs = _wrapper(tmp_path, "bridge", bridge_real)
    ewrap, elogs = _wrapper(tmp_path, "enricher", enricher_real)
    monkeypatch.setattr(bridgetest, "bridge_bin", lambda: bwrap)
    monkeypatch.setattr(enrichertest, "enricher_bin", lambda: ewrap)

    secret = bridgetest.new_secret()
    benv = bridgetest.bridge_env(rig.bootstrap, rig.raw, secret,
                                 DURO_BRIDGE_ACK_TIMEOUT_MS=60000,
                                 DURO_BRIDGE_REQUEST_TIMEOUT_MS=60000,
                                 DURO_BRIDGE_DRAIN_DELAY_MS=200)
    d = tmp_path / "bridge"
    d.mkdir()
    b = bridgetest.Bridge(env=benv, args=[], workdir=d, secrets_=[secret])
    try:
        b.start(timeout=180)
        b.wait_ready(timeout=180)

        eenv = rig.env(rig.txn("vg"), DURO_BATCH_WAIT_MS=200, DURO_GRAPHQL_TIMEOUT_MS=60000,
                       DURO_NOT_FOUND_GRACE_MS=200,
                       DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS=10000,
                       DURO_RDKAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS=1000)
        e = enrichers(eenv, name="enricher-vg", start=False)
        e.start(timeout=240)
        e.wait_assigned(timeout=240)

        rng = random.Random(5)
        events = random_events(46, double.data, rng=rng)
        events.append({"id": "evt_vg_unknown", "event": "FOO_BAR",
                       "created_at": bridgetest.rfc3339(), "data": {"item_id": "comp_000001"}})
        invalid = [b'{"id":"evt_vg_bad1","event":"ITEM_UPDATE","created_at":"now","data":{}}',
                   b"not json at all, but signed"]
        tx = senders(b, scale=0.01, workers=4, timeout_s=120, repeat_probability=0.2, seed=5)
        ids = tx.send_many(events) + tx.send_many(invalid)
        assert tx.wait(400), f"deliveries did not end: {tx.summary()}"
        s = tx.summary()
        assert s["acknowledged"] == s["sent"] == len(ids), s

        rig.wait_for_ids(ids, timeout=400, procs=[e])
        rig.wait_drained(timeout=240, procs=[e])
        by = rig.assert_exactly_once(ids)
        assert all(by[i][0].topic == rig.dlq for i in ids[-2:]), "invalid ones belong in the DLQ"

        b.signal(signal.SIGTERM)
        e.signal(signal.SIGTERM)
        brc = b.wait_exit(300)
        erc = e.wait_exit(300)
    finally:
        b.kill()
    report = (f"duro-bridge under valgrind exited {brc}\n{_summary(blogs)}\n"
              f"duro-enricher under valgrind exited {erc}\n{_summary(elogs)}")
    print(report)
    assert (brc, erc) == (0, 0), report
    for logs in (blogs, elogs):
        for f in logs.glob("*.log"):
            text = f.read_text(errors="replace")
            m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
            assert m and m[1] == "0", f"{f}: {m[0] if m else 'no ERROR SUMMARY'}\n{report}"
