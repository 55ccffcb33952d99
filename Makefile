# The two commands of the README: `make run` (the whole pipeline) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATASET ?= ml-100k

.PHONY: setup run test test-fast lint sync lab benchmark clean

setup: $(STAMP)

# Idempotent: reinstalls only when requirements.txt or pyproject.toml changed (or the venv is missing).
# requirements.txt is the pinned lock; the project itself is installed editable (no deps: the lock has them),
# so `python -m helpers` and the notebooks work from any folder.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps recbole==1.2.1
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: setup
	$(PY) -m helpers.pipeline --dataset $(DATASET)

# ruff (lint), then every test: unit, integration (CLI, DDP, pipeline) and the notebooks through papermill.
# The import-linter layers contract runs as a test (tests/unit/test_layers.py).
test: setup setup-peers lint
	$(PY) -m pytest -q tests

test-fast: setup setup-peers lint
	$(PY) -m pytest -q -m "not slow" tests

lint: setup
	$(VENV)/bin/ruff check helpers tests

# After editing a notebook's .py (or its .ipynb in JupyterLab): bring the pair back in step.
sync: setup
	$(VENV)/bin/jupytext --sync EDA.ipynb training.ipynb evaluation.ipynb reranking.ipynb explore.ipynb

lab: setup
	$(VENV)/bin/jupyter lab

# Every benchmark target regenerates the README's tables from reports/benchmarks.json afterwards.
README_TABLES := $(PY) benchmarks/readme_tables.py

benchmark: setup
	$(PY) benchmarks/accuracy.py --threads 2
	$(README_TABLES)

# The peer libraries (implicit, cornac, RecBole's training dependencies) for benchmarks/peers.py only; pinned in
# benchmarks/requirements-peers.txt, installed with requirements.txt as constraints so no runtime pin moves.
PEERS_STAMP := $(VENV)/.peers-installed
.PHONY: setup-peers benchmark-peers
setup-peers: $(PEERS_STAMP)
$(PEERS_STAMP): $(STAMP) benchmarks/requirements-peers.txt
	$(PY) -m pip install --quiet -c requirements.txt -r benchmarks/requirements-peers.txt
	touch $(PEERS_STAMP)

# The default against implicit, cornac and RecBole on the accuracy benchmark's protocols, in one run (58 min on 2 cores on
# 2026-12-02; each protocol is written to the JSON as it ends, so a stopped run keeps the ones it finished):
# benchmarks/PEERS.md, reports/figures/peers_pareto.png, reports/benchmarks.json under "peers".
PEERS_ARGS ?=
benchmark-peers: setup-peers
	$(PY) benchmarks/peers.py $(PEERS_ARGS)
	$(README_TABLES)

clean:
	rm -rf $(VENV) .pytest_cache

# Training on NPROC processes (DDP through fastai, helpers/training/distributed.py; gloo on CPUs, NCCL on GPUs).
# e.g. `make train-ddp NPROC=2 TRAIN=data/train.csv DDP_ARGS="--epochs 12"`; rank 0 writes DDP_OUT.
NPROC ?= 2
TRAIN ?= data/train.csv
DDP_OUT ?= model/collabnn_ddp.pth
DDP_ARGS ?=
.PHONY: train-ddp
train-ddp: setup
	OMP_WAIT_POLICY=PASSIVE MALLOC_ARENA_MAX=2 $(PY) -m torch.distributed.run --standalone --nproc_per_node $(NPROC) \
		-m helpers.training.distributed --train $(TRAIN) --out $(DDP_OUT) $(DDP_ARGS)

# Cost growth in the catalogue (benchmarks/budget.py): the default and EASE from 1,000 to 50,000 items at fixed
# interactions; reports/benchmarks.json ("budget"), reports/figures/budget_growth.png. About 10 min on 2 cores.
.PHONY: benchmark-budget
benchmark-budget: setup
	$(PY) benchmarks/budget.py $(BUDGET_ARGS)
	$(README_TABLES)

# Speed and memory at scale (benchmarks/scale.py): synthetic Electronics at SIZES shares; results to
# reports/benchmarks.json ("scale"), reports/figures/scale_growth.png, reports/scale.md.
SIZES ?= 0.1,0.3,1.0
.PHONY: benchmark-scale
benchmark-scale: setup
	$(PY) benchmarks/scale.py --sizes $(SIZES) $(SCALE_ARGS)
	$(README_TABLES)

# A synthetic stand-in for the marketing-bias data/raw/df_electronics.csv (offline; same columns, planted
# gender x segment effects: helpers/data/synthetic.py). `make electronics-standin SCALE=1.0`; load("electronics")
# then reads it as if downloaded. Refuses to overwrite the real downloaded file.
SCALE ?= 1.0
SEED ?= 0
.PHONY: electronics-standin
electronics-standin: setup
	$(PY) -m helpers.data.synthetic --out data/raw/df_electronics.csv --scale $(SCALE) --seed $(SEED)

# Electronics at full size, timed and its memory measured (benchmarks/full_size.py): writes the full-size stand-in to
# data/raw/df_electronics.csv when missing, runs the pipeline as `make run DATASET=electronics` does into
# scratch/full_size, results to reports/benchmarks.json ("full_size") and benchmarks/logs/full_size.md.
.PHONY: benchmark-full-size
benchmark-full-size: setup
	$(PY) benchmarks/full_size.py
