# The two commands of the README: `make run` (the whole pipeline) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASET ?= ml-100k

.PHONY: setup run test lab benchmark clean

setup: $(STAMP)

# Idempotent: reinstalls only when requirements.txt changed (or the venv is missing).
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps recbole==1.2.1
	touch $(STAMP)

run: setup
	$(PY) -m helpers.pipeline --dataset $(DATASET)

test: setup
	$(PY) -m pytest -q tests

lab: setup
	$(VENV)/bin/jupyter lab

benchmark: setup
	$(PY) benchmarks/accuracy.py

clean:
	rm -rf $(VENV) .pytest_cache
