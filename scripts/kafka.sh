#!/usr/bin/env bash
# Real single-node Apache Kafka broker (KRaft, combined broker+controller on
# 127.0.0.1) run from Maven jars, for tests and local runs.
#
# Usage: scripts/kafka.sh fetch|start|restart|stop|kill|status|wait
#
#   fetch    download the jars (scripts/kafka/pom.xml) into a cache outside the
#            clone: $DURO_CACHE/kafka/<version>/libs; no-op when already complete.
#   start    fresh broker: wipes $KAFKA_WORK/data, writes the config, formats the
#            storage, starts the JVM in its own session and waits until the broker
#            answers a metadata request (kcat, i.e. the system librdkafka).
#            The last (only) line on stdout is the bootstrap address.
#   restart  stop (if running), then start again keeping the data and the ports.
#   stop     SIGTERM, bounded wait, then SIGKILL. Succeeds when not running.
#   kill     SIGKILL at once (fault tests); data kept, so restart works.
#   status   "running pid N bootstrap H:P" (exit 0) or "stopped" (exit 1).
#   wait     wait until the running broker answers metadata (exit 0) or fail.
#
# Environment:
#   DURO_CACHE            cache root (default ~/.cache/duro-kafka-bridge)
#   KAFKA_WORK            config/data/logs/pid dir (default $DURO_CACHE/kafka-run)
#   KAFKA_PORT            client port, 0 = pick a free loopback port (default 9092)
#   KAFKA_CONTROLLER_PORT controller port, 0 = pick a free one (default 0)
#   KAFKA_START_TIMEOUT   seconds to wait for readiness (default 120)
#   KAFKA_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_HEAP_OPTS       JVM heap flags (default -Xms256m -Xmx768m)
#   JAVA_HOME             Java 17+ (default: java on PATH)
#
# Files in $KAFKA_WORK: config/server.properties, config/ports, data/,
# logs/server.out (broker log), kafka.pid, bootstrap (written once ready).
# Progress goes to stderr.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)
[ -n "$KAFKA_VERSION" ] || { echo "kafka.sh: cannot read kafka.version from $POM" >&2; exit 2; }

DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
KAFKA_DIST="$DURO_CACHE/kafka/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_DIST/libs"
KAFKA_MARKER="$KAFKA_DIST/.fetch-complete"
KAFKA_WORK=${KAFKA_WORK:-$DURO_CACHE/kafka-run}
KAFKA_HOST=127.0.0.1
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
CONF="$KAFKA_WORK/config"
DATA="$KAFKA_WORK/data"
LOGS="$KAFKA_WORK/logs"
PIDFILE="$KAFKA_WORK/kafka.pid"
BOOTFILE="$KAFKA_WORK/bootstrap"
PORTSFILE="$CONF/ports"
SERVER_LOG="$LOGS/server.out"

