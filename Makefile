# Every target builds .venv from nothing when it is missing, so a fresh machine with only
# Python 3.11 needs no other step.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint proto clean chaos

# Setup output goes to stderr so that `make bench` prints only JSON on stdout.
$(STAMP): setup.cfg pyproject.toml
	@echo "setting up $(VENV) (python 3.11 venv, actorwire with every extra and the dev tools)" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -e '.[all,dev]' >&2
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/actorwire run examples/quickstart.toml

test: $(STAMP)
	$(BIN)/python -m pytest

# The seeded link chaos test over many seeds, for minutes (not part of CI, which runs one seed).
AW_CHAOS_SEEDS ?= 1-20
AW_CHAOS_SECONDS ?= 60
chaos: $(STAMP)
	AW_CHAOS_SEEDS=$(AW_CHAOS_SEEDS) AW_CHAOS_SECONDS=$(AW_CHAOS_SECONDS) \
		$(BIN)/python -m pytest tests/integration/test_chaos.py -q

bench: $(STAMP)
	@$(BIN)/python -m bench

# mypy cannot see setup.cfg's package_dir mapping, so it reads the code through a symlinked
# actorwire/ tree, module by module (it does not crawl symlinked folders).
MYPY_MODULES = $(shell find actors adapters pipelines -name '*.py' ! -name '*_pb2*' | sort | sed -e 's|/__init__\.py$$||' -e 's|\.py$$||' -e 's|/|.|g' -e 's|^|-m actorwire.|')

lint: $(STAMP)
	$(BIN)/ruff check actors adapters pipelines tests examples bench
	$(BIN)/ruff format --check actors adapters pipelines tests examples bench
	mkdir -p build/mypy/actorwire
	for d in actors adapters pipelines; do ln -sfn ../../../$$d build/mypy/actorwire/$$d; done
	MYPYPATH=build/mypy $(BIN)/mypy $(MYPY_MODULES)

# Regenerate the gRPC code from adapters/keysquare/keysquare.proto (a test checks it is current).
proto: $(STAMP)
	cd adapters/keysquare && ../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. \
		--pyi_out=. --grpc_python_out=. keysquare.proto
	sed -i 's/^import keysquare_pb2 as/from . import keysquare_pb2 as/' adapters/keysquare/keysquare_pb2_grpc.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
