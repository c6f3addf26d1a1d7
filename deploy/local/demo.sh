#!/usr/bin/env bash
# `make demo`: start Kafka, Redis, the services and the console (if not running), then run the demo
# through the operator CLI, and leave everything running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
deploy/local/stack.sh up
deploy/local/services.sh up
if [ -f .local/secrets.env ]; then
  while IFS='=' read -r name value; do [ -n "${!name:-}" ] || export "$name=$value"; done < .local/secrets.env
fi
.venv/bin/python deploy/demo/demo.py
echo
echo "The stack is still running: try '.venv/bin/cohort --help' (ADMIN_TOKEN is in .local/secrets.env),"
echo "or open the operator console at http://127.0.0.1:${CONSOLE_PORT:-8084} and sign in with the ADMIN_TOKEN."
echo "Stop everything with: make down"
