#!/usr/bin/env bash
# Sends one webhook signed as Duro signs it (X-Duro-Signature: sha256=<HMAC-SHA256 of
# the body>), and prints the bridge's answer.
#
# Usage: scripts/send-webhook.sh [EVENT [RESOURCE_ID]]
#   EVENT defaults to ITEM_UPDATE; CO_* events put RESOURCE_ID in data.change_order_id.
# Environment: DURO_BRIDGE_URL (default http://127.0.0.1:8080/webhooks/duro),
#   DURO_WEBHOOK_SECRET or DURO_WEBHOOK_SECRETS_FILE (first line is used).
set -euo pipefail

event=${1:-ITEM_UPDATE}
id=${2:-comp_$RANDOM}
url=${DURO_BRIDGE_URL:-http://127.0.0.1:8080/webhooks/duro}
secret=${DURO_WEBHOOK_SECRET:-}
if [ -z "$secret" ] && [ -n "${DURO_WEBHOOK_SECRETS_FILE:-}" ]; then
  secret=$(head -n1 "$DURO_WEBHOOK_SECRETS_FILE")
fi
[ -n "$secret" ] || { echo "send-webhook: set DURO_WEBHOOK_SECRET or DURO_WEBHOOK_SECRETS_FILE" >&2; exit 2; }

case "$event" in
  CO_*) data="{\"change_order_id\":\"$id\"}" ;;
  *) data="{\"item_id\":\"$id\"}" ;;
esac
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
body="{\"id\":\"evt_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')\",\"webhook_id\":\"webhook_local\",\"event\":\"$event\",\"created_at\":\"$now\",\"data\":$data}"
# The secret reaches the signer through its environment, never through argv.
sig=$(printf '%s' "$body" | DURO_SIGN_KEY=$secret python3 -c '
import hashlib, hmac, os, sys
print(hmac.new(os.environb[b"DURO_SIGN_KEY"], sys.stdin.buffer.read(), hashlib.sha256).hexdigest())')
curl -sS -X POST -H 'Content-Type: application/json' -H "X-Duro-Signature: sha256=$sig" \
  --data-binary "$body" -w '\n' "$url"
