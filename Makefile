# beyondbank: `make demo` serves the demo, `make test` runs every test. Needs Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)

.PHONY: demo serve test lint check migration-check clean help

help:
	@echo "make demo   set up, create demo data in SQLite and serve it on http://127.0.0.1:8000"
	@echo "make test   set up and run the whole test suite (SQLite, then PostgreSQL if reachable)"
	@echo "make lint   ruff and mypy (strict on src/)"

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/beyondbank demo

test: $(STAMP)
	@BIN=$(BIN) scripts/run-tests

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/mypy

check: test lint

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
