# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard loadgen/*.c loadgen/transport/*.c loadgen/transport/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

run: setup
	$(BIN)/loadgen run scenarios/quickstart.yaml

lint: setup
	$(BIN)/ruff check loadgen tests bench
	$(BIN)/mypy

test: lint
	sh scripts/install-chromium.sh
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: setup
	bash bench/install.sh
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache
