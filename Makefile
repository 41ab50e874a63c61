# Every target builds .venv from nothing when it is missing, so a fresh machine with only
# Python 3.11 needs no other step.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint proto clean chaos docs

# The editable install is setuptools' "strict" mode: a tree of links to every file under
# build/__editable__.*, put on sys.path by a .pth, so that mypy and IDEs see actorwire's
# types as users' code imports them (the default mode maps package_dir through an import
# hook that only Python itself sees). It links files, not folders: a module added or removed
# needs a reinstall, so the stamp also depends on every code folder (a folder's time changes
# when an entry in it is added, removed or renamed).
CODE_DIRS := $(shell find actors adapters pipelines -type d ! -name __pycache__)

# Setup output goes to stderr so that `make bench` prints only JSON on stdout.
$(STAMP): setup.cfg pyproject.toml $(CODE_DIRS)
	@echo "setting up $(VENV) (python 3.11 venv, actorwire with every extra and the dev tools)" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -e '.[all,dev]' --config-settings editable_mode=strict >&2
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/actorwire run examples/demo.toml

# The suite under coverage ([tool.coverage.*] in pyproject.toml): branch coverage of the three
# code folders, the Python processes the tests start included. Data files go to
# build/coverage and are combined there; the report fails below the floor. The report is
# printed after a failing suite too, whose status make then returns.
COVERAGE_DIR := build/coverage

test: $(STAMP)
	@rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	@status=0; $(BIN)/python -m coverage run -m pytest || status=$$?; \
	$(BIN)/python -m coverage combine --quiet && $(BIN)/python -m coverage report || \
	{ [ $$status -ne 0 ] || status=2; }; \
	exit $$status

# The seeded link chaos test over many seeds, for minutes (not part of CI, which runs one seed).
AW_CHAOS_SEEDS ?= 1-20
AW_CHAOS_SECONDS ?= 60
chaos: $(STAMP)
	AW_CHAOS_SEEDS=$(AW_CHAOS_SEEDS) AW_CHAOS_SECONDS=$(AW_CHAOS_SECONDS) \
		$(BIN)/python -m pytest tests/integration/test_chaos.py -q

bench: $(STAMP)
	@$(BIN)/python -m bench

# The documentation site (mkdocs.yml, docs/): built to build/site with warnings as errors,
# the API reference read from the docstrings.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

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
	cd adapters/smarkets && ../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. \
		--pyi_out=. eto.proto seto.proto
	sed -i 's/^import eto_pb2 as/from . import eto_pb2 as/' adapters/smarkets/seto_pb2.py
	sed -i 's/^import eto_pb2 as/from . import eto_pb2 as/' adapters/smarkets/seto_pb2.pyi

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
