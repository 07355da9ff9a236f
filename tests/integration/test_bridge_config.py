"""Configuration (the settings): a bad or missing setting stops start-up quickly with
exit code 2 and exactly one log line naming it (never a secret's value); stray
KAFKA_* variables (Kubernetes service links) and unknown DURO_* ones are ignored;
--help lists the environment names."""

import json
import socket

import pytest

from bridgetest import bridge_env, event, new_secret, run_bridge_once

QUICK_S = 5.0

# (id, extra environment, extra args, text the one log line must contain (any of))
BAD_SETTINGS = [
    ("max-body-abc", {"DURO_BRIDGE_MAX_BODY": "abc"}, [], ["DURO_BRIDGE_MAX_BODY"]),
    ("max-body-zero", {"DURO_BRIDGE_MAX_BODY": "0"}, [], ["DURO_BRIDGE_MAX_BODY"]),
    ("ack-timeout-negative", {"DURO_BRIDGE_ACK_TIMEOUT_MS": "-5"}, [], ["DURO_BRIDGE_ACK_TIMEOUT_MS"]),
    ("event-age-abc", {"DURO_BRIDGE_MAX_EVENT_AGE_S": "1d"}, [], ["DURO_BRIDGE_MAX_EVENT_AGE_S"]),
    ("log-level", {"DURO_LOG_LEVEL": "loud"}, [], ["DURO_LOG_LEVEL"]),
    ("x-acks", {}, ["-X", "acks=1"], ["acks"]),
    ("x-enable-idempotence", {}, ["-X", "enable.idempotence=false"], ["enable.idempotence"]),
    ("x-partitioner", {}, ["-X", "partitioner=random"], ["partitioner"]),
    ("env-isolation-level", {"DURO_RDKAFKA_ISOLATION_LEVEL": "read_uncommitted"}, [],
     ["isolation.level", "DURO_RDKAFKA_ISOLATION_LEVEL"]),
    ("env-producer-acks", {"DURO_RDKAFKA_PRODUCER_ACKS": "0"}, [],
     ["acks", "DURO_RDKAFKA_PRODUCER_ACKS"]),
    ("x-sasl-password", {}, ["-X", "sasl.password=hunter2"], ["sasl.password"]),
    ("x-unknown-property", {}, ["-X", "no.such.property=1"], ["no.such.property"]),
    ("no-secret", {"DURO_WEBHOOK_SECRET": None}, [], ["DURO_WEBHOOK_SECRET"]),
    ("blank-secret", {"DURO_WEBHOOK_SECRET": "   "}, [], ["DURO_WEBHOOK_SECRET"]),
    ("secrets-file-missing", {"DURO_WEBHOOK_SECRET": None,
                              "DURO_WEBHOOK_SECRETS_FILE": "/nonexistent/duro/secrets"}, [],
     ["DURO_WEBHOOK_SECRETS_FILE"]),
    ("secrets-file-empty", {"DURO_WEBHOOK_SECRET": None, "DURO_WEBHOOK_SECRETS_FILE": "/dev/null"},
     [], ["DURO_WEBHOOK_SECRETS_FILE"]),
    ("listen-nonsense", {"DURO_BRIDGE_LISTEN": "nonsense"}, [], ["DURO_BRIDGE_LISTEN"]),
    ("admin-listen-bad-port", {"DURO_BRIDGE_ADMIN_LISTEN": "127.0.0.1:99999"}, [],
     ["DURO_BRIDGE_ADMIN_LISTEN"]),
    ("tls-cert-without-key", {"DURO_BRIDGE_TLS_CERT": "/nonexistent/cert.pem"}, [],
     ["DURO_BRIDGE_TLS_KEY", "DURO_BRIDGE_TLS_CERT"]),
    ("unknown-flag", {}, ["--no-such-flag"], ["--no-such-flag"]),
    ("flag-max-body", {}, ["--max-body", "abc"], ["max-body"]),
]


