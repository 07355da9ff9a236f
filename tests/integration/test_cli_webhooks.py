"""`duro-bridge webhooks list|create|update|logs` against the Duro test double: the
queries and mutations of Duro's webhook documentation, pagination of logs, tables and
--json, and a one-line reason with a non-zero exit on every error (auth, unknown id,
API unreachable, bad usage). The API key comes from the environment or a file only;
every other setting --help lists also works as a flag, and wins over the
environment.

Every test that talks to the double runs against both of its schemas: the default one
and "renamed" (other input type names, no Webhook.secret), so the documents may name
no type the documentation does not show, and create must do without the secret. The
documents are files (schemas/graphql/webhooks_*.graphql, DURO_QUERIES_DIR): values are
written into them as GraphQL literals, which must carry every character exactly."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import bridgetest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from duro_double import VARIANTS, DuroDouble  # noqa: E402

QUERIES = TESTS_DIR.parent / "schemas" / "graphql"
# quote, backslash, newline, tab, U+0001, U+007F, é, 日本, U+1F600 (outside the BMP)
AWKWARD = 'q"b\\s\nt\tx\x01y\x7fz\u00e9\u65e5\u672c\U0001F600'
# what would break out of a literal or a document if it were pasted in as it is
INJECTION = '" } ) { x # $input """ \\u0000 \r\b\f\x1f\u2028 end'


def run(env_extra: dict, *args, timeout: float = 30.0):
    env = bridgetest.clean_env(env_extra)
    p = subprocess.run([bridgetest.bridge_bin(), "webhooks", *args], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@pytest.fixture(params=VARIANTS)
def double(request):
    """An in-process DuroDouble with a random API key, once per schema variant."""
    d = DuroDouble(port=0, api_key="duro-api-key-" + secrets.token_hex(16), seed=7,
                   components=20, change_orders=5, variant=request.param)
    d.start()
    yield d
    d.close()


@pytest.fixture
def api(double, tmp_path):
    keyfile = tmp_path / "duro-api-key"
    keyfile.write_text(double.api_key + "\n")
    return {"DURO_API_URL": double.url, "DURO_API_KEY_FILE": str(keyfile)}


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"want one line, got:\n{err}"
    assert lines[0].startswith("duro-bridge webhooks: "), lines[0]
    return lines[0]


def test_create_list_update(api, double):
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
    if double.variant == "default":
        secret = double.webhook_secret(hook["id"])
        assert secret and f"signing secret: {secret}" in out
        assert "DURO_WEBHOOK_SECRETS_FILE" in out  # where to store it
        assert err == ""
    else:
        assert "signing secret" not in out
        assert "returned no signing secret" in one_line_error(err)

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


def test_http_url_refused_unless_allowed(api, double):
    rc, out, err = run(api, "create", "--name", "x", "--url", "http://plain.example.com/h",
                       "--events", "ITEM_CREATE")
    assert rc == 1
    assert "not HTTPS" in one_line_error(err)
    assert double.webhooks_list() == []
    rc, out, err = run(api, "create", "--name", "x", "--url", "http://plain.example.com/h",
                       "--events", "ITEM_CREATE", "--allow-http", "--disabled")
    assert rc == 0, err
    assert double.webhooks_list()[0]["isEnabled"] is False


def test_logs_follow_pages_newest_first_and_filter(api, double):
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


def test_errors_one_line_and_exit_status(api, double, tmp_path):
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


def test_api_flags_without_environment(api, double, dead):
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


def test_flags_win_over_environment(api, double, dead):
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


def test_unknown_and_misplaced_flags_refused(api, double):
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
                      ("--queries-dir", "DURO_QUERIES_DIR"),
                      ("--log-level", "DURO_LOG_LEVEL")):
        row = [ln for ln in out.splitlines() if ln.split()[:1] == [flag]]
        assert row and env in row[0], (flag, out)
    assert any(ln.split()[:3] == ["(env", "only)", "DURO_API_KEY"]
               for ln in out.splitlines()), out
    assert "duro-bridge webhooks list" in out
    rc, out2, err = run({}, "logs", "--help")
    assert rc == 0 and out2 == out


def hook_fields(h: dict) -> dict:
    return {k: h.get(k) for k in ("name", "description", "url", "events", "isEnabled")}


