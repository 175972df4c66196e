# Two commands for a new user:
#   make run    set everything up, then start the explorer (builds the demo library on first launch)
#   make test   set everything up, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup browser run demo test bench
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m indexer fetch-weights
	touch $@

# Debian's chromium for the browser test (Playwright drives it; no browser is downloaded).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

run: setup
	$(PY) -m app

demo: setup
	$(PY) -m indexer demo

# pytest exits 5 when it collects no test: make treats that as a failure, as it should.
test: setup browser
	$(PY) -m pytest

bench: setup
	$(PY) bench/model.py
