#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md): ingress (duro-bridge against an HTTP ceiling, a Kafka
# ceiling and a Node.js reference bridge), enricher (duro-enricher against the GraphQL
# double's capacity and a naive enricher), state topics (the enricher's events/s with
# DURO_STATE_TOPICS on ÷ off, same input), wire headers (the same with DURO_CLOUDEVENTS: the
# ce_* headers), dedupe rebuild (its rate against a plain librdkafka read, a rebalance's pause
# against the window) and snapshot (duro-enricher snapshot's listing, and with an enricher
# behind it, against the double's capacity), on
# this machine, one after the other, against one real broker that this script starts in a
# temporary folder and stops again. Prints a table of ratios and writes docs/benchmarks.md.
# Loopback only; nothing is asserted.
#
# Usage: scripts/bench.sh [--quick] [--keep] [--rdkafka system|both]
#                         [--only S[,S...]] [opts]
#   --quick   smoke test: short runs, small pools; writes the page to
#             build-bench/benchmarks-quick.md instead of docs/benchmarks.md
#   --keep    keep the work folder (logs of every process, results.json)
#   --only S  run these sections (ingress, enricher, state, wire, rebuild, snapshot;
#             comma-separated); the page keeps the other sections as they were
#   --rdkafka both
#             also build against the current librdkafka (scripts/rdkafka.sh, which builds
#             it into the cache when missing) in a second release folder, and run the
#             ingress and enricher sections once per build, interleaved, as the page's
#             "librdkafka versions" sections (side by side, current ÷ system); the
#             sections' usual form is not run then (the page keeps it). The others run on
#             the system build as always. Default: system (one build, as before).
#   Anything else goes to tests/bench/run_bench.py, e.g. --seconds 30, --conns 8,64,
#   --enricher-n 50000, --moderate-rate 100, --state-repeat 3, --wire-repeat 3,
#   --rdkafka-repeat 3, --rebuild-windows 50000,400000, --snapshot-library 30000,6000
#   (its --help).
# Environment: DURO_CACHE (default ~/.cache/duro-kafka-bridge), DURO_BENCH_BUILD (the
# release build folder, default build-bench), DURO_BENCH_BUILD_CURRENT (the one against
# the current librdkafka, default: DURO_BENCH_BUILD's path + -rdkafka-current).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
export DURO_CACHE
build=${DURO_BENCH_BUILD:-$root/build-bench}
build_cur=${DURO_BENCH_BUILD_CURRENT:-$build-rdkafka-current}

log() { echo "bench.sh: $*" >&2; }

quick=0
keep=0
rdkafka=system
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; pass+=(--quick) ;;
    --keep) keep=1 ;;
    --rdkafka)
      [ $# -ge 2 ] || { log "--rdkafka: system or both"; exit 2; }
      rdkafka=$2; shift ;;
    --rdkafka=*) rdkafka=${1#--rdkafka=} ;;
    -h|--help) sed -n '2,$p' "$0" | sed -n '/^#/!q;p' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1") ;;
  esac
  shift
done
case "$rdkafka" in
  system|both) ;;
  *) log "--rdkafka: system or both, not '$rdkafka'"; exit 2 ;;
esac

# ---------------------------------------------------------------- install
"$root/scripts/setup.sh"   # build tools, libraries, kcat, the Python venv, the broker jars
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    "${need[@]}" >&2
fi
log "node-ref: npm ci"
(cd "$root/tests/bench/node-ref" && npm ci --no-audit --no-fund --loglevel=error >&2)

# ---------------------------------------------------------------- build (release)
log "building (Release) in $build"
sys_prefix=()
# both: the first build on the system librdkafka, whatever its folder's cache held
[ "$rdkafka" = both ] && sys_prefix=(-DDURO_RDKAFKA_PREFIX=)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  ${sys_prefix[@]+"${sys_prefix[@]}"} >/dev/null
ninja -C "$build" duro-bridge duro-enricher >&2
# (the target list read whole first: grep -q closing the pipe early fails it under pipefail)
targets=$(ninja -C "$build" -t targets all 2>/dev/null || true)
if grep -q '^http_ceiling:' <<<"$targets"; then
  ninja -C "$build" http_ceiling kafka_ceiling rawpart >&2   # the root CMakeLists has tests/bench
  bench_bin=$build/tests/bench
else
  cmake -S "$root/tests/bench" -B "$build/bench" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$build/bench" >&2
  bench_bin=$build/bench
fi
if [ "$rdkafka" = both ]; then
  # the current librdkafka: the cached build, or built now (about 2 minutes)
  prefix=$(bash "$root/scripts/rdkafka.sh" | tail -n1)
  log "building (Release) against $prefix in $build_cur"
  cmake -S "$root" -B "$build_cur" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DDURO_RDKAFKA_PREFIX="$prefix" >/dev/null
  # the root CMakeLists has tests/bench: its kafka_ceiling links this build's librdkafka
  ninja -C "$build_cur" duro-bridge duro-enricher kafka_ceiling >&2
  v_sys=$("$build/duro-enricher" --version)
  v_cur=$("$build_cur/duro-enricher" --version)
  log "system build: $v_sys; current build: $v_cur"
  if [ "$v_sys" = "$v_cur" ]; then
    log "both builds run on the same librdkafka: nothing to compare"
    exit 1
  fi
  pass+=(--bin-dir-current "$build_cur" --bench-bin-dir-current "$build_cur/tests/bench")
fi

# ---------------------------------------------------------------- broker, run, clean up
work=$(mktemp -d "${TMPDIR:-/tmp}/duro-bench.XXXXXX")
export KAFKA_WORK=$work/kafka
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -n "${runner_pid:-}" ] && kill -TERM "$runner_pid" 2>/dev/null && wait "$runner_pid" 2>/dev/null
  "$root/scripts/kafka.sh" stop >/dev/null 2>&1 || true
  if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
    log "work folder kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log "starting a broker in $KAFKA_WORK"
bootstrap=$(KAFKA_PORT=0 KAFKA_HEAP_OPTS="-Xms512m -Xmx1g" "$root/scripts/kafka.sh" start | tail -n1)
log "broker at $bootstrap"

doc=$root/docs/benchmarks.md
[ "$quick" = 1 ] && doc=$build/benchmarks-quick.md
mkdir -p "$(dirname "$doc")"
PYTHONPATH=$root/tests "$DURO_CACHE/venv/bin/python" "$root/tests/bench/run_bench.py" \
  --bootstrap "$bootstrap" --kafka-pid-file "$KAFKA_WORK/kafka.pid" \
  --bin-dir "$build" --bench-bin-dir "$bench_bin" --work "$work" \
  --doc "$doc" --json "$work/results.json" ${pass[@]+"${pass[@]}"} &
runner_pid=$!
wait "$runner_pid"
runner_pid=
log "results page: $doc"
