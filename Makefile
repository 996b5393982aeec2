# Two entry points that do all the set-up on a fresh machine (Python 3.10+ and pip):
#   make run    train ELCRec on the built-in synthetic data and print test metrics + intent NMI
#   make test   lint (ruff), Chromium for the report test, and the whole test suite
# torch is pinned to the CPU build that pip finds locally (an open range would
# pull a multi-GB CUDA build); the package metadata itself stays permissive.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: run test lint setup browser clean

# The report test opens the HTML report in headless Chromium, taken from the
# distribution's packages (Debian/Ubuntu) when it is not installed yet.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/elcrec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/elcrec

setup: $(BIN)/elcrec

run: setup
	$(BIN)/elcrec train --epochs 40 --patience 10

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  ($(SUDO) apt-get update -qq && \
	   $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) || \
	  echo "warning: Chromium could not be installed; the report screenshot test will be skipped"

test: lint browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
