#!/usr/bin/env python3
"""Checks rendered manifests of the duro-kafka-bridge chart for what a schema cannot see.

Usage: check-manifests.py MANIFESTS.yaml [--bridge-help FILE] [--enricher-help FILE]

- every environment variable a container sets is one its program knows: the names its
  `--help` lists, or DURO_RDKAFKA_[PRODUCER_|CONSUMER_]<PROP>; other names must not look
  like the programs' (DURO_*, KAFKA_*). Without the --help texts this check is skipped;
- no secret-looking variable (…PASSWORD, …SECRET, …API_KEY) has a literal value;
- the pod templates: enableServiceLinks false, no service-account token, non-root,
  seccomp RuntimeDefault, read-only root file system, no privilege escalation, every
  capability dropped; probes /healthz (liveness) and /readyz (readiness) on the admin port;
- the secrets files (DURO_WEBHOOK_SECRETS_FILE, DURO_API_KEY_FILE) are mounted from a
  Secret as a whole volume (no subPath, so Kubernetes can swap them and the programs
  re-read them);
- the files that describe Duro's API (DURO_EVENT_TABLE, DURO_QUERIES_DIR), when set, are
  on a read-only ConfigMap volume (no subPath); a ConfigMap of the release must be
  whole (every GraphQL document, the event table under the name mounted) and the pod
  template must carry a checksum/ annotation of it, so that the pods roll when it changes;
- the bridge's terminationGracePeriodSeconds exceeds DURO_BRIDGE_DRAIN_DELAY_MS +
  DURO_BRIDGE_ACK_TIMEOUT_MS;
- the enricher's DURO_TRANSACTIONAL_ID and DURO_GROUP_INSTANCE_ID are built from the pod
  name (POD_NAME from the downward API, defined before them);
- the enricher's group protocol: DURO_ASSIGNMENT eager, cooperative or consumer (absent:
  eager); under consumer (KIP-848) no DURO_GROUP_INSTANCE_ID (no static membership: a
  member killed without leaving would hold its id, its restart refused, until its
  session expires) and none of the classic protocol's properties the enricher refuses
  then (session.timeout.ms, heartbeat.interval.ms, partition.assignment.strategy,
  group.protocol.type as DURO_RDKAFKA_[CONSUMER_]<PROP>);
- the guarantees: dedupe window > maximum event age + 600 s; raw-topic retention (KafkaTopic
  or DURO_RAW_RETENTION_MS) >= window; Strimzi topics: min.insync.replicas < replicas;
  no two KafkaTopics for one topic;
- the enricher's state and progress topics (DURO_STATE_TOPICS, DURO_STATE_TOPIC_TEMPLATE,
  DURO_PROGRESS_TOPIC, DURO_PROGRESS_IGNORE; booleans true or false, the template with
  {kind}), which the enricher refuses to start without: when KafkaTopics are rendered, a
  KafkaTopic for each state topic (cleanup.policy compact, the output topics' partition
  count: Kafka Streams co-partitioning) unless DURO_STATE_TOPICS=false, in which case
  none; one for the progress topic (compact, 1 partition, segment.ms 3600000); one for
  each snapshot event's output topic (ITEM_SNAPSHOT, CO_SNAPSHOT). Without KafkaTopics
  and without DURO_CREATE_TOPICS=true nothing provisions them: a warning.
Exit status 1 with one line per finding.
"""
import argparse
import re
import sys

import yaml

# The enricher's defaults (duro-enricher --help) for the state and progress topics.
STATE_KINDS = ("item", "change_order")
SNAPSHOT_EVENTS = ("ITEM_SNAPSHOT", "CO_SNAPSHOT")
DEFAULTS = {"DURO_STATE_TOPICS": "true", "DURO_STATE_TOPIC_TEMPLATE": "duro.state.{kind}",
            "DURO_PROGRESS_TOPIC": "duro.enricher.progress", "DURO_PROGRESS_IGNORE": "false",
            "DURO_TOPIC_TEMPLATE": "duro.events.{event}", "DURO_CREATE_TOPICS": "false"}
