# Two commands do everything: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(STAMP)

tests/js/node_modules/.package-lock.json: tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/js --no-audit --no-fund --loglevel=error; \
	else echo "npm is missing: the podcast-partytime feed checks will not run (see .ci/run)"; fi

install: $(STAMP)

## Start the archive on http://$(HOST):$(PORT) with embedded storage (and demo content when empty).
run: $(STAMP)
	exec $(BIN)/archive serve --host $(HOST) --port $(PORT) --demo-if-empty

## Install dev extras and run ruff and the whole pytest suite.
test: $(DEV_STAMP) tests/js/node_modules/.package-lock.json
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

## Benchmarks (ratios against baselines measured in the same run); BENCH_ARGS=--quick for a smoke run.
bench: $(DEV_STAMP)
	bash bench/install-tools.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache .ruff_cache
