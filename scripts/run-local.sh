#!/usr/bin/env bash
# Runs the whole product on this machine: a local Kafka broker (KRaft, one node), the
# topics, duro-bridge and duro-enricher; against Duro's real API when DURO_API_KEY or
# DURO_API_KEY_FILE is given, else against the Duro test double (tests/duro_double),
# which also plays Duro's webhook sender. Against the double it first snapshots the
# double's library (duro-enricher snapshot) and shows the state topics fill; against real
# Duro it only prints the snapshot command. Then it sends signed demo webhooks through the
# bridge and prints the enriched documents from the output topics. Ctrl-C stops everything.
#
# Environment: KAFKA_PORT (9092), DURO_API_URL/DURO_API_KEY[_FILE] (real Duro),
# DURO_WEBHOOK_SECRET[S_FILE] (default: a random secret in $DURO_CACHE/local),
# DURO_DEMO_EVENTS (20), DURO_DOUBLE_COMPONENTS (1000) and DURO_DOUBLE_CHANGE_ORDERS (200)
# (the double's library), and any duro-bridge / duro-enricher / duro-enricher snapshot
# setting (DURO_SNAPSHOT_RATE: 200 ids/s): each program is handed only the DURO_*
# variables its --help names (and DURO_RDKAFKA_*), so none warns about the others'
# settings or this script's own.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
"$root/scripts/setup.sh" --local
cmake -S . -B build -G Ninja >/dev/null
ninja -C build >&2

