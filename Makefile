# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

LOWEST ?= .venv-lowest

.PHONY: demo test test-lowest lint typecheck pytest docs docs-check bench clean redis

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
	$(BIN)/ruff check llmobs_async tests benchmarks examples docs/sphinx_roles.py
	$(BIN)/ruff format --check llmobs_async tests benchmarks examples docs/sphinx_roles.py

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict llmobs_async examples docs/sphinx_roles.py

# The docs site (mkdocs.yml, docs/) into site/; it builds offline. `docs-check` is the
# strict build `make test` runs: a broken API reference, link or anchor fails it.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build

docs-check: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The shared rate-limit store is tested against a real redis-server (Debian's package).
redis:
	@command -v redis-server >/dev/null || { \
	  echo "make: redis-server not found; installing Debian's redis-server package with apt-get (through sudo when not root) for the Redis store's tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

pytest: $(VENV)/.installed-dev redis
	$(BIN)/python -m pytest -q

test: lint typecheck docs-check pytest

# The suite against the OLDEST versions pyproject.toml allows (uv's lowest-direct
# resolution: every direct dependency, test tools included, at its lower bound),
# so the bounds stay true. A venv of its own; `make test` keeps the newest.
$(LOWEST)/.installed: pyproject.toml
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet uv
	$(LOWEST)/bin/uv pip install --quiet --python $(LOWEST)/bin/python \
	  --resolution lowest-direct -e '.[test]'
	touch $@

test-lowest: $(LOWEST)/.installed redis
	$(LOWEST)/bin/uv pip list --python $(LOWEST)/bin/python 2>/dev/null \
	  | grep -iE '^(aiohttp|attrs|cattrs|backoff|orjson|redis|pytest|pytest-asyncio|hypothesis|datadog-api-client) '
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider

# ddtrace, for the experiments benchmark's ddtrace rows only: a venv of its own, so it never
# becomes a dependency (nor loads its pytest plugin into the suite).
DDTRACE ?= .venv-ddtrace
$(DDTRACE)/.installed:
	$(PYTHON) -m venv $(DDTRACE)
	$(DDTRACE)/bin/python -m pip install --quiet 'ddtrace>=4.6' && touch $@ \
	  || echo "make: ddtrace did not install; the experiments benchmark reports its rows as errors"

bench: $(VENV)/.installed-dev redis $(DDTRACE)/.installed
	$(BIN)/python benchmarks/cpu/run.py --check
	$(BIN)/python benchmarks/ratelimit/run.py --check
	$(BIN)/python benchmarks/chaos/run.py
	$(BIN)/python benchmarks/pager/run.py --check
	$(BIN)/python benchmarks/experiments/run.py --check
	$(BIN)/python benchmarks/shards/run.py --check

clean:
	rm -rf $(VENV) $(LOWEST) $(DDTRACE) .mypy_cache .pytest_cache .ruff_cache site