log() { echo "kafka.sh: $*" >&2; }
die() { echo "kafka.sh: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- fetch

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

fetch_complete() { [ -f "$KAFKA_MARKER" ] && [ "$(cat "$KAFKA_MARKER")" = "$(pom_hash)" ]; }

cmd_fetch() {
  mkdir -p "$KAFKA_DIST"
  exec 8>"$KAFKA_DIST/.fetch.lock"
  flock -w 900 8 || die "timed out waiting for another fetch ($KAFKA_DIST/.fetch.lock)"
  if fetch_complete; then
    log "kafka $KAFKA_VERSION jars already in $KAFKA_LIBS"
    exec 8>&-
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  log "fetching kafka $KAFKA_VERSION jars into $KAFKA_LIBS"
  rm -rf "$KAFKA_DIST"/libs.tmp.*
  local tmp
  tmp=$(mktemp -d "$KAFKA_DIST/libs.tmp.XXXXXX")
  # copy-dependencies writes nothing into the clone (no target/ for this pom)
  if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
         -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 </dev/null; then
    sed 's/\x1b\[[0-9;]*m//g' "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "mvn dependency:copy-dependencies failed"
  fi
  rm -f "$tmp.log"
  ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"; }
  rm -f "$KAFKA_MARKER"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  pom_hash >"$KAFKA_MARKER.tmp"
  mv "$KAFKA_MARKER.tmp" "$KAFKA_MARKER"
  log "fetched $(ls "$KAFKA_LIBS" | wc -l) jars"
  exec 8>&-
}

ensure_libs() { fetch_complete || cmd_fetch; }

# ---------------------------------------------------------------- process helpers

# pid alive, not a zombie, and really the broker of this work dir
pid_is_broker() {
  local pid=$1 state
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $CONF/server.properties"
}

read_pid() { [ -f "$PIDFILE" ] && cat "$PIDFILE" 2>/dev/null || true; }

is_running() { pid_is_broker "$(read_pid)"; }

# wait until pid is gone; $2 = seconds
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while pid_is_broker "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

log_tail() {
  if [ -f "$SERVER_LOG" ]; then
    echo "----- last lines of $SERVER_LOG -----" >&2
    tail -n "${1:-40}" "$SERVER_LOG" >&2 || true
    echo "-------------------------------------" >&2
  fi
}

# 0 if something accepts TCP connections on host:port
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$KAFKA_HOST" "$1" 2>/dev/null; }

# 0 if we can bind host:port for listening (SO_REUSEADDR like the JVM does)
port_free() {
  python3 - "$KAFKA_HOST" "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(1)
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# prints N distinct free loopback ports
free_ports() {
  python3 - "$KAFKA_HOST" "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.bind((sys.argv[1], 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

check_port() {
  local what=$1 port=$2
  case "$port" in ''|*[!0-9]*) die "$what port '$port' is not a number" ;; esac
  [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "$what port $port out of range"
  port_free "$port" || die "$what port $KAFKA_HOST:$port is already in use"
}

# ---------------------------------------------------------------- config

new_cluster_id() {   # same shape as StorageTool random-uuid: 16 bytes base64url
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    case "$id" in -*) continue ;; esac
    echo "$id"; return
  done
}

write_configs() {
  local port=$1 cport=$2
  mkdir -p "$CONF" "$LOGS"
  cat >"$CONF/server.properties" <<EOF
# generated by scripts/kafka.sh (kafka $KAFKA_VERSION) - single KRaft combined node
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$cport
listeners=PLAINTEXT://$KAFKA_HOST:$port,CONTROLLER://$KAFKA_HOST:$cport
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA

auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1

offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

group.min.session.timeout.ms=1000
# KIP-848 groups (DURO_ASSIGNMENT=consumer): the broker, not the client, sets the
# session and heartbeat; as short as the tests' classic 3 s session.
group.consumer.min.session.timeout.ms=1000
group.consumer.session.timeout.ms=3000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=500
# After a SIGKILL the controller refuses the new broker incarnation until the
# old one's session expires (default 9 s): keep that short for fault tests.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
group.initial.rebalance.delay.ms=0

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.segment.bytes=67108864
log.retention.hours=-1
log.retention.check.interval.ms=300000
EOF
  printf 'KAFKA_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\n' "$port" "$cport" >"$PORTSFILE"

  # broker log -> stdout of the JVM -> logs/server.out
  write_log4j2 "$CONF/log4j2.properties" SYSTEM_OUT INFO \
    "logger.req.name = kafka.request.logger" "logger.req.level = WARN" \
    "logger.sc.name = state.change.logger" "logger.sc.level = WARN" \
    "logger.cleaner.name = kafka.log.LogCleaner" "logger.cleaner.level = WARN"
  # tools (StorageTool): warnings only, to stderr
  write_log4j2 "$CONF/tools-log4j2.properties" SYSTEM_ERR WARN
}

# Writes a log4j2 configuration with one console appender: $1 the file, $2 the stream
# (SYSTEM_OUT or SYSTEM_ERR), $3 the root level; any further arguments are added as lines.
write_log4j2() {
  local file=$1 target=$2 level=$3
  shift 3
  printf '%s\n' "status = warn" \
    "appender.console.type = Console" "appender.console.name = CONSOLE" \
    "appender.console.target = $target" "appender.console.layout.type = PatternLayout" \
    "appender.console.layout.pattern = [%d] %p %m (%c)%n" \
    "rootLogger.level = $level" "rootLogger.appenderRef.console.ref = CONSOLE" \
    "$@" >"$file"
}

load_ports() {
  [ -f "$PORTSFILE" ] || return 1
  PORT=$(sed -n 's/^KAFKA_PORT=//p' "$PORTSFILE")
  CPORT=$(sed -n 's/^KAFKA_CONTROLLER_PORT=//p' "$PORTSFILE")
  [ -n "$PORT" ] && [ -n "$CPORT" ]
}

format_storage() {
  rm -rf "$DATA"
  mkdir -p "$DATA"
  if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$CONF/tools-log4j2.properties" \
        -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
        -t "$(new_cluster_id)" -c "$CONF/server.properties" \
        >"$LOGS/format.out" 2>&1 </dev/null; then
    cat "$LOGS/format.out" >&2
    die "kafka-storage format failed"
  fi
}

# ---------------------------------------------------------------- start / stop

launch_jvm() {
  local pid tmp="$PIDFILE.new"
  rm -f "$tmp" "$PIDFILE"
  {
    echo "===== $(date '+%F %T') kafka.sh launching kafka $KAFKA_VERSION ====="
  } >>"$SERVER_LOG"
  # Own session/process group (setsid); the child writes its own pid, then execs
  # the JVM, so the pid is the JVM's whether or not setsid had to fork.
  # fd 9 (the lock) must not leak into the JVM.
  # shellcheck disable=SC2086
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$tmp" \
    "$JAVA" $KAFKA_HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dkafka.logs.dir="$LOGS" \
    -Dlog4j2.configurationFile="$CONF/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$CONF/server.properties" \
    </dev/null >>"$SERVER_LOG" 2>&1 9>&- 8>&- &
  local deadline=$((SECONDS + 10))
  until [ -s "$tmp" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "JVM launcher did not report its pid"
    sleep 0.05
  done
  pid=$(cat "$tmp")
  mv "$tmp" "$PIDFILE"
  # interrupted before readiness: do not leave a half-started broker behind
  trap 'stop_failed_start; exit 130' INT TERM HUP
  log "broker pid $pid, log $SERVER_LOG"
}

kill_group() {  # signal the broker's process group (it is a session leader)
  local sig=$1 pid=$2
  kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
}

stop_failed_start() {
  local pid
  pid=$(read_pid)
  if pid_is_broker "$pid"; then
    kill_group KILL "$pid"
    wait_gone "$pid" 10 || true
  fi
  rm -f "$PIDFILE"
}

# metadata answered by the broker, via kcat (system librdkafka)
metadata_ok() {
  local out
  out=$(timeout 20 kcat -L -b "$1" -m 5 -q 2>&1) || return 1
  grep -q "broker 1 at $1" <<<"$out"
}

# wait until the broker answers a metadata request.
# returns 0 ready, 1 process died, 2 timeout; sets WAIT_ERROR
wait_ready() {
  local bootstrap=$1 port=$2 pid deadline start=$SECONDS
  pid=$(read_pid)
  deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  # the client listener is opened only once the broker has started
  until port_open "$port" && metadata_ok "$bootstrap"; do
    if ! pid_is_broker "$pid"; then
      WAIT_ERROR="broker process ${pid:-?} exited during startup"; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      WAIT_ERROR="timeout (${KAFKA_START_TIMEOUT}s) waiting for a metadata response from $bootstrap"; return 2
    fi
    sleep 0.2
  done
  if ! pid_is_broker "$pid"; then
    WAIT_ERROR="broker process ${pid:-?} exited during startup"; return 1
  fi
  log "kafka $KAFKA_VERSION ready on $bootstrap (pid $pid, waited $((SECONDS - start))s)"
}

# wait_ready, or print the reason + log tail, kill the broker, exit 1
wait_ready_or_fail() {
  if ! wait_ready "$1" "$2"; then
    echo "kafka.sh: error: $WAIT_ERROR" >&2
    log_tail 60
    stop_failed_start
    exit 1
  fi
}

do_stop() {
  local pid sig=${1:-TERM}
  pid=$(read_pid)
  if ! pid_is_broker "$pid"; then
    rm -f "$PIDFILE"
    return 0
  fi
  if [ "$sig" = KILL ]; then
    log "killing broker pid $pid (SIGKILL)"
    kill_group KILL "$pid"
    wait_gone "$pid" 15 || die "broker pid $pid still alive after SIGKILL"
  else
    log "stopping broker pid $pid (SIGTERM)"
    kill_group TERM "$pid"
    if ! wait_gone "$pid" "$KAFKA_STOP_TIMEOUT"; then
      log "broker pid $pid did not stop within ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
      kill_group KILL "$pid"
      wait_gone "$pid" 15 || die "broker pid $pid still alive after SIGKILL"
    fi
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

lock_work() {
  mkdir -p "$KAFKA_WORK"
  exec 9>"$KAFKA_WORK/.lock"
  flock -w 300 9 || die "another kafka.sh holds $KAFKA_WORK/.lock"
}

cmd_start() {
  lock_work
  ensure_libs
  if is_running; then
    log "a broker is already running for $KAFKA_WORK; stopping it for a fresh start"
    do_stop TERM
  fi
  command -v kcat >/dev/null || die "kcat not found (apt-get install kcat)"
  local port=${KAFKA_PORT:-9092} cport=${KAFKA_CONTROLLER_PORT:-0} picked=0 attempt rc ports
  for attempt in 1 2 3; do
    if [ "$port" = 0 ] || [ "$cport" = 0 ]; then
      ports=$(free_ports 2)
      [ "$port" = 0 ] && { port=${ports%% *}; picked=1; }
      [ "$cport" = 0 ] && { cport=${ports##* }; picked=1; }
    fi
    [ "$port" != "$cport" ] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT are both $port"
    check_port client "$port"
    check_port controller "$cport"

    rm -f "$BOOTFILE"
    rm -rf "$LOGS"
    write_configs "$port" "$cport"
    log "formatting storage in $DATA"
    format_storage
    log "starting kafka $KAFKA_VERSION on $KAFKA_HOST:$port (controller port $cport)"
    launch_jvm
    rc=0
    wait_ready "$KAFKA_HOST:$port" "$port" || rc=$?
    [ "$rc" = 0 ] && break
    # An auto-picked port can be taken by another process between our check and
    # the JVM's bind: retry with other ports.
    if [ "$rc" = 1 ] && [ "$picked" = 1 ] && [ "$attempt" -lt 3 ] \
        && grep -q 'Address already in use' "$SERVER_LOG"; then
      log "port race (address already in use), retrying with other ports"
      stop_failed_start
      port=${KAFKA_PORT:-9092}; cport=${KAFKA_CONTROLLER_PORT:-0}
      continue
    fi
    echo "kafka.sh: error: $WAIT_ERROR" >&2
    log_tail 60
    stop_failed_start
    exit 1
  done
  trap - INT TERM HUP
  echo "$KAFKA_HOST:$port" >"$BOOTFILE"
  echo "$KAFKA_HOST:$port"
}

cmd_restart() {
  lock_work
  ensure_libs
  do_stop TERM
  local PORT CPORT
  load_ports || die "no previous start in $KAFKA_WORK (missing $PORTSFILE); use start"
  [ -f "$DATA/meta.properties" ] || die "no formatted data in $DATA; use start"
  check_port client "$PORT"
  check_port controller "$CPORT"
  log "restarting kafka $KAFKA_VERSION on $KAFKA_HOST:$PORT with existing data"
  command -v kcat >/dev/null || die "kcat not found (apt-get install kcat)"
  launch_jvm
  wait_ready_or_fail "$KAFKA_HOST:$PORT" "$PORT"
  trap - INT TERM HUP
  echo "$KAFKA_HOST:$PORT" >"$BOOTFILE"
  echo "$KAFKA_HOST:$PORT"
}

cmd_stop() { [ -d "$KAFKA_WORK" ] || return 0; lock_work; do_stop TERM; }
cmd_kill() { [ -d "$KAFKA_WORK" ] || return 0; lock_work; do_stop KILL; }

cmd_status() {
  local PORT CPORT
  if is_running; then
    load_ports || true
    echo "running pid $(read_pid) bootstrap $KAFKA_HOST:${PORT:-?}"
  else
    echo "stopped"
    return 1
  fi
}

cmd_wait() {
  local PORT CPORT
  is_running || die "no broker running for $KAFKA_WORK"
  load_ports || die "missing $PORTSFILE"
  wait_ready "$KAFKA_HOST:$PORT" "$PORT" || die "$WAIT_ERROR"
  echo "$KAFKA_HOST:$PORT"
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  restart) cmd_restart ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  *) echo "usage: $0 fetch|start|restart|stop|kill|status|wait" >&2; exit 2 ;;
esac
