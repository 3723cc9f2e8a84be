# `make dev` runs the whole engine on its embedded defaults; `make test` runs the whole suite
# (`make test-fast`: the unit and workflow tests only).
# Both bootstrap a virtual environment in .venv from Python 3.11+ and nothing else.
# The first interpreter that actually runs and is 3.11+ (a pyenv shim may exist yet fail).
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint typecheck check clean bootstrap browser

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (none found on PATH)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

bootstrap: $(STAMP)

dev: $(STAMP)
	@exec $(BIN)/journeys dev

# The dashboard's browser test needs Debian's chromium: installed here when we may (root, apt).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { echo "installing Debian's chromium for the dashboard test ..."; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	echo "note: no chromium; the dashboard test will say how to install it"

test: $(STAMP) browser
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The inner loop: the unit and workflow tests (the time-skipping server, no stack), in under 3 minutes.
# `make test` stays the whole suite, the end-to-end tests with it.
test-fast: $(STAMP)
	@$(BIN)/python -m pytest -q -m "not e2e" tests/unit tests/workflows $(PYTEST_ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: $(STAMP)
	@$(BIN)/mypy .

check: test lint typecheck

clean:
	rm -rf $(VENV) build *.egg-info
