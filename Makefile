# Two entry points that do all the set-up on a fresh machine (Python 3.10+ and pip):
#   make run    train ELCRec on the built-in synthetic data and print test metrics + intent NMI
#   make test   lint (ruff) and the whole test suite
# torch is pinned to the CPU build that pip finds locally (an open range would
# pull a multi-GB CUDA build); the package metadata itself stays permissive.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: run test lint setup clean

$(BIN)/elcrec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/elcrec

setup: $(BIN)/elcrec

run: setup
	$(BIN)/elcrec train --epochs 40 --patience 10 --run-dir runs/synthetic-demo

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
