# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TREASURE_TESTDATA ?= $(abspath ../shared/testdata)
DEMO_OUT ?= demo_out
export TREASURE_TESTDATA

.PHONY: install demo test lint docs wheel-smoke pytest bench browser clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,docs,onnx,service]"
	touch $(STAMP)

install: $(STAMP)

# What CI runs (.ci/run): lint, the documentation site, the wheel used alone, then the tests.
test: lint docs wheel-smoke pytest

pytest: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --durations=15 tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The site, strict: a broken link or a missing docstring reference fails (output in site/).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The wheel, installed alone into a fresh virtual environment, used from outside the checkout.
wheel-smoke: $(STAMP)
	$(BIN)/python scripts/wheel_smoke.py --deps-venv $(VENV)

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
	rm -rf $(VENV) $(DEMO_OUT) site .pytest_cache .hypothesis