py="$DURO_CACHE/venv/bin/python"
local_dir="$DURO_CACHE/local"
mkdir -p "$local_dir"
export KAFKA_WORK="$local_dir/kafka" KAFKA_PORT=${KAFKA_PORT:-9092}
pids=()
cleanup() {
  trap '' INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do   # bounded: 10 s each, then SIGKILL
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  "$root/scripts/kafka.sh" stop >&2 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap=$("$root/scripts/kafka.sh" start | tail -n1)
raw=${DURO_RAW_TOPIC:-duro.webhooks.raw}
dlq=${DURO_DLQ_TOPIC:-duro.webhooks.dlq}
events="item_create item_update item_delete co_open co_update co_delete co_stage_transition co_stage_reviewer_decision co_resolution"
outputs=()
for ev in $events; do outputs+=("duro.events.$ev:3"); done
"$py" "$root/scripts/create-topics.py" "$bootstrap" "$raw:12" "$dlq:3" "${outputs[@]}" \
  "duro.events.item_snapshot:3" "duro.events.co_snapshot:3" \
  "duro.state.item:3:compact" "duro.state.change_order:3:compact" "duro.enricher.progress:1:compact"

if [ -z "${DURO_WEBHOOK_SECRET:-}" ] && [ -z "${DURO_WEBHOOK_SECRETS_FILE:-}" ]; then
  secret_file="$local_dir/webhook-secret"
  [ -s "$secret_file" ] || (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$secret_file")
  export DURO_WEBHOOK_SECRETS_FILE="$secret_file"
fi
simulated=0
components=${DURO_DOUBLE_COMPONENTS:-1000} change_orders=${DURO_DOUBLE_CHANGE_ORDERS:-200}
if [ -z "${DURO_API_KEY:-}" ] && [ -z "${DURO_API_KEY_FILE:-}" ]; then
  simulated=1
  key_file="$local_dir/api-key"
  [ -s "$key_file" ] || (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$key_file")
  export DURO_API_KEY_FILE="$key_file"
  # In a session of its own, so that Ctrl-C does not reach it: it gets one signal, the
  # cleanup's SIGTERM (a second signal close behind the first can hang its stop).
  PYTHONPATH="$root/tests" setsid "$py" -m duro_double serve --port "${DURO_DOUBLE_PORT:-8070}" \
    --api-key-file "$key_file" --seed 7 --components "$components" --change-orders "$change_orders" \
    --latency-ms 20 >"$local_dir/double.out" 2>"$local_dir/double.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$local_dir/double.out" 2>/dev/null && break; sleep 0.1; done
  export DURO_API_URL=$(sed -n 's/^listening on //p' "$local_dir/double.out")
  echo "run-local: no Duro credentials given: using the Duro test double at $DURO_API_URL" >&2
fi

export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
export DURO_BRIDGE_LISTEN=${DURO_BRIDGE_LISTEN:-127.0.0.1:8080}
export DURO_BRIDGE_ADMIN_LISTEN=${DURO_BRIDGE_ADMIN_LISTEN:-127.0.0.1:9090}
export DURO_ENRICHER_ADMIN_LISTEN=${DURO_ENRICHER_ADMIN_LISTEN:-127.0.0.1:9091}
export DURO_BRIDGE_DRAIN_DELAY_MS=${DURO_BRIDGE_DRAIN_DELAY_MS:-500}
# own_env PROGRAM [ARGS...]: runs PROGRAM ARGS without the DURO_* variables that
# `PROGRAM ARGS --help` does not name.
own_env() {
  local prog=$1 name drop=()
  local known
  shift
  known=$("$prog" "$@" --help | grep -oE '\bDURO_[A-Z0-9_]+' | sort -u)
  for name in $(compgen -e); do
    case "$name" in
      DURO_RDKAFKA_*) ;;
      DURO_*) grep -qxF -- "$name" <<<"$known" || drop+=(-u "$name") ;;
    esac
  done
  exec env "${drop[@]}" "$prog" "$@"
}
own_env "$root/build/duro-bridge" &
pids+=($!)
own_env "$root/build/duro-enricher" &
pids+=($!)
for admin in "$DURO_BRIDGE_ADMIN_LISTEN" "$DURO_ENRICHER_ADMIN_LISTEN"; do
  for _ in $(seq 200); do curl -sf "http://$admin/readyz" >/dev/null && break; sleep 0.1; done
done
export DURO_BRIDGE_URL="http://$DURO_BRIDGE_LISTEN/webhooks/duro"

# live_keys TOPIC: the number of live keys of the compacted state topic TOPIC, read as
# a Kafka Streams KTable would (committed records only, the last record per key, a
# tombstone (%S = -1: null value) removing its key). A key lives in one partition, so
# kcat's interleaving of partitions keeps each key's records in order. (A short
# fetch.wait.max.ms: kcat -e otherwise waits 500 ms at each partition's end.)
live_keys() {
  { kcat -C -b "$bootstrap" -t "$1" -X isolation.level=read_committed -X fetch.wait.max.ms=10 \
      -e -q -f '%k %S\n' 2>/dev/null || true; } |
    awk '$2 == -1 { if ($1 in k) { delete k[$1]; n-- } next }
         !($1 in k) { k[$1] = 1; n++ }
         END { print n + 0 }'
}

# The command that snapshots Duro (or the double) by hand; an API key given in
# DURO_API_KEY itself is not shown.
snapshot_cmd="KAFKA_BOOTSTRAP_SERVERS=$bootstrap"
if [ -n "${DURO_API_URL:-}" ]; then snapshot_cmd+=" DURO_API_URL=$DURO_API_URL"; fi
if [ -n "${DURO_API_KEY_FILE:-}" ]; then snapshot_cmd+=" DURO_API_KEY_FILE=$DURO_API_KEY_FILE"; fi
snapshot_cmd+=" $root/build/duro-enricher snapshot"
if [ "$simulated" = 1 ]; then
  # Snapshot first: the library into the state topics before any webhook. The snapshot
  # writes one ping per id to the raw topic (paced at DURO_SNAPSHOT_RATE ids/s) and the
  # enricher pulls each resource from the double and publishes it; the state topics
  # fill as the enricher works through the pings. Its output goes to files, so that
  # its progress line does not mix with the counts below. It starts once the enricher
  # has its raw-topic partitions (their lag in /metrics), so that the enricher keeps
  # pace with it from the first ping.
  for _ in $(seq 300); do
    m=$(curl -sf "http://$DURO_ENRICHER_ADMIN_LISTEN/metrics" || true)
    grep -q '^duro_enricher_consumer_lag' <<<"$m" && break
    sleep 0.1
  done
  echo "run-local: snapshot of the double's library ($components items, $change_orders change" \
    "orders) at ${DURO_SNAPSHOT_RATE:-200} ids/s; live keys in the state topics:" >&2
  own_env "$root/build/duro-enricher" snapshot >"$local_dir/snapshot.out" 2>"$local_dir/snapshot.err" &
  snap_pid=$!
  pids+=("$snap_pid")
  snap_state=running items=0 cos=0 line=
  for _ in $(seq 300); do   # bounded: 5 minutes; a line whenever something changed
    if [ "$snap_state" = running ] && ! kill -0 "$snap_pid" 2>/dev/null; then
      snap_rc=0
      wait "$snap_pid" || snap_rc=$?
      keep=()   # reaped: out of the list the cleanup signals and the end waits for
      for pid in "${pids[@]}"; do [ "$pid" = "$snap_pid" ] || keep+=("$pid"); done
      pids=("${keep[@]}")
      if [ "$snap_rc" = 0 ]; then
        snap_state=done
        echo "run-local: $(cat "$local_dir/snapshot.out")" >&2
      else
        snap_state=failed
        echo "run-local: the snapshot failed (exit $snap_rc):" >&2
        tail -n5 "$local_dir/snapshot.err" >&2
        break
      fi
    fi
    items=$(live_keys duro.state.item) cos=$(live_keys duro.state.change_order)
    new="  snapshot $snap_state: duro.state.item $items/$components, duro.state.change_order $cos/$change_orders"
    [ "$new" = "$line" ] || { line=$new; echo "$line" >&2; }
    [ "$snap_state" = done ] && [ "$items" = "$components" ] && [ "$cos" = "$change_orders" ] && break
    sleep 1
  done
  if [ "$snap_state" = done ] && [ "$items" = "$components" ] && [ "$cos" = "$change_orders" ]; then
    echo "run-local: the state topics hold the double's whole library" >&2
  else
    echo "run-local: the state topics did not fill (see $local_dir/snapshot.err); going on" >&2
  fi
else
  echo "run-local: Duro's API given: no automatic snapshot. To load the whole library into" \
    "the state topics, run (with this shell's other DURO_* settings):" >&2
  echo "  $snapshot_cmd" >&2
fi

n=${DURO_DEMO_EVENTS:-20}
if [ "$simulated" = 1 ]; then
  echo "run-local: Duro (the double) sends $n signed webhooks, some twice:" >&2
  PYTHONPATH="$root/tests" "$py" -m duro_double send --url "$DURO_BRIDGE_URL" \
    --secret-file "$DURO_WEBHOOK_SECRETS_FILE" --count "$n" --rate 20 --seed 7 \
    --components "$components" --change-orders "$change_orders" --scale 0.01 --repeat-probability 0.3 >&2
else
  "$root/scripts/send-webhook.sh" ITEM_UPDATE "${DURO_DEMO_ITEM:-comp_demo}" >&2
fi
# Wait (bounded) until the enricher has caught up with the raw topic.
for _ in $(seq 300); do
  m=$(curl -sf "http://$DURO_ENRICHER_ADMIN_LISTEN/metrics" || true)
  if echo "$m" | grep -q '^duro_enricher_consumer_lag' &&
     ! echo "$m" | grep '^duro_enricher_consumer_lag' | grep -vq ' 0$'; then
    break
  fi
  sleep 0.1
done
echo "run-local: enriched documents (read_committed):" >&2
for ev in $events; do
  kcat -C -b "$bootstrap" -t "duro.events.$ev" -X isolation.level=read_committed -e -q \
    -f "duro.events.$ev key %k: %s\n" 2>/dev/null | cut -c1-300 >&2 || true
done
cat >&2 <<EOT

Running: duro-bridge ($DURO_BRIDGE_URL, admin http://$DURO_BRIDGE_ADMIN_LISTEN/metrics),
duro-enricher (admin http://$DURO_ENRICHER_ADMIN_LISTEN/metrics), Kafka on $bootstrap.
Send a webhook:   DURO_WEBHOOK_SECRETS_FILE=$DURO_WEBHOOK_SECRETS_FILE scripts/send-webhook.sh CO_RESOLUTION co_000042
Read the outputs: kcat -C -b $bootstrap -t duro.events.co_resolution -X isolation.level=read_committed -e
Dead letters:     kcat -C -b $bootstrap -t $dlq -f '%h %s\n' -e
Snapshot:         $snapshot_cmd
Ctrl-C stops everything.
EOT
wait "${pids[@]}"
