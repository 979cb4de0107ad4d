# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Started by .ci/postgres: the whole suite runs again on it (the browser test only once), and the tests
# marked `postgres` (concurrent requests) run only there.
TEST_POSTGRES_URL ?= postgres://turing:turing@127.0.0.1:5432/turing

.PHONY: demo test lint venv browser postgres servers clean-demo

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# This project itself, editable and without its own build environment: registers the model entry points.
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# Chromium from Debian for the end-to-end test; Playwright drives it, never downloads one. axe-core (package.json,
# from the npm registry) is what the accessibility test injects into each page.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	npm ci --silent --no-audit --no-fund

# make demo PORT=8001 HOST=192.168.1.20: the port to serve on, and the address phones use (default: found).
PORT ?= 8000
HOST ?=

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo --port $(PORT)$(if $(HOST), --host $(HOST))

postgres:
	bash .ci/postgres

# redis-server and nginx from Debian: the shared-cache and proxy tests start their own on free loopback ports.
servers:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
	@command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; }

# Configured in pyproject.toml; the tree is kept clean under all three.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint $(STAMP) browser postgres servers
	$(PY) -m pytest
	DATABASE_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest -m "not browser"

clean-demo:
	rm -rf db.sqlite3 media/stimuli media/demo
