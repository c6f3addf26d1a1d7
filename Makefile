# The front door: `make demo` runs the system with its demo, `make test` runs every test.
# Each installs what it needs (a JDK, Maven, redis-server, the Kafka jars, a virtualenv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := $(patsubst %/pyproject.toml,%,$(wildcard services/*/pyproject.toml))
STACK := deploy/local/stack.sh
export KAFKA_PORT ?= 9092
export REDIS_PORT ?= 6379
# KAFKA_BROKERS=3: a local 3-node KRaft cluster (node i's broker on KAFKA_PORT+2*i), and every
# topic the services create gets replication factor 3 and min.insync.replicas 2.
export KAFKA_BROKERS ?= 1
ifeq ($(KAFKA_BROKERS),3)
export KAFKA_BOOTSTRAP_SERVERS ?= $(shell seq -s, -f "127.0.0.1:%g" $(KAFKA_PORT) 2 $$(($(KAFKA_PORT) + 4)))
export TOPIC_REPLICATION_FACTOR ?= 3
export TOPIC_MIN_INSYNC_REPLICAS ?= 2
endif
export KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(KAFKA_PORT)
export REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0
# REDIS_MODE=cluster: a local 3-master Redis Cluster on REDIS_PORT, +1, +2; REDIS_URL names
# its first node and the services (and tests) use a cluster client.
export REDIS_MODE ?= single
ifeq ($(REDIS_MODE),cluster)
export REDIS_CLUSTER ?= true
export REDIS_CLUSTER_PORTS ?= $(shell seq -s, $(REDIS_PORT) $$(($(REDIS_PORT) + 2)))
endif
# make chaos: CHAOS_PROFILE=full (default; 200,000 changes, every fault, 10,000 fuzzed
# requests) or ci (about 3 minutes, fewer kills); CHAOS_ARGS go to tests/chaos/run.py
# (--seed N reproduces a run, --no-faults runs the same workload without faults).
CHAOS_PROFILE ?= full
REDIS_CLUSTER_TEST_PORT ?= 7100

.PHONY: help venv install up down status test test-cluster test-unit demo bench bench-quick chaos lint docs validate-deploy clean

help:
	@echo "make demo        install, start everything, run the demo (leaves the stack running)"
	@echo "make test        install, start Kafka and Redis if needed, run every test, stop what it started"
	@echo "make test-cluster  the integration and end-to-end tests on a local 3-master Redis Cluster"
	@echo "make up / down   start / stop Kafka, Redis, the four services and the operator console (:8084)"
	@echo "make bench       run the benchmark and print its table"
	@echo "make chaos       run the fault-injection suite and print its table (CHAOS_PROFILE=ci: ~3 min)"
	@echo "                 KAFKA_BROKERS=3 runs any of these on a local 3-broker Kafka cluster,"
	@echo "                 REDIS_MODE=cluster on a local 3-master Redis Cluster"
	@echo "make lint        ruff over the code"
	@echo "make docs        regenerate docs/api/*.openapi.json and docs/asyncapi.yaml from the code"
	@echo "make validate-deploy  render and check deploy/k8s, docker-compose.yml and deploy/observability offline"

$(VENV)/.installed: requirements-dev.txt requirements-braze-client.txt bench/requirements.txt shared/pyproject.toml cli/pyproject.toml $(wildcard services/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -r bench/requirements.txt -e shared $(addprefix -e ,$(SERVICES)) -e cli
	$(PY) -m pip install -q --no-deps -r requirements-braze-client.txt
	@touch $@

venv install: $(VENV)/.installed

up: $(VENV)/.installed
	@$(STACK) up
	@if [ -x deploy/local/services.sh ]; then deploy/local/services.sh up; fi

down:
	@if [ -x deploy/local/services.sh ]; then deploy/local/services.sh down; fi
	@$(STACK) down

status:
	@$(STACK) status
	@if [ -x deploy/local/services.sh ]; then deploy/local/services.sh status; fi

# Starts Kafka and Redis only if they are not already answering, and stops only those.
test: $(VENV)/.installed
	$(STACK) run -- $(PY) -m pytest $(PYTEST_ARGS)

# The cluster tier: the integration and end-to-end tests (the exactly-once crash test among
# them) on a local 3-master Redis Cluster, on ports of its own so a single Redis can stay up.
test-cluster: $(VENV)/.installed
	$(MAKE) test REDIS_MODE=cluster REDIS_PORT=$(REDIS_CLUSTER_TEST_PORT) REDIS_URL=redis://127.0.0.1:$(REDIS_CLUSTER_TEST_PORT)/0 \
	  PYTEST_ARGS='-m "(integration or e2e) and not browser" $(PYTEST_ARGS)'

test-unit: $(VENV)/.installed
	$(PY) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

demo: $(VENV)/.installed
	@if [ -x deploy/local/demo.sh ]; then deploy/local/demo.sh; else \
	  echo "The demo lands with the end-to-end issue; not yet."; fi

bench: $(VENV)/.installed
	$(STACK) run -- $(PY) bench/run.py $(BENCH_ARGS)

bench-quick:
	$(MAKE) bench BENCH_ARGS=--quick

chaos: $(VENV)/.installed
	$(STACK) run -- $(PY) -m tests.chaos --profile $(CHAOS_PROFILE) $(CHAOS_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check shared services cli bench tests deploy tools

# The generated half of the contract in docs/: each service's OpenAPI document, exported from
# its app, and the AsyncAPI document of the topics, from the message schemas. `make test`
# fails while a committed file differs from what the code produces (tests/contract/).
docs: $(VENV)/.installed
	$(PY) -m tools.contract write

# Offline: builds kustomize and fetches the KEDA and compose schemas through the Go module
# proxy (cached per user, see deploy/validate/tools.py), installs Debian's docker-compose if missing. No cluster,
# no Docker engine.
validate-deploy: $(VENV)/.installed
	$(PY) -m deploy.validate

clean:
	rm -rf $(VENV) .pytest_cache
