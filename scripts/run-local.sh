#!/usr/bin/env bash
# Runs the product on this machine: a local Kafka broker (KRaft, one node), the raw
# topic, and duro-bridge in the foreground; sends one signed demo webhook and shows the
# record it produced. Ctrl-C stops everything.
#
# Environment: KAFKA_PORT (default 9092), DURO_WEBHOOK_SECRET (default: a random secret
# kept in $DURO_CACHE/local/webhook-secret), any other duro-bridge setting.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
"$root/scripts/setup.sh"
cmake -S . -B build -G Ninja >/dev/null
ninja -C build >&2

local_dir="$DURO_CACHE/local"
mkdir -p "$local_dir"
export KAFKA_WORK="$local_dir/kafka" KAFKA_PORT=${KAFKA_PORT:-9092}
bridge_pid=""
cleanup() {
  trap '' INT TERM
  [ -n "$bridge_pid" ] && kill -TERM "$bridge_pid" 2>/dev/null && wait "$bridge_pid" 2>/dev/null
  "$root/scripts/kafka.sh" stop >&2 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap=$("$root/scripts/kafka.sh" start | tail -n1)
raw=${DURO_RAW_TOPIC:-duro.webhooks.raw}
"$DURO_CACHE/venv/bin/python" "$root/scripts/create-topics.py" "$bootstrap" "$raw:12"

if [ -z "${DURO_WEBHOOK_SECRET:-}" ] && [ -z "${DURO_WEBHOOK_SECRETS_FILE:-}" ]; then
  secret_file="$local_dir/webhook-secret"
  [ -s "$secret_file" ] || (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$secret_file")
  export DURO_WEBHOOK_SECRETS_FILE="$secret_file"
fi
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
export DURO_BRIDGE_LISTEN=${DURO_BRIDGE_LISTEN:-127.0.0.1:8080}
export DURO_BRIDGE_ADMIN_LISTEN=${DURO_BRIDGE_ADMIN_LISTEN:-127.0.0.1:9090}
export DURO_BRIDGE_DRAIN_DELAY_MS=${DURO_BRIDGE_DRAIN_DELAY_MS:-500}

"$root/build/duro-bridge" &
bridge_pid=$!
admin="http://$DURO_BRIDGE_ADMIN_LISTEN"
for _ in $(seq 100); do
  curl -sf "$admin/readyz" >/dev/null && break
  kill -0 "$bridge_pid" 2>/dev/null || { echo "run-local: duro-bridge exited" >&2; exit 1; }
  sleep 0.1
done
export DURO_BRIDGE_URL="http://$DURO_BRIDGE_LISTEN/webhooks/duro"
echo "run-local: demo webhook:" >&2
"$root/scripts/send-webhook.sh" ITEM_UPDATE comp_demo >&2
echo "run-local: the raw topic now holds:" >&2
kcat -C -b "$bootstrap" -t "$raw" -e -q -f 'partition %p offset %o key %k headers %h\n  %s\n' >&2 || true
cat >&2 <<EOT

duro-bridge is running (webhooks $DURO_BRIDGE_URL, admin $admin/metrics).
Send a signed webhook:   DURO_WEBHOOK_SECRETS_FILE=${DURO_WEBHOOK_SECRETS_FILE:-<your file>} scripts/send-webhook.sh CO_RESOLUTION co_42
Read the raw topic:      kcat -C -b $bootstrap -t $raw -f '%k %h %s\n'
Ctrl-C stops the bridge and the broker.
EOT
wait "$bridge_pid"
