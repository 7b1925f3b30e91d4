# hypemu: `make run` sets up .venv and runs the default scenario; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench scenarios clean

$(BIN)/hypemu: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/hypemu

run: $(BIN)/hypemu
	$(BIN)/hypemu run

test: $(BIN)/hypemu
	$(BIN)/python -m pytest -q

bench: $(BIN)/hypemu
	$(BIN)/hypemu bench

scenarios: $(BIN)/hypemu
	$(BIN)/hypemu run scenarios/*.yaml

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
