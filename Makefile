# Two commands on a fresh machine: `make demo` (install everything, run the demo) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sn51-installed
NPM := $(shell command -v npm 2>/dev/null)
NODE_STAMP := contracts/node_modules/.package-lock.json

.PHONY: install test lint demo up down clean

install: $(STAMP) $(NODE_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): contracts/package.json contracts/package-lock.json
ifneq ($(NPM),)
	cd contracts && npm ci --no-audit --no-fund
	touch $@
else
	@echo "npm not found: anvil and solc are not installed (install Node.js for the EVM tests)"
endif

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

demo: install
	$(BIN)/sn51 demo

up: install
	$(BIN)/sn51 up

down:
	$(BIN)/sn51 down

clean: down
	rm -rf .sn51
