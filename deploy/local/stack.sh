#!/usr/bin/env bash
# The local stack: a real Apache Kafka broker (KRaft) and a real Redis server as plain
# processes, for machines without a Docker engine. State lives under .local/ (git-ignored).
#
#   stack.sh install        fetch what is missing (JDK, Maven, redis-server, Kafka jars, and
#                           Debian's chromium for the console's browser tests)
#   stack.sh up             start Kafka and Redis unless already answering; wait until ready
#   stack.sh down           stop what this script started, nothing else
#   stack.sh status         show what runs
#   stack.sh run -- CMD…    up, run CMD, then stop only what this call started
#   stack.sh bootstrap      print the Kafka bootstrap list (one or three brokers)
#
# Faults, for the fault-injection suite (`make chaos`); they work while `up` or `run` is
# active, through the same pid files, and record nothing (whoever started a process stops it):
#   stack.sh kafka-kill N   SIGKILL broker N (0-based)
#   stack.sh kafka-start N  start broker N again; return once it serves
#   stack.sh redis-kill     SIGKILL Redis
#   stack.sh redis-start    start Redis again (it reloads its append-only file); wait for PONG
#
# KAFKA_BROKERS=1 (default): one KRaft node, broker on KAFKA_PORT, controller on
# KAFKA_CONTROLLER_PORT. KAFKA_BROKERS=3: three nodes, each broker and controller (static
# voters), node i's broker on KAFKA_PORT+2*i and its controller on KAFKA_PORT+2*i+1;
# replication factor 3, min ISR 2 (deploy/kafka/cluster.properties).
# Redis: REDIS_MAXMEMORY (default 4gb, noeviction; per node in a cluster) and REDIS_APPENDFSYNC
# (default always: see README). REDIS_MODE=single (default): one server on REDIS_PORT.
# REDIS_MODE=cluster: a 3-master Redis Cluster, node i on REDIS_PORT+i, no replicas (the
# services find the other nodes from REDIS_URL, which names node 0); redis-kill / redis-start
# then act on node 0, the one REDIS_URL names.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="${LOCAL_DIR:-$ROOT/.local}"
KAFKA_HOME="$LOCAL/kafka"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_BROKERS="${KAFKA_BROKERS:-1}"
case "$KAFKA_BROKERS" in
  1) KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}" ;;
  3) KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m -XX:CICompilerCount=2}" ;;
  *) echo "KAFKA_BROKERS must be 1 or 3, not $KAFKA_BROKERS" >&2; exit 2 ;;
esac
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-always}"
REDIS_MODE="${REDIS_MODE:-single}"
case "$REDIS_MODE" in
  single) REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-4gb}" ;;
  cluster) REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-1gb}" ;;
  *) echo "REDIS_MODE must be single or cluster, not $REDIS_MODE" >&2; exit 2 ;;
esac
mkdir -p "$LOCAL"

