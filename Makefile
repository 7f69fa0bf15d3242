# custval: `make report` and `make test` do all the set-up on a fresh machine (Python 3.11+, make).
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS := report,test,dev
PYTEST_ARGS ?=

.PHONY: help install test test-fast report lint format bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"custval needs Python 3.11 or newer; found " + sys.version.split()[0] + \
		". Run e.g. make PYTHON=python3.12")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install custval (editable) with all extras

test: $(STAMP) ## Run the whole test suite (slow tests included)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the tests not marked slow
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

report: $(STAMP) ## Run the notebooks on data/sample/ and write HTML reports to reports/
	$(BIN)/custval report --sample --margin 0.3 --out reports

lint: $(STAMP) ## Check style with ruff
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP) ## Format with ruff
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(STAMP) ## Run the benchmarks against the reference libraries (takes minutes)
	$(BIN)/python benchmarks/run_all.py

clean: ## Remove the environment, caches and reports
	rm -rf $(VENV) reports .pytest_cache .ruff_cache .hypothesis
