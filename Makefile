# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest docs docs-check bench clean redis

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
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

pytest: $(VENV)/.installed-dev redis
	$(BIN)/python -m pytest -q

test: lint typecheck docs-check pytest

bench: $(VENV)/.installed-dev redis
	$(BIN)/python benchmarks/run.py --check
	$(BIN)/python benchmarks/ratelimit.py --check
	$(BIN)/python benchmarks/chaos.py
	$(BIN)/python benchmarks/pager.py --check

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache site
