# Mailroom: the two commands of the README, and a few helpers.
#   make run    set up and start Mailroom on its embedded default (http://127.0.0.1:5000)
#   make test   set up and run the whole test suite
#   make lint   ruff, and the import contracts of .importlinter (lint-imports)
#   make bench  the sync benchmark (BENCH_ARGS="--messages 100000 --repeat 3" for more)
#   make translations extract marked strings, update the it/pl catalogues, compile them (docs/translations.md)
#   make bench-fleet  the fleet benchmark, 1,000 mailboxes, 1, 2 and 4 workers (FLEET_ARGS="--large" for 10,000)
#   make bench-push  push latency: delivery to the API with 1,000 mailboxes held by one mailroom idle
#   make screenshots  PNGs of the main pages at 1366 and 390 px into docs/screenshots/ (SHOTS_ARGS="--out DIR")

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test system-deps lint bench bench-fleet bench-push screenshots clean translations catalogues

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg setup.py pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,production]'
	$(MAKE) --no-print-directory catalogues
	touch $@

# Translations (docs/translations.md): the .po catalogues are committed, the compiled .mo files are
# built here, by the install step of `make run` and `make test` (and again when a .po changes).
BABEL_KEYWORDS := -k _l -k lazy_gettext -k lazy_pgettext:1c,2 -k N_
PO_FILES := $(wildcard webapp/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

%/LC_MESSAGES/messages.mo: %/LC_MESSAGES/messages.po
	$(BIN)/pybabel compile -i $< -o $@ -l $(notdir $*) 2>/dev/null

catalogues: $(MO_FILES)

translations: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output \
	  --add-comments=TRANSLATORS: --project=Mailroom --copyright-holder=Mailroom \
	  -o webapp/translations/messages.pot .
	$(BIN)/pybabel update -i webapp/translations/messages.pot -d webapp/translations --ignore-obsolete --no-wrap
	$(BIN)/pybabel compile -d webapp/translations --statistics

run: $(VENV)/.installed catalogues
	$(BIN)/mailroom up

system-deps:
	@scripts/install-system-deps

# PYTEST_WORKERS=2 runs the suite on two pytest-xdist workers, each with its own database and Redis
# database (docs/development.md, "Running the tests"); 0 (the default until two full runs on each
# database pass that way on a quiet machine) runs it in one process.
PYTEST_WORKERS ?= 0
test: system-deps $(VENV)/.installed catalogues
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check webapp connectors plugins tests bench
	$(BIN)/lint-imports

bench: system-deps $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.sync $(BENCH_ARGS)

bench-fleet: system-deps $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.fleet $(FLEET_ARGS)

bench-push: system-deps $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.push_latency $(PUSH_ARGS)

screenshots: $(VENV)/.installed
	$(BIN)/python scripts/screenshots.py $(SHOTS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
