"""What the integration tests need to run either program and talk to it.

``wait_until`` is the one bounded wait of the test helpers (bridgetest, enrichertest and
kafkatest use it): it polls a condition until a deadline and raises ``WaitTimeout``
naming what it waited for.

``Program`` is the base of the two process wrappers, ``bridgetest.Bridge`` and
``enrichertest.Enricher``: it starts the binary with its stderr and stdout in files under
a work directory, waits for the log line that says the program is up, parses the JSON log
lines, reads the admin endpoints (``/readyz``, ``/metrics``), signals, waits for the exit
and kills. A child dies with the test process (PR_SET_PDEATHSIG); ``ProgramFactory`` is
the base of the fixtures' factories, which kill every program they started and check its
whole output for the secrets it was given. ``run_once`` runs a program that is meant to
exit by itself (a refused setting, ``--help``).

``Resp`` and ``http_request`` are the plain HTTP client on 127.0.0.1; ``Metrics`` parses
the Prometheus text of ``/metrics``.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------- waiting


class WaitTimeout(AssertionError):
    """A bounded wait ran out: the condition never held."""


def wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    """Polls pred() until it returns a truthy value (returned) or timeout seconds
    pass (raises WaitTimeout naming ``what`` and the last exception, if any)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last_exc = None
        except Exception as e:  # the condition may fail while things settle
            last_exc = e
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what}"
                              + (f" (last error: {last_exc!r})" if last_exc else ""))
        # bounded poll interval, not synchronisation: the loop re-checks the condition
        time.sleep(interval)


# ---------------------------------------------------------------- HTTP

@dataclass
class Resp:
    status: int
    headers: dict  # lower-case name -> value
    body: bytes
    elapsed: float = 0.0

    def json(self):
        return json.loads(self.body)

    def header(self, name: str):
        return self.headers.get(name.lower())

    def __repr__(self) -> str:
        return f"Resp({self.status}, {self.headers}, {self.body[:300]!r}, {self.elapsed:.3f}s)"


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 20.0,
                 tls_context: ssl.SSLContext | None = None) -> Resp:
    """One request on a fresh connection (127.0.0.1)."""
    if tls_context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls_context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                    time.monotonic() - t0)
    finally:
        conn.close()


# ---------------------------------------------------------------- metrics

