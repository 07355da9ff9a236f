#!/usr/bin/env bash
# Checks the systemd units in deploy/systemd with the machine's own systemd (no running
# systemd needed):
#   - systemd-analyze verify of each unit and the reconcile timer (syntax, directives,
#     the ExecStart binaries: the units' /usr/local/bin paths are pointed at
#     DURO_BIN_DIR for the check);
#   - systemd-analyze security --offline: exposure at most 2.0 ("OK");
#   - every variable the example env files set or show is one the program knows
#     (its --help, or DURO_RDKAFKA_*), and TimeoutStopSec exceeds the bridge's drain
#     delay + ack timeout.
# Usage: deploy/check-systemd.sh        DURO_BIN_DIR: folder of the programs (build/)
# Ends with "N passed, N failed"; exit status 1 on any failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
units="$root/deploy/systemd"
bin_dir=$(cd "${DURO_BIN_DIR:-$root/build}" && pwd)
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

command -v systemd-analyze >/dev/null || {
  echo "check-systemd: FAIL: systemd-analyze not found (Debian: systemd; scripts/setup.sh installs it)" >&2
  exit 1
}
for p in duro-bridge duro-enricher; do
  [ -x "$bin_dir/$p" ] || {
    echo "check-systemd: $bin_dir/$p not found (build first, or set DURO_BIN_DIR)" >&2
    exit 1
  }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for unit in duro-bridge.service duro-enricher.service duro-enricher-reconcile.service \
  duro-enricher-reconcile.timer; do
  sed "s|/usr/local/bin/|$bin_dir/|g" "$units/$unit" >"$work/$unit"
  # verify exits 0 on directives it ignores ("Failed to parse …"): any output fails.
  if systemd-analyze verify "$work/$unit" >"$work/$unit.verify" 2>&1 &&
    [ ! -s "$work/$unit.verify" ]; then
    pass "$unit: systemd-analyze verify (silent)"
  else
    cat "$work/$unit.verify"
    failure "$unit: systemd-analyze verify"
  fi
  [ "${unit##*.}" = service ] || continue
  if systemd-analyze security --offline=true --threshold=20 "$work/$unit" \
    >"$work/$unit.security" 2>&1; then
    pass "$unit: systemd-analyze security: $(grep -o 'exposure level.*' "$work/$unit.security")"
  else
    tail -3 "$work/$unit.security"
    failure "$unit: systemd-analyze security (exposure above 2.0)"
  fi
done

# Variables in the example env files (set or commented out) against --help.
unknown_vars() { # ENVFILE PROGRAM [COMMAND] → the names it does not know, on stdout
  local file=$1 prog=$2 name
  "$bin_dir/$prog" ${3:+"$3"} --help >"$work/$prog.help"
  while read -r name; do
    case "$name" in
      DURO_RDKAFKA_*) continue ;;
    esac
    grep -qw -- "$name" "$work/$prog.help" || echo "$name"
  done < <(grep -Eo '^#?(DURO|KAFKA)_[A-Z0-9_]+=' "$file" | tr -d '#=' | sort -u)
}
for pair in bridge.env:duro-bridge enricher.env:duro-enricher \
  reconcile.env:duro-enricher:reconcile; do
  set -- $(echo "$pair" | tr : ' ')
  bad=$(unknown_vars "$units/$1" "$2" "${3:-}")
  if [ -z "$bad" ]; then
    pass "$1: every variable is one $2${3:+ $3} knows"
  else
    failure "$1: unknown to $2${3:+ $3}: $bad"
  fi
done
# Self-test: a misspelt variable must be caught.
{ cat "$units/bridge.env"; echo "DURO_BRIDGE_ACK_TIMEOUT=10000"; } >"$work/bad.env"
if [ "$(unknown_vars "$work/bad.env" duro-bridge)" = DURO_BRIDGE_ACK_TIMEOUT ]; then
  pass "self-test: a misspelt variable (DURO_BRIDGE_ACK_TIMEOUT) is caught"
else
  failure "self-test: a misspelt variable was not caught"
fi
# Self-test: a unit with a bad directive value must make verify say something.
sed -e "s|/usr/local/bin/|$bin_dir/|g" -e 's/^Restart=on-failure$/Restart=sometimes/' \
  "$units/duro-bridge.service" >"$work/duro-bridge.service"
systemd-analyze verify "$work/duro-bridge.service" >"$work/bad.verify" 2>&1 || true
if grep -q "Failed to parse" "$work/bad.verify"; then
  pass "self-test: a bad directive value is reported: $(grep -m1 -o 'Failed to parse.*' "$work/bad.verify")"
else
  failure "self-test: Restart=sometimes was not reported by systemd-analyze verify"
fi

# TimeoutStopSec > drain delay + ack timeout (the bridge's SIGTERM drain).
val() { sed -n "s/^$1=//p" "$2" | tail -1; }
drain=$(val DURO_BRIDGE_DRAIN_DELAY_MS "$units/bridge.env")
ack=$(val DURO_BRIDGE_ACK_TIMEOUT_MS "$units/bridge.env")
stop=$(val TimeoutStopSec "$units/duro-bridge.service" | tr -d s)
if [ $((stop * 1000)) -gt $((${drain:-5000} + ${ack:-10000})) ]; then
  pass "duro-bridge.service: TimeoutStopSec ${stop}s > drain ${drain:-5000} ms + ack ${ack:-10000} ms"
else
  failure "duro-bridge.service: TimeoutStopSec ${stop}s does not exceed drain + ack timeout"
fi
age=$(val DURO_BRIDGE_MAX_EVENT_AGE_S "$units/bridge.env")
window=$(val DURO_DEDUPE_WINDOW_S "$units/enricher.env")
if [ "${window:-90000}" -gt $((${age:-86400} + 600)) ]; then
  pass "env files: dedupe window ${window:-90000} s > max event age ${age:-86400} s + 600 s"
else
  failure "env files: dedupe window ${window:-90000} s does not exceed max event age + 600 s"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
