# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TREASURE_TESTDATA ?= $(abspath ../shared/testdata)
DEMO_OUT ?= demo_out
export TREASURE_TESTDATA

.PHONY: install demo test bench browser clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,onnx,service]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --durations=15 tests

# Headless Chromium for the service's page test, from Debian's packages where this machine can
# install them (root with apt-get); elsewhere that one test is skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	echo "no Chromium installed: the service's page test will be skipped"

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --out $(DEMO_OUT)

bench: $(STAMP)
	$(BIN)/python benchmarks/formats.py --sizes 10000 100000 1000000

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .hypothesis
