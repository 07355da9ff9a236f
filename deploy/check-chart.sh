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
#      output topics), for the defaults, full.yaml and two more cases; and CloudEvents:
#      the enricher's DURO_CLOUDEVENTS and DURO_CE_SOURCE as enricher.cloudEvents gives
#      them (the source only when set), in no other workload, for the defaults,
#      minimal.yaml, full.yaml and a case with both set; and the group protocol: the
#      enricher's DURO_ASSIGNMENT as enricher.assignment gives it (default eager), in no
#      other workload, DURO_GROUP_INSTANCE_ID from the pod name unless it is consumer and
#      none then, and under consumer none of the classic protocol's properties
#      (session.timeout.ms, heartbeat.interval.ms, group.protocol.type of kafka.config and
#      kafka.consumerConfig) in the enricher or its Jobs while the other properties stay
#      and the bridge keeps kafka.config whole, for the defaults, minimal.yaml, full.yaml,
#      a cooperative case and a consumer case (full.yaml with those properties);
#   7. the snapshot Jobs (`duro-enricher snapshot`: the CronJob of on-demand runs, the
#      post-install hook Job, the metrics Service), for every rendering and three cases
#      of their own: present as the values ask; the enricher's image, service account,
#      security contexts, volumes and mounts; exactly the enricher's Kafka, topic, group,
#      Duro API and API-file variables (DURO_RDKAFKA_* included), no transactional.id or
#      group instance id, nothing but the snapshot's own besides (against `duro-enricher
#      snapshot --help` when the build has it); the run id from the Job's job-name label
#      (CronJob) or fixed (hook); restartPolicy Never with exit 2 failing the Job; the
#      admin port, probe and Service the ServiceMonitor selects; the topics it writes
#      declared with the KafkaTopics; name lengths;
#   8. the reconcile CronJob (`duro-enricher reconcile`), for every rendering and three
#      cases of its own (every value set; suspended without admin listener; turned off):
#      present as the values ask, with the values' schedule, concurrencyPolicy Forbid,
#      deadlines and history limits, args (--since, --webhook …) and variables
#      (DURO_RECONCILE_URL, DURO_CLOCK_SKEW_S, DURO_LOG_TABLE, DURO_RECONCILE_ADMIN_LISTEN,
#      DURO_LOG_LEVEL, extraEnv); the enricher's image, service account, security
#      contexts, volumes and mounts (plus the log table's read-only ConfigMap mount, the
#      ConfigMap holding the text given); exactly the enricher's Kafka, raw topic, group,
#      Duro API, API-file and GraphQL variables, no state or progress topic, no
#      transactional.id or group instance id (against `duro-enricher reconcile --help`
#      when the build has it); restartPolicy Never with exit 2 failing the Job; the admin
#      port, probe, the Service and ServiceMonitor that scrape it, and the
#      DuroReconcileNotRecoverable alert whenever the runs are scraped;
#   9. the PrometheusRule and the Grafana dashboard: promtool check rules (PromQL and
#      annotation templates), promtool test rules (deploy/alerts.test.yaml: each alert
#      fires when it should and not before), and their metric names against the
#      programs' sources (the dashboard shows every exported metric).
# Then self-tests prove each stage can fail: bad values (wrong type, unknown key,
# refused Kafka property, too short a grace period, a CloudEvents switch that is not a
# boolean, a CloudEvents source with a blank or a tab, an unknown group protocol), bad
# fields in rendered objects (core kinds and CRDs), an unknown DURO_* variable, an
# enricher without its group instance id under eager, one with a group instance id or a
# session timeout under consumer, service links turned on, an
# incomplete queries folder, a release ConfigMap without its checksum annotation, an
# alert with a wrong threshold, a PromQL syntax error, a state topic template without
# {kind}, two KafkaTopics for one topic, a state or progress KafkaTopic that is not
# compacted, wrongly partitioned or missing, and snapshot values or Jobs that are wrong
# (unknown key, kind or schedule; a transactional.id, Kafka settings or volumes not the
# enricher's, a run id not the Job's name, retries in place; an unknown CronJob field),
# and reconcile values or CronJobs that are wrong (unknown key, a bad --since, a webhook
# id that reads as a flag, a URL without scheme; runs allowed to overlap, another
# schedule, args or variables not the values', settings not the enricher's, the log
# table unmounted, writable or empty, the admin port off its listener, unexposed or
# unscraped, retries on a bad setting, no alert, a transactional.id) must each be caught.
#
# Usage: deploy/check-chart.sh [--no-self-test]
# Environment: DURO_BIN_DIR (folder of duro-bridge and duro-enricher for their --help,
#   and `duro-enricher snapshot --help` and `reconcile --help` when it has them; default build/), DURO_K8S_VERSIONS, DURO_CACHE (tool cache, see scripts/chart-tools.sh).
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
# The snapshot's variables: `duro-enricher snapshot --help` when this build has the command.
snapshot_help=""
if [ ${#help_args[@]} -gt 0 ]; then
  if timeout 10 "$bin_dir/duro-enricher" snapshot --help >"$work/snapshot.help" 2>/dev/null &&
    grep -q DURO_SNAPSHOT_ID "$work/snapshot.help"; then
    snapshot_help="$work/snapshot.help"
  else
    echo "check-snapshot: warning: $bin_dir/duro-enricher has no 'snapshot --help': the snapshot" \
      "Jobs' variables are checked against the chart's list only" >>"$work/warnings"
  fi
fi

# Reconcile's variables: `duro-enricher reconcile --help` when this build has the command.
reconcile_help=""
if [ ${#help_args[@]} -gt 0 ]; then
  if timeout 10 "$bin_dir/duro-enricher" reconcile --help >"$work/reconcile.help" 2>/dev/null &&
    grep -q DURO_RECONCILE_URL "$work/reconcile.help"; then
    reconcile_help="$work/reconcile.help"
  else
    echo "check-reconcile: warning: $bin_dir/duro-enricher has no 'reconcile --help': the reconcile" \
      "CronJob's variables are checked against the chart's list only" >>"$work/warnings"
  fi
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

# apiFiles: the release's own ConfigMaps (the image's event table; stand-ins for the eight
# GraphQL documents, which the chart does not read), then existing ones (the queries
# under their older value name). Then the same text with one change each, for the
# pods' checksums.
docs="components change_orders snapshot_components snapshot_change_orders webhooks_list webhooks_create webhooks_update webhooks_logs"
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

# CloudEvents headers turned off, with a source of their own (enricher.cloudEvents).
check_values cloudevents --set enricher.cloudEvents.enabled=false \
  --set-string enricher.cloudEvents.source=urn:duro:plm

# The group protocol (enricher.assignment): cooperative; consumer, with full.yaml (its
# consumerConfig session.timeout.ms) and more of the classic protocol's properties, which
# the enricher and its Jobs must not get then, and one that stays.
check_values assignment-cooperative --set enricher.assignment=cooperative
check_values assignment-consumer -f "$root/deploy/values/full.yaml" --set enricher.assignment=consumer \
  --set 'kafka.config.heartbeat\.interval\.ms=3000' \
  --set-string 'kafka.consumerConfig.group\.protocol\.type=consumer' \
  --set 'kafka.consumerConfig.max\.poll\.interval\.ms=600000'

# The snapshot Jobs: everything on with full.yaml (the CronJob on a schedule, the hook
# Job, the metrics Service); only the hook Job, without admin listener, one kind; the
# longest release name the schema allows.
check_values snapshot-all -f "$root/deploy/values/full.yaml" --set snapshot.atInstall=true \
  --set-string 'snapshot.schedule=0 3 * * 0' --set snapshot.activeDeadlineSeconds=86400 \
  --set snapshot.ratePerSecond=50 --set snapshot.logLevel=debug \
  --set 'snapshot.extraEnv[0].name=HTTPS_PROXY' --set 'snapshot.extraEnv[0].value=http://proxy:3128'
check_values snapshot-install-only -f "$root/deploy/values/mtls-bridge-tls.yaml" \
  --set snapshot.enabled=false --set snapshot.atInstall=true --set snapshot.adminPort=null \
  --set 'snapshot.kinds={change_order}' --set snapshot.ttlSecondsAfterFinished=null
check_values snapshot-long-name --set fullnameOverride=duro-kafka-bridge-with-a-rather-long-name-for-a-test

# The reconcile CronJob: every value set, with full.yaml (the log table from
# schemas/log-table.txt, the metrics Service, the alert); suspended without admin
# listener (mtls-bridge-tls.yaml has the ServiceMonitor: no Service then); turned off
# (nothing of it, no alert).
check_values reconcile-all -f "$root/deploy/values/full.yaml" \
  --set-string 'reconcile.schedule=*/30 * * * *' --set reconcile.since=2d \
  --set 'reconcile.webhooks={wh_prod_1,wh_prod_2}' \
  --set reconcile.url=https://duro-webhooks.example.com/webhooks/duro \
  --set reconcile.clockSkewSeconds=900 --set-file "reconcile.logTable=$root/schemas/log-table.txt" \
  --set reconcile.logLevel=debug --set reconcile.backoffLimit=4 \
  --set reconcile.activeDeadlineSeconds=null --set reconcile.startingDeadlineSeconds=null \
  --set reconcile.successfulJobsHistoryLimit=1 --set reconcile.failedJobsHistoryLimit=5 \
  --set 'reconcile.extraEnv[0].name=HTTPS_PROXY' --set 'reconcile.extraEnv[0].value=http://proxy:3128'
check_values reconcile-suspended -f "$root/deploy/values/mtls-bridge-tls.yaml" \
  --set-string reconcile.schedule= --set reconcile.adminPort=null
check_values reconcile-off -f "$root/deploy/values/full.yaml" --set reconcile.enabled=false

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
for f in (glob.glob(f"{root}/bridge/*.c") + glob.glob(f"{root}/enricher/*.c") +
          glob.glob(f"{root}/cli/*.c")):
    exported |= set(re.findall(r'"(duro_(?:bridge|enricher|snapshot|reconcile)_[a-z_]+)"', open(f).read()))
def names(text):
    return {re.sub(r"_(bucket|sum|count)$", "", m)
            for m in re.findall(r"\bduro_(?:bridge|enricher|snapshot|reconcile)_[a-z_]+", text)}
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
DOCS = ["components", "change_orders", "snapshot_components", "snapshot_change_orders",
        "webhooks_list", "webhooks_create", "webhooks_update", "webhooks_logs"]
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
    # full.yaml (and the cases made of it) sets apiFiles.
    if (name.startswith("api-files") or name in ("full", "snapshot-all", "reconcile-all", "reconcile-off",
                                                  "assignment-consumer")
            or not os.path.exists(f"{work}/{name}-lint.log")):
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

# CloudEvents in the renderings: the enricher's DURO_CLOUDEVENTS as enricher.cloudEvents.enabled
# gives it (default true), DURO_CE_SOURCE only when a source is given; no other workload
# (bridge, snapshot and reconcile Jobs: they write raw records, which carry no ce_*) has
# either.
if python3 - "$work" "$latest" >"$work/cloudevents.out" 2>&1 <<'PY'; then
import os, sys
import yaml

work, v = sys.argv[1:3]
NAMES = ("DURO_CLOUDEVENTS", "DURO_CE_SOURCE")
cases = {
    # rendering: (DURO_CLOUDEVENTS, DURO_CE_SOURCE or None for absent)
    "defaults": ("true", None),
    "minimal": ("true", None),
    "full": ("true", None),
    "cloudevents": ("false", "urn:duro:plm"),
}


def pod_spec(d):
    spec = d.get("spec", {})
    if d["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec.get("template", {}).get("spec")


for name, (enabled, source) in cases.items():
    path = f"{work}/{name}-{v}.yaml"
    if not os.path.exists(path) or not os.path.getsize(path):
        print(f"fail|{name}: CloudEvents variables: no rendering")
        continue
    problems, enrichers = [], 0
    for d in (d for d in yaml.safe_load_all(open(path)) if d):
        pod = pod_spec(d) if d["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob") else None
        if not pod:
            continue
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            env = [e for e in c.get("env", []) if e["name"] in NAMES]
            where = f"{d['kind']} {d['metadata']['name']} container {c['name']}"
            if d["kind"] != "StatefulSet":
                if env:
                    problems.append(f"{where} has {[e['name'] for e in env]}")
                continue
            enrichers += 1
            got = {e["name"]: e.get("value") for e in env}
            if len(env) != len(got):
                problems.append(f"{where}: a variable given twice")
            if got.get("DURO_CLOUDEVENTS") != enabled:
                problems.append(f"{where}: DURO_CLOUDEVENTS={got.get('DURO_CLOUDEVENTS')!r}, want {enabled!r}")
            if got.get("DURO_CE_SOURCE") != source:
                problems.append(f"{where}: DURO_CE_SOURCE={got.get('DURO_CE_SOURCE')!r}, want "
                                + (repr(source) if source else "none"))
    if enrichers != 1:
        problems.append(f"{enrichers} enricher containers")
    what = f"DURO_CLOUDEVENTS={enabled}" + (f", DURO_CE_SOURCE={source}" if source else ", no DURO_CE_SOURCE")
    print(("fail|" if problems else "ok|") + f"{name}: CloudEvents: the enricher's {what}; "
          "no other workload has either" + (": " + "; ".join(problems) if problems else ""))
PY
  while IFS='|' read -r status what; do
    if [ "$status" = ok ]; then pass "$what"; else failure "$what"; fi
  done <"$work/cloudevents.out"
else
  cat "$work/cloudevents.out"
  failure "CloudEvents checks (the script failed)"
fi

# The group protocol in the renderings: the enricher's DURO_ASSIGNMENT as
# enricher.assignment gives it (default eager), no other workload with it; the static
# membership id from the pod name except under consumer, where there is none; under
# consumer the classic protocol's properties in neither the enricher nor its Jobs (the
# others kept), the bridge's kafka.config untouched.
if python3 - "$work" "$latest" >"$work/assignment.out" 2>&1 <<'PY'; then
import os, sys
import yaml

work, v = sys.argv[1:3]
ID = "duro-test-duro-test-$(POD_NAME)"
cases = {
    # rendering: (DURO_ASSIGNMENT, in the enricher and its Jobs: kept, left out; the bridge's)
    "defaults": ("eager", [], [], []),
    "minimal": ("eager", [], [], []),
    "full": ("eager", ["DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS"], [], []),
    "assignment-cooperative": ("cooperative", [], [], []),
    "assignment-consumer": ("consumer",
                            ["DURO_RDKAFKA_CLIENT_ID", "DURO_RDKAFKA_CONSUMER_MAX_POLL_INTERVAL_MS"],
                            ["DURO_RDKAFKA_HEARTBEAT_INTERVAL_MS", "DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS",
                             "DURO_RDKAFKA_CONSUMER_GROUP_PROTOCOL_TYPE"],
                            ["DURO_RDKAFKA_HEARTBEAT_INTERVAL_MS"]),
}


def pod_spec(d):
    spec = d.get("spec", {})
    if d["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec.get("template", {}).get("spec")


for name, (mode, kept, gone, bridge_has) in cases.items():
    path = f"{work}/{name}-{v}.yaml"
    if not os.path.exists(path) or not os.path.getsize(path):
        print(f"fail|{name}: group protocol: no rendering")
        continue
    problems, enrichers, jobs, bridges = [], 0, 0, 0
    for d in (d for d in yaml.safe_load_all(open(path)) if d):
        pod = pod_spec(d) if d["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob") else None
        if not pod:
            continue
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            names = [e["name"] for e in c.get("env", [])]
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            where = f"{d['kind']} {d['metadata']['name']} container {c['name']}"
            if d["kind"] == "Deployment":
                bridges += 1
                for n in bridge_has:
                    if n not in env:
                        problems.append(f"{where}: lacks {n} (kafka.config goes to the bridge whole)")
            elif d["kind"] == "StatefulSet":
                enrichers += 1
                if names.count("DURO_ASSIGNMENT") != 1 or env["DURO_ASSIGNMENT"] != mode:
                    problems.append(f"{where}: DURO_ASSIGNMENT={env.get('DURO_ASSIGNMENT')!r} "
                                    f"({names.count('DURO_ASSIGNMENT')} times), want {mode!r} once")
                gid = env.get("DURO_GROUP_INSTANCE_ID")
                if mode == "consumer" and "DURO_GROUP_INSTANCE_ID" in env:
                    problems.append(f"{where}: DURO_GROUP_INSTANCE_ID={gid!r}: want none under consumer")
                if mode != "consumer" and gid != ID:
                    problems.append(f"{where}: DURO_GROUP_INSTANCE_ID={gid!r}, want {ID!r}")
                if env.get("DURO_TRANSACTIONAL_ID") != ID:
                    problems.append(f"{where}: DURO_TRANSACTIONAL_ID={env.get('DURO_TRANSACTIONAL_ID')!r}, want {ID!r}")
            else:
                jobs += 1
            if d["kind"] != "StatefulSet" and "DURO_ASSIGNMENT" in env:
                problems.append(f"{where} has DURO_ASSIGNMENT")
            if d["kind"] == "Deployment":
                continue
            for n in kept:
                if n not in env:
                    problems.append(f"{where}: lacks {n}")
            for n in gone:
                if n in env:
                    problems.append(f"{where}: has {n}={env[n]!r} under assignment {mode}")
    if enrichers != 1:
        problems.append(f"{enrichers} enricher containers")
    if gone and not jobs:
        problems.append("no snapshot or reconcile Job to check")
    what = (f"the enricher's DURO_ASSIGNMENT={mode}, " +
            ("no group instance id" if mode == "consumer" else "its group instance id from the pod name") +
            "; no other workload has DURO_ASSIGNMENT" +
            (f"; the enricher and {jobs} Jobs without {len(gone)} classic-protocol properties, "
             f"with {len(kept)} others; the bridge's kept" if gone else "") +
            (f"; {', '.join(kept)} kept" if kept and not gone else ""))
    print(("fail|" if problems else "ok|") + f"{name}: group protocol: {what}"
          + (": " + "; ".join(problems) if problems else ""))
PY
  while IFS='|' read -r status what; do
    if [ "$status" = ok ]; then pass "$what"; else failure "$what"; fi
  done <"$work/assignment.out"
else
  cat "$work/assignment.out"
  failure "group protocol checks (the script failed)"
fi

# The snapshot Jobs in every rendering (deploy/helm/.../templates/snapshot-*.yaml): what
# each case should have (CronJob, hook Job, Service; "none"; unknown cases: whatever they
# render), then the same checks on each.
cat >"$work/check-snapshot.py" <<'PY'
"""check-snapshot.py MANIFESTS LABEL EXPECT [SNAPSHOT_HELP]: the snapshot Jobs of one
rendering. EXPECT: a comma-separated subset of cronjob,job,service, "none" or "any".
Findings on stderr, one line each; exit status 1 on any."""
import re
import sys

import yaml

path, label, expect = sys.argv[1:4]
help_path = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
# What `duro-enricher snapshot` reads of the enricher's settings (every DURO_RDKAFKA_*
# too), and its own.
SHARED = {"KAFKA_BOOTSTRAP_SERVERS", "DURO_RAW_TOPIC", "DURO_ENRICHER_GROUP", "DURO_EVENT_TABLE",
          "DURO_STATE_TOPICS", "DURO_STATE_TOPIC_TEMPLATE", "DURO_PROGRESS_TOPIC", "DURO_QUERIES_DIR",
          "DURO_API_URL", "DURO_API_KEY_FILE", "DURO_API_KEY", "DURO_API_ORGANIZATION", "DURO_API_LIBRARY",
          "DURO_GRAPHQL_TIMEOUT_MS", "DURO_GRAPHQL_RATE", "DURO_GRAPHQL_MAX_ATTEMPTS"}
OWN = {"DURO_SNAPSHOT_ID", "DURO_SNAPSHOT_KINDS", "DURO_SNAPSHOT_RATE", "DURO_SNAPSHOT_PAGE_SIZE",
       "DURO_SNAPSHOT_ADMIN_LISTEN", "DURO_LOG_LEVEL"}
FORBIDDEN = {"DURO_TRANSACTIONAL_ID", "DURO_GROUP_INSTANCE_ID"}
RDKAFKA = re.compile(r"^DURO_RDKAFKA_(PRODUCER_|CONSUMER_)?[A-Z0-9]+(_[A-Z0-9]+)*$")
RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
JOB_LABELS = ("job-name", "controller-uid", "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid")
known = None
if help_path:
    known = set(re.findall(r"\b((?:DURO|KAFKA)_[A-Z0-9_]+)\b", open(help_path).read()))

problems = []
fail = problems.append
docs = [d for d in yaml.safe_load_all(open(path)) if d]
sts = [d for d in docs if d["kind"] == "StatefulSet"]
enricher = sts[0]["spec"]["template"] if sts else None
def component(d):
    return (d["metadata"].get("labels") or {}).get("app.kubernetes.io/component")


cronjobs = [d for d in docs if d["kind"] == "CronJob" and component(d) == "snapshot"]
jobs = [d for d in docs if d["kind"] == "Job" and component(d) == "snapshot"]
services = [d for d in docs if d["kind"] == "Service"
            and (d["spec"].get("selector") or {}).get("app.kubernetes.io/component") == "snapshot"]
monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
topics = {d["spec"].get("topicName") for d in docs if d["kind"] == "KafkaTopic"}

if expect != "any":
    want = set() if expect == "none" else set(expect.split(","))
    have = {k for k, objs in (("cronjob", cronjobs), ("job", jobs), ("service", services)) if objs}
    if have != want:
        fail(f"snapshot objects {sorted(have) or 'none'}, want {sorted(want) or 'none'}")


def entries(c):
    return {e["name"]: e for e in c.get("env", [])}


def check_pod(w, spec_job, hook):
    """w: what to name; spec_job: a Job spec (a Job's, a CronJob's jobTemplate's)."""
    if enricher is None:
        fail(f"{w}: a snapshot Job without the enricher's StatefulSet to take its settings from")
        return
    tmpl = spec_job["template"]
    pod, epod = tmpl["spec"], enricher["spec"]
    ec = epod["containers"][0]
    if len(pod["containers"]) != 1:
        fail(f"{w}: {len(pod['containers'])} containers, want 1")
    c = pod["containers"][0]
    cw = f"{w}/{c['name']}"
    if c.get("command") != ["duro-enricher", "snapshot"]:
        fail(f"{cw}: command {c.get('command')}, want [duro-enricher, snapshot]")
    for k in ("serviceAccountName", "securityContext", "imagePullSecrets"):
        if pod.get(k) != epod.get(k):
            fail(f"{w}: {k} {pod.get(k)!r} is not the enricher's {epod.get(k)!r}")
    for k in ("image", "imagePullPolicy", "securityContext", "volumeMounts"):
        if c.get(k) != ec.get(k):
            fail(f"{cw}: {k} is not the enricher's: {c.get(k)!r} vs {ec.get(k)!r}")
    if pod.get("volumes") != epod.get("volumes"):
        fail(f"{w}: volumes are not the enricher's: {pod.get('volumes')!r} vs {epod.get('volumes')!r}")
    if pod.get("automountServiceAccountToken") is not False:
        fail(f"{w}: automountServiceAccountToken must be false")
    if pod.get("enableServiceLinks") is not False:
        fail(f"{w}: enableServiceLinks must be false")
    if not (c.get("resources") or {}).get("requests"):
        fail(f"{cw}: no resource requests")
    # Retries are new pods (each resumes the run), a bad setting (exit 2) ends the Job.
    if pod.get("restartPolicy") != "Never":
        fail(f"{w}: restartPolicy {pod.get('restartPolicy')!r}, want Never (podFailurePolicy needs it)")
    rules = (spec_job.get("podFailurePolicy") or {}).get("rules", [])
    if not any(r.get("action") == "FailJob" and (r.get("onExitCodes") or {}).get("operator") == "In"
               and 2 in (r.get("onExitCodes") or {}).get("values", [])
               and (r.get("onExitCodes") or {}).get("containerName") in (None, c["name"]) for r in rules):
        fail(f"{w}: no podFailurePolicy rule that fails the Job on exit status 2 (a bad setting)")
    if not isinstance(spec_job.get("backoffLimit"), int):
        fail(f"{w}: no backoffLimit")
    labels = tmpl["metadata"].get("labels") or {}
    for k in JOB_LABELS:
        if k in labels:
            fail(f"{w}: the pod template sets {k}, which the Job controller owns")
    if labels.get("app.kubernetes.io/component") != "snapshot":
        fail(f"{w}: pod label app.kubernetes.io/component {labels.get('app.kubernetes.io/component')!r}, want snapshot")

    env, eenv = entries(c), entries(ec)
    names = [e["name"] for e in c.get("env", [])]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        fail(f"{cw}: variables set twice: {dup}")
    for n in sorted(FORBIDDEN & set(env)):
        fail(f"{cw}: {n} is set: the snapshot's transactional.id is <group>-snapshot-<run id>, never the enricher's")
    shared = lambda n: n in SHARED or RDKAFKA.match(n)
    for n in sorted(set(eenv) | set(env)):
        if not shared(n):
            continue
        if n not in env:
            fail(f"{cw}: lacks the enricher's {n}")
        elif n not in eenv:
            fail(f"{cw}: sets {n}, which the enricher does not")
        elif env[n] != eenv[n]:
            fail(f"{cw}: {n} is {env[n]!r}, the enricher's {eenv[n]!r}")
    for n in env:
        if re.match(r"^(DURO|KAFKA)_", n) and not (shared(n) or n in OWN or n in FORBIDDEN):
            fail(f"{cw}: {n} is not a variable of the snapshot")
        # (extraEnv may add any other variable, e.g. HTTPS_PROXY for libcurl)
        if (known is not None and re.match(r"^(DURO|KAFKA)_", n) and n not in known and
                not RDKAFKA.match(n) and n not in FORBIDDEN):
            fail(f"{cw}: {n} is not in `duro-enricher snapshot --help`")

    # The run id: the Job's name (CronJob) or a fixed one (hook).
    rid = env.get("DURO_SNAPSHOT_ID")
    if rid is None:
        fail(f"{cw}: no DURO_SNAPSHOT_ID")
    elif hook:
        if not RUN_ID.match(str(rid.get("value", ""))):
            fail(f"{cw}: DURO_SNAPSHOT_ID {rid!r}: want a fixed run id of [A-Za-z0-9._-], at most 64")
    else:
        path_ = ((rid.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if path_ not in ("metadata.labels['job-name']", "metadata.labels['batch.kubernetes.io/job-name']"):
            fail(f"{cw}: DURO_SNAPSHOT_ID {rid!r}: want the Job's name (fieldRef metadata.labels['job-name'])")
    kinds = (env.get("DURO_SNAPSHOT_KINDS") or {}).get("value", "item,change_order").split(",")
    if not kinds or not set(kinds) <= {"item", "change_order"} or len(set(kinds)) != len(kinds):
        fail(f"{cw}: DURO_SNAPSHOT_KINDS {','.join(kinds)!r}")
    for n, lo in (("DURO_SNAPSHOT_RATE", 0), ("DURO_SNAPSHOT_PAGE_SIZE", 1)):
        x = (env.get(n) or {}).get("value")
        if x is not None and not (re.match(r"^[0-9]+(\.[0-9]+)?$", x) and float(x) >= lo):
            fail(f"{cw}: {n} {x!r}")
    listen = (env.get("DURO_SNAPSHOT_ADMIN_LISTEN") or {}).get("value")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    live = (c.get("livenessProbe") or {}).get("httpGet") or {}
    if listen:
        if ports.get("admin") is None or not listen.endswith(f":{ports['admin']}"):
            fail(f"{cw}: DURO_SNAPSHOT_ADMIN_LISTEN {listen} is not the admin port {ports.get('admin')}")
        if live.get("path") != "/healthz" or live.get("port") != "admin":
            fail(f"{cw}: livenessProbe must GET /healthz on the admin port")
    elif ports or live:
        fail(f"{cw}: ports or probes without DURO_SNAPSHOT_ADMIN_LISTEN")
    if "readinessProbe" in c:
        fail(f"{cw}: a readinessProbe (a Job's pod serves no traffic; the snapshot has no /readyz)")
    # The snapshot writes the raw and progress topics: no topic of its own.
    if topics:
        for n in ("DURO_RAW_TOPIC", "DURO_PROGRESS_TOPIC"):
            x = (env.get(n) or {}).get("value")
            if x not in topics:
                fail(f"{cw}: {n} {x!r} has no KafkaTopic")
    return tmpl, listen


listens = []
for d in cronjobs:
    w = f"CronJob/{d['metadata']['name']}"
    if len(d["metadata"]["name"]) > 52:
        fail(f"{w}: name longer than 52 characters (the controller appends 11 to its Jobs' names)")
    s = d["spec"]
    if s.get("concurrencyPolicy") != "Forbid":
        fail(f"{w}: concurrencyPolicy {s.get('concurrencyPolicy')!r}, want Forbid")
    r = check_pod(w, s["jobTemplate"]["spec"], hook=False)
    if r:
        listens.append(r)
for d in jobs:
    w = f"Job/{d['metadata']['name']}"
    if len(d["metadata"]["name"]) > 63:
        fail(f"{w}: name longer than 63 characters (the job-name label)")
    hook = (d["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    if "post-install" not in hook.split(","):
        fail(f"{w}: not a post-install hook (helm.sh/hook {hook!r}): an upgrade could not change it")
    r = check_pod(w, d["spec"], hook=True)
    if r:
        listens.append(r)
for d in services:
    w = f"Service/{d['metadata']['name']}"
    sel = d["spec"]["selector"]
    if not any(l and all((t["metadata"].get("labels") or {}).get(k) == x for k, x in sel.items())
               for t, l in listens):
        fail(f"{w}: selects no snapshot pod with an admin listener")
    port = [p for p in d["spec"].get("ports", []) if p.get("name") == "admin"]
    if not port or port[0].get("targetPort") != "admin":
        fail(f"{w}: no port admin → admin")
    labels = d["metadata"].get("labels") or {}
    if not any(all(labels.get(k) == x for k, x in m["spec"]["selector"].get("matchLabels", {}).items())
               for m in monitors):
        fail(f"{w}: no ServiceMonitor selects it")

for p in problems:
    print(f"check-snapshot: {label}: {p}", file=sys.stderr)
n = len(cronjobs) + len(jobs) + len(services)
print(f"{n} snapshot objects ({len(cronjobs)} CronJob, {len(jobs)} Job, {len(services)} Service)"
      + ("" if known is not None else "; variables against the chart's list, not --help"))
sys.exit(1 if problems else 0)
PY
snapshot_check() { # FILE LABEL EXPECT
  python3 "$work/check-snapshot.py" "$1" "$2" "$3" "$snapshot_help"
}
declare -A snapshot_expect=(
  [defaults]=cronjob [full]=cronjob,service [minimal]=cronjob [mtls-bridge-tls]=cronjob,service
  [bridge-only]=none [api-files]=cronjob [api-files-existing]=cronjob [state-off]=cronjob
  [state-custom]=cronjob [snapshot-all]=cronjob,job,service [snapshot-install-only]=job
  [snapshot-long-name]=cronjob [reconcile-all]=cronjob,service [reconcile-suspended]=cronjob,service
  [reconcile-off]=cronjob,service [assignment-cooperative]=cronjob [assignment-consumer]=cronjob,service
)
if [ -s "$work/rendered-$latest" ]; then
  while read -r name; do
    want=${snapshot_expect[$name]:-any}
    if out=$(snapshot_check "$work/$name-$latest.yaml" "$name" "$want" 2>"$work/$name.snap"); then
      pass "$name: snapshot Jobs ($want): $out"
    else
      cat "$work/$name.snap"
      failure "$name: snapshot Jobs ($want)"
    fi
  done <"$work/rendered-$latest"
fi

# The reconcile CronJob in every rendering (deploy/helm/.../templates/reconcile-*.yaml):
# what each case should have (CronJob, metrics Service, log-table ConfigMap; "none";
# unknown cases: whatever they render) and its values, then the same checks on each.
cat >"$work/check-reconcile.py" <<'PY'
"""check-reconcile.py MANIFESTS LABEL EXPECT [RECONCILE_HELP]: the reconcile CronJob of
one rendering. EXPECT: JSON {"objects": a comma-separated subset of
cronjob,service,configmap, "none" or "any"; "values": the reconcile values it was
rendered with, over the chart's defaults (absent: not compared)}. Findings on stderr,
one line each; exit status 1 on any."""
import json
import re
import sys

import yaml

path, label, expect = sys.argv[1:4]
expect = json.loads(expect)
help_path = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
# What `duro-enricher reconcile` reads of the enricher's settings (every DURO_RDKAFKA_*
# too; `duro-enricher reconcile --help`), and its own.
SHARED = {"KAFKA_BOOTSTRAP_SERVERS", "DURO_RAW_TOPIC", "DURO_ENRICHER_GROUP", "DURO_EVENT_TABLE",
          "DURO_QUERIES_DIR", "DURO_API_URL", "DURO_API_KEY_FILE", "DURO_API_KEY", "DURO_API_ORGANIZATION",
          "DURO_API_LIBRARY", "DURO_GRAPHQL_TIMEOUT_MS", "DURO_GRAPHQL_RATE", "DURO_GRAPHQL_MAX_ATTEMPTS"}
OWN = {"DURO_RECONCILE_URL", "DURO_CLOCK_SKEW_S", "DURO_LOG_TABLE", "DURO_RECONCILE_ADMIN_LISTEN",
       "DURO_RECONCILE_METRICS_LINGER_S", "DURO_LOG_LEVEL"}
FORBIDDEN = {"DURO_TRANSACTIONAL_ID", "DURO_GROUP_INSTANCE_ID"}
RDKAFKA = re.compile(r"^DURO_RDKAFKA_(PRODUCER_|CONSUMER_)?[A-Z0-9]+(_[A-Z0-9]+)*$")
SINCE = re.compile(r"^([0-9]+[smhd]|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                   r"(Z|[+-][0-9]{2}:[0-9]{2}))$")
JOB_LABELS = ("job-name", "controller-uid", "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid")
LOG_TABLE = "/etc/duro/log-table/log-table.txt"
# The chart's defaults (values.yaml); EXPECT's values override them.
DEFAULTS = {"schedule": "17 * * * *", "since": "", "url": "", "webhooks": [], "clockSkewSeconds": 600,
            "metricsLingerSeconds": 70,
            "logTable": "", "logLevel": "", "adminPort": 9096, "backoffLimit": 2,
            "activeDeadlineSeconds": 3000, "startingDeadlineSeconds": 1800,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3, "extraEnv": []}
want_values = dict(DEFAULTS, **expect["values"]) if "values" in expect else None
known = None
if help_path:
    known = set(re.findall(r"\b((?:DURO|KAFKA)_[A-Z0-9_]+)\b", open(help_path).read()))

problems = []
fail = problems.append
docs = [d for d in yaml.safe_load_all(open(path)) if d]


def component(d):
    return (d["metadata"].get("labels") or {}).get("app.kubernetes.io/component")


sts = [d for d in docs if d["kind"] == "StatefulSet"]
enricher = sts[0]["spec"]["template"] if sts else None
cronjobs = [d for d in docs if d["kind"] == "CronJob" and component(d) == "reconcile"]
services = [d for d in docs if d["kind"] == "Service"
            and (d["spec"].get("selector") or {}).get("app.kubernetes.io/component") == "reconcile"]
configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
own_cms = [d for d in configmaps.values() if component(d) == "reconcile"]
monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
rules = [r for d in docs if d["kind"] == "PrometheusRule" for g in d["spec"]["groups"] for r in g["rules"]]
topics = {d["spec"].get("topicName") for d in docs if d["kind"] == "KafkaTopic"}

if expect["objects"] != "any":
    want = set() if expect["objects"] == "none" else set(expect["objects"].split(","))
    have = {k for k, objs in (("cronjob", cronjobs), ("service", services), ("configmap", own_cms)) if objs}
    if have != want:
        fail(f"reconcile objects {sorted(have) or 'none'}, want {sorted(want) or 'none'}")
if len(cronjobs) > 1:
    fail(f"{len(cronjobs)} reconcile CronJobs, want at most 1")


def entries(c):
    return {e["name"]: e for e in c.get("env", [])}


def val(env, n):
    return (env.get(n) or {}).get("value")


def check_cronjob(d):
    w = f"CronJob/{d['metadata']['name']}"
    if enricher is None:
        fail(f"{w}: a reconcile CronJob without the enricher's StatefulSet to take its settings from")
        return None
    if len(d["metadata"]["name"]) > 52:
        fail(f"{w}: name longer than 52 characters (the controller appends 11 to its Jobs' names)")
    cs = d["spec"]
    # One run at a time: two would both find an event absent and both write it.
    if cs.get("concurrencyPolicy") != "Forbid":
        fail(f"{w}: concurrencyPolicy {cs.get('concurrencyPolicy')!r}, want Forbid")
    sched = cs.get("schedule", "")
    if not re.match(r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+( +\S+){4})$", sched):
        fail(f"{w}: schedule {sched!r} is not a cron schedule")
    if want_values is not None:
        ws = want_values["schedule"]
        if ws and (sched != ws or cs.get("suspend") is not False):
            fail(f"{w}: schedule {sched!r} suspend {cs.get('suspend')!r}, want {ws!r} and not suspended")
        if not ws and cs.get("suspend") is not True:
            fail(f"{w}: suspend {cs.get('suspend')!r}, want true (reconcile.schedule is \"\")")
        for k in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            if cs.get(k) != want_values[k]:
                fail(f"{w}: {k} {cs.get(k)!r}, want {want_values[k]!r}")
    if component(cs["jobTemplate"]) != "reconcile":
        fail(f"{w}: jobTemplate label app.kubernetes.io/component is not reconcile")
    js = cs["jobTemplate"]["spec"]
    if not isinstance(js.get("backoffLimit"), int):
        fail(f"{w}: no backoffLimit")
    if want_values is not None:
        for k in ("backoffLimit", "activeDeadlineSeconds"):
            if js.get(k) != want_values[k]:
                fail(f"{w}: {k} {js.get(k)!r}, want {want_values[k]!r}")

    tmpl = js["template"]
    pod, epod = tmpl["spec"], enricher["spec"]
    ec = epod["containers"][0]
    if len(pod["containers"]) != 1:
        fail(f"{w}: {len(pod['containers'])} containers, want 1")
    c = pod["containers"][0]
    cw = f"{w}/{c['name']}"
    for k in ("serviceAccountName", "securityContext", "imagePullSecrets"):
        if pod.get(k) != epod.get(k):
            fail(f"{w}: {k} {pod.get(k)!r} is not the enricher's {epod.get(k)!r}")
    for k in ("image", "imagePullPolicy", "securityContext"):
        if c.get(k) != ec.get(k):
            fail(f"{cw}: {k} is not the enricher's: {c.get(k)!r} vs {ec.get(k)!r}")
    if pod.get("automountServiceAccountToken") is not False:
        fail(f"{w}: automountServiceAccountToken must be false")
    if pod.get("enableServiceLinks") is not False:
        fail(f"{w}: enableServiceLinks must be false")
    if not (c.get("resources") or {}).get("requests"):
        fail(f"{cw}: no resource requests")
    if pod.get("restartPolicy") != "Never":
        fail(f"{w}: restartPolicy {pod.get('restartPolicy')!r}, want Never (podFailurePolicy needs it)")
    pfp = (js.get("podFailurePolicy") or {}).get("rules", [])
    if not any(r.get("action") == "FailJob" and (r.get("onExitCodes") or {}).get("operator") == "In"
               and 2 in (r.get("onExitCodes") or {}).get("values", [])
               and (r.get("onExitCodes") or {}).get("containerName") in (None, c["name"]) for r in pfp):
        fail(f"{w}: no podFailurePolicy rule that fails the Job on exit status 2 (a bad setting)")
    labels = tmpl["metadata"].get("labels") or {}
    for k in JOB_LABELS:
        if k in labels:
            fail(f"{w}: the pod template sets {k}, which the Job controller owns")
    if labels.get("app.kubernetes.io/component") != "reconcile":
        fail(f"{w}: pod label app.kubernetes.io/component {labels.get('app.kubernetes.io/component')!r}, want reconcile")
    elabels = enricher["metadata"].get("labels") or {}
    for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance"):
        if labels.get(k) != elabels.get(k):
            fail(f"{w}: pod label {k} {labels.get(k)!r}, the enricher's {elabels.get(k)!r}")

    # The command and its flags: --since T at most once, --webhook ID repeated, nothing else.
    if c.get("command") != ["duro-enricher", "reconcile"]:
        fail(f"{cw}: command {c.get('command')}, want [duro-enricher, reconcile]")
    args = [str(a) for a in c.get("args") or []]
    if len(args) % 2 or any(f not in ("--since", "--webhook") for f in args[0::2]):
        fail(f"{cw}: args {args}: want pairs of --since T and --webhook ID")
    else:
        pairs = list(zip(args[0::2], args[1::2]))
        since = [v for f, v in pairs if f == "--since"]
        if len(since) > 1:
            fail(f"{cw}: --since given {len(since)} times")
        for x in since:
            if not SINCE.match(x):
                fail(f"{cw}: --since {x!r}: want an age (90s, 30m, 8h, 2d) or an RFC 3339 time")
        for f, v in pairs:
            if not v or v.startswith("-"):
                fail(f"{cw}: {f} {v!r}")
    if want_values is not None:
        wargs = (["--since", want_values["since"]] if want_values["since"] else [])
        for wh in want_values["webhooks"]:
            wargs += ["--webhook", wh]
        if args != wargs:
            fail(f"{cw}: args {args}, want {wargs}")

    # The environment: exactly the enricher's shared settings, the reconcile's own.
    env, eenv = entries(c), entries(ec)
    names = [e["name"] for e in c.get("env", [])]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        fail(f"{cw}: variables set twice: {dup}")
    for n in sorted(FORBIDDEN & set(env)):
        fail(f"{cw}: {n} is set: the reconcile's transactional.id is <group>-reconcile, never the enricher's")
    shared = lambda n: n in SHARED or RDKAFKA.match(n)
    for n in sorted(set(eenv) | set(env)):
        if not shared(n):
            continue
        if n not in env:
            fail(f"{cw}: lacks the enricher's {n}")
        elif n not in eenv:
            fail(f"{cw}: sets {n}, which the enricher does not")
        elif env[n] != eenv[n]:
            show = lambda e: e.get("value", e.get("valueFrom"))
            fail(f"{cw}: {n} is {show(env[n])!r}, the enricher's {show(eenv[n])!r}")
    for n in env:
        if re.match(r"^(DURO|KAFKA)_", n) and not (shared(n) or n in OWN or n in FORBIDDEN):
            fail(f"{cw}: {n} is not a variable of reconcile")
        if (known is not None and re.match(r"^(DURO|KAFKA)_", n) and n not in known and
                not RDKAFKA.match(n) and n not in FORBIDDEN):
            fail(f"{cw}: {n} is not in `duro-enricher reconcile --help`")
    skew = val(env, "DURO_CLOCK_SKEW_S")
    if skew is not None and not re.match(r"^[0-9]+$", skew):
        fail(f"{cw}: DURO_CLOCK_SKEW_S {skew!r}: want whole seconds")
    url = val(env, "DURO_RECONCILE_URL")
    if url is not None and not re.match(r"^https?://\S+$", url):
        fail(f"{cw}: DURO_RECONCILE_URL {url!r}: want an http(s) URL")
    if want_values is not None:
        wl = want_values["logLevel"] or val(eenv, "DURO_LOG_LEVEL")
        wenv = {"DURO_RECONCILE_URL": want_values["url"] or None,
                "DURO_CLOCK_SKEW_S": str(want_values["clockSkewSeconds"]),
                "DURO_LOG_TABLE": LOG_TABLE if want_values["logTable"] else None,
                "DURO_RECONCILE_ADMIN_LISTEN": (f"0.0.0.0:{want_values['adminPort']}"
                                                if want_values["adminPort"] else None),
                "DURO_RECONCILE_METRICS_LINGER_S": (str(want_values["metricsLingerSeconds"])
                                                    if want_values["adminPort"] else None),
                "DURO_LOG_LEVEL": wl}
        for e in want_values["extraEnv"]:
            wenv[e["name"]] = e.get("value")
        for n, x in wenv.items():
            if val(env, n) != x:
                fail(f"{cw}: {n}={val(env, n)!r}, want {x!r}")

    # Volumes and mounts: the enricher's, and the log table's when DURO_LOG_TABLE is set.
    vols = {x["name"]: x for x in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    extra_v = [x for x in pod.get("volumes", []) if x["name"] == "log-table"]
    extra_m = [m for m in c.get("volumeMounts", []) if m["name"] == "log-table"]
    if [x for x in pod.get("volumes", []) if x["name"] != "log-table"] != epod.get("volumes"):
        fail(f"{w}: volumes are not the enricher's: {pod.get('volumes')!r} vs {epod.get('volumes')!r}")
    if [m for m in c.get("volumeMounts", []) if m["name"] != "log-table"] != ec.get("volumeMounts"):
        fail(f"{cw}: volumeMounts are not the enricher's: {c.get('volumeMounts')!r} vs {ec.get('volumeMounts')!r}")
    lt = val(env, "DURO_LOG_TABLE")
    if lt is None:
        if extra_v or extra_m:
            fail(f"{w}: a log-table volume or mount without DURO_LOG_TABLE")
    else:
        m = next((m for m in c.get("volumeMounts", []) if lt.startswith(m["mountPath"].rstrip("/") + "/")), None)
        if m is None:
            fail(f"{cw}: DURO_LOG_TABLE={lt} is on no mounted volume")
        else:
            cm = (vols.get(m["name"]) or {}).get("configMap")
            if cm is None:
                fail(f"{cw}: DURO_LOG_TABLE={lt} is not on a ConfigMap volume")
            else:
                if m.get("readOnly") is not True:
                    fail(f"{cw}: DURO_LOG_TABLE: the mount {m['mountPath']} must be read-only")
                if "subPath" in m or "subPathExpr" in m:
                    fail(f"{cw}: DURO_LOG_TABLE is mounted with subPath: Kubernetes never updates it")
                file = lt[len(m["mountPath"].rstrip("/")) + 1:]
                keys = [i["key"] for i in cm.get("items", []) if i["path"] == file]
                if cm.get("items") is not None and not keys:
                    fail(f"{cw}: DURO_LOG_TABLE: the volume {m['name']} has no item at {file}")
                key = keys[0] if keys else file
                data = (configmaps.get(cm["name"]) or {}).get("data") or {}
                if cm["name"] not in configmaps:
                    fail(f"{cw}: DURO_LOG_TABLE: ConfigMap/{cm['name']} is not the release's")
                elif not (data.get(key) or "").strip():
                    fail(f"{cw}: DURO_LOG_TABLE: ConfigMap/{cm['name']} has no log table under {key}")
                elif want_values is not None and data.get(key) != want_values["logTable"]:
                    fail(f"{cw}: DURO_LOG_TABLE: ConfigMap/{cm['name']} does not hold the text given")
    for d2 in own_cms:
        used = any((x.get("configMap") or {}).get("name") == d2["metadata"]["name"] for x in extra_v)
        if not used:
            fail(f"ConfigMap/{d2['metadata']['name']}: a reconcile ConfigMap no reconcile pod mounts")

    # The admin listener: its port, probes, and (with a ServiceMonitor) a Service it scrapes.
    listen = val(env, "DURO_RECONCILE_ADMIN_LISTEN")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    live = (c.get("livenessProbe") or {}).get("httpGet") or {}
    if listen:
        if ports.get("admin") is None or not listen.endswith(f":{ports['admin']}"):
            fail(f"{cw}: DURO_RECONCILE_ADMIN_LISTEN {listen} is not the admin port {ports.get('admin')}")
        if live.get("path") != "/healthz" or live.get("port") != "admin":
            fail(f"{cw}: livenessProbe must GET /healthz on the admin port")
        if monitors and not services:
            fail(f"{w}: a ServiceMonitor but no Service for the admin port: the runs are not scraped")
        linger = val(env, "DURO_RECONCILE_METRICS_LINGER_S")
        if monitors and not (linger and linger.isdigit() and int(linger) > 30):
            fail(f"{cw}: DURO_RECONCILE_METRICS_LINGER_S {linger!r}: a run of seconds ends "
                 "between two scrapes unless /metrics outlives it by more than the interval")
    elif ports or live:
        fail(f"{cw}: ports or probes without DURO_RECONCILE_ADMIN_LISTEN")
    if "readinessProbe" in c:
        fail(f"{cw}: a readinessProbe (a Job's pod serves no traffic)")
    if topics:
        x = val(env, "DURO_RAW_TOPIC")
        if x not in topics:
            fail(f"{cw}: DURO_RAW_TOPIC {x!r} has no KafkaTopic")
    return labels, listen


run = check_cronjob(cronjobs[0]) if cronjobs else None
for d in services:
    w = f"Service/{d['metadata']['name']}"
    sel = d["spec"]["selector"]
    if not (run and run[1] and all(run[0].get(k) == x for k, x in sel.items())):
        fail(f"{w}: selects no reconcile pod with an admin listener")
    port = [p for p in d["spec"].get("ports", []) if p.get("name") == "admin"]
    if not port or port[0].get("targetPort") != "admin":
        fail(f"{w}: no port admin → admin")
    labels = d["metadata"].get("labels") or {}
    if not any(all(labels.get(k) == x for k, x in m["spec"]["selector"].get("matchLabels", {}).items())
               and any(e.get("port") == "admin" and e.get("path", "/metrics") == "/metrics"
                       for e in m["spec"].get("endpoints", []))
               for m in monitors):
        fail(f"{w}: no ServiceMonitor scrapes its admin port")
# The alert on unrecoverable events: with the rules, whenever runs are scraped.
alert = [r for r in rules if r.get("alert") == "DuroReconcileNotRecoverable"]
if any(r.get("alert") for r in rules):
    scraped = bool(run and run[1] and services)
    if scraped and not alert:
        fail("PrometheusRule: no alert DuroReconcileNotRecoverable")
    if not scraped and alert:
        fail("PrometheusRule: DuroReconcileNotRecoverable, but no reconcile run is scraped")
    for r in alert:
        e = r["expr"]
        if 'result="not_recoverable"' not in e or "duro_reconcile_events_total" not in e:
            fail(f"DuroReconcileNotRecoverable: expr {e!r} does not look at "
                 "duro_reconcile_events_total{result=\"not_recoverable\"}")
        if services and f'service="{services[0]["metadata"]["name"]}"' not in e:
            fail(f"DuroReconcileNotRecoverable: expr {e!r} does not select the Service {services[0]['metadata']['name']}")

for p in problems:
    print(f"check-reconcile: {label}: {p}", file=sys.stderr)
n = len(cronjobs) + len(services) + len(own_cms)
print(f"{n} reconcile objects ({len(cronjobs)} CronJob, {len(services)} Service, {len(own_cms)} ConfigMap"
      + (", 1 alert" if alert else "") + ")"
      + ("; values compared" if want_values is not None else "")
      + ("" if known is not None else "; variables against the chart's list, not --help"))
sys.exit(1 if problems else 0)
PY
reconcile_check() { # FILE LABEL EXPECT
  python3 "$work/check-reconcile.py" "$1" "$2" "$3" "$reconcile_help"
}
declare -A reconcile_expect=(
  [defaults]='{"objects": "cronjob", "values": {}}'
  [full]='{"objects": "cronjob,service", "values": {"url": "https://duro-webhooks.example.com/webhooks/duro"}}'
  [minimal]='{"objects": "cronjob", "values": {}}'
  [mtls-bridge-tls]='{"objects": "cronjob,service", "values": {}}'
  [bridge-only]='{"objects": "none"}'
  [api-files]='{"objects": "cronjob", "values": {}}'
  [api-files-existing]='{"objects": "cronjob", "values": {}}'
  [state-off]='{"objects": "cronjob", "values": {}}'
  [state-custom]='{"objects": "cronjob", "values": {}}'
  [snapshot-all]='{"objects": "cronjob,service", "values": {"url": "https://duro-webhooks.example.com/webhooks/duro"}}'
  [snapshot-install-only]='{"objects": "cronjob,service", "values": {}}'
  [snapshot-long-name]='{"objects": "cronjob", "values": {}}'
  [reconcile-suspended]='{"objects": "cronjob", "values": {"schedule": "", "adminPort": null}}'
  [reconcile-off]='{"objects": "none"}'
  [assignment-cooperative]='{"objects": "cronjob", "values": {}}'
  [assignment-consumer]='{"objects": "cronjob,service", "values": {"url": "https://duro-webhooks.example.com/webhooks/duro"}}'
)
reconcile_expect[reconcile-all]=$(python3 -c '
import json, sys
print(json.dumps({"objects": "cronjob,service,configmap", "values": {
    "schedule": "*/30 * * * *", "since": "2d", "webhooks": ["wh_prod_1", "wh_prod_2"],
    "url": "https://duro-webhooks.example.com/webhooks/duro", "clockSkewSeconds": 900,
    "logTable": open(sys.argv[1]).read(), "logLevel": "debug", "backoffLimit": 4,
    "activeDeadlineSeconds": None, "startingDeadlineSeconds": None,
    "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 5,
    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]}}))' "$root/schemas/log-table.txt")
if [ -s "$work/rendered-$latest" ]; then
  while read -r name; do
    want=${reconcile_expect[$name]:-'{"objects": "any"}'}
    what=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["objects"])' "$want")
    if out=$(reconcile_check "$work/$name-$latest.yaml" "$name" "$want" 2>"$work/$name.rec"); then
      pass "$name: reconcile CronJob ($what): $out"
    else
      cat "$work/$name.rec"
      failure "$name: reconcile CronJob ($what)"
    fi
  done <"$work/rendered-$latest"
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
    'apiFiles.queries.files lacks change_orders.graphql, snapshot_components.graphql, snapshot_change_orders.graphql, webhooks_list.graphql' template-only
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
  bad_values snapshot-unknown-key $'snapshot:\n  rate: 10' "additional properties 'rate' not allowed"
  bad_values snapshot-unknown-kind $'snapshot:\n  kinds: [item, components]' \
    "snapshot/kinds/1.*(must be one of|value must be)"
  bad_values snapshot-bad-schedule $'snapshot:\n  schedule: every night' \
    'snapshot/schedule.*(does not match pattern|Does not match pattern)'
  bad_values cloudevents-not-bool $'enricher:\n  cloudEvents:\n    enabled: "no"' \
    'cloudEvents/enabled.*(boolean|Invalid type)'
  bad_values cloudevents-source-blank $'enricher:\n  cloudEvents:\n    source: urn:duro plm' \
    'cloudEvents/source.*(does not match pattern|Does not match pattern)'
  bad_values cloudevents-source-tab $'enricher:\n  cloudEvents:\n    source: "urn:duro\\tplm"' \
    'cloudEvents/source.*(does not match pattern|Does not match pattern)'
  bad_values assignment-unknown $'enricher:\n  assignment: sticky' \
    'enricher/assignment.*(must be one of|value must be)'
  bad_values reconcile-unknown-key $'reconcile:\n  sched: "17 * * * *"' "additional properties 'sched' not allowed"
  bad_values reconcile-bad-since $'reconcile:\n  since: yesterday' \
    'reconcile/since.*(does not match pattern|Does not match pattern)'
  bad_values reconcile-flag-as-webhook $'reconcile:\n  webhooks: ["--all"]' \
    'reconcile/webhooks/0.*(does not match pattern|Does not match pattern)'
  bad_values reconcile-url-without-scheme $'reconcile:\n  url: duro-webhooks.example.com/webhooks/duro' \
    'reconcile/url.*(does not match pattern|Does not match pattern)'

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
    sed 's/^  concurrencyPolicy: Forbid$/  concurrencyPolicy: Forbid\n  bogusField: 1/' \
      "$full" >"$work/bad-cronjob.yaml"
    kc_tests+=("bad-cronjob|a snapshot CronJob with an unknown field|CronJob.*additional properties 'bogusField' not allowed")
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
  # The group protocol: static membership under consumer (given back through extraEnv), a
  # classic protocol's property there, and an eager enricher without its instance id.
  if [ -s "$work/assignment-consumer-$latest.yaml" ]; then
    for t in "DURO_GROUP_INSTANCE_ID|duro-enricher-0|a consumer-protocol enricher with a group instance id|DURO_GROUP_INSTANCE_ID is set under DURO_ASSIGNMENT=consumer" \
      "DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS|45000|a consumer-protocol enricher with session.timeout.ms|DURO_RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS \(session.timeout.ms\) under DURO_ASSIGNMENT=consumer"; do
      IFS='|' read -r var val what pattern <<<"$t"
      rc=0
      render "consumer-$var" "$latest" -f "$root/deploy/values/full.yaml" --set enricher.assignment=consumer \
        --set "enricher.extraEnv[0].name=$var" --set-string "enricher.extraEnv[0].value=$val" &&
        manifests "$work/consumer-$var-$latest.yaml" "consumer-$var" 2>"$work/consumer-$var.mc" || rc=$?
      expect_refused "$what (manifest checks)" "$pattern" "$work/consumer-$var.mc" "$rc"
    done
  fi
  python3 - "$base" "$work/no-instance-id.yaml" <<'PY'
import sys
import yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "StatefulSet":
        c = d["spec"]["template"]["spec"]["containers"][0]
        c["env"] = [e for e in c["env"] if e["name"] != "DURO_GROUP_INSTANCE_ID"]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"), sort_keys=False)
PY
  rc=0
  manifests "$work/no-instance-id.yaml" no-instance-id 2>"$work/no-instance-id.mc" || rc=$?
  expect_refused "an eager enricher without its group instance id (manifest checks)" \
    'DURO_GROUP_INSTANCE_ID must be built from \$\(POD_NAME\)' "$work/no-instance-id.mc" "$rc"
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
  # The snapshot Jobs of snapshot-all, broken one way each (or rendered so).
  snap_all="$work/snapshot-all-$latest.yaml"
  if [ -s "$snap_all" ]; then
    snapshot_test() { # NAME PATTERN PYTHON (changes d, a CronJob or Job; s its Job spec,
      # pod its pod spec, c its container, env its env list)
      local name=$1 pattern=$2 code=$3 rc=0
      python3 - "$snap_all" "$work/$name.yaml" "$code" <<'PY'
import sys
import yaml
src, out, code = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
keep = []
for d in docs:
    if d["kind"] in ("CronJob", "Job") and d["metadata"]["labels"].get("app.kubernetes.io/component") == "snapshot":
        s = d["spec"]["jobTemplate"]["spec"] if d["kind"] == "CronJob" else d["spec"]
        pod = s["template"]["spec"]
        c = pod["containers"][0]
        env = c["env"]
        drop = False
        exec(code)
        if drop:
            continue
    keep.append(d)
yaml.safe_dump_all(keep, open(out, "w"), sort_keys=False)
PY
      snapshot_check "$work/$name.yaml" "$name" cronjob,job,service 2>"$work/$name.snap" >/dev/null || rc=$?
      expect_refused "$name (snapshot checks)" "$pattern" "$work/$name.snap" "$rc"
    }
    snapshot_test "a snapshot CronJob whose run id is not the Job's name" \
      "DURO_SNAPSHOT_ID .*want the Job's name" \
      'if d["kind"] == "CronJob": env[0]["valueFrom"]["fieldRef"]["fieldPath"] = "metadata.name"'
    snapshot_test "a snapshot Job without the enricher's SASL password" \
      "lacks the enricher's DURO_RDKAFKA_SASL_PASSWORD" \
      'if d["kind"] == "Job": env[:] = [e for e in env if e["name"] != "DURO_RDKAFKA_SASL_PASSWORD"]'
    snapshot_test "a snapshot Job with another bootstrap server" \
      "KAFKA_BOOTSTRAP_SERVERS is .*, the enricher's" \
      'if d["kind"] == "Job": [e.update(value="localhost:9092") for e in env if e["name"] == "KAFKA_BOOTSTRAP_SERVERS"]'
    snapshot_test "a snapshot CronJob without the Kafka CA volume" "volumes are not the enricher's" \
      'if d["kind"] == "CronJob": pod["volumes"] = [x for x in pod["volumes"] if x["name"] != "kafka-ca"]'
    snapshot_test "a snapshot CronJob retrying in place" "restartPolicy 'OnFailure', want Never" \
      'if d["kind"] == "CronJob": pod["restartPolicy"] = "OnFailure"'
    snapshot_test "a snapshot Job retried on a bad setting" "no podFailurePolicy rule that fails the Job on exit status 2" \
      'if d["kind"] == "Job": del s["podFailurePolicy"]'
    snapshot_test "a snapshot Job that is no hook" "not a post-install hook" \
      'if d["kind"] == "Job": del d["metadata"]["annotations"]'
    snapshot_test "no snapshot CronJob" "snapshot objects \['job', 'service'\], want \['cronjob', 'job', 'service'\]" \
      'drop = d["kind"] == "CronJob"'
    printf 'snapshot:\n  extraEnv:\n    - name: DURO_TRANSACTIONAL_ID\n      value: duro-enricher-0\n' \
      >"$work/snapshot-txn.values.yaml"
    render snapshot-txn "$latest" -f "$root/deploy/values/full.yaml" -f "$work/snapshot-txn.values.yaml" ||
      cat "$work/snapshot-txn-$latest.log"
    rc=0
    snapshot_check "$work/snapshot-txn-$latest.yaml" snapshot-txn cronjob,service 2>"$work/snapshot-txn.snap" \
      >/dev/null || rc=$?
    expect_refused "a snapshot given DURO_TRANSACTIONAL_ID in snapshot.extraEnv (snapshot checks)" \
      "DURO_TRANSACTIONAL_ID is set" "$work/snapshot-txn.snap" "$rc"
  fi
  # The reconcile CronJob of reconcile-all, broken one way each (or rendered so).
  rec_all="$work/reconcile-all-$latest.yaml"
  if [ -s "$rec_all" ]; then
    reconcile_test() { # NAME PATTERN PYTHON (changes d, any object; for the reconcile
      # CronJob c is its container, s its Job spec, pod its pod spec, env its env list)
      local name=$1 pattern=$2 code=$3 rc=0
      python3 - "$rec_all" "$work/$name.yaml" "$code" <<'PY'
import sys
import yaml
src, out, code = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
keep = []
for d in docs:
    s = pod = c = env = None
    if d["kind"] == "CronJob" and d["metadata"]["labels"].get("app.kubernetes.io/component") == "reconcile":
        s = d["spec"]["jobTemplate"]["spec"]
        pod = s["template"]["spec"]
        c = pod["containers"][0]
        env = c["env"]
    drop = False
    exec(code)
    if drop:
        continue
    keep.append(d)
yaml.safe_dump_all(keep, open(out, "w"), sort_keys=False)
PY
      reconcile_check "$work/$name.yaml" "$name" "${reconcile_expect[reconcile-all]}" 2>"$work/$name.rec" \
        >/dev/null || rc=$?
      expect_refused "$name (reconcile checks)" "$pattern" "$work/$name.rec" "$rc"
    }
    reconcile_test "a reconcile CronJob that lets runs overlap" "concurrencyPolicy 'Allow', want Forbid" \
      'if c: d["spec"]["concurrencyPolicy"] = "Allow"'
    reconcile_test "a reconcile CronJob on another schedule" "want '\\*/30 \\* \\* \\* \\*' and not suspended" \
      'if c: d["spec"]["schedule"] = "17 * * * *"'
    reconcile_test "a reconcile without its --since" "args \\['--webhook', .*want \\['--since', '2d'" \
      'if c: c["args"] = c["args"][2:]'
    reconcile_test "a reconcile with a flag of its own making" "want pairs of --since T and --webhook ID" \
      'if c: c["args"] += ["--dry-run", "yes"]'
    reconcile_test "a reconcile given the progress topic" "DURO_PROGRESS_TOPIC is not a variable of reconcile" \
      'if c: env.append({"name": "DURO_PROGRESS_TOPIC", "value": "duro.enricher.progress"})'
    reconcile_test "a reconcile without the enricher's SASL password" \
      "lacks the enricher's DURO_RDKAFKA_SASL_PASSWORD" \
      'if c: env[:] = [e for e in env if e["name"] != "DURO_RDKAFKA_SASL_PASSWORD"]'
    reconcile_test "a reconcile writing another raw topic" "DURO_RAW_TOPIC is 'duro.raw', the enricher's" \
      'if c: [e.update(value="duro.raw") for e in env if e["name"] == "DURO_RAW_TOPIC"]'
    reconcile_test "a reconcile without the Kafka CA volume" "volumes are not the enricher's" \
      'if c: pod["volumes"] = [x for x in pod["volumes"] if x["name"] != "kafka-ca"]'
    reconcile_test "a reconcile whose log table is not mounted" \
      "DURO_LOG_TABLE=/etc/duro/log-table/log-table.txt is on no mounted volume" \
      'if c: c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "log-table"]'
    reconcile_test "a reconcile log table mounted writable" "the mount /etc/duro/log-table must be read-only" \
      'if c: [m.pop("readOnly") for m in c["volumeMounts"] if m["name"] == "log-table"]'
    reconcile_test "a log-table ConfigMap without the table" "has no log table under log-table.txt" \
      'if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-log-table"): d["data"] = {}'
    reconcile_test "a reconcile whose metrics end with the run" "DURO_RECONCILE_METRICS_LINGER_S '0'" \
      'if c: [e.update(value="0") for e in env if e["name"] == "DURO_RECONCILE_METRICS_LINGER_S"]'
    reconcile_test "a reconcile listening off its admin port" "DURO_RECONCILE_ADMIN_LISTEN 0.0.0.0:9095 is not the admin port 9096" \
      'if c: [e.update(value="0.0.0.0:9095") for e in env if e["name"] == "DURO_RECONCILE_ADMIN_LISTEN"]'
    reconcile_test "a reconcile whose admin port no Service exposes" "a ServiceMonitor but no Service for the admin port" \
      'drop = d["kind"] == "Service" and d["metadata"]["labels"].get("app.kubernetes.io/component") == "reconcile"'
    reconcile_test "a reconcile Service no ServiceMonitor scrapes" "no ServiceMonitor scrapes its admin port" \
      'drop = d["kind"] == "ServiceMonitor"'
    reconcile_test "a reconcile CronJob retried on a bad setting" \
      "no podFailurePolicy rule that fails the Job on exit status 2" 'if c: del s["podFailurePolicy"]'
    reconcile_test "no DuroReconcileNotRecoverable alert" "no alert DuroReconcileNotRecoverable" \
      'if d["kind"] == "PrometheusRule": [g.update(rules=[r for r in g["rules"] if r.get("alert") != "DuroReconcileNotRecoverable"]) for g in d["spec"]["groups"]]'
    printf 'reconcile:\n  extraEnv:\n    - name: DURO_TRANSACTIONAL_ID\n      value: duro-enricher-0\n' \
      >"$work/reconcile-txn.values.yaml"
    render reconcile-txn "$latest" -f "$root/deploy/values/full.yaml" -f "$work/reconcile-txn.values.yaml" ||
      cat "$work/reconcile-txn-$latest.log"
    rc=0
    reconcile_check "$work/reconcile-txn-$latest.yaml" reconcile-txn '{"objects": "cronjob,service"}' \
      2>"$work/reconcile-txn.rec" >/dev/null || rc=$?
    expect_refused "a reconcile given DURO_TRANSACTIONAL_ID in reconcile.extraEnv (reconcile checks)" \
      "DURO_TRANSACTIONAL_ID is set" "$work/reconcile-txn.rec" "$rc"
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