@pytest.mark.parametrize("name,env,args,names", BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_bad_setting_exits_2_with_one_line(broker, name, env, args, names):
    secret = new_secret()
    e = bridge_env(broker.bootstrap, "raw-never-used", secret)
    for k, v in env.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    rc, out, err, secs = run_bridge_once(e, args, timeout=20)
    assert rc == 2, f"exit {rc}; stderr:\n{err}"
    assert secs < QUICK_S, f"took {secs:.1f}s to refuse the setting"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"want exactly one log line, got:\n{err}"
    rec = json.loads(lines[0])
    assert rec["level"] == "error" and rec["prog"] == "duro-bridge"
    assert any(n in rec["msg"] for n in names), f"{rec['msg']!r} should name one of {names}"
    assert secret not in out + err
    assert "hunter2" not in out + err


@pytest.mark.parametrize("var", ["DURO_BRIDGE_LISTEN", "DURO_BRIDGE_ADMIN_LISTEN"])
def test_listen_address_in_use_exits_2_with_one_line(broker, var):
    secret = new_secret()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        addr = f"127.0.0.1:{busy.getsockname()[1]}"
        e = bridge_env(broker.bootstrap, "raw-never-used", secret, **{var: addr})
        rc, out, err, secs = run_bridge_once(e, [], timeout=20)
    assert rc == 2, f"exit {rc}; stderr:\n{err}"
    assert secs < QUICK_S
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"want exactly one log line, got:\n{err}"
    rec = json.loads(lines[0])
    assert rec["level"] == "error" and var in rec["msg"], rec
    assert secret not in out + err


def test_secret_never_printed_even_when_refused(broker):
    """A bad secrets-related setting names the variable, not the value."""
    secret = new_secret()
    e = bridge_env(broker.bootstrap, "raw-never-used", secret,
                   DURO_RDKAFKA_SASL_PASSWORD=secret + "-kafka")
    rc, out, err, _ = run_bridge_once(e, ["-X", f"ssl.key.password={secret}"], timeout=20)
    assert rc == 2, err
    assert secret not in out + err


def test_stray_kafka_and_unknown_duro_variables_are_ignored(bridges, topic, broker):
    secret = new_secret()
    env = bridge_env(broker.bootstrap, topic, secret,
                     KAFKA_FOO="1",
                     KAFKA_PORT="tcp://127.0.0.1:1",
                     KAFKA_PORT_9092_TCP="tcp://127.0.0.1:1",
                     KAFKA_SERVICE_HOST="127.0.0.1",
                     DURO_BRIDGE_SERVICE_PORT="tcp://127.0.0.1:2",
                     DURO_SOMETHING_NEW="x")
    b = bridges(topic, secret=secret, env=env)
    r = b.post(event("ITEM_UPDATE"))
    assert r.status == 200, r
    assert all(rec.get("level") != "error" for rec in b.logs()), b.stderr_text()


def test_help_exits_0_and_lists_the_settings():
    rc, out, err, secs = run_bridge_once(bridge_env("127.0.0.1:1", "t"), ["--help"], timeout=10)
    assert rc == 0, err
    assert secs < QUICK_S
    text = out + err
    for name in ["KAFKA_BOOTSTRAP_SERVERS", "DURO_RAW_TOPIC", "DURO_BRIDGE_LISTEN",
                 "DURO_BRIDGE_ADMIN_LISTEN", "DURO_WEBHOOK_PATH", "DURO_WEBHOOK_SECRET",
                 "DURO_WEBHOOK_SECRETS_FILE", "DURO_BRIDGE_MAX_BODY", "DURO_BRIDGE_ACK_TIMEOUT_MS",
                 "DURO_BRIDGE_MAX_EVENT_AGE_S", "DURO_BRIDGE_MAX_CONNECTIONS",
                 "DURO_BRIDGE_DRAIN_DELAY_MS", "DURO_BRIDGE_IDLE_TIMEOUT_S",
                 "DURO_BRIDGE_REQUEST_TIMEOUT_MS", "DURO_BRIDGE_TLS_CERT", "DURO_BRIDGE_TLS_KEY",
                 "DURO_LOG_LEVEL", "DURO_RDKAFKA_"]:
        assert name in text, f"--help does not mention {name}"
    for default in ["65536", "10000", "86400", "5000", "/webhooks/duro", "duro.webhooks.raw"]:
        assert default in text, f"--help does not show the default {default}"


def test_custom_webhook_path(bridges, topic):
    b = bridges(topic, DURO_WEBHOOK_PATH="/hooks/plm")
    assert b.post(event("ITEM_UPDATE"), path="/hooks/plm").status == 200
    assert b.post(event("ITEM_UPDATE")).status == 404
