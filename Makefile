# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TREASURE_TESTDATA ?= $(abspath ../shared/testdata)
DEMO_OUT ?= demo_out
export TREASURE_TESTDATA

.PHONY: install demo test bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,onnx]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15 tests

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --out $(DEMO_OUT)

bench: $(STAMP)
	$(BIN)/python benchmarks/formats.py --sizes 10000 100000 1000000

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .hypothesis