log() { printf '[stack] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# A killed process's listening socket can outlive it by a moment: until the port refuses, at most 10 s.
wait_port_closed() {
  local deadline=$((SECONDS + 10))
  while port_open "$1"; do
    [ $SECONDS -lt $deadline ] || { log "port $1 still open"; return 1; }
    sleep 0.05
  done
}

# Until process $1 is gone (a zombie not yet reaped by its parent counts as gone), at most 10 s.
wait_gone() {
  local deadline=$((SECONDS + 10))
  while kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
    [ $SECONDS -lt $deadline ] || { log "process $1 still there after SIGKILL"; return 1; }
    sleep 0.05
  done
}

apt_install() {
  log "installing $* with apt-get"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

install() {
  local need=()
  command -v java >/dev/null || need+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || need+=(maven)
  command -v redis-server >/dev/null || need+=(redis-server)
  # The console's browser tests: Playwright drives the distribution's chromium (it cannot
  # download its own browsers here). CHROMIUM_PATH names another one; SKIP_CHROMIUM=1 skips it.
  [ -n "${SKIP_CHROMIUM:-}" ] || [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || need+=(chromium)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  local stamp="$KAFKA_HOME/libs/.pom-$(sha1sum "$ROOT/deploy/kafka/pom.xml" | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    log "fetching the Kafka broker from Maven Central (deploy/kafka/pom.xml)"
    rm -rf "$KAFKA_HOME/libs" && mkdir -p "$KAFKA_HOME/libs"
    mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs" >"$LOCAL/mvn.log" 2>&1 \
      || { log "Maven could not fetch the broker:"; tail -20 "$LOCAL/mvn.log" >&2; return 1; }
    touch "$stamp"
  fi
}

kafka_java() {
  java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.yaml" \
    -cp "$KAFKA_HOME/libs/*" "$@"
}

# Node i's broker port, controller port and home (data, properties, pid file, log). The single
# broker keeps the layout it always had; the cluster's nodes live apart, so switching between
# the two never mixes their storage.
node_port() { if [ "$KAFKA_BROKERS" = 1 ]; then echo "$KAFKA_PORT"; else echo $((KAFKA_PORT + 2 * $1)); fi; }
node_controller_port() {
  if [ "$KAFKA_BROKERS" = 1 ]; then echo "$KAFKA_CONTROLLER_PORT"; else echo $((KAFKA_PORT + 2 * $1 + 1)); fi
}
node_home() { if [ "$KAFKA_BROKERS" = 1 ]; then echo "$KAFKA_HOME"; else echo "$KAFKA_HOME/cluster/node$1"; fi; }
nodes() { seq 0 $((KAFKA_BROKERS - 1)); }

bootstrap() {
  local list=() i
  for i in $(nodes); do list+=("127.0.0.1:$(node_port "$i")"); done
  (IFS=,; echo "${list[*]}")
}

write_node_properties() {  # node
  local home; home="$(node_home "$1")"
  mkdir -p "$home"
  if [ "$KAFKA_BROKERS" = 1 ]; then
    sed -e "s#@DATA_DIR@#$home/data#" -e "s#@PORT@#$KAFKA_PORT#g" \
        -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
        "$ROOT/deploy/kafka/server.properties" > "$home/server.properties"
    return
  fi
  local voters=() i
  for i in $(nodes); do voters+=("$i@127.0.0.1:$(node_controller_port "$i")"); done
  sed -e "s#@NODE_ID@#$1#" -e "s#@DATA_DIR@#$home/data#" -e "s#@PORT@#$(node_port "$1")#g" \
      -e "s#@CONTROLLER_PORT@#$(node_controller_port "$1")#g" -e "s#@VOTERS@#$(IFS=,; echo "${voters[*]}")#" \
      "$ROOT/deploy/kafka/cluster.properties" > "$home/server.properties"
}

format_node() {  # node: once per node; every node of the cluster gets the same cluster id
  local home; home="$(node_home "$1")"
  [ -f "$home/data/meta.properties" ] && return 0
  local id_file="$KAFKA_HOME/cluster/cluster.id"
  [ "$KAFKA_BROKERS" = 1 ] && id_file="$home/cluster.id"
  mkdir -p "$home/data" "$(dirname "$id_file")"
  [ -s "$id_file" ] || kafka_java kafka.tools.StorageTool random-uuid > "$id_file"
  kafka_java kafka.tools.StorageTool format -t "$(cat "$id_file")" -c "$home/server.properties" >/dev/null
}

launch_node() {  # node: start the JVM in the background, keep the previous log beside the new one
  local home port; home="$(node_home "$1")"; port="$(node_port "$1")"
  write_node_properties "$1"
  format_node "$1"
  log "starting Kafka node $1 on 127.0.0.1:$port (log: $home/kafka.log)"
  [ -f "$home/kafka.log" ] && mv -f "$home/kafka.log" "$home/kafka.log.1"
  : > "$home/kafka.log"
  nohup bash -c "exec java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile='$ROOT/deploy/kafka/log4j2.yaml' \
    -cp '$KAFKA_HOME/libs/*' kafka.Kafka '$home/server.properties'" >>"$home/kafka.log" 2>&1 &
  echo $! > "$home/kafka.pid"
  disown $! 2>/dev/null || true  # a node SIGKILLed by kafka-kill is no job of this shell's to report
}

wait_node() {  # node: until its log says started and its port answers
  local home port deadline=$((SECONDS + 120)); home="$(node_home "$1")"; port="$(node_port "$1")"
  until grep -q "Kafka Server started" "$home/kafka.log" 2>/dev/null && port_open "$port"; do
    if ! pid_alive "$home/kafka.pid"; then
      log "Kafka node $1 exited during start-up; last lines of its log:"; tail -20 "$home/kafka.log" >&2; return 1
    fi
    [ $SECONDS -lt $deadline ] || { log "Kafka node $1 not ready after 120 s"; tail -20 "$home/kafka.log" >&2; return 1; }
    sleep 0.2
  done
  log "Kafka node $1 ready"
}

start_kafka() {
  # A cluster node finishes starting only once a quorum of controllers runs, so every missing
  # node is launched before waiting for any.
  local launched=() i
  for i in $(nodes); do
    if port_open "$(node_port "$i")"; then log "Kafka already answers on 127.0.0.1:$(node_port "$i")"; continue; fi
    launch_node "$i"; launched+=("$i")
  done
  [ ${#launched[@]} -gt 0 ] || return 0
  echo "kafka:$KAFKA_BROKERS" >> "$LOCAL/started.$STARTER"
  for i in "${launched[@]}"; do wait_node "$i"; done
}

check_node() {  # node
  case "${1:-}" in ''|*[!0-9]*) echo "a broker number, 0 to $((KAFKA_BROKERS - 1))" >&2; exit 2 ;; esac
  [ "$1" -lt "$KAFKA_BROKERS" ] || { echo "broker $1 does not exist (KAFKA_BROKERS=$KAFKA_BROKERS)" >&2; exit 2; }
}

kafka_kill() {  # node
  check_node "$1"
  local pidfile; pidfile="$(node_home "$1")/kafka.pid"
  pid_alive "$pidfile" || { log "Kafka node $1 is not running"; return 0; }
  log "SIGKILL Kafka node $1 (pid $(cat "$pidfile"))"
  kill -9 "$(cat "$pidfile")"
  wait_gone "$(cat "$pidfile")"
  wait_port_closed "$(node_port "$1")"
}

kafka_start() {  # node
  check_node "$1"
  if pid_alive "$(node_home "$1")/kafka.pid" && port_open "$(node_port "$1")"; then
    log "Kafka node $1 already runs"; return 0
  fi
  launch_node "$1"; wait_node "$1"
}

# Redis node i's port and home; the single server keeps the layout it always had. A cluster
# node's home is named by its port: its nodes.conf records the ports of the cluster it
# joined, so a cluster on other ports (the test tier's beside the dev one) needs its own.
redis_port() { echo $((REDIS_PORT + ${1:-0})); }
redis_home() {
  if [ "$REDIS_MODE" = single ]; then echo "$LOCAL/redis"; else echo "$LOCAL/redis-cluster/$(redis_port "$1")"; fi
}
redis_nodes() { if [ "$REDIS_MODE" = single ]; then echo 0; else seq 0 2; fi; }

launch_redis() {  # node: start one redis-server (daemonized) unless its port answers; wait for PONG
  local port home; port="$(redis_port "$1")"; home="$(redis_home "$1")"
  if port_open "$port"; then log "Redis already answers on 127.0.0.1:$port"; return 1; fi
  mkdir -p "$home"
  local cluster=()
  [ "$REDIS_MODE" = single ] || cluster=(--cluster-enabled yes --cluster-config-file nodes.conf
                                         --cluster-node-timeout 5000)
  log "starting Redis on 127.0.0.1:$port ($REDIS_MODE, append-only file, appendfsync $REDIS_APPENDFSYNC, maxmemory $REDIS_MAXMEMORY)"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$home" "${cluster[@]}" \
    --appendonly yes --appendfsync "$REDIS_APPENDFSYNC" --save "" --daemonize yes \
    --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction \
    --pidfile "$home/redis.pid" --logfile "$home/redis.log"
  local deadline=$((SECONDS + 30))
  until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
    [ $SECONDS -lt $deadline ] || { log "Redis on $port not ready after 30 s"; return 2; }
    sleep 0.1
  done
}

cluster_ok() { redis-cli -p "$(redis_port "$1")" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

# The three nodes hold every slot once `--cluster create` ran (their nodes.conf keeps it
# across restarts); until all of them say cluster_state:ok, nothing is served.
form_cluster() {
  local i ports=()
  for i in $(redis_nodes); do ports+=("127.0.0.1:$(redis_port "$i")"); done
  if ! redis-cli -p "$REDIS_PORT" cluster info 2>/dev/null | grep -q '^cluster_slots_assigned:16384'; then
    log "forming a Redis Cluster of ${ports[*]}"
    redis-cli --cluster create "${ports[@]}" --cluster-replicas 0 --cluster-yes >"$LOCAL/redis-cluster/create.log" 2>&1 \
      || { log "redis-cli --cluster create failed:"; tail -20 "$LOCAL/redis-cluster/create.log" >&2; return 1; }
  fi
  local deadline=$((SECONDS + 60))
  for i in $(redis_nodes); do
    until cluster_ok "$i"; do
      [ $SECONDS -lt $deadline ] || { log "Redis Cluster not ok after 60 s"; return 1; }
      sleep 0.2
    done
  done
}

start_redis() {
  local i started=0 rc
  for i in $(redis_nodes); do
    rc=0; launch_redis "$i" || rc=$?
    case $rc in 0) started=1 ;; 1) ;; *) return 1 ;; esac
  done
  [ "$REDIS_MODE" = single ] || form_cluster
  log "Redis ready ($REDIS_MODE)"
  [ "$started" = 1 ] && [ -n "${STARTER:-}" ] && echo "redis:$REDIS_MODE" >> "$LOCAL/started.$STARTER"
  return 0
}

stop_pidfile() {  # name pidfile
  pid_alive "$2" || { rm -f "$2"; return 0; }
  local pid; pid="$(cat "$2")"
  log "stopping $1 (pid $pid)"
  kill "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill -9 "$pid" 2>/dev/null || true; break; }
    sleep 0.2
  done
  rm -f "$2"
}

stop_started() {  # stops what the starter recorded, in reverse order
  local file="$LOCAL/started.$1"
  [ -f "$file" ] || return 0
  for what in $(tac "$file"); do
    case "$what" in
      kafka:*)  # the nodes of the layout it was started with, whatever KAFKA_BROKERS says now
        local brokers="$KAFKA_BROKERS"; KAFKA_BROKERS="${what#kafka:}"
        for i in $(nodes); do stop_pidfile "Kafka node $i" "$(node_home "$i")/kafka.pid"; done
        KAFKA_BROKERS="$brokers" ;;
      kafka) stop_pidfile Kafka "$KAFKA_HOME/kafka.pid" ;;  # recorded by an older stack.sh
      redis|redis:*)  # the nodes of the mode it was started in, whatever REDIS_MODE says now
        local mode="$REDIS_MODE"; REDIS_MODE="${what#redis:}"; [ "$REDIS_MODE" = redis ] && REDIS_MODE=single
        for i in $(redis_nodes); do stop_pidfile "Redis node $i" "$(redis_home "$i")/redis.pid"; done
        REDIS_MODE="$mode" ;;
    esac
  done
  rm -f "$file"
}

up() { install; start_redis; start_kafka; }

case "${1:-}" in
  install) install ;;
  up) STARTER=up; up ;;
  down)
    for file in "$LOCAL"/started.*; do
      [ -e "$file" ] || continue
      stop_started "${file#"$LOCAL"/started.}"
    done ;;
  status)
    for i in $(nodes); do
      port_open "$(node_port "$i")" && echo "kafka node $i: 127.0.0.1:$(node_port "$i")" || echo "kafka node $i: down"
    done
    for i in $(redis_nodes); do
      port_open "$(redis_port "$i")" && echo "redis node $i ($REDIS_MODE): redis://127.0.0.1:$(redis_port "$i")/0" \
        || echo "redis node $i ($REDIS_MODE): down"
    done ;;
  run)
    shift; [ "${1:-}" = "--" ] && shift
    STARTER="run.$$"
    trap 'stop_started "$STARTER"' EXIT
    trap 'exit 143' TERM; trap 'exit 130' INT  # so the EXIT trap stops what this call started
    up
    "$@" ;;
  bootstrap) bootstrap ;;
  kafka-kill) kafka_kill "${2:-}" ;;
  kafka-start) kafka_start "${2:-}" ;;
  redis-kill)
    pidfile="$(redis_home 0)/redis.pid"
    pid_alive "$pidfile" || { log "Redis is not running"; exit 0; }
    log "SIGKILL Redis node 0 (pid $(cat "$pidfile"))"
    kill -9 "$(cat "$pidfile")"
    wait_gone "$(cat "$pidfile")"
    wait_port_closed "$REDIS_PORT" ;;
  redis-start) start_redis ;;
  *) echo "usage: $0 install|up|down|status|bootstrap|run -- CMD|kafka-kill N|kafka-start N|redis-kill|redis-start" >&2
     exit 2 ;;
esac
