# The README's two commands: `make run` and `make test`. Both install what they need
# (Debian packages when run as root, then a virtualenv in .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv python3-pip janus prometheus prometheus-alertmanager iproute2 procps chromium \
	rabbitmq-server
STAMP := $(VENV)/.installed
# Wheels of the project, its dependencies and its build backend, built while the network is
# reachable: the tests run in a network namespace with no route out, and rebuild from these.
WHEELS := $(VENV)/wheels

.PHONY: run run-fleet test fuzz lint deps apt-deps bench bench-node bench-admin bench-hostile \
	bench-amqp bench-scrape bench-replay clean

# rabbitmq-server's install script starts the system broker unless a policy-rc.d forbids it:
# the tests run private nodes of their own (lab/rabbitmq.py), so one is put in place meanwhile.
apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:" $$missing; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; status=$$?; \
	    if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	    [ $$status = 0 ] || exit $$status; \
	  else \
	    echo "missing Debian packages (run as root, or: sudo apt-get install $$missing)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | apt-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint]'
	touch $(STAMP)

$(WHEELS)/.built: pyproject.toml | $(STAMP)
	$(PY) -m pip wheel -q --wheel-dir $(WHEELS) . 'setuptools>=68'
	touch $@

deps: apt-deps $(STAMP) $(WHEELS)/.built

test: deps
	$(PY) -m pytest -q

# The fuzz suite (tests/test_fuzz_*.py) at full size: FUZZ_EXAMPLES is the examples of a
# weight-1 test (make test runs 100). At 13000: about 85 000 hypothesis examples over the
# weighted tests, plus 34 323 wrong-type mutant posts and messages (test_fuzz_fields.py).
FUZZ_EXAMPLES ?= 13000
fuzz: deps
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider --timeout=0 tests/test_fuzz_*.py

lint: deps
	$(VENV)/bin/ruff check monitor lab bench tests tools
	$(VENV)/bin/ruff format --check monitor lab bench tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile
	$(PY) -m tools.module_size

run: deps
	$(PY) -m lab.run

# A local RabbitMQ, two Janus and two daemons sharing the shards (README "Running a fleet").
run-fleet: deps
	$(PY) -m lab.fleet

bench: deps
	$(PY) -m bench.ingest --repeat 3

# The same run beside the Node mytutorcode/janus-prometheus-exporter, which bench/node_exporter.py
# clones (from $$JANUS_MONITOR_NODE_EXPORTER_SOURCE, the local mirror or GitHub) into
# $$JANUS_MONITOR_NODE_EXPORTER or ~/.cache/janus-monitor-bench/ and `npm install`s: needs node, npm.
bench-node: deps
	$(PY) -m bench.ingest --repeat 3 --node-exporter

bench-admin: deps
	$(PY) -m bench.admin_poll

bench-hostile: deps
	$(PY) -m bench.hostile

bench-amqp: deps
	$(PY) -m bench.amqp

bench-scrape: deps
	$(PY) -m bench.scrape

bench-replay: deps
	$(PY) -m bench.replay

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
