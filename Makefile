# Two commands for a fresh machine (see README):  make demo   |   make test
VENV ?= .venv
PY := $(VENV)/bin/python
# Two install stamps: the demo needs perfloop alone; the tests need perfloop plus the dev extra. Installing
# the dev extra also satisfies the demo (it touches both stamps); a changed pyproject.toml redoes either.
APP_STAMP := $(VENV)/.installed-app
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest services browser bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(APP_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $(APP_STAMP)

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP) $(APP_STAMP)

demo: $(APP_STAMP)
	$(VENV)/bin/perfloop demo

test: $(DEV_STAMP) services browser lint typecheck pytest

services:
	@bash scripts/ensure-postgres

browser:
	@bash scripts/ensure-chromium

lint: $(DEV_STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

# Two workers (pytest-xdist): the suite runs in about 6 minutes on 2 cores instead of 9. PYTEST_WORKERS=0 runs it
# in one process (each worker has its own throw-away PostgreSQL database and SQLite files).
PYTEST_WORKERS ?= 2

pytest: $(DEV_STAMP)
	@$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

bench: $(DEV_STAMP)
	$(PY) bench/outbox.py

clean:
	rm -rf $(VENV) perfloop.db perfloop.db-* media perfloop-demo.db perfloop-demo.db-* perfloop-demo-media
