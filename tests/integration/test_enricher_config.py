"""duro-enricher configuration (the settings): a bad or missing setting stops start-up with
exit code 2 and one log line naming it; properties that would break a guarantee are
refused; the API key never reaches the output. No broker needed: every case stops
before connecting."""

from __future__ import annotations

import json
import secrets

import pytest

from enrichertest import QUERIES_DIR, enricher_env, run_enricher_once

pytestmark = pytest.mark.timeout_s(60)

KEY = "duro-api-key-" + secrets.token_hex(16)
SASL_PASSWORD = "sasl-pass-" + secrets.token_hex(12)


def _base(**overrides) -> dict:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DURO_API_URL": "http://127.0.0.1:1/graphql",
        "DURO_ENRICHER_ADMIN_LISTEN": "127.0.0.1:0",
        "DURO_TRANSACTIONAL_ID": "enrichertest-config",
        "DURO_API_KEY": KEY,
    }
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return enricher_env(env)


# name -> (environment overrides, args, what the one line must name)
CASES = {
    "batch-max-zero": ({"DURO_BATCH_MAX": "0"}, [], "DURO_BATCH_MAX"),
    "batch-max-not-a-number": ({"DURO_BATCH_MAX": "lots"}, [], "DURO_BATCH_MAX"),
    "dedupe-window-zero": ({"DURO_DEDUPE_WINDOW_S": "0"}, [], "DURO_DEDUPE_WINDOW_S"),
    "graphql-concurrency-zero": ({"DURO_GRAPHQL_CONCURRENCY": "0"}, [], "DURO_GRAPHQL_CONCURRENCY"),
    "graphql-max-attempts-zero": ({"DURO_GRAPHQL_MAX_ATTEMPTS": "0"}, [], "DURO_GRAPHQL_MAX_ATTEMPTS"),
    "no-api-key": ({"DURO_API_KEY": None}, [], "DURO_API_KEY"),
    "api-key-file-missing": ({"DURO_API_KEY": None, "DURO_API_KEY_FILE": "/nonexistent/duro-key"},
                             [], "DURO_API_KEY_FILE"),
    "admin-port-0-without-transactional-id": ({"DURO_TRANSACTIONAL_ID": None}, [],
                                              "DURO_TRANSACTIONAL_ID"),
    "admin-listen-garbage": ({"DURO_ENRICHER_ADMIN_LISTEN": "not-an-address"}, [],
                             "DURO_ENRICHER_ADMIN_LISTEN"),
    "topic-template-without-event": ({"DURO_TOPIC_TEMPLATE": "duro.events.all"}, [],
                                     "DURO_TOPIC_TEMPLATE"),
    "queries-dir-missing": ({"DURO_QUERIES_DIR": "/nonexistent/queries"}, [], "DURO_QUERIES_DIR"),
    "isolation-level-flag": ({}, ["-X", "isolation.level=read_uncommitted"], "isolation.level"),
    "auto-commit-env": ({"DURO_RDKAFKA_CONSUMER_ENABLE_AUTO_COMMIT": "true"}, [],
                        "enable.auto.commit"),
    "transactional-id-property": ({"DURO_RDKAFKA_PRODUCER_TRANSACTIONAL_ID": "other"}, [],
                                  "transactional.id"),
    "secret-property-flag": ({}, ["-X", f"sasl.password={SASL_PASSWORD}"], "sasl.password"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_setting_exits_2_with_one_line(name):
    overrides, args, names = CASES[name]
    rc, out, err = run_enricher_once(_base(**overrides), args, timeout=20)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc}, want 2; stderr:\n{err}"
    assert len(lines) == 1, f"want exactly one line, got {len(lines)}:\n{err}"
    rec = json.loads(lines[0])
    assert names in rec.get("msg", ""), f"the line must name {names}: {rec}"
    assert rec.get("level") in ("error", "fatal"), rec
    assert KEY not in out + err, "the API key appeared in the output"
    assert SASL_PASSWORD not in out + err, "a secret property value appeared in the output"


@pytest.mark.parametrize("name,text,want", [
    ("components.graphql", "query DuroComponents($ids: [ID!]!) {\n  components {\n    get(\n}\n",
     "components.graphql:4: "),
    ("change_orders.graphql", "# a comment\nmutation Oops { x }\n",
     "change_orders.graphql:2: a mutation, want a query"),
    ("components.graphql", "", "components.graphql:1: "),
    ("change_orders.graphql",
     "query C($ids: [ID!]!, $after: String) {\n  changeOrders { get { id } }\n}\n",
     "change_orders.graphql:1: the query must declare and use $ids"),
])
def test_bad_query_document_names_file_and_line(tmp_path, name, text, want):
    """Each query is checked at start-up; an error names the file and the line."""
    for f in QUERIES_DIR.glob("*.graphql"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / name).write_text(text)
    rc, out, err = run_enricher_once(_base(DURO_QUERIES_DIR=str(tmp_path)), timeout=20)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, (rc, err)
    msg = json.loads(lines[0])["msg"]
    assert "DURO_QUERIES_DIR" in msg and f"{tmp_path}/{want}" in msg, msg


def test_help_lists_every_setting_and_no_secret():
    rc, out, err = run_enricher_once(_base(), ["--help"], timeout=20)
    assert rc == 0, err
    text = out + err
    for env in ("KAFKA_BOOTSTRAP_SERVERS", "DURO_RAW_TOPIC", "DURO_DLQ_TOPIC", "DURO_TOPIC_TEMPLATE",
                "DURO_ENRICHER_GROUP", "DURO_ENRICHER_ADMIN_LISTEN", "DURO_TRANSACTIONAL_ID",
                "DURO_GROUP_INSTANCE_ID", "DURO_API_URL", "DURO_API_KEY_FILE", "DURO_DEDUPE_WINDOW_S",
                "DURO_BATCH_MAX", "DURO_BATCH_WAIT_MS", "DURO_GRAPHQL_MAX_IDS",
                "DURO_GRAPHQL_CONCURRENCY", "DURO_GRAPHQL_RATE", "DURO_GRAPHQL_TIMEOUT_MS",
                "DURO_GRAPHQL_MAX_ATTEMPTS", "DURO_NOT_FOUND_GRACE_MS", "DURO_QUERIES_DIR",
                "DURO_LOG_LEVEL"):
        assert env in text, f"--help does not list {env}"
    assert KEY not in text
