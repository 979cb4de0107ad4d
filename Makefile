# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv browser serve clean-demo

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# Chromium from Debian for the end-to-end test; Playwright drives it, never downloads one.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo

test: $(STAMP) browser
	$(PY) -m pytest

clean-demo:
	rm -rf db.sqlite3 media/stimuli media/demo
