#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine, and is quick
# when it is all there already: Debian packages (build and test tools), a Python
# virtual environment for the tests, and the Kafka broker jars (cached outside the
# clone, in $DURO_CACHE, so a fresh clone does not download them again).
#
# Usage: scripts/setup.sh            (idempotent)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
export DURO_CACHE

packages=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev
  libcmocka-dev clang clang-format clang-tidy libclang-rt-14-dev
  kcat openssl curl python3-venv valgrind
)
# Java 17+ and Maven run the broker; most machines have them already.
command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || packages+=(maven)

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
echo "setup: ready" >&2
