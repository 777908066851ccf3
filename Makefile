# The OMS developer entry points. `make run` brings the whole stack up; `make test`
# installs what it needs and runs every test. Both work from a clean clone.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Python >= 3.11: prefer an explicit 3.11/3.12 interpreter when the default is older.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { echo $$p; break; }; done)

PACKAGES := libs/contracts libs/messaging libs/servicekit libs/devstack \
	services/order-svc services/inventory-svc services/customer-svc \
	services/channel-gateway services/notifier
MODULES := oms_contracts oms_messaging oms_servicekit oms_devstack order_svc inventory_svc \
	customer_svc channel_gateway notifier
STAMP := $(VENV)/.installed

.PHONY: help venv run stop status check test test-unit lint format contracts bench clean browser

help:
	@echo "make run [DETACH=1]  start broker, database, the five services and demo data"
	@echo "make stop            stop a stack started with DETACH=1"
	@echo "make check [GRACE=s] do the running stack's orders and stock reservations agree?"
	@echo "make test            install what is needed and run every test"
	@echo "make lint            ruff (lint + format check) and mypy"
	@echo "make contracts       regenerate libs/contracts/schemas from the event models"
	@echo "make bench [QUICK=1] [SCENARIO='a b'] [SCALE=0.1]"
	@echo "                     run the benchmarks (bench/results/; python -m bench --list)"
	@echo "make mutation [MUTATE='order-svc ...']"
	@echo "                     mutation testing of the services' domain/ (slow; not in test)"

$(STAMP): requirements/constraints.txt requirements/dev.in $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required (set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/dev.in
	$(PY) -m pip install -q --disable-pip-version-check --no-deps $(foreach p,$(PACKAGES),-e $(p))
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m oms_devstack run $(if $(DETACH),--detach)

stop: $(STAMP)
	$(PY) -m oms_devstack stop

status: $(STAMP)
	$(PY) -m oms_devstack status

check: $(STAMP)
	$(PY) -m oms_devstack check $(if $(GRACE),--grace-s $(GRACE))

# Tests run on TEST_WORKERS processes (pytest-xdist): most of them wait on a poll or a
# broker round trip, so the cores idle without it. Tests that start whole stacks share one
# worker (the root conftest), so two stacks never run at once. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The board's browser test drives Debian's chromium (Playwright's own download cannot
# work here). Installed when missing and we are root; otherwise that test is skipped.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the board's browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
		|| echo "could not install chromium: the browser test will be skipped"; \
	elif [ ! -x $(CHROMIUM) ]; then \
		echo "no $(CHROMIUM) (install Debian's chromium as root): the browser test will be skipped"; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(foreach m,$(MODULES),-p $(m)) -p bench

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

contracts: $(STAMP)
	$(PY) -m oms_contracts.schema_export

bench: $(STAMP)
	$(PY) -m bench $(if $(QUICK),--quick) $(if $(PROFILE),--profile) $(if $(SCALE),--scale $(SCALE)) $(SCENARIO)

# mutmut over services/*/src/*/domain with each service's plain-object unit tests; the
# survivors are listed in test-artifacts/mutation-report.txt.
.PHONY: mutation
mutation: $(STAMP)
	$(PY) tools/mutation.py $(MUTATE)

clean:
	rm -rf $(VENV) .oms .pytest_cache .mypy_cache .ruff_cache
