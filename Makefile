# callswitch developer commands. Everything runs in a local virtualenv (.venv).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## Run the service on the example configuration with a private Postgres under ./var/
demo: $(STAMP)
	$(BIN)/callswitch demo

## Lint and run the whole test suite (real Postgres: $$CALLSWITCH_TEST_DSN, or a throwaway cluster)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy callswitch
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy callswitch

bench: $(STAMP)
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