PROGRESS_SEGMENT_MS = 3600000
RDKAFKA = re.compile(r"^DURO_RDKAFKA_(PRODUCER_|CONSUMER_)?[A-Z0-9]+(_[A-Z0-9]+)*$")
# DURO_ASSIGNMENT's modes, and the properties the enricher refuses under consumer (its
# consumer's: the scope of every program and the consumer's own).
ASSIGNMENTS = ("eager", "cooperative", "consumer")
CLASSIC_ONLY = ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy",
                "group.protocol.type")
CLASSIC_ONLY_ENV = {f"DURO_RDKAFKA_{scope}{p.upper().replace('.', '_')}": p
                    for p in CLASSIC_ONLY for scope in ("", "CONSUMER_")}
SECRETISH = re.compile(r"(PASSWORD|SECRET|API_KEY)$")
# The GraphQL documents a DURO_QUERIES_DIR folder must hold (schemas/graphql).
QUERY_DOCUMENTS = ("components.graphql", "change_orders.graphql", "webhooks_list.graphql",
                   "webhooks_create.graphql", "webhooks_update.graphql", "webhooks_logs.graphql")

problems, warnings = [], []


def fail(msg):
    problems.append(msg)


def help_names(path):
    if not path:
        return None
    with open(path) as f:
        return set(re.findall(r"\b((?:DURO|KAFKA)_[A-Z0-9_]+)\b", f.read()))


def env_map(container):
    return {e["name"]: e for e in container.get("env", [])}


def value(container, name):
    e = env_map(container).get(name)
    return e.get("value") if e else None


def check_env(where, container, known):
    names = [e["name"] for e in container.get("env", [])]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        fail(f"{where}: variables set twice: {sorted(dup)}")
    for e in container.get("env", []):
        n = e["name"]
        if SECRETISH.search(n) and "value" in e:
            fail(f"{where}: {n} has a literal value; secrets come from a Secret")
        if not (n.startswith("DURO_") or n.startswith("KAFKA_")):
            continue
        if RDKAFKA.match(n):
            continue
        if known is None:
            continue
        if n not in known:
            fail(f"{where}: {n} is not a variable the program knows (--help)")


