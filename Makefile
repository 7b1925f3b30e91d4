# hypemu: `make run` sets up .venv and runs the default scenario; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench scenarios clean

# One set-up for every target: the venv with hypemu and its test extras. pip's own output goes to
# $(VENV)/install.log (shown only when the install fails), so `make run` prints only hypemu's.
$(BIN)/hypemu: setup.cfg pyproject.toml
	@$(PYTHON) -m venv $(VENV)
	@echo "hypemu: installing into $(VENV) (log: $(VENV)/install.log)"
	@{ $(BIN)/pip install --upgrade pip && $(BIN)/pip install -e '.[test]'; } \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(BIN)/hypemu

run: $(BIN)/hypemu
	@$(BIN)/hypemu run

# The suite is safe in parallel (no shared files, each test its own Machine): pytest-xdist, -n auto.
test: $(BIN)/hypemu
	$(BIN)/python -m pytest -q -n auto

bench: $(BIN)/hypemu
	$(BIN)/hypemu bench

scenarios: $(BIN)/hypemu
	$(BIN)/hypemu run scenarios/*.yaml

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
