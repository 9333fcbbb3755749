# Two commands on a fresh machine with Python 3.11 and make:
#   make run   - install, migrate, create the table and demo users, start the stack
#   make test  - provision the test tools (Debian's chromium and promtool), install and run the whole suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install provision run test bench-smoke clean
.NOTPARALLEL:

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

.env:
	cp .env.example .env

run: install .env
	$(BIN)/python manage.py migrate --noinput
	@echo "Demo logins (local only):"
	@$(BIN)/python manage.py create_demo_users
	$(BIN)/python scripts/devstack.py

# Installs Debian's chromium and prometheus (for promtool) when they are
# missing and this user may (root or passwordless sudo); otherwise fails at
# once with one line saying how.
provision:
	@bash scripts/provision.sh

# Prerequisites run left to right (the makefile is serial): a machine that
# cannot get its test tools stops before the venv is built. The suite runs
# in two pytest-xdist workers, the whole-stack tests in one (see
# tests/conftest.py): most of their time is spent waiting on child processes.
test: provision install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

bench-smoke: install
	$(BIN)/python bench/api_submit.py --smoke

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
