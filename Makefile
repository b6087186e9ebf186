# From a fresh clone, two commands (Python 3.10+ is all they need):
#   make train   set up, train configs/crnn.yaml on fold 0, test the chosen checkpoint on the held-out fold
#   make test    set up, then lint and run the whole test suite (what CI runs)
#   make test-fast  the same without the slow, network and browser tests (about two minutes)
#   make base    draw 50,000 captchas with five generator libraries and pretrain the base model on
#                them (41 minutes on 2 cores; run it again to resume); the model lands in runs/base
# From a subfolder of the clone: make -C "$(git rev-parse --show-toplevel)" test
# Offline, or with the data elsewhere: make train DATA_DIR=/path/to/captcha_images_v2

SHELL := /bin/bash
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV ?= $(ROOT)/.venv
TORCH ?= torch==2.13.0
CONFIG ?= configs/crnn.yaml
DATA_DIR ?= $(ROOT)/data/captcha_images_v2
DATA := $(abspath $(DATA_DIR))
RUN := cd $(ROOT) && $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_EXAMPLE := $(ROOT)/examples/node
NODE_STAMP := $(NODE_EXAMPLE)/node_modules/.package-lock.json

.PHONY: setup train test test-fast data base

setup: $(STAMP) $(NODE_STAMP)

# Reinstalls only when pyproject.toml changed since the last install.
$(STAMP): $(ROOT)/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || \
		{ echo "captcha_ocr needs Python 3.10 or newer, found: $$($(PYTHON) --version 2>&1 | head -1)"; exit 1; }
	@test -x $(VENV)/bin/python || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --progress-bar on "$(TORCH)"
	$(VENV)/bin/python -m pip install --progress-bar on -e "$(ROOT)[dev]"
	@touch $@

# The Node example's packages, for its test (skipped where npm is missing). --ignore-scripts:
# onnxruntime-node's install script only fetches its CUDA binaries (from NuGet); the CPU ones are
# in the package.
$(NODE_STAMP): $(NODE_EXAMPLE)/package-lock.json
	@if command -v npm >/dev/null; then cd $(NODE_EXAMPLE) && npm ci --ignore-scripts --no-audit --no-fund; \
		else echo "npm not found: the Node example's test will be skipped"; fi

data: setup
	@test -d "$(DATA)" || $(RUN) -c "from captcha_ocr.data.datamodule import CaptchaDataModule as D; \
		D(data_dir='$(DATA)', download=True, expected_files=1040).prepare_data()" 2>/dev/null || \
		{ echo "could not download the data set into $(DATA): pass a local copy as DATA_DIR=/path/to/captcha_images_v2"; exit 1; }

train: data
	$(RUN) main.py fit --config $(CONFIG) --data.data_dir "$(DATA)"
	$(RUN) main.py test --config $(CONFIG) --data.data_dir "$(DATA)"
	@echo "TensorBoard logs: $(ROOT)/lightning_logs (tensorboard --logdir $(ROOT)/lightning_logs)"

test: setup
	cd $(ROOT) && $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy
	$(RUN) -m pytest -q

test-fast: setup
	cd $(ROOT) && $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy
	$(RUN) -m pytest -q -m "not slow and not network and not browser"

BASE_CHARSET := 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ
base: setup
	test -d $(ROOT)/data/base || $(VENV)/bin/captcha-ocr synth --style mixed --count 50000 \
		--charset $(BASE_CHARSET) --length 4-8 --seed 0 --out $(ROOT)/data/base
	$(VENV)/bin/captcha-ocr train $(ROOT)/data/base --from-scratch --folds 0 --steps 18750 --resume --out $(ROOT)/runs/base
