#!/usr/bin/env bash
# The services as local processes, each with its own log file under .local/logs/.
#
#   services.sh up       start ingest, identity-resolution, segment-store, delivery and the
#                        operator console (those not yet running), wait until each /readyz
#                        answers 200, print where they listen
#   services.sh down     stop the services this script started
#   services.sh status   show each service's state
#
# Environment given to `make up` (ADMIN_TOKEN, PARTNER_API_KEYS, INGEST_PORT, IDENTITY_PORT,
# SEGMENT_PORT, DELIVERY_PORT, CONSOLE_PORT, TOPIC_PREFIX, …) reaches the services. When ADMIN_TOKEN,
# PARTNER_API_KEYS or DELIVERY_SECRET_KEY is not given, random ones are generated once into
# .local/secrets.env (mode 600), never printed. Webhooks to 127.0.0.1 and other private
# addresses are allowed here (WEBHOOK_ALLOW_PRIVATE=true unless given), for local receivers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="${LOCAL_DIR:-$ROOT/.local}"
PY="$ROOT/.venv/bin/python"
LOGS="$LOCAL/logs"
RUN="$LOCAL/run"
mkdir -p "$LOGS" "$RUN"

export INGEST_PORT="${INGEST_PORT:-8080}"
export IDENTITY_PORT="${IDENTITY_PORT:-8081}"
export SEGMENT_PORT="${SEGMENT_PORT:-8082}"
export DELIVERY_PORT="${DELIVERY_PORT:-8083}"
export WEBHOOK_ALLOW_PRIVATE="${WEBHOOK_ALLOW_PRIVATE:-true}"
export CONSOLE_PORT="${CONSOLE_PORT:-8084}"
# The console calls the others' operator APIs where this script starts them.
export CONSOLE_INGEST_URL="${CONSOLE_INGEST_URL:-http://127.0.0.1:$INGEST_PORT}"
export CONSOLE_IDENTITY_URL="${CONSOLE_IDENTITY_URL:-http://127.0.0.1:$IDENTITY_PORT}"
export CONSOLE_SEGMENT_URL="${CONSOLE_SEGMENT_URL:-http://127.0.0.1:$SEGMENT_PORT}"
export CONSOLE_DELIVERY_URL="${CONSOLE_DELIVERY_URL:-http://127.0.0.1:$DELIVERY_PORT}"
# ingest's Braze export reads each user's cohorts from segment-store.
export INGEST_SEGMENT_STORE_URL="${INGEST_SEGMENT_STORE_URL:-http://127.0.0.1:$SEGMENT_PORT}"
# name:python-module:port-variable
SERVICES=("ingest:ingest:INGEST_PORT" "identity-resolution:identity_resolution:IDENTITY_PORT"
          "segment-store:segment_store:SEGMENT_PORT" "delivery:delivery:DELIVERY_PORT"
          "console:console:CONSOLE_PORT")

log() { printf '[services] %s\n' "$*" >&2; }

load_secrets() {
  local file="$LOCAL/secrets.env"
  if [ -z "${ADMIN_TOKEN:-}" ] || [ -z "${PARTNER_API_KEYS:-}" ] || [ -z "${DELIVERY_SECRET_KEY:-}" ]; then
    if [ ! -f "$file" ]; then
      umask 077
      {
        echo "ADMIN_TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')"
        echo "PARTNER_API_KEYS=mixpanel=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))'),amplitude=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')"
      } > "$file"
      log "generated ADMIN_TOKEN and PARTNER_API_KEYS into $file"
    fi
    if ! grep -q '^DELIVERY_SECRET_KEY=' "$file"; then  # a file from before delivery existed
      (umask 077; echo "DELIVERY_SECRET_KEY=$("$PY" -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')" >> "$file")
      log "generated DELIVERY_SECRET_KEY into $file"
    fi
    # shellcheck disable=SC1090
    local line name
    while IFS= read -r line; do  # split at the first '=' only: a base64 value ends in '='
      name="${line%%=*}"
      [ -n "${!name:-}" ] || export "$name=${line#*=}"
    done < "$file"
  fi
}

