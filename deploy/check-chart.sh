#!/usr/bin/env bash
# Checks the Helm chart deploy/helm/duro-kafka-bridge, for the chart's defaults and for
# every deploy/values/*.yaml:
#   1. helm lint --strict (values.schema.json included);
#   2. helm template, for each Kubernetes version in DURO_K8S_VERSIONS;
#   3. kubeconform -strict on every rendered object, against the Kubernetes JSON schemas
#      of that version and the CRD schemas (ServiceMonitor, PrometheusRule, KafkaTopic)
#      that scripts/chart-tools.sh generates; no kind is skipped;
#   4. deploy/check-manifests.py: the environment variables against the programs'
#      --help, security context, probes, secret mounts, drain and dedupe invariants,
#      the API description files' ConfigMap mounts;
#   5. apiFiles (the event table and GraphQL documents from ConfigMaps): unset, no
#      trace of them in the Deployment and the StatefulSet; set (the release's own
#      ConfigMaps, or existing ones), DURO_EVENT_TABLE in both and DURO_QUERIES_DIR in
#      the enricher, each on its read-only mount, the ConfigMaps holding the text given,
#      and the pods' checksums following a change of the text (and only of theirs);
#   6. the state and progress topics: the enricher's DURO_STATE_TOPICS,
#      DURO_STATE_TOPIC_TEMPLATE, DURO_PROGRESS_TOPIC and DURO_PROGRESS_IGNORE as the
#      values give them, and with Strimzi topics their KafkaTopics (the state topics
#      compacted with the output topics' partitions, or none when turned off; the
#      progress topic compacted, 1 partition, segment.ms 3600000; the snapshot events'
#      output topics), for the defaults, full.yaml and two more cases;
#   7. the PrometheusRule and the Grafana dashboard: promtool check rules (PromQL and
#      annotation templates), promtool test rules (deploy/alerts.test.yaml: each alert
#      fires when it should and not before), and their metric names against the
#      programs' sources (the dashboard shows every exported metric).
# Then self-tests prove each stage can fail: bad values (wrong type, unknown key,
# refused Kafka property, too short a grace period), bad fields in rendered objects
# (core kinds and CRDs), an unknown DURO_* variable, service links turned on, an
# incomplete queries folder, a release ConfigMap without its checksum annotation, an
# alert with a wrong threshold, a PromQL syntax error, a state topic template without
# {kind}, two KafkaTopics for one topic, and a state or progress KafkaTopic that is not
# compacted, wrongly partitioned or missing must each be caught.
#
# Usage: deploy/check-chart.sh [--no-self-test]
# Environment: DURO_BIN_DIR (folder of duro-bridge and duro-enricher for their --help;
#   default build/), DURO_K8S_VERSIONS, DURO_CACHE (tool cache, see scripts/chart-tools.sh).
# Ends with "N passed, N failed"; exit status 1 on any failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/deploy/helm/duro-kafka-bridge"
self_test=1
case "${1:-}" in
  "") ;;
  --no-self-test) self_test=0 ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: deploy/check-chart.sh [--no-self-test]" >&2
    exit 2
    ;;
esac

t0=$SECONDS
# chart-tools.sh says what it could not install; stop on that line, not on a later
# unset variable.
tool_vars=$("$root/scripts/chart-tools.sh") || {
  echo "check-chart: FAIL: the chart tools are not ready (scripts/chart-tools.sh, above)" >&2
  exit 1
}
eval "$tool_vars"
echo "check-chart: tools ready in $((SECONDS - t0)) s" >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "PASS $*"
}
failure() {
  failed=$((failed + 1))
  echo "FAIL $*"
}

# The programs' --help: the environment variables they know.
bin_dir=${DURO_BIN_DIR:-$root/build}
help_args=()
if [ -x "$bin_dir/duro-bridge" ] && [ -x "$bin_dir/duro-enricher" ]; then
  "$bin_dir/duro-bridge" --help >"$work/bridge.help"
  "$bin_dir/duro-enricher" --help >"$work/enricher.help"
  help_args=(--bridge-help "$work/bridge.help" --enricher-help "$work/enricher.help")
else
  echo "check-chart: WARNING: no duro-bridge/duro-enricher in $bin_dir (DURO_BIN_DIR):" \
    "environment variable names are NOT checked against --help" >&2
fi

schema_args=(
  -schema-location "$DURO_K8S_SCHEMAS/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
  -schema-location "$DURO_CRD_SCHEMAS/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
)
for f in monitoring.coreos.com/servicemonitor_v1 monitoring.coreos.com/prometheusrule_v1 \
  kafka.strimzi.io/kafkatopic_v1; do
  [ -f "$DURO_CRD_SCHEMAS/$f.json" ] || {
    echo "check-chart: FAIL: no schema $DURO_CRD_SCHEMAS/$f.json (scripts/chart-tools.sh makes it)" >&2
    exit 1
  }