def test_awkward_strings_round_trip(api, double):
    """Every awkward character goes through create and update as a GraphQL string
    literal and comes back exactly (read back through list --json)."""
    for text in (AWKWARD, INJECTION):
        rc, out, err = run(api, "create", "--name", text, "--description", text + "!",
                           "--url", "https://h.example.com/w?a=\"1\"&b=\\",
                           "--events", "ITEM_CREATE", "--json")
        assert rc == 0, err
        wid = json.loads(out)["id"]
        assert json.loads(out)["name"] == text
        rc, out, err = run(api, "list", "--json")
        assert rc == 0, err
        listed = {h["id"]: h for h in json.loads(out)}
        assert hook_fields(listed[wid]) == {
            "name": text, "description": text + "!", "url": "https://h.example.com/w?a=\"1\"&b=\\",
            "events": ["ITEM_CREATE"], "isEnabled": True}

        rc, out, err = run(api, "update", wid, "--name", "2" + text, "--description",
                           text[::-1], "--json")
        assert rc == 0, err
        rc, out, err = run(api, "list", "--json")
        assert rc == 0, err
        listed = {h["id"]: h for h in json.loads(out)}
        assert listed[wid]["name"] == "2" + text
        assert listed[wid]["description"] == text[::-1]
        assert [h for h in double.webhooks_list() if h["id"] == wid][0]["name"] == "2" + text


@pytest.mark.parametrize("events", [
    "ITEM_UPDATE] } ) { x", 'ITEM_CREATE,"ITEM_UPDATE"', "ITEM CREATE", "ITEM_CREATE, CO_OPEN",
    "1ITEM", "ITEM\nX", "ITEM_\u00c9", "CO_OPEN,$input", "ITEM-CREATE", ",,"])
def test_hostile_events_refused_without_a_request(api, double, events):
    before = double.stats()["requests_total"]
    rc, out, err = run(api, "create", "--name", "n", "--url", "https://h.example.com/w",
                       "--events", events)
    line = one_line_error(err)
    assert rc == 1 and "--events" in line, err
    assert "not a GraphQL name" in line or "no event given" in line, line
    rc, out, err = run(api, "update", "webhook_1", "--events", events)
    assert rc == 1 and "--events" in one_line_error(err)
    assert double.stats()["requests_total"] == before, "no request reached the API"
    assert double.webhooks_list() == []


def test_invalid_utf8_refused_without_a_request(api, double):
    before = double.stats()["requests_total"]
    env = bridgetest.clean_env(api)
    p = subprocess.run([bridgetest.bridge_bin(), "webhooks", "create", "--name", b"ab\xffc",
                        "--url", "https://h.example.com/w", "--events", "ITEM_CREATE"],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    line = one_line_error(p.stderr.decode(errors="replace"))
    assert p.returncode == 1
    assert "--name: invalid UTF-8: byte 0xFF at offset 2" in line, line
    assert double.stats()["requests_total"] == before


@pytest.mark.parametrize("validation_status", [400, 200])
def test_create_without_a_secret_field(api, double, validation_status):
    """The schema without Webhook.secret refuses the document that asks for it (a
    validation error, answered 400 as Apollo does or 200 as GraphQL-over-HTTP
    servers do): create sends it again without the field and says that no secret
    came. The default schema answers the secret at the first request."""
    double.configure(validation_status=validation_status)
    renamed = double.variant == "renamed"
    rc, out, err = run(api, "create", "--name", "n", "--url", "https://h.example.com/w",
                       "--events", "ITEM_CREATE,CO_RESOLUTION")
    assert rc == 0, err
    assert double.stats()["requests_by_operation"]["DuroCreateWebhook"] == (2 if renamed else 1)
    assert len(double.webhooks_list()) == 1, "the refused request created nothing"
    if renamed:
        line = one_line_error(err)
        assert "note: the Duro API returned no signing secret (it has no field secret)" in line
        assert "DURO_WEBHOOK_SECRETS_FILE" in line
        assert "signing secret" not in out and double.webhooks_list()[0]["id"] in out
    else:
        assert err == "" and "signing secret: " in out

    rc, out, err = run(api, "create", "--name", "m", "--url", "https://h.example.com/w",
                       "--events", "ITEM_DELETE", "--json")
    assert rc == 0, err
    created = json.loads(out)  # stdout holds the webhook and nothing else
    assert created["name"] == "m" and created["events"] == ["ITEM_DELETE"]
    if renamed:
        assert "secret" not in created
        assert "returned no signing secret" in one_line_error(err)
    else:
        assert created["secret"] == double.webhook_secret(created["id"]) and err == ""


@pytest.mark.parametrize("status", [200, 400])
def test_other_validation_errors_are_not_retried(api, double, status):
    """Only "Cannot query field 'secret'" makes create try again, whether the API
    answers validation errors with 200 or 400 (dgql reads the errors of both). The
    renamed schema refuses the secret too: there the second request says what else is
    wrong."""
    double.configure(validation_status=status)
    rc, out, err = run(api, "create", "--name", "n", "--url", "https://h.example.com/w",
                       "--events", "ITEM_NOPE")
    line = one_line_error(err)
    assert rc == 1 and "GRAPHQL_VALIDATION_FAILED" in line and "ITEM_NOPE" in line, line
    assert "secret" not in line
    assert double.stats()["requests_by_operation"]["DuroCreateWebhook"] == (
        2 if double.variant == "renamed" else 1)
    assert double.webhooks_list() == []


def copy_queries(tmp_path: Path) -> Path:
    d = tmp_path / "queries"
    shutil.copytree(QUERIES, d)
    return d


def edit(path: Path, old: str, new: str) -> None:
    """Replaces the first old by new in path."""
    text = path.read_text()
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old):])