# Is the process in the pid file alive and still the service we started? Judged from
# /proc, not `kill -0`: a SIGKILLed process passes `kill -0` while the kernel tears it down
# and then as a zombie until it is reaped (about a second here), and a recycled PID would
# pass it too.
alive() {  # pidfile module
  [ -f "$1" ] || return 1
  local pid rest state flags mask
  pid="$(cat "$1")"
  # Fields after the command name, which is in parentheses and may itself hold spaces or
  # parentheses: cut at the last ')'. Then: state ppid pgrp session tty tpgid flags.
  rest="$(sed -E 's/.*\) //' "/proc/$pid/stat" 2>/dev/null)" || return 1
  read -r state _ _ _ _ _ flags _ <<<"$rest"
  case "$state" in Z|X|x|"") return 1 ;; esac
  (( (flags & 0x4) == 0 )) || return 1  # PF_EXITING: already on its way out
  for mask in $(awk '/^(SigPnd|ShdPnd):/ {print $2}' "/proc/$pid/status" 2>/dev/null); do
    (( (0x$mask & 0x100) == 0 )) || return 1  # a SIGKILL delivered, not yet acted on
  done
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-m $2\b"
}

answers() {  # port: anything listening there at all (the process is doing its work)
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ready() {
  "$PY" - "$1" <<'PYEOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
PYEOF
}

up() {
  load_secrets
  for entry in "${SERVICES[@]}"; do
    IFS=: read -r name module portvar <<<"$entry"
    local port="${!portvar}" pidfile="$RUN/$name.pid"
    if alive "$pidfile" "$module"; then
      if answers "$port"; then log "$name already running (pid $(cat "$pidfile"))"
      else log "$name still starting (pid $(cat "$pidfile"))"; fi
      continue
    fi
    if answers "$port"; then  # like stack.sh: what already answers is used, not started twice
      log "$name: something this script did not start already answers on 127.0.0.1:$port"; continue
    fi
    log "starting $name on 127.0.0.1:$port (log: $LOGS/$name.log)"
    nohup "$PY" -m "$module" >>"$LOGS/$name.log" 2>&1 &
    echo $! > "$pidfile"
  done
  for entry in "${SERVICES[@]}"; do
    IFS=: read -r name module portvar <<<"$entry"
    local port="${!portvar}" deadline=$((SECONDS + 90))
    until ready "$port"; do
      if ! alive "$RUN/$name.pid" "$module" && ! answers "$port"; then
        log "$name exited during start-up; last lines of its log:"; tail -20 "$LOGS/$name.log" >&2; return 1
      fi
      [ $SECONDS -lt $deadline ] || { log "$name not ready after 90 s"; tail -20 "$LOGS/$name.log" >&2; return 1; }
      sleep 0.3
    done
  done
  echo "ingest               http://127.0.0.1:$INGEST_PORT   (partner API, keys, profiles, Braze REST API)"
  echo "identity-resolution  http://127.0.0.1:$IDENTITY_PORT   (identity lookups)"
  echo "segment-store        http://127.0.0.1:$SEGMENT_PORT   (cohorts, segments, usage)"
  echo "delivery             http://127.0.0.1:$DELIVERY_PORT   (webhooks)"
  echo "console              http://127.0.0.1:$CONSOLE_PORT   (operator console: sign in with ADMIN_TOKEN)"
  local redis_shown="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  redis_shown="$(printf %s "$redis_shown" | sed -E "s#//[^@/]*@#//***@#")"  # never print a password
  echo "kafka                ${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}   redis $redis_shown"
  echo "logs                 $LOGS/   secrets (if generated) $LOCAL/secrets.env"
}

down() {
  for entry in "${SERVICES[@]}"; do
    IFS=: read -r name module _ <<<"$entry"
    local pidfile="$RUN/$name.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid="$(cat "$pidfile")"
    if alive "$pidfile" "$module"; then
      log "stopping $name (pid $pid)"
      kill "$pid"
      local deadline=$((SECONDS + 20))
      while alive "$pidfile" "$module"; do
        [ $SECONDS -lt $deadline ] || { kill -9 "$pid" 2>/dev/null || true; break; }
        sleep 0.2
      done
    fi
    rm -f "$pidfile"
  done
}

status() {
  for entry in "${SERVICES[@]}"; do
    IFS=: read -r name module portvar <<<"$entry"
    if ready "${!portvar}" 2>/dev/null; then echo "$name: ready on 127.0.0.1:${!portvar}"
    elif alive "$RUN/$name.pid" "$module"; then echo "$name: running, not ready"
    else echo "$name: down"; fi
  done
}

# Sourced (by tests/deploy/test_services_script.py) for its functions only.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
