# tracesearch developer entry points. `make demo` and `make test` are the two README commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
# The compiled core (native/, Rust through maturin) on top of the Python packages: what every target needs.
STAMP := $(VENV)/.native-installed
CARGO := $(shell command -v cargo 2>/dev/null || { test -x $$HOME/.cargo/bin/cargo && echo $$HOME/.cargo/bin/cargo; })
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs)

.PHONY: help demo test test-suites test-unit test-integration test-es9 lint bench bench-peers bench-es-cost bench-growth up down status \
        stop-es start-es stop-kafka start-kafka stop-service start-service install-templates clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Both distributions from source: the server and tracesearch-instrument (instrument/), which share
# the `tracesearch` namespace. "compat" editable installs put their folders on sys.path, where the
# server's tracesearch/__init__.py finds tracesearch/instrument (the default mode's import hooks cannot).
$(PY_STAMP): pyproject.toml instrument/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --config-settings editable_mode=compat -e '.[dev]' -e ./instrument
	@touch $(PY_STAMP)

# Optional: without cargo the service runs on the pure-Python path (TRACESEARCH_NATIVE=auto), and says so here.
# pip builds it with maturin (from PyPI) and the crates in native/Cargo.lock (from crates.io); see README.
$(STAMP): $(PY_STAMP) $(NATIVE_SOURCES)
	@if [ -n "$(CARGO)" ]; then \
		echo "building the compiled core (native/) with $(CARGO)"; \
		PATH="$$(dirname $(CARGO)):$$PATH" $(PY) -m pip install -q ./native || exit 1; \
	else \
		echo "cargo not found (on PATH or in ~/.cargo/bin): the compiled core is not built;" \
		     "tracesearch runs on its pure-Python path (install Rust with rustup to build it)"; \
		$(PY) -m pip uninstall -q -y tracesearch-native 2>/dev/null || true; \
	fi
	@touch $(STAMP)

venv: $(STAMP) ## create .venv with every dependency (and the compiled core where cargo is found)

demo: $(STAMP) ## start everything, send real traces from instrumented services, print where to look
	$(PY) -m devstack up
	$(PY) -m demo run

# The suites start Elasticsearch 8 and 9 and Kafka as tests need them; `devstack run` stops those
# afterwards (on failure too), but not what ran before (a `make up` stack), and says so last.
test: $(STAMP) lint ## lint, type-check, every test on Elasticsearch 8, then the integration suite on Elasticsearch 9; stop what they started
	$(PY) -m devstack run -- $(MAKE) --no-print-directory test-suites

test-suites: $(STAMP)
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-es9

test-unit: $(STAMP) ## tests that need no server
	$(PY) -m pytest -q tests/unit tests/devstack tests/demo

# Like TRACESEARCH_DEVSTACK_ES_PORT for ES 8: a clone whose tests must not share 9201 sets another.
ES9_PORT ?= 9201

test-es9: $(STAMP) ## the integration suite against Elasticsearch 9 (Java 21+)
	TRACESEARCH_DEVSTACK_ES_VERSION=9.3.2 TRACESEARCH_DEVSTACK_ES_PORT=$(ES9_PORT) $(PY) -m pytest -q tests/integration

lint: $(STAMP) ## ruff, mypy and the layer rules (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy tracesearch devstack demo bench tests
	$(VENV)/bin/mypy -p tracesearch.instrument
	$(VENV)/bin/lint-imports

bench: $(STAMP) ## benchmarks; results go to BENCHMARKS.md
	$(PY) -m bench

# Separate from `bench`: the first run downloads Zipkin (135 MB) and builds Jaeger with go (minutes).
# TRACESEARCH_BENCH_PEERS_SPANS scales it (default 50000 spans per run).
bench-peers: $(STAMP) ## tracesearch vs Jaeger v2 and Zipkin on one dedicated Elasticsearch; tables and plots into BENCHMARKS.md
	$(PY) -m bench.peers

bench-es-cost: $(STAMP) ## Elasticsearch CPU and disk per span by mapping variant, on a node of its own (~25 min)
	$(PY) -m bench.es_cost

# Loads 10M spans into a node of its own (~10 GB of disk, well over half an hour on 2 cores; --budget-min caps it).
bench-growth: $(STAMP) ## query p50/p95 at 1M and 10M stored spans, on a node of its own; section into BENCHMARKS.md
	$(PY) -m bench.growth

up: $(STAMP) ## start Elasticsearch, Kafka and the service in the background (idempotent)
	$(PY) -m devstack up

down: $(STAMP) ## stop everything the dev stack started
	$(PY) -m devstack down

status: $(STAMP)
	$(PY) -m devstack status

stop-es start-es stop-kafka start-kafka stop-service start-service: $(STAMP)
	$(PY) -m devstack $@

install-templates: $(STAMP) ## install the index templates into TRACESEARCH_ES_URL
	$(PY) -m tracesearch install-templates

clean: ## remove the venv and the dev stack (downloads included)
	-$(PY) -m devstack down
	rm -rf $(VENV) .devstack native/target
