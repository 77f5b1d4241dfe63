# Every target creates .venv when missing and installs the locked dependencies first.
# Re-running is quick: the install step only re-runs when a lock file or pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BSTAMP := $(VENV)/.installed-bench
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo demo-tenant test lint typecheck unit stress bench clean venv system-packages

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("exoimap needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements/dev.lock requirements/build.lock pyproject.toml
	$(PIP) install --require-hashes -r requirements/build.lock
	$(PIP) install --require-hashes --no-deps -r requirements/dev.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

$(BSTAMP): $(STAMP) requirements/bench.lock
	$(PIP) install --require-hashes --no-deps -r requirements/bench.lock
	touch $@

## demo: the end-to-end demo against an offline sandbox tenant
demo: $(STAMP)
	$(BIN)/python -m exoimap.demo

## demo-tenant: a sandbox tenant of 50 mailboxes backed up by 2 workers (Redis, PostgreSQL)
demo-tenant: $(STAMP)
	$(BIN)/python -m exoimap.demo_tenant

## test: lint (ruff + import contracts), type-check, and the whole test suite (what CI runs)
test: system-packages lint typecheck unit

## system-packages: what the tests need from Debian (installed as root, else the line to run)
system-packages:
	@tools/system-packages

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-packages
	$(BIN)/pytest -n 2 --dist loadgroup

## stress: the whole suite 5 times in a row with every core busy (flakiness: 0 failures)
stress: $(STAMP) system-packages
	tools/stress-suite

## bench: benchmarks (see bench/README.md); results go to docs/benchmarks.md
bench: $(BSTAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build src/*.egg-info .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
