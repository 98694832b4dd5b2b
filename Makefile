# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/chfw demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest, with every database test run on SQLite and on PostgreSQL (tests/conftest.py). A
# throwaway server (scripts/pg.sh) is started in a temporary directory -- on tmpfs when it
# has room, since each test clones a database, which is heavy on file creation -- and
# stopped and deleted however pytest ends. CHFW_TEST_PG_URL=<server URL> uses a server of
# your own instead; PG=0 runs SQLite only.
unit: $(STAMP)
	@scripts/ensure-chromium.sh
	@scripts/ensure-prometheus.sh
	@if [ -n "$$CHFW_TEST_PG_URL" ] || [ "$(PG)" = 0 ]; then \
		exec $(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi; \
	shm=$$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $$4 }'); \
	if [ "$${shm:-0}" -gt 2097152 ]; then base=/dev/shm; else base=$${TMPDIR:-/tmp}; fi; \
	dir=$$(mktemp -d "$$base/chfw-pg.XXXXXX") || exit 1; \
	trap 'scripts/pg.sh stop "$$dir"; rm -rf "$$dir"' EXIT; \
	trap 'exit 130' INT TERM; \
	port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	url=$$(scripts/pg.sh start "$$dir" "$$port" postgres) || exit 1; \
	echo "PostgreSQL for tests: $$url"; \
	CHFW_TEST_PG_URL=$$url $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