_METRIC_LINE = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+"
    r"([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))(\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class Metrics:
    """Parsed Prometheus text. Raises ValueError on any line that is neither a
    comment nor ``name{labels} value``."""

    def __init__(self, text: str):
        self.text = text
        self.samples: dict[tuple[str, tuple], float] = {}
        for ln in text.splitlines():
            if not ln.strip() or ln.startswith("#"):
                continue
            m = _METRIC_LINE.match(ln)
            if not m:
                raise ValueError(f"unparseable metrics line: {ln!r}")
            labels = {}
            if m[3]:
                pos = 0
                s = m[3]
                while pos < len(s):
                    lm = _LABEL.match(s, pos)
                    if not lm:
                        raise ValueError(f"bad labels in metrics line: {ln!r}")
                    labels[lm[1]] = lm[2]
                    pos = lm.end()
            self.samples[(m[1], tuple(sorted(labels.items())))] = float(m[4])

    def get(self, name: str, default=None, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def value(self, name: str, **labels) -> float:
        v = self.get(name, **labels)
        if v is None:
            raise KeyError(f"metric {name}{labels} not found in:\n{self.text}")
        return v

    def names(self) -> set:
        return {n for n, _ in self.samples}

    def by_name(self, name: str) -> dict:
        return {lbl: v for (n, lbl), v in self.samples.items() if n == name}

    def requests(self, status) -> float:
        """duro-bridge's request counter for one status."""
        return self.value("duro_bridge_requests_total", status=str(status))


# ---------------------------------------------------------------- processes

def pdeathsig():
    """Child: die with the test process (safety net if pytest itself is killed)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def clean_env(extra: dict | None = None) -> dict:
    """The test's environment without DURO_* / KAFKA_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURO_", "KAFKA_"))}
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def run_once(argv: list, env: dict, timeout: float) -> tuple[int, str, str, float]:
    """Runs argv expecting it to exit by itself; returns (rc, stdout, stderr, seconds).
    Killed (and an AssertionError raised) if it outlives ``timeout``."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=pdeathsig)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        raise AssertionError(f"{Path(argv[0]).name} {argv[1:]} did not exit within {timeout}s; "
                             f"stderr:\n{err.decode(errors='replace')}")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - t0


@dataclass
class Program:
    """One process of a program under test. A subclass says which: ``program`` (its
    name in messages), ``binary()`` (the path, looked up at each start) and
    ``started_line``, a regex on the log line that says it is up, with the admin port
    as the group ``admin``. Its files are ``<workdir>/<name>-<n>.stderr`` and
    ``.stdout``, n counting the starts of that name."""
    env: dict
    args: list
    workdir: Path
    name: str = "program"
    secrets_: list = field(default_factory=list)  # strings that must never reach its output
    proc: subprocess.Popen | None = None
    admin_port: int | None = None
    stderr_path: Path | None = None
    stdout_path: Path | None = None

    program = "program"
    started_line = r"$^"

    def binary(self) -> str:
        raise NotImplementedError

    def _start(self, timeout: float) -> re.Match:
        """Starts the process and waits up to ``timeout`` s for its start-up line;
        sets admin_port and returns the line's match."""
        n = len(list(self.workdir.glob(f"{self.name}-*.stderr")))
        self.stderr_path = self.workdir / f"{self.name}-{n}.stderr"
        self.stdout_path = self.workdir / f"{self.name}-{n}.stdout"
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([self.binary(), *self.args], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         preexec_fn=pdeathsig)

        def started():
            for rec in self.logs():
                m = re.match(self.started_line, rec.get("msg", ""))
                if m:
                    return m
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.program} exited with {self.proc.returncode} at "
                                     f"start:\n{self.stderr_text()}")
            return None

        m = self.wait(started, timeout, f"{self.program}'s start-up log line")
        self.admin_port = int(m["admin"])
        return m

    def wait(self, pred, timeout: float, what: str):
        """wait_until, with the tail of this program's stderr in the timeout message."""
        try:
            return wait_until(pred, timeout, what)
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}\n{self.name} stderr tail:\n{self.stderr_text()[-4000:]}") from None

    # -- output ------------------------------------------------------------
    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_bytes().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def stdout_text(self) -> str:
        try:
            return self.stdout_path.read_bytes().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def logs(self) -> list[dict]:
        """Every stderr line, parsed (a non-JSON line becomes {"raw": line})."""
        out = []
        for ln in self.stderr_text().splitlines():
            if not ln.strip():
                continue
            try:
                rec = json.loads(ln)
                out.append(rec if isinstance(rec, dict) else {"raw": ln})
            except ValueError:
                out.append({"raw": ln})
        return out

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def assert_no_secret_in_output(self) -> None:
        text = self.stderr_text() + self.stdout_text()
        for s in self.secrets_:
            assert s not in text, f"a secret appeared in {self.name}'s output ({self.program})"

    # -- admin -------------------------------------------------------------
    def admin(self, path: str, timeout: float = 10.0) -> Resp:
        return http_request(self.admin_port, "GET", path, timeout=timeout)

    def readyz(self) -> Resp:
        return self.admin("/readyz")

    def metrics(self) -> Metrics:
        r = self.admin("/metrics")
        assert r.status == 200, r
        return Metrics(r.body.decode())

    # -- process -----------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"{self.name} ({self.program}) did not exit within {timeout}s\n"
                              f"stderr tail:\n{self.stderr_text()[-3000:]}") from None

    def terminate(self, timeout: float = 30.0) -> int:
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class ProgramFactory:
    """The base of a fixture's factory of programs: ``started`` holds every program
    it made; cleanup() kills each and checks its whole output for its secrets."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[Program] = []

    def cleanup(self) -> None:
        leaked = []
        for p in self.started:
            p.kill()
            try:
                p.assert_no_secret_in_output()
            except AssertionError as e:
                leaked.append(f"{p.stderr_path}: {e}")
        assert not leaked, "; ".join(leaked)