def check_pod(where, spec, admin_port_name="admin"):
    if spec.get("enableServiceLinks") is not False:
        fail(f"{where}: enableServiceLinks must be false")
    if spec.get("automountServiceAccountToken") is not False:
        fail(f"{where}: automountServiceAccountToken must be false")
    psc = spec.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        fail(f"{where}: pod securityContext.runAsNonRoot must be true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"{where}: pod seccompProfile must be RuntimeDefault")
    for c in spec.get("containers", []):
        cw = f"{where}/{c['name']}"
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(f"{cw}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(f"{cw}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            fail(f"{cw}: capabilities must drop ALL")
        if sc.get("privileged"):
            fail(f"{cw}: must not be privileged")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or get.get("port") != admin_port_name:
                fail(f"{cw}: {probe} must GET {path} on the {admin_port_name} port")
        if not c.get("resources", {}).get("requests"):
            fail(f"{cw}: no resource requests")


def check_secret_file(where, spec, container, var):
    path = value(container, var)
    if not path:
        fail(f"{where}: {var} is not set")
        return
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/") + "/"
        if path.startswith(mp):
            if "subPath" in m or "subPathExpr" in m:
                fail(f"{where}: {var} is mounted with subPath: Kubernetes never updates it")
            if "secret" not in vols.get(m["name"], {}):
                fail(f"{where}: {var} is not on a Secret volume")
            return
    fail(f"{where}: {var}={path} is on no mounted volume")


def check_api_file(where, pod, container, var, configmaps):
    """var (DURO_EVENT_TABLE, a file; DURO_QUERIES_DIR, a folder), when set, must be on a
    read-only ConfigMap volume of the pod template ``pod``; configmaps: name → data of
    the ConfigMaps this release renders."""
    spec = pod["spec"]
    path = value(container, var)
    if path is None:
        return
    path = path.rstrip("/")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        inside = path == mp if var == "DURO_QUERIES_DIR" else path.startswith(mp + "/")
        if not inside:
            continue
        cm = vols.get(m["name"], {}).get("configMap")
        if cm is None:
            fail(f"{where}: {var}={path} is not on a ConfigMap volume")
            return
        if m.get("readOnly") is not True:
            fail(f"{where}: {var}: the mount {mp} must be read-only")
        if "subPath" in m or "subPathExpr" in m:
            fail(f"{where}: {var} is mounted with subPath: Kubernetes never updates it")
        data = configmaps.get(cm["name"])
        if var == "DURO_EVENT_TABLE":
            file = path[len(mp) + 1:]
            keys = [i["key"] for i in cm.get("items", []) if i["path"] == file]
            if cm.get("items") is not None and not keys:
                fail(f"{where}: {var}: the volume {m['name']} has no item at {file}")
            key = keys[0] if keys else file
            if data is not None and not (data.get(key) or "").strip():
                fail(f"{where}: {var}: ConfigMap/{cm['name']} has no event table under {key}")
        elif data is not None:
            missing = [d for d in QUERY_DOCUMENTS if not (data.get(d) or "").strip()]
            if missing:
                fail(f"{where}: {var}: ConfigMap/{cm['name']} lacks {', '.join(missing)}")
        checksum = "checksum/event-table" if var == "DURO_EVENT_TABLE" else "checksum/queries"
        if data is not None and checksum not in (pod.get("metadata", {}).get("annotations") or {}):
            fail(f"{where}: {var} comes from ConfigMap/{cm['name']} of the release, but no "
                 f"{checksum} annotation rolls the pods when it changes")
        return
    fail(f"{where}: {var}={path} is on no mounted volume")


def output_topic(template, event):
    """The enricher's output topic of an event: {event} lower-cased, outside [a-z0-9._-] → _."""
    return template.replace("{event}", re.sub(r"[^a-z0-9._-]", "_", event.lower()))


def check_state_topics(w, c, topics):
    """The enricher container c (of workload w) against the KafkaTopics rendered."""
    env = {k: value(c, k) if value(c, k) is not None else d for k, d in DEFAULTS.items()}
    for var in ("DURO_STATE_TOPICS", "DURO_PROGRESS_IGNORE"):
        if env[var] not in ("true", "false"):
            fail(f"{w}: {var}={env[var]!r}, want true or false")
    state_on = env["DURO_STATE_TOPICS"] != "false"
    tmpl = env["DURO_STATE_TOPIC_TEMPLATE"]
    if "{kind}" not in tmpl:
        fail(f"{w}: DURO_STATE_TOPIC_TEMPLATE={tmpl!r} lacks {{kind}}: the enricher refuses it")
        return
    state = [tmpl.replace("{kind}", k) for k in STATE_KINDS]
    progress = env["DURO_PROGRESS_TOPIC"]
    create = env["DURO_CREATE_TOPICS"] == "true"
    if not topics:
        if not create:
            warnings.append(
                f"{w}: neither KafkaTopics nor DURO_CREATE_TOPICS=true: "
                + (f"the state topics {', '.join(state)} and " if state_on else "")
                + f"the progress topic {progress} must exist, compacted, or the enricher refuses to start")
        return
    by_name = {t["spec"].get("topicName"): t for t in topics}
    snapshots = [output_topic(env["DURO_TOPIC_TEMPLATE"], e) for e in SNAPSHOT_EVENTS]
    outputs = re.compile("^" + re.escape(env["DURO_TOPIC_TEMPLATE"]).replace(
        re.escape("{event}"), "[a-z0-9._-]+") + "$")
    out_parts = {int(t["spec"].get("partitions", 0)) for n, t in by_name.items()
                 if outputs.match(n or "") and n not in state and n != progress}
    if len(out_parts) != 1:
        fail(f"output topics' KafkaTopics: partitions {sorted(out_parts)}, want one count")

    def declared(name, what):
        t = by_name.get(name)
        if t is None:
            (warnings.append if create else fail)(
                f"no KafkaTopic for {what} {name}" + ("" if create else ": the enricher refuses to start"))
        return t

    def compacted(t, what):
        cfg = t["spec"].get("config") or {}
        if "compact" not in str(cfg.get("cleanup.policy", "")):
            fail(f"KafkaTopic/{t['metadata']['name']}: {what} {t['spec']['topicName']} has "
                 f"cleanup.policy {cfg.get('cleanup.policy')!r}, want compact")

    for name in state:
        if not state_on:
            if name in by_name:
                fail(f"KafkaTopic/{by_name[name]['metadata']['name']}: state topic {name} "
                     f"declared, but DURO_STATE_TOPICS=false")
            continue
        t = declared(name, "the state topic")
        if t is None:
            continue
        compacted(t, "state topic")
        p = int(t["spec"].get("partitions", 0))
        if len(out_parts) == 1 and p not in out_parts:
            fail(f"KafkaTopic/{t['metadata']['name']}: state topic {name} has {p} partitions, "
                 f"the output topics {min(out_parts)}: Kafka Streams joins need them co-partitioned")
    t = declared(progress, "the progress topic")
    if t is not None:
        compacted(t, "progress topic")
        cfg = t["spec"].get("config") or {}
        if int(t["spec"].get("partitions", 0)) != 1:
            fail(f"KafkaTopic/{t['metadata']['name']}: progress topic {progress} has "
                 f"{t['spec'].get('partitions')} partitions, want 1 (the enricher reads partition 0 only)")
        if str(cfg.get("segment.ms")) != str(PROGRESS_SEGMENT_MS):
            fail(f"KafkaTopic/{t['metadata']['name']}: progress topic {progress} has segment.ms "
                 f"{cfg.get('segment.ms')!r}, want {PROGRESS_SEGMENT_MS}")
    for name in snapshots:
        declared(name, "the snapshot output topic")


def check_workload(found, kind: str, who: str, secret_var: str) -> str:
    """found = (document, pod spec, container) of one program: it must run as a
    ``kind`` with its secret mounted as a file named by ``secret_var``. Returns the
    "Kind/name" that messages about it start with."""
    d, spec, c = found
    w = f"{kind}/{d['metadata']['name']}"
    if d["kind"] != kind:
        fail(f"{w}: {who} must be a {kind}")
    check_secret_file(w, spec, c, secret_var)
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifests")
    ap.add_argument("--bridge-help")
    ap.add_argument("--enricher-help")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    known = {"duro-bridge": help_names(a.bridge_help), "duro-enricher": help_names(a.enricher_help)}

    with open(a.manifests) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    bridge = enricher = None
    topics = []
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet"):
            spec = d["spec"]["template"]["spec"]
            check_pod(f"{kind}/{name}", spec)
            for c in spec["containers"]:
                prog = (c.get("command") or [""])[0]
                if prog not in known:
                    fail(f"{kind}/{name}/{c['name']}: runs {prog!r}, neither duro-bridge nor duro-enricher")
                    continue
                check_env(f"{kind}/{name}/{c['name']}", c, known[prog])
                for var in ("DURO_EVENT_TABLE", "DURO_QUERIES_DIR"):
                    check_api_file(f"{kind}/{name}/{c['name']}", d["spec"]["template"], c, var,
                                   configmaps)
                if prog == "duro-bridge":
                    bridge = (d, spec, c)
                else:
                    enricher = (d, spec, c)
        elif kind == "KafkaTopic":
            topics.append(d)

    if bridge:
        w = check_workload(bridge, "Deployment", "the bridge", "DURO_WEBHOOK_SECRETS_FILE")
        _, spec, c = bridge
        drain = int(value(c, "DURO_BRIDGE_DRAIN_DELAY_MS") or 5000)
        ack = int(value(c, "DURO_BRIDGE_ACK_TIMEOUT_MS") or 10000)
        grace = int(spec.get("terminationGracePeriodSeconds", 30))
        if grace * 1000 <= drain + ack:
            fail(f"{w}: terminationGracePeriodSeconds {grace} s does not exceed drain delay "
                 f"{drain} ms + ack timeout {ack} ms")
    if enricher:
        w = check_workload(enricher, "StatefulSet", "the enricher", "DURO_API_KEY_FILE")
        _, spec, c = enricher
        env = c.get("env", [])
        names = [e["name"] for e in env]
        pod = env_map(c).get("POD_NAME")
        if not pod or pod.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
            fail(f"{w}: POD_NAME must come from the downward API (metadata.name)")
        assignment = value(c, "DURO_ASSIGNMENT") or "eager"
        if assignment not in ASSIGNMENTS:
            fail(f"{w}: DURO_ASSIGNMENT={assignment!r}: want one of {', '.join(ASSIGNMENTS)}")
        static = ["DURO_GROUP_INSTANCE_ID"]
        if assignment == "consumer":
            static = []
            if "DURO_GROUP_INSTANCE_ID" in names:
                fail(f"{w}: DURO_GROUP_INSTANCE_ID is set under DURO_ASSIGNMENT=consumer: no static "
                     "membership there (a member killed without leaving holds its id until its "
                     "session expires, and its restart is refused)")
            for n in sorted(set(names) & set(CLASSIC_ONLY_ENV)):
                fail(f"{w}: {n} ({CLASSIC_ONLY_ENV[n]}) under DURO_ASSIGNMENT=consumer: the enricher "
                     "refuses it (the broker's group.consumer.* settings govern)")
        for var in ["DURO_TRANSACTIONAL_ID"] + static:
            v = value(c, var) or ""
            if "$(POD_NAME)" not in v:
                fail(f"{w}: {var} must be built from $(POD_NAME)")
            elif "POD_NAME" in names and names.index("POD_NAME") > names.index(var):
                fail(f"{w}: POD_NAME must be defined before {var}")

    # the guarantees: the window exceeds the maximum event age + 10 minutes of clock skew.
    window = age = None
    if enricher:
        window = int(value(enricher[2], "DURO_DEDUPE_WINDOW_S") or 90000)
    if bridge:
        age = int(value(bridge[2], "DURO_BRIDGE_MAX_EVENT_AGE_S") or 86400)
    if window is not None and age is not None and not window > age + 600:
        fail(f"dedupe window {window} s does not exceed max event age {age} s + 600 s")
    if window is not None:
        for _, _, c in filter(None, (bridge, enricher)):
            r = value(c, "DURO_RAW_RETENTION_MS")
            if r is not None and int(r) < window * 1000:
                fail(f"DURO_RAW_RETENTION_MS {r} is shorter than the dedupe window {window} s")
    raw_topic = value(enricher[2], "DURO_RAW_TOPIC") if enricher else (
        value(bridge[2], "DURO_RAW_TOPIC") if bridge else None)
    names = [t["spec"].get("topicName") for t in topics]
    for n in sorted({n for n in names if names.count(n) > 1}):
        fail(f"two or more KafkaTopics for topic {n}")
    if enricher:
        check_state_topics(f"{enricher[0]['kind']}/{enricher[0]['metadata']['name']}",
                           enricher[2], topics)
    for t in topics:
        s = t["spec"]
        w = f"KafkaTopic/{t['metadata']['name']}"
        cfg = s.get("config", {})
        isr = int(cfg.get("min.insync.replicas", 1))
        if isr >= int(s.get("replicas", 1)):
            fail(f"{w}: min.insync.replicas {isr} must be below replicas {s.get('replicas')}")
        if s.get("topicName") == (raw_topic or "duro.webhooks.raw") and window is not None:
            r = cfg.get("retention.ms")
            if r is None or int(r) < window * 1000:
                fail(f"{w}: retention.ms {r} is shorter than the dedupe window {window} s")

    for w in warnings:
        print(f"check-manifests: {a.label}: warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"check-manifests: {a.label}: {p}", file=sys.stderr)
    n = sum(1 for d in docs)
    print(f"check-manifests: {a.label}: {n} objects, {len(problems)} problems, "
          f"{len(warnings)} warnings", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