@pytest.mark.parametrize("file,old,new,what,at", [
    ("webhooks_update.graphql", "      createdAt\n    }", "      createdAt\n    ",
     "'{' is never closed", "mutation DuroUpdateWebhook {"),
    ("webhooks_logs.graphql", "[{ createdAt: DESC }]", "[{ createdAt: DESC })",
     "')' closes '[' opened at line", "DESC })"),
    ("webhooks_list.graphql", "query DuroWebhooks", "query DuroWebhooks { a }\nquery Other",
     "a second operation", "query Other"),
    ("webhooks_create.graphql", "mutation DuroCreateWebhook {",
     "mutation DuroCreateWebhook($input: WebhookInput!) {", "$input a second time",
     "create(input: $input)"),
    ("webhooks_update.graphql", "{ ids: $ids }", "{ ids: [$id] }", "no $ids placeholder",
     None),
    ("webhooks_create.graphql", "      secret\n", "      secret(x: 1)\n",
     "the field secret must be plain", "secret(x: 1)"),
    ("webhooks_list.graphql", "      name\n", "      n\u00e4me\n", "unexpected byte 0xC3",
     "n\u00e4me"),
    ("webhooks_logs.graphql", "query DuroWebhookLogs", "mutation DuroWebhookLogs",
     "a mutation, where a query is wanted", "mutation DuroWebhookLogs"),
])
def test_bad_document_stops_the_command(api, double, tmp_path, file, old, new, what, at):
    """One line naming the file and the line, exit 1, and no request."""
    d = copy_queries(tmp_path)
    edit(d / file, old, new)
    text = (d / file).read_text()
    want = f"{d / file}:{text.count(chr(10), 0, text.index(at)) + 1 if at else 1}: "
    before = double.stats()["requests_total"]
    for args in (["list"], ["list", "--queries-dir", str(d)]):
        env = dict(api, DURO_QUERIES_DIR=str(d)) if len(args) == 1 else api
        rc, out, err = run(env, *args)
        line = one_line_error(err)
        assert rc == 1, err
        assert line.startswith("duro-bridge webhooks: " + want) and what in line, (line, want)
    assert double.stats()["requests_total"] == before


def test_missing_document_and_folder(api, double, tmp_path):
    d = copy_queries(tmp_path)
    (d / "webhooks_logs.graphql").unlink()
    rc, out, err = run(dict(api, DURO_QUERIES_DIR=str(d)), "list")
    line = one_line_error(err)
    assert rc == 1 and f"{d}/webhooks_logs.graphql" in line and "cannot open" in line, line
    rc, out, err = run(dict(api, DURO_QUERIES_DIR=str(tmp_path / "nowhere")), "list")
    assert rc == 1 and "nowhere/webhooks_list.graphql" in one_line_error(err)
    assert double.stats()["requests_total"] == 0


def test_documents_come_from_the_queries_dir(api, double, tmp_path):
    """A copy with other operation names (and comments, commas, CRLF line ends) is what
    the command sends."""
    d = copy_queries(tmp_path)
    edit(d / "webhooks_create.graphql", "mutation DuroCreateWebhook",
         "# $input in a comment is not the placeholder\nmutation MyCreate")
    edit(d / "webhooks_list.graphql", "query DuroWebhooks", "query MyList")
    up = d / "webhooks_update.graphql"
    up.write_bytes(up.read_bytes().replace(b"\n", b"\r\n").replace(b"DuroUpdateWebhook", b"MyUpdate"))
    env = dict(api, DURO_QUERIES_DIR=str(d))
    rc, out, err = run(env, "create", "--name", "n", "--url", "https://h.example.com/w",
                       "--events", "ITEM_CREATE", "--json")
    assert rc == 0, err
    wid = json.loads(out)["id"]
    rc, out, err = run(env, "update", wid, "--disable")
    assert rc == 0, err
    rc, out, err = run(env, "list", "--json")
    assert rc == 0 and json.loads(out)[0]["isEnabled"] is False, err
    ops = double.stats()["requests_by_operation"]
    assert ops.get("MyList") == 1 and ops.get("MyUpdate") == 1
    assert ops.get("MyCreate") == (2 if double.variant == "renamed" else 1)
    assert "DuroWebhooks" not in ops and "DuroCreateWebhook" not in ops
