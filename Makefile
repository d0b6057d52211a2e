# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean redis

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp files re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/llmobs-async demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check llmobs_async tests benchmarks
	$(BIN)/ruff format --check llmobs_async tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict llmobs_async

# The shared rate-limit store is tested against a real redis-server (Debian's package).
redis:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

pytest: $(VENV)/.installed-dev redis
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: $(VENV)/.installed-dev redis
	$(BIN)/python benchmarks/run.py --check
	$(BIN)/python benchmarks/ratelimit.py --check
	$(BIN)/python benchmarks/chaos.py
	$(BIN)/python benchmarks/pager.py --check

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
