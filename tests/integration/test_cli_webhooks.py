"""`duro-bridge webhooks list|create|update|logs` against the Duro test double: the
queries and mutations of Duro's webhook documentation, pagination of logs, tables and
--json, and a one-line reason with a non-zero exit on every error (auth, unknown id,
API unreachable, bad usage). The API key comes from the environment or a file only;
every other setting --help lists also works as a flag, and wins over the
environment."""

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


@pytest.fixture
def dead():
    """A loopback URL where nothing answers: a socket bound to its port that never
    listens (connections are refused), held for the whole test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}/graphql"


def no_default_api(dead: str) -> dict:
    """Sends whatever does not go to 127.0.0.1 to that dead port as a proxy: a command
    that fell back on the default (Duro's real API) fails here instead of leaving the
    machine."""
    proxy = dead.rsplit("/", 1)[0]
    return {"https_proxy": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy,
            "HTTP_PROXY": proxy, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}


def test_api_flags_without_environment(api, double, dead):  # noqa: F811
    keyfile = api["DURO_API_KEY_FILE"]
    env = no_default_api(dead)  # no DURO_* variable at all
    rc, out, err = run(env, "create", "--name", "by flags", "--url",
                       "https://h.example.com/w", "--events", "ITEM_CREATE",
                       "--api-url", double.url, "--api-key-file", keyfile, "--json")
    assert rc == 0, err
    created = json.loads(out)
    assert [h["id"] for h in double.webhooks_list()] == [created["id"]]

    rc, out, err = run(env, "list", f"--api-url={double.url}", f"--api-key-file={keyfile}",
                       "--json", "--api-organization", "org_by_flag",
                       "--api-library", "lib_by_flag")
    assert rc == 0, err
    assert [h["id"] for h in json.loads(out)] == [created["id"]]
    stats = double.stats()
    assert stats["organizations"].get("org_by_flag") == 1, stats
    assert stats["libraries"].get("lib_by_flag") == 1, stats


def test_flags_win_over_environment(api, double, dead):  # noqa: F811
    rc, out, err = run(dict(api, DURO_API_URL=dead), "list", "--api-url", double.url)
    assert rc == 0, err
    assert out.split()[:4] == ["ID", "NAME", "URL", "ENABLED"]
    rc, out, err = run(api, "list", "--api-url", dead)
    assert rc == 1 and "unreachable" in one_line_error(err)
    # a flag's value is checked like the variable's
    rc, out, err = run(api, "list", "--graphql-timeout-ms", "5")
    line = one_line_error(err)
    assert rc == 2 and "--graphql-timeout-ms" in line and "between 100 and" in line
    rc, out, err = run(api, "list", "--log-level", "chatty")
    assert rc == 2 and "--log-level" in one_line_error(err)


def test_unknown_and_misplaced_flags_refused(api, double):  # noqa: F811
    before = double.stats()["requests_total"]
    rc, out, err = run(api, "list", "--no-such-flag")
    assert rc == 2 and "--no-such-flag: unknown option" in one_line_error(err)
    # the key is never a flag, and a value given to a refused flag is not echoed
    rc, out, err = run(api, "list", "--api-key=" + double.api_key)
    assert rc == 2 and "--api-key: unknown option" in one_line_error(err)
    assert double.api_key not in out + err
    rc, out, err = run(api, "list", "-X", "linger.ms=5")
    assert rc == 2 and "-X" in one_line_error(err)
    rc, out, err = run(api, "list", "--api-url")
    assert rc == 2 and "--api-url: expects a value" in one_line_error(err)
    rc, out, err = run(api, "list", "--json=yes")
    assert rc == 2 and "--json takes no value" in one_line_error(err)
    assert double.stats()["requests_total"] == before, "nothing was asked of the API"


def test_help_lists_every_settings_flag():
    rc, out, err = run({}, "--help")
    assert rc == 0, err
    for flag, env in (("--api-url", "DURO_API_URL"), ("--api-key-file", "DURO_API_KEY_FILE"),
                      ("--api-organization", "DURO_API_ORGANIZATION"),
                      ("--api-library", "DURO_API_LIBRARY"),
                      ("--graphql-timeout-ms", "DURO_GRAPHQL_TIMEOUT_MS"),
                      ("--log-level", "DURO_LOG_LEVEL")):
        row = [ln for ln in out.splitlines() if ln.split()[:1] == [flag]]
        assert row and env in row[0], (flag, out)
    assert any(ln.split()[:3] == ["(env", "only)", "DURO_API_KEY"]
               for ln in out.splitlines()), out
    assert "duro-bridge webhooks list" in out
    rc, out2, err = run({}, "logs", "--help")
    assert rc == 0 and out2 == out
