#!/usr/bin/env bash
# The fault run (the guarantees under crashes, restarts and upstream failures): a bounded
# scenario of a few minutes against a real Kafka broker of its own. The Duro double
# sends signed webhooks at a steady rate (some twice or three times, retrying every
# non-2xx on Duro's schedule scaled down) through duro-bridge to duro-enricher, while the
# harness kill -9s the bridge and the enricher, restarts the broker and makes the GraphQL
# double fail (500s, timeouts, 429/RATE_LIMITED, a full outage). At the end it reads
# every output topic, the DLQ and the state topics (read_committed) and prints a ledger;
# its ITEM_DELETE/CO_DELETE events delete their resource in the double first. Meanwhile
# snapshot phases run `duro-enricher snapshot --id phaseN` (after deleting a few
# resources without a webhook), kill -9 it at random moments and rerun it with the same
# id until it exits 0; each pinged resource must be on its snapshot topic exactly once.
# Meanwhile the bridge is stopped for longer than the retry span of the events of the
# outage's first seconds (sent on Duro's schedule scaled further down), so Duro gives up on
# them (and on a few whose 2xx answers it took for time-outs); at the end
# `duro-enricher reconcile --json` reads the double's webhook log and writes what the raw
# topic lacks, then runs again: every event given up must end exactly once on Kafka.
#
# Usage: scripts/fault-run.sh [--events N] [--rate R] [--scale X] [--repeat-probability P]
#                             [--bridge-kills N] [--enricher-kills N] [--broker-restarts N]
#                             [--windows 500s,timeouts,429,rate_limited,outage,partial]
#                             [--window-s S] [--seed S] [--ledger out.json]
#                             [--components N] [--change-orders N] [--snapshot-phases N]
#                             [--snapshot-kills N] [--snapshot-rate R]
#                             [--snapshot-page-size N] [--snapshot-deletes N]
#                             [--no-bridge-outage] [--outage-at F] [--outage-give-up-s S]
#                             [--outage-scale X] [--outage-lost-answers N]
#                             [--log-shape object|string] ...
#        (defaults: 20,000 events at 100/s, x0.01 retry schedule, 3+3 kills, 1 broker
#        restart, all six windows, 2 snapshot phases of 2 kills each over 1,000
#        components and 200 change orders, a bridge outage at 60 % whose first 5 s of
#        events go out on a x0.0002 schedule (5.6 s) plus 3 lost answers, log metadata
#        as an object; tests/fault/fault_run.py --help lists everything)
#
# Exit status: 0 PASS, 1 FAIL (an acknowledged event lost, or duplicated, or misrouted, a
# state mismatch, a snapshot problem, a reconcile problem or an event given up that
# did not end on Kafka exactly once), 2 VOID (the ledger does not balance, or the harness
# itself failed).
# Environment: DURO_CACHE, DURO_BRIDGE_BIN / DURO_ENRICHER_BIN (default build/, which
# is brought up to date with ninja unless DURO_FAULT_NO_BUILD=1), DURO_FAULT_DIR
# (where logs and the ledger go; default a new folder under /tmp).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
py="$DURO_CACHE/venv/bin/python"
[ -x "$py" ] || { echo "fault-run.sh: $py not found (run scripts/setup.sh)" >&2; exit 2; }

if [ -z "${DURO_BRIDGE_BIN:-}${DURO_ENRICHER_BIN:-}" ] && [ "${DURO_FAULT_NO_BUILD:-0}" != 1 ]; then
  [ -f build/build.ninja ] || cmake -S . -B build -G Ninja >/dev/null
  ninja -C build duro-bridge duro-enricher >&2
fi
export DURO_BRIDGE_BIN=${DURO_BRIDGE_BIN:-$root/build/duro-bridge}
export DURO_ENRICHER_BIN=${DURO_ENRICHER_BIN:-$root/build/duro-enricher}

run_dir=${DURO_FAULT_DIR:-$(mktemp -d /tmp/duro-fault-run.XXXXXX)}
mkdir -p "$run_dir"
export KAFKA_WORK="$run_dir/kafka" KAFKA_PORT=0
echo "fault-run.sh: logs and ledger in $run_dir" >&2

py_pid=
cleanup() {
  trap '' INT TERM
  if [ -n "$py_pid" ]; then   # the harness kills its programs itself; bounded wait
    kill -TERM "$py_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$py_pid" 2>/dev/null || true
  fi
  "$root/scripts/kafka.sh" stop >&2 || "$root/scripts/kafka.sh" kill >&2 || true
  rm -rf "$KAFKA_WORK/data"   # the broker's data; its log stays in $KAFKA_WORK/logs
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap=$("$root/scripts/kafka.sh" start | tail -n1)
echo "fault-run.sh: broker $bootstrap" >&2

# in the background + wait, so that a signal reaches the trap at once
set +e
"$py" -u "$root/tests/fault/fault_run.py" --bootstrap "$bootstrap" --kafka-work "$KAFKA_WORK" \
  --workdir "$run_dir" "$@" &
py_pid=$!
wait "$py_pid"
status=$?
py_pid=
set -e
exit $status