done
read -r -a versions <<<"$DURO_K8S_VERSIONS"
latest=${versions[${#versions[@]} - 1]}

# helm lint/template with the values of NAME (extra helm arguments after it).
render() { # NAME K8S_VERSION ARGS... → $work/NAME-VERSION.yaml; output in .log
  local name=$1 v=$2
  shift 2
  "$DURO_HELM" template duro-test "$chart" --namespace duro-test --kube-version "$v" "$@" \
    >"$work/$name-$v.yaml" 2>"$work/$name-$v.log"
}
lint() { # NAME ARGS...
  local name=$1
  shift
  "$DURO_HELM" lint --strict "$chart" --namespace duro-test --kube-version "$latest" "$@" \
    >"$work/$name-lint.log" 2>&1
}
conform() { # K8S_VERSION FILE...
  local v=$1
  shift
  "$DURO_KUBECONFORM" -strict -summary -output text -kubernetes-version "$v" \
    "${schema_args[@]}" "$@"
}
manifests() { # FILE LABEL
  python3 "$root/deploy/check-manifests.py" "$1" --label "$2" "${help_args[@]}"
}

check_values() { # NAME ARGS...: lint, render for each version, manifest checks
  local name=$1 v
  shift
  if lint "$name" "$@"; then
    pass "$name: helm lint --strict"
  else
    cat "$work/$name-lint.log"
    failure "$name: helm lint --strict"
  fi
  for v in "${versions[@]}"; do
    if render "$name" "$v" "$@"; then
      pass "$name: helm template (Kubernetes $v)"
      echo "$name" >>"$work/rendered-$v"
    else
      cat "$work/$name-$v.log"
      failure "$name: helm template (Kubernetes $v)"
    fi
  done
  if [ -s "$work/$name-$latest.yaml" ]; then
    if manifests "$work/$name-$latest.yaml" "$name" 2>"$work/$name.mc"; then
      grep -v ': warning: ' "$work/$name.mc" | sed 's/^/  /' || true
      pass "$name: manifest checks"
    else
      cat "$work/$name.mc"
      failure "$name: manifest checks"
    fi
    grep ': warning: ' "$work/$name.mc" | sort -u >>"$work/warnings" || true
  fi
}

check_values defaults
for f in "$root"/deploy/values/*.yaml; do
  check_values "$(basename "$f" .yaml)" -f "$f"
done

# apiFiles: the release's own ConfigMaps (the image's event table; stand-ins for the six
# GraphQL documents, which the chart does not read), then existing ones (the queries
# under their older value name). Then the same text with one change each, for the
# pods' checksums.
docs="components change_orders webhooks_list webhooks_create webhooks_update webhooks_logs"
api_args=(--set-file "apiFiles.eventTable.text=$root/schemas/event-table.txt")
for d in $docs; do
  api_args+=(--set-string "apiFiles.queries.files.$d\\.graphql=query $d { __typename }")
done
check_values api-files "${api_args[@]}"
check_values api-files-existing --set apiFiles.eventTable.existingConfigMap=my-event-table \
  --set apiFiles.eventTable.key=table.txt --set enricher.queries.existingConfigMap=my-queries
{ cat "$root/schemas/event-table.txt"; echo "ITEM_RELEASED item item_id no ITEM_UPDATE"; } \
  >"$work/event-table-2.txt"
render api-files-table2 "$latest" "${api_args[@]}" \
  --set-file "apiFiles.eventTable.text=$work/event-table-2.txt" || cat "$work/api-files-table2-$latest.log"
render api-files-query2 "$latest" "${api_args[@]}" \
  --set-string 'apiFiles.queries.files.webhooks_logs\.graphql=query webhooks_logs { id }' ||
  cat "$work/api-files-query2-$latest.log"

# The state and progress topics with Strimzi topics: turned off, and everything renamed
# (24 partitions, extra state configs, a deliberate reset).
strimzi_args=(--set topics.strimzi.enabled=true --set topics.strimzi.cluster=events)
check_values state-off "${strimzi_args[@]}" --set enricher.stateTopics.enabled=false
check_values state-custom "${strimzi_args[@]}" --set topics.partitions=24 \
  --set-string 'enricher.stateTopics.topicTemplate=plm.{kind}.current' \
  --set enricher.progressTopic.name=plm.enricher.resume --set enricher.progressTopic.ignore=true \
  --set-string 'topics.stateConfig.min\.compaction\.lag\.ms=60000' \
  --set-string 'kafka.topicTemplate=plm.events.{event}'

# kubeconform once per Kubernetes version over every rendering (it compiles each
# schema once per run); a rendering passes when no output line names its file.
for v in "${versions[@]}"; do
  [ -s "$work/rendered-$v" ] || continue
  files=()
  while read -r name; do files+=("$work/$name-$v.yaml"); done <"$work/rendered-$v"
  rc=0
  conform_out=$(conform "$v" "${files[@]}" 2>&1) || rc=$?
  for f in "${files[@]}"; do
    name=$(basename "$f" "-$v.yaml")
    if grep -F -- "$f - " <<<"$conform_out" >"$work/$name-$v.kc"; then
      cat "$work/$name-$v.kc"
      failure "$name: kubeconform -strict (Kubernetes $v)"
    else
      pass "$name: kubeconform -strict (Kubernetes $v): $(grep -c '^kind:' "$f") objects valid"
    fi
  done
  echo "  kubeconform (Kubernetes $v): $(tail -1 <<<"$conform_out")"
  if [ "$rc" -ne 0 ] && ! grep -q -- " - " <<<"$conform_out"; then
    echo "$conform_out"
    failure "kubeconform (Kubernetes $v) failed without naming a file"
  fi
done

# The alerts and the dashboard (as rendered with full.yaml): PromQL and annotation
# templates parse (promtool check rules; each dashboard query as a recording rule), the
# alerts fire when they should and only then (promtool test rules, deploy/alerts.test.yaml),
# and every metric they name is one the programs export (their C sources), while the
# dashboard shows every one of them.
prom="$work/prom"
full="$work/full-$latest.yaml"
if [ -s "$full" ]; then
  mkdir -p "$prom"
  if python3 - "$full" "$prom" "$root" >"$prom/extract.log" 2>&1 <<'PY'; then
import glob, json, re, sys
import yaml

full, out, root = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(full)) if d]
rule = [d for d in docs if d["kind"] == "PrometheusRule"][0]
cm = [d for d in docs if d["kind"] == "ConfigMap" and "duro-kafka-bridge.json" in d.get("data", {})][0]
groups = rule["spec"]["groups"]
yaml.safe_dump({"groups": groups}, open(f"{out}/rules-annotated.yaml", "w"), sort_keys=False)
stripped = json.loads(json.dumps(groups))
for g in stripped:
    for r in g["rules"]:
        r.pop("annotations", None)
yaml.safe_dump({"groups": stripped}, open(f"{out}/rules.yaml", "w"), sort_keys=False)

dash = json.loads(cm["data"]["duro-kafka-bridge.json"])
subst = {"$__rate_interval": "5m", "$namespace": "duro-test", "$release": ".*"}
records, exprs = [], []
for p in dash["panels"]:
    for t in p.get("targets", []):
        e = t["expr"]
        for k, v in subst.items():
            e = e.replace(k, v)
        if "$" in e:
            sys.exit(f"panel {p['title']!r}: unknown variable in {e}")
        records.append({"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": e})
        exprs.append(e)
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]},
               open(f"{out}/dashboard.yaml", "w"), sort_keys=False)

exported = set()
for f in glob.glob(f"{root}/bridge/*.c") + glob.glob(f"{root}/enricher/*.c"):
    exported |= set(re.findall(r'"(duro_(?:bridge|enricher)_[a-z_]+)"', open(f).read()))
def names(text):
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\bduro_(?:bridge|enricher)_[a-z_]+", text)}
alert_names = names(" ".join(r["expr"] for g in groups for r in g["rules"]))
dash_names = names(" ".join(exprs))
bad = sorted((alert_names | dash_names) - exported)
missing = sorted(exported - dash_names)
print(f"{len(records)} dashboard queries, {len(exported)} exported metrics, "
      f"{len(alert_names)} in alerts, {len(dash_names)} on the dashboard")
if bad:
    sys.exit(f"metrics no program exports: {bad}")
if missing:
    sys.exit(f"metrics the dashboard does not show: {missing}")
PY
    pass "alerts and dashboard: metric names ($(tail -1 "$prom/extract.log"))"
  else
    cat "$prom/extract.log"
    failure "alerts and dashboard: metric names"
  fi
  if "$DURO_PROMTOOL" check rules "$prom/rules-annotated.yaml" "$prom/dashboard.yaml" \
    >"$prom/check.log" 2>&1; then
    pass "promtool check rules: $(awk '/rules found/ { n += $2 } END { print n }' "$prom/check.log") alert rules and dashboard queries"
  else
    cat "$prom/check.log"
    failure "promtool check rules"
  fi
  cp "$root/deploy/alerts.test.yaml" "$prom/"
  if (cd "$prom" && "$DURO_PROMTOOL" test rules alerts.test.yaml) >"$prom/test.log" 2>&1; then
    pass "promtool test rules: deploy/alerts.test.yaml ($(grep -c 'eval_time' "$root/deploy/alerts.test.yaml") evaluations)"
  else
    cat "$prom/test.log"
    failure "promtool test rules"
  fi
fi

# apiFiles in the renderings: what each pod template mounts and sets, and the checksums.
if python3 - "$work" "$latest" "$root" >"$work/api-files.out" 2>&1 <<'PY'; then
import glob, os, sys
import yaml

work, v, root = sys.argv[1:4]
ENV = {"DURO_EVENT_TABLE": "/etc/duro/event-table/event-table.txt", "DURO_QUERIES_DIR": "/etc/duro/queries"}
MOUNT = {"event-table": "/etc/duro/event-table", "queries": "/etc/duro/queries"}
DOCS = ["components", "change_orders", "webhooks_list", "webhooks_create", "webhooks_update", "webhooks_logs"]
table = open(f"{root}/schemas/event-table.txt").read()


def load(name):
    path = f"{work}/{name}-{v}.yaml"
    if not os.path.exists(path) or not os.path.getsize(path):
        return None
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    cms = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    pods = {}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            t = d["spec"]["template"]
            c = t["spec"]["containers"][0]
            pods[c["name"]] = {
                "kind": d["kind"],
                "template": t,
                "env": {e["name"]: e.get("value") for e in c.get("env", [])},
                "mounts": {m["name"]: m for m in c.get("volumeMounts", [])},
                "volumes": {x["name"]: x for x in t["spec"].get("volumes", [])},
                "checksums": {k: a for k, a in (t["metadata"].get("annotations") or {}).items()
                              if k.startswith("checksum/")},
            }
    return cms, pods


def check(case, problems):
    print(("fail|" if problems else "ok|") + case + (": " + "; ".join(problems) if problems else ""))


def files(pod, want, problems, prog):
    """want: volume name → (ConfigMap name, items or None) the pod must mount; the others none."""
    for var, vol in (("DURO_EVENT_TABLE", "event-table"), ("DURO_QUERIES_DIR", "queries")):
        if vol in want:
            if pod["env"].get(var) != ENV[var]:
                problems.append(f"{prog}: {var}={pod['env'].get(var)!r}, want {ENV[var]}")
            m = pod["mounts"].get(vol)
            if not m or m["mountPath"] != MOUNT[vol] or m.get("readOnly") is not True:
                problems.append(f"{prog}: no read-only mount {vol} at {MOUNT[vol]}: {m}")
            cm = pod["volumes"].get(vol, {}).get("configMap", {})
            name, items = want[vol]
            if cm.get("name") != name or cm.get("items") != items:
                problems.append(f"{prog}: volume {vol} is {cm}, want ConfigMap {name} items {items}")
        else:
            if var in pod["env"]:
                problems.append(f"{prog}: {var} is set")
            if vol in pod["mounts"] or vol in pod["volumes"]:
                problems.append(f"{prog}: a {vol} volume or mount")


# Unset: no trace in either workload.
for path in sorted(glob.glob(f"{work}/*-{v}.yaml")):
    name = os.path.basename(path)[: -len(f"-{v}.yaml")]
    if name.startswith("api-files") or name == "full" or not os.path.exists(f"{work}/{name}-lint.log"):
        continue
    cms, pods = load(name)
    problems = [f"ConfigMap {n}" for n in cms if n.endswith(("-event-table", "-queries"))]
    for prog, pod in pods.items():
        files(pod, {}, problems, prog)
        problems += [f"{prog}: annotation {k}" for k in pod["checksums"]]
    check(f"{name}: apiFiles unset: no DURO_EVENT_TABLE, DURO_QUERIES_DIR, mount, ConfigMap or checksum in "
          + " and ".join(f"{p['kind']} {prog}" for prog, p in sorted(pods.items())), problems)

# The release's own ConfigMaps.
r = load("api-files")
if r:
    cms, pods = r
    problems = []
    et, qs = "duro-test-duro-kafka-bridge-event-table", "duro-test-duro-kafka-bridge-queries"
    items = [{"key": "event-table.txt", "path": "event-table.txt"}]
    if set(pods) != {"bridge", "enricher"}:
        problems.append(f"workloads {sorted(pods)}")
    if cms.get(et) != {"event-table.txt": table}:
        problems.append(f"ConfigMap {et} does not hold schemas/event-table.txt as given")
    want_q = {f"{d}.graphql": f"query {d} {{ __typename }}" for d in DOCS}
    if cms.get(qs) != want_q:
        problems.append(f"ConfigMap {qs} holds {cms.get(qs)}, want {want_q}")
    files(pods["bridge"], {"event-table": (et, items)}, problems, "bridge")
    files(pods["enricher"], {"event-table": (et, items), "queries": (qs, None)}, problems, "enricher")
    if set(pods["bridge"]["checksums"]) != {"checksum/event-table"}:
        problems.append(f"bridge checksums {sorted(pods['bridge']['checksums'])}")
    if set(pods["enricher"]["checksums"]) != {"checksum/event-table", "checksum/queries"}:
        problems.append(f"enricher checksums {sorted(pods['enricher']['checksums'])}")
    check("api-files: DURO_EVENT_TABLE and its mount in the Deployment and the StatefulSet, "
          "DURO_QUERIES_DIR and its mount in the StatefulSet only, the ConfigMaps hold the text given", problems)

    # A change of the table rolls both; of a query, the enricher only.
    for other, changed in (("api-files-table2", {"bridge": ["checksum/event-table"], "enricher": ["checksum/event-table"]}),
                           ("api-files-query2", {"bridge": [], "enricher": ["checksum/queries"]})):
        r2 = load(other)
        if not r2:
            check(f"{other}: checksums", [f"no rendering {other}"])
            continue
        problems = []
        for prog in ("bridge", "enricher"):
            a, b = pods[prog]["checksums"], r2[1][prog]["checksums"]
            moved = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if moved != changed[prog]:
                problems.append(f"{prog}: changed {moved}, want {changed[prog]}")
            if not changed[prog] and pods[prog]["template"] != r2[1][prog]["template"]:
                problems.append(f"{prog}: pod template changed")
        check(f"{other}: pods roll on their files' change only (" + ", ".join(
            f"{p} {' '.join(c) or 'unchanged'}" for p, c in changed.items()) + ")", problems)

# Existing ConfigMaps: mounted, nothing made, nothing to checksum.
r = load("api-files-existing")
if r:
    cms, pods = r
    problems = [f"ConfigMap {n}" for n in cms if n.endswith(("-event-table", "-queries"))]
    items = [{"key": "table.txt", "path": "event-table.txt"}]
    files(pods["bridge"], {"event-table": ("my-event-table", items)}, problems, "bridge")
    files(pods["enricher"], {"event-table": ("my-event-table", items), "queries": ("my-queries", None)},
          problems, "enricher")
    problems += [f"{p}: annotation {k}" for p, pod in pods.items() for k in pod["checksums"]]
    check("api-files-existing: existing ConfigMaps (key table.txt; enricher.queries) mounted, none made, no checksum",
          problems)

# full.yaml: its own event table, the queries from an existing ConfigMap.
r = load("full")
if r:
    cms, pods = r
    problems = []
    text = yaml.safe_load(open(f"{root}/deploy/values/full.yaml"))["apiFiles"]["eventTable"]["text"]
    et = "duro-test-duro-kafka-bridge-event-table"
    items = [{"key": "event-table.txt", "path": "event-table.txt"}]
    if cms.get(et) != {"event-table.txt": text}:
        problems.append(f"ConfigMap {et} does not hold full.yaml's table")
    files(pods["bridge"], {"event-table": (et, items)}, problems, "bridge")
    files(pods["enricher"], {"event-table": (et, items), "queries": ("duro-queries", None)}, problems, "enricher")
    check("full: its event table in both workloads, the queries from ConfigMap duro-queries", problems)
PY
  while IFS='|' read -r status what; do
    if [ "$status" = ok ]; then pass "$what"; else failure "$what"; fi
  done <"$work/api-files.out"
else
  cat "$work/api-files.out"
  failure "apiFiles checks (the script failed)"
fi

# The state and progress topics in the renderings: the enricher's variables as the values
# give them; the KafkaTopics (or their absence) that go with them.
if python3 - "$work" "$latest" >"$work/state.out" 2>&1 <<'PY'; then
import os, sys
import yaml

work, v = sys.argv[1:3]
OUT = ["item_create", "item_update", "item_delete", "co_open", "co_update", "co_delete",
       "co_stage_transition", "co_stage_reviewer_decision", "co_resolution"]


def load(name):
    path = f"{work}/{name}-{v}.yaml"
    if not os.path.exists(path) or not os.path.getsize(path):
        return None
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    env = {}
    for d in docs:
        if d["kind"] == "StatefulSet":
            c = d["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
    topics = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    return env, topics


def check(case, problems):
    print(("fail|" if problems else "ok|") + case + (": " + "; ".join(problems) if problems else ""))


def want_env(env, want, problems):
    for k, x in want.items():
        if env.get(k) != x:
            problems.append(f"enricher {k}={env.get(k)!r}, want {x!r}")


def want_topic(topics, name, partitions, config, problems):
    s = topics.get(name)
    if s is None:
        problems.append(f"no KafkaTopic {name}")
        return
    if s.get("partitions") != partitions:
        problems.append(f"{name}: partitions {s.get('partitions')}, want {partitions}")
    got = {k: s.get("config", {}).get(k) for k in config}
    if got != config:
        problems.append(f"{name}: config {got}, want {config}")


progress_cfg = {"cleanup.policy": "compact", "segment.ms": 3600000, "min.insync.replicas": 2}
cases = {
    # name: (env, events template, state topics or None, progress, partitions, state configs)
    "defaults": ({"DURO_STATE_TOPICS": "true", "DURO_STATE_TOPIC_TEMPLATE": "duro.state.{kind}",
                  "DURO_PROGRESS_TOPIC": "duro.enricher.progress", "DURO_PROGRESS_IGNORE": "false",
                  "DURO_CREATE_TOPICS": "true"}, None, None, None, None, None),
    "full": ({"DURO_STATE_TOPICS": "true", "DURO_STATE_TOPIC_TEMPLATE": "duro.state.{kind}",
              "DURO_PROGRESS_TOPIC": "duro.enricher.progress", "DURO_PROGRESS_IGNORE": "false",
              "DURO_CREATE_TOPICS": None},
             "duro.events.", ["duro.state.item", "duro.state.change_order"], "duro.enricher.progress",
             12, {}),
    "state-off": ({"DURO_STATE_TOPICS": "false", "DURO_PROGRESS_TOPIC": "duro.enricher.progress",
                   "DURO_CREATE_TOPICS": None},
                  "duro.events.", [], "duro.enricher.progress", 12, {}),
    "state-custom": ({"DURO_STATE_TOPICS": "true", "DURO_STATE_TOPIC_TEMPLATE": "plm.{kind}.current",
                      "DURO_PROGRESS_TOPIC": "plm.enricher.resume", "DURO_PROGRESS_IGNORE": "true",
                      "DURO_TOPIC_TEMPLATE": "plm.events.{event}", "DURO_CREATE_TOPICS": None},
                     "plm.events.", ["plm.item.current", "plm.change_order.current"], "plm.enricher.resume",
                     24, {"min.compaction.lag.ms": "60000"}),
    "mtls-bridge-tls": ({"DURO_STATE_TOPICS": "true", "DURO_PROGRESS_TOPIC": "duro.enricher.progress",
                         "DURO_CREATE_TOPICS": None}, None, None, None, None, None),
}
for name, (env_want, prefix, state, progress, parts, state_cfg) in cases.items():
    r = load(name)
    if not r:
        check(f"{name}: state and progress topics", [f"no rendering {name}"])
        continue
    env, topics = r
    problems = []
    want_env(env, env_want, problems)
    if prefix is None:
        if topics:
            problems.append(f"KafkaTopics {sorted(topics)}")
        check(f"{name}: the enricher's state and progress variables "
              f"({', '.join(f'{k}={x}' for k, x in env_want.items() if x)}), no KafkaTopic", problems)
        continue
    for o in OUT + ["item_snapshot", "co_snapshot"]:
        want_topic(topics, prefix + o, parts, {}, problems)
    for s in state:
        want_topic(topics, s, parts, dict({"cleanup.policy": "compact", "min.insync.replicas": 2}, **state_cfg),
                   problems)
    stray = sorted(n for n, s in topics.items() if "compact" in str(s.get("config", {}).get("cleanup.policy"))
                   and n not in state and n != progress)
    if stray:
        problems.append(f"other compacted topics {stray}")
    want_topic(topics, progress, 1, progress_cfg, problems)
    if len(topics) != 2 + len(OUT) + 2 + len(state) + 1:
        problems.append(f"{len(topics)} KafkaTopics: {sorted(topics)}")
    check(f"{name}: KafkaTopics: " + (f"state topics {' '.join(state)} compacted with {parts} partitions like the "
          "outputs" if state else "no state topic") + f", progress topic {progress} (compact, 1 partition, "
          f"segment.ms 3600000), {prefix}item_snapshot and co_snapshot; the enricher's variables name them",
          problems)
PY
  while IFS='|' read -r status what; do
    if [ "$status" = ok ]; then pass "$what"; else failure "$what"; fi
  done <"$work/state.out"
else
  cat "$work/state.out"
  failure "state and progress topic checks (the script failed)"
fi

# Self-tests: each must be refused, for the reason given (a pattern of the error).
expect_refused() { # WHAT PATTERN LOG; the command already failed (or not: $4)
  local what=$1 pattern=$2 log=$3 rc=$4
  if [ "$rc" -ne 0 ] && grep -Eq -- "$pattern" "$log"; then
    pass "self-test: $what is refused: $(grep -Eo -m1 -- "$pattern" "$log" | sed 's/ is invalid: .* - at / at /')"
  else
    cat "$log"
    failure "self-test: $what was NOT refused as expected (rc $rc, wanted /$pattern/)"
  fi
}
if [ "$self_test" = 1 ]; then
  # NAME YAML PATTERN [template-only]: helm lint (which applies values.schema.json but
  # only logs a template's `fail`) and helm template must refuse the values.
  bad_values() {
    local name=$1 yaml=$2 pattern=$3 rc
    printf '%s\n' "$yaml" >"$work/$name.values.yaml"
    if [ "${4:-}" != template-only ]; then
      rc=0
      lint "bad-$name" -f "$work/$name.values.yaml" || rc=$?
      expect_refused "values $name (helm lint)" "$pattern" "$work/bad-$name-lint.log" "$rc"
    fi
    rc=0
    render "bad-$name" "$latest" -f "$work/$name.values.yaml" || rc=$?
    expect_refused "values $name (helm template)" "$pattern" "$work/bad-$name-$latest.log" "$rc"
  }
  bad_values wrong-type $'bridge:\n  replicas: "two"' 'replicas.*(integer|Invalid type)'
  bad_values unknown-key $'bridge:\n  replica: 2' "additional properties 'replica' not allowed"
  bad_values bad-duration 'eventMaxAge: 1 day' 'eventMaxAge.*(Does not match pattern|pattern)'
  bad_values refused-kafka-property $'kafka:\n  config:\n    acks: "1"' "invalid propertyName 'acks'"
  bad_values secret-in-config $'kafka:\n  config:\n    sasl.password: hunter2' "invalid propertyName 'sasl.password'"
  bad_values short-grace $'bridge:\n  terminationGracePeriodSeconds: 10' \
    'must exceed drainDelayMs \+ ackTimeoutMs' template-only
  bad_values min-isr-above-replicas $'topics:\n  minInsyncReplicas: 4' \
    'minInsyncReplicas must not exceed topics.replicas' template-only
  bad_values queries-incomplete $'apiFiles:\n  queries:\n    files:\n      components.graphql: "query c { id }"' \
    'apiFiles.queries.files lacks change_orders.graphql, webhooks_list.graphql' template-only
  bad_values query-unknown-name $'apiFiles:\n  queries:\n    files:\n      component.graphql: "query c { id }"' \
    "invalid propertyName 'component.graphql'"
  bad_values event-table-twice $'apiFiles:\n  eventTable:\n    text: "ITEM_CREATE item item_id known no -"\n    existingConfigMap: t' \
    'give text or existingConfigMap, not both' template-only
  bad_values state-template-without-kind $'enricher:\n  stateTopics:\n    topicTemplate: duro.state' \
    'topicTemplate.*(Does not match pattern|pattern)'
  bad_values state-config-cleanup-policy $'topics:\n  stateConfig:\n    cleanup.policy: delete' \
    "invalid propertyName 'cleanup.policy'"
  bad_values progress-topic-is-dlq $'topics:\n  strimzi:\n    enabled: true\nenricher:\n  progressTopic:\n    name: duro.webhooks.dlq' \
    'two KafkaTopics for topic "duro.webhooks.dlq"' template-only
  bad_values sasl-without-password $'kafka:\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: u' 'passwordSecret'

  # Bad fields and wrong types in rendered objects: kubeconform must refuse each file.
  base="$work/defaults-$latest.yaml"
  full="$work/full-$latest.yaml"
  kc_tests=(
    "bad-field|a rendered Deployment with an unknown field|Deployment.*additional properties 'bogusField' not allowed"
    "bad-type|a rendered Deployment with replicas as a string|Deployment.*got string, want (null or )?integer"
  )
  sed 's/^      enableServiceLinks: false$/      enableServiceLinks: false\n      bogusField: 1/' \
    "$base" >"$work/bad-field.yaml"
  sed 's/^  replicas: 2$/  replicas: "2"/' "$base" >"$work/bad-type.yaml"
  if [ -f "$full" ]; then
    sed 's/^  partitions: 12$/  partitions: twelve/' "$full" >"$work/bad-topic.yaml"
    kc_tests+=("bad-topic|a KafkaTopic with partitions as a string|KafkaTopic.*got string, want integer")
    sed 's/^      scrapeTimeout: 10s$/      scrapeTimeout: 10s\n      bogusField: 1/' \
      "$full" >"$work/bad-sm.yaml"
    sed 's/^        - alert: DuroEnricherDLQ$/        - alert: DuroEnricherDLQ\n          severity: 3/' \
      "$full" >"$work/bad-rule.yaml"
    kc_tests+=("bad-sm|a ServiceMonitor with an unknown field|ServiceMonitor.*'bogusField' not allowed"
      "bad-rule|a PrometheusRule with a misplaced field|PrometheusRule.*additional properties 'severity' not allowed")
  fi
  files=()
  for t in "${kc_tests[@]}"; do files+=("$work/${t%%|*}.yaml"); done
  conform_out=$(conform "$latest" "${files[@]}" 2>&1) || true
  for t in "${kc_tests[@]}"; do
    IFS='|' read -r file what pattern <<<"$t"
    rc=0
    grep -F -- "$work/$file.yaml - " <<<"$conform_out" >"$work/$file.kc" && rc=1
    expect_refused "$what (kubeconform)" "$pattern" "$work/$file.kc" "$rc"
  done

  # An alert that no longer fires as specified: promtool test rules must say so.
  if [ -f "$prom/rules.yaml" ]; then
    mkdir -p "$work/prom-bad"
    sed 's/> 10000/> 20000/' "$prom/rules.yaml" >"$work/prom-bad/rules.yaml"
    cp "$root/deploy/alerts.test.yaml" "$work/prom-bad/"
    rc=0
    (cd "$work/prom-bad" && "$DURO_PROMTOOL" test rules alerts.test.yaml) \
      >"$work/prom-bad/test.log" 2>&1 || rc=$?
    expect_refused "a consumer-lag alert with the wrong threshold (promtool test rules)" \
      "alertname: DuroEnricherConsumerLag, time: 16m" "$work/prom-bad/test.log" "$rc"
    printf 'groups:\n  - name: x\n    rules:\n      - record: x:y\n        expr: sum(rate(duro_bridge_ready[5m])\n' \
      >"$work/prom-bad/syntax.yaml"
    rc=0
    "$DURO_PROMTOOL" check rules "$work/prom-bad/syntax.yaml" >"$work/prom-bad/syntax.log" 2>&1 || rc=$?
    expect_refused "a PromQL syntax error (promtool check rules)" "unclosed left parenthesis" \
      "$work/prom-bad/syntax.log" "$rc"
  fi

  # What only check-manifests.py sees.
  if [ ${#help_args[@]} -gt 0 ]; then
    printf 'bridge:\n  extraEnv:\n    - name: DURO_BRIDGE_NO_SUCH_SETTING\n      value: "1"\n' \
      >"$work/unknown-env.values.yaml"
    render unknown-env "$latest" -f "$work/unknown-env.values.yaml"
    rc=0
    manifests "$work/unknown-env-$latest.yaml" unknown-env 2>"$work/unknown-env.mc" || rc=$?
    expect_refused "an unknown DURO_* variable (manifest checks)" \
      "DURO_BRIDGE_NO_SUCH_SETTING is not a variable the program knows" "$work/unknown-env.mc" "$rc"
  fi
  if [ -s "$work/api-files-$latest.yaml" ]; then
    grep -v '^        checksum/event-table: ' "$work/api-files-$latest.yaml" >"$work/no-checksum.yaml"
    rc=0
    manifests "$work/no-checksum.yaml" no-checksum 2>"$work/no-checksum.mc" || rc=$?
    expect_refused "a release ConfigMap mounted without its checksum annotation (manifest checks)" \
      "no checksum/event-table annotation rolls the pods" "$work/no-checksum.mc" "$rc"
  fi
  # The state and progress KafkaTopics of full.yaml, broken one way each.
  if [ -s "$full" ]; then
    topic_test() { # NAME PATTERN PYTHON (changes the KafkaTopic dict s of topic named n)
      local name=$1 pattern=$2 code=$3 rc=0
      python3 - "$full" "$work/$name.yaml" "$code" <<'PY'
import sys
import yaml
src, out, code = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
keep = []
for d in docs:
    if d["kind"] == "KafkaTopic":
        s, n = d["spec"], d["spec"]["topicName"]
        drop = False
        exec(code)
        if drop:
            continue
    keep.append(d)
yaml.safe_dump_all(keep, open(out, "w"), sort_keys=False)
PY
      manifests "$work/$name.yaml" "$name" 2>"$work/$name.mc" || rc=$?
      expect_refused "$name (manifest checks)" "$pattern" "$work/$name.mc" "$rc"
    }
    topic_test "a state topic not compacted" "duro.state.item has cleanup.policy 'delete', want compact" \
      'if n == "duro.state.item": s["config"]["cleanup.policy"] = "delete"'
    topic_test "a state topic not co-partitioned" "duro.state.change_order has 6 partitions, the output topics 12" \
      'if n == "duro.state.change_order": s["partitions"] = 6'
    topic_test "a progress topic of 12 partitions" "duro.enricher.progress has 12 partitions, want 1" \
      'if n == "duro.enricher.progress": s["partitions"] = 12'
    topic_test "a progress topic without segment.ms" "duro.enricher.progress has segment.ms None" \
      'if n == "duro.enricher.progress": del s["config"]["segment.ms"]'
    topic_test "no progress KafkaTopic" "no KafkaTopic for the progress topic duro.enricher.progress" \
      'drop = n == "duro.enricher.progress"'
    topic_test "no snapshot output KafkaTopic" "no KafkaTopic for the snapshot output topic duro.events.co_snapshot" \
      'drop = n == "duro.events.co_snapshot"'
  fi
  sed 's/^      enableServiceLinks: false$/      enableServiceLinks: true/' "$base" >"$work/links.yaml"
  rc=0
  manifests "$work/links.yaml" service-links 2>"$work/links.mc" || rc=$?
  expect_refused "service links turned on (manifest checks)" \
    "enableServiceLinks must be false" "$work/links.mc" "$rc"
  sed 's/^      terminationGracePeriodSeconds: 25$/      terminationGracePeriodSeconds: 12/' \
    "$base" >"$work/grace.yaml"
  rc=0
  manifests "$work/grace.yaml" short-grace 2>"$work/grace.mc" || rc=$?
  expect_refused "a bridge grace period below drain + ack timeout (manifest checks)" \
    "does not exceed drain delay" "$work/grace.mc" "$rc"
fi

if [ -s "$work/warnings" ]; then
  echo "warnings:"
  sed 's/^/  /' "$work/warnings"
fi
echo "check-chart: $((SECONDS - t0)) s in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
