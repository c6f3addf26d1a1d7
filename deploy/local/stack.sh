#!/usr/bin/env bash
# The local stack: a real Apache Kafka broker (KRaft) and a real Redis server as plain
# processes, for machines without a Docker engine. State lives under .local/ (git-ignored).
#
#   stack.sh install        fetch what is missing (JDK, Maven, redis-server, Kafka jars)
#   stack.sh up             start Kafka and Redis unless already answering; wait until ready
#   stack.sh down           stop what this script started, nothing else
#   stack.sh status         show what runs
#   stack.sh run -- CMD…    up, run CMD, then stop only what this call started
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="${LOCAL_DIR:-$ROOT/.local}"
KAFKA_HOME="$LOCAL/kafka"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
REDIS_PORT="${REDIS_PORT:-6379}"
mkdir -p "$LOCAL"

log() { printf '[stack] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

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

start_kafka() {
  if port_open "$KAFKA_PORT"; then log "Kafka already answers on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  local data="$KAFKA_HOME/data" props="$KAFKA_HOME/server.properties"
  sed -e "s#@DATA_DIR@#$data#" -e "s#@PORT@#$KAFKA_PORT#g" \
      -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      "$ROOT/deploy/kafka/server.properties" > "$props"
  if [ ! -f "$data/meta.properties" ]; then
    mkdir -p "$data"
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid)"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >/dev/null
  fi
  log "starting Kafka on 127.0.0.1:$KAFKA_PORT (log: $KAFKA_HOME/kafka.log)"
  : > "$KAFKA_HOME/kafka.log"
  nohup bash -c "exec java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile='$ROOT/deploy/kafka/log4j2.yaml' \
    -cp '$KAFKA_HOME/libs/*' kafka.Kafka '$props'" >>"$KAFKA_HOME/kafka.log" 2>&1 &
  echo $! > "$KAFKA_HOME/kafka.pid"
  local deadline=$((SECONDS + 120))
  until grep -q "Kafka Server started" "$KAFKA_HOME/kafka.log" 2>/dev/null && port_open "$KAFKA_PORT"; do
    if ! pid_alive "$KAFKA_HOME/kafka.pid"; then
      log "Kafka exited during start-up; last lines of its log:"; tail -20 "$KAFKA_HOME/kafka.log" >&2; return 1
    fi
    [ $SECONDS -lt $deadline ] || { log "Kafka not ready after 120 s"; tail -20 "$KAFKA_HOME/kafka.log" >&2; return 1; }
    sleep 0.2
  done
  log "Kafka ready"
  echo kafka >> "$LOCAL/started.$STARTER"
}

start_redis() {
  if port_open "$REDIS_PORT"; then log "Redis already answers on 127.0.0.1:$REDIS_PORT"; return 0; fi
  mkdir -p "$LOCAL/redis"
  log "starting Redis on 127.0.0.1:$REDIS_PORT (append-only file on)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$LOCAL/redis" \
    --appendonly yes --appendfsync everysec --save "" --daemonize yes \
    --pidfile "$LOCAL/redis/redis.pid" --logfile "$LOCAL/redis/redis.log"
  local deadline=$((SECONDS + 30))
  until redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
    [ $SECONDS -lt $deadline ] || { log "Redis not ready after 30 s"; return 1; }
    sleep 0.1
  done
  log "Redis ready"
  echo redis >> "$LOCAL/started.$STARTER"
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
      kafka) stop_pidfile Kafka "$KAFKA_HOME/kafka.pid" ;;
      redis) stop_pidfile Redis "$LOCAL/redis/redis.pid" ;;
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
    port_open "$KAFKA_PORT" && echo "kafka: 127.0.0.1:$KAFKA_PORT" || echo "kafka: down"
    port_open "$REDIS_PORT" && echo "redis: redis://127.0.0.1:$REDIS_PORT/0" || echo "redis: down" ;;
  run)
    shift; [ "${1:-}" = "--" ] && shift
    STARTER="run.$$"
    trap 'stop_started "$STARTER"' EXIT
    up
    "$@" ;;
  *) echo "usage: $0 install|up|down|status|run -- CMD" >&2; exit 2 ;;
esac
