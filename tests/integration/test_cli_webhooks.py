"""`duro-bridge webhooks list|create|update|logs` against the Duro test double: the
queries and mutations of Duro's webhook documentation, pagination of logs, tables and
--json, and a one-line reason with a non-zero exit on every error (auth, unknown id,
API unreachable, bad usage). The API key comes from the environment or a file only."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess

import pytest

import bridgetest
from enrichertest import double  # noqa: F401  (fixture)


def run(env_extra: dict, *args, timeout: float = 30.0):
    env = bridgetest.clean_env(env_extra)
    p = subprocess.run([bridgetest.bridge_bin(), "webhooks", *args], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@pytest.fixture
def api(double, tmp_path):  # noqa: F811
    keyfile = tmp_path / "duro-api-key"
    keyfile.write_text(double.api_key + "\n")
    return {"DURO_API_URL": double.url, "DURO_API_KEY_FILE": str(keyfile)}


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"want one line, got:\n{err}"
    assert lines[0].startswith("duro-bridge webhooks: "), lines[0]
    return lines[0]


def test_create_list_update(api, double):  # noqa: F811
    rc, out, err = run(api, "create", "--name", "Prod sync", "--url",
                       "https://bridge.example.com/webhooks/duro",
                       "--events", "item_create,ITEM_UPDATE,CO_RESOLUTION",
                       "--description", "to Kafka")
    assert rc == 0, err
    hooks = double.webhooks_list()
    assert len(hooks) == 1
    hook = hooks[0]
    assert hook["url"] == "https://bridge.example.com/webhooks/duro"
    assert hook["events"] == ["ITEM_CREATE", "ITEM_UPDATE", "CO_RESOLUTION"]
    assert hook["isEnabled"] is True
    assert hook["id"] in out and "Prod sync" in out
    secret = double.webhook_secret(hook["id"])
    assert secret and f"signing secret: {secret}" in out
    assert "DURO_WEBHOOK_SECRETS_FILE" in out  # where to store it

    rc, out, err = run(api, "list")
    assert rc == 0, err
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["ID", "NAME", "URL", "ENABLED"]
    assert hook["id"] in row and "yes" in row and "ITEM_CREATE,ITEM_UPDATE,CO_RESOLUTION" in row

    rc, out, err = run(api, "list", "--json")
    assert rc == 0, err
    listed = json.loads(out)
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0] or listed[0]["secret"] is None

    rc, out, err = run(api, "update", hook["id"], "--disable", "--events", "ITEM_DELETE",
                       "--json")
    assert rc == 0, err
    updated = json.loads(out)
    assert updated[0]["isEnabled"] is False and updated[0]["events"] == ["ITEM_DELETE"]
    assert double.webhooks_list()[0]["isEnabled"] is False

    rc, out, err = run(api, "update", hook["id"], "--enable", "--url",
                       "https://other.example.com/hook")
    assert rc == 0, err
    assert double.webhooks_list()[0]["url"] == "https://other.example.com/hook"
    assert double.webhooks_list()[0]["isEnabled"] is True


def test_http_url_refused_unless_allowed(api, double):  # noqa: F811
    rc, out, err = run(api, "create", "--name", "x", "--url", "http://plain.example.com/h",
                       "--events", "ITEM_CREATE")
    assert rc == 1
    assert "not HTTPS" in one_line_error(err)
    assert double.webhooks_list() == []
    rc, out, err = run(api, "create", "--name", "x", "--url", "http://plain.example.com/h",
                       "--events", "ITEM_CREATE", "--allow-http", "--disabled")
    assert rc == 0, err
    assert double.webhooks_list()[0]["isEnabled"] is False


def test_logs_follow_pages_newest_first_and_filter(api, double):  # noqa: F811
    rc, out, err = run(api, "create", "--name", "n", "--url", "https://h.example.com/w",
                       "--events", "ITEM_UPDATE", "--json")
    assert rc == 0, err
    wid = json.loads(out)["id"]
    for i in range(130):  # the CLI asks 50 per page: three pages
        code = 503 if i % 10 == 0 else 200
        double.record_delivery(wid, "ITEM_UPDATE", {"n": i}, response_code=code,
                               acknowledged=code == 200,
                               created_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z")
    rc, out, err = run(api, "logs", wid, "--limit", "120", "--json")
    assert rc == 0, err
    logs = json.loads(out)
    assert len(logs) == 120
    created = [l["createdAt"] for l in logs]
    assert created == sorted(created, reverse=True), "newest first"
    assert len({l["id"] for l in logs}) == 120

    rc, out, err = run(api, "logs", wid, "--failed", "--limit", "100", "--json")
    assert rc == 0, err
    failed = json.loads(out)
    assert len(failed) == 13
    assert all(l["responseCode"] == 503 and not l["isAcknowledged"] for l in failed)

    rc, out, err = run(api, "logs", wid, "--limit", "3")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["CREATED", "EVENT", "CODE", "ACKED", "ID"]
    assert len(lines) == 4


def test_errors_one_line_and_exit_status(api, double, tmp_path):  # noqa: F811
    rc, out, err = run(api, "update", "webhook_nope", "--enable")
    assert rc == 1, err
    assert rc == 1 and "no webhook with id webhook_nope" in one_line_error(err)
    rc, out, err = run(api, "logs", "webhook_nope")
    assert rc == 1 and "no webhook with id webhook_nope" in one_line_error(err)

    wrong = "wrong-key-" + secrets.token_hex(8)
    bad = dict(api, DURO_API_KEY_FILE="", DURO_API_KEY=wrong)
    rc, out, err = run(bad, "list")
    assert rc == 1 and "authentication failed" in one_line_error(err)
    assert wrong not in out + err

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rc, out, err = run(dict(api, DURO_API_URL=f"http://127.0.0.1:{port}/graphql"), "list")
    assert rc == 1 and "unreachable" in one_line_error(err)

    rc, out, err = run(dict(api, DURO_API_KEY_FILE=""), "list")
    assert rc == 2 and "DURO_API_KEY" in one_line_error(err)
    rc, out, err = run(api, "create", "--name", "x")
    assert rc == 2 and "--url" in one_line_error(err)
    rc, out, err = run(api, "frobnicate")
    assert rc == 2 and "unknown command" in err
    assert double.api_key not in out + err
