# Mailroom: the two commands of the README, and a few helpers.
#   make run    set up and start Mailroom on its embedded default (http://127.0.0.1:5000)
#   make test   set up and run the whole test suite
#   make lint   ruff, and the import contracts of .importlinter (lint-imports)
#   make bench  the sync benchmark (BENCH_ARGS="--messages 100000 --repeat 3" for more)
#   make bench-fleet  the fleet benchmark (FLEET_ARGS="--mailboxes 10000 --workers 1,2,4" for more)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test system-deps lint bench bench-fleet clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,production]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/mailroom up

system-deps:
	@scripts/install-system-deps

test: system-deps $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check webapp connectors plugins tests bench
	$(BIN)/lint-imports

bench: system-deps $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.sync $(BENCH_ARGS)

bench-fleet: system-deps $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.fleet $(FLEET_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
