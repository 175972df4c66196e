# Two commands for a new user:  `make run` (set up, then the main job)  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test bench
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

run: setup
	$(PY) -m actbert demo

# pytest exits 5 when it collects no test: make treats that as a failure, as it should.
test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/model.py
