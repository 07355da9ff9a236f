"""Fixtures for the integration tests: one real Kafka broker per test session
(shared; each test makes its own topics), duro-bridge processes that are always
killed in teardown, and a per-test time limit.

Under ctest, ``integration.kafka_start`` starts the broker and writes
``$DURO_TEST_KAFKA_WORK/bootstrap``; its address is handed to kafkatest through
DURO_TEST_BOOTSTRAP so every test file of the ctest run uses that one broker.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

import bridgetest
import kafkatest
from proctest import ProgramFactory, wait_until

DEFAULT_TEST_TIMEOUT_S = 120


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(n): per-test time limit in seconds "
                                       f"(default {DEFAULT_TEST_TIMEOUT_S})")
    if not os.environ.get("DURO_TEST_BOOTSTRAP", "").strip():
        work = os.environ.get("DURO_TEST_KAFKA_WORK", "").strip()
        boot = Path(work, "bootstrap") if work else None
        if boot is not None and boot.is_file():
            addr = boot.read_text().strip()
            if addr:
                os.environ["DURO_TEST_BOOTSTRAP"] = addr


# ---------------------------------------------------------------- time limit

class TimeLimitExceeded(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Bounds every test body: SIGALRM raises in the main thread, so the test
    fails and its finalizers (which kill the processes it started) still run."""
    marker = item.get_closest_marker("timeout_s")
    limit = float(marker.args[0]) if marker else float(DEFAULT_TEST_TIMEOUT_S)
    armed = threading.current_thread() is threading.main_thread()
    if armed:
        def on_alarm(signum, frame):
            raise TimeLimitExceeded(f"{item.nodeid} exceeded its time limit of {limit}s")
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- broker

@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = kafkatest.broker_from_env_or_start(tmp_path_factory.mktemp("kafka"))
    if b.external and b.work_dir:
        b.start()  # an external broker left stopped by an earlier run: bring it back
    yield b
    b.close()


@pytest.fixture
def restorable_broker(broker):
    """The session's broker for a test that stops or restarts it: brought back (and
    waited for) at teardown, even when the test fails."""
    if broker.external and not broker.work_dir:
        pytest.skip("external broker without DURO_TEST_KAFKA_WORK: cannot stop or restart it")
    yield broker
    if not broker.is_running():
        broker.restart()
    wait_until(lambda: broker.is_running(), 60, "the broker to run again")


@pytest.fixture
def topic(broker):
    """A fresh 1-partition raw topic for this test."""
    name = kafkatest.unique_name("raw")
    kafkatest.create_topic(broker.bootstrap, name, partitions=1)
    return name


# ---------------------------------------------------------------- bridges

class BridgeFactory(ProgramFactory):
    def __init__(self, broker, tmp_path: Path):
        super().__init__(tmp_path)
        self.broker = broker

    def __call__(self, topic: str, *, secret: str | None = "", secrets_file=None, args=(),
                 extra_secrets=(), ready: bool = True, env: dict | None = None,
                 **settings) -> bridgetest.Bridge:
        """Starts duro-bridge on ``topic`` (ephemeral loopback ports) and waits
        for /readyz when ``ready``. secret="" makes a random one; None sets none
        (use secrets_file). Keyword settings are environment variables."""
        known = list(extra_secrets)
        if secret == "":
            secret = bridgetest.new_secret()
        if secret is not None:
            known.insert(0, secret)
        if secrets_file is not None:
            settings["DURO_WEBHOOK_SECRETS_FILE"] = str(secrets_file)
        e = env if env is not None else bridgetest.bridge_env(
            self.broker.bootstrap, topic, secret, **settings)
        d = self.tmp_path / f"bridge{len(self.started)}"
        d.mkdir(exist_ok=True)
        b = bridgetest.Bridge(env=e, args=list(args), workdir=d, secrets_=known)
        self.started.append(b)
        b.start()
        if ready:
            b.wait_ready()
        return b


@pytest.fixture
def bridges(broker, tmp_path):
    """Factory of duro-bridge processes; all are killed at teardown, and their
    whole output is checked for the secrets they were given."""
    f = BridgeFactory(broker, tmp_path)
    yield f
    f.cleanup()


@pytest.fixture
def bridge(bridges, topic):
    """A ready duro-bridge on the test's own 1-partition topic."""
    return bridges(topic)
