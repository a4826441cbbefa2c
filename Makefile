# `make demo` and `make test` do their own set-up on a fresh Debian 12 (or Raspberry Pi OS).
VENV   := .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup setup-test demo test test-slow lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	scripts/setup.sh
	@touch $@

# The tests also need Chromium (the console is tested in a real browser) and PostgreSQL.
setup-test: setup
	scripts/setup.sh --test

demo: setup
	$(VENV)/bin/telecare demo $(ARGS)

test: setup-test lint
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# Failover runs longer than CI allows (several workers killed under a steady stream): `-m slow`.
test-slow: setup-test
	$(PYTHON) -m pytest -m slow $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

bench: setup
	$(PYTHON) bench/alarm_latency.py
	$(PYTHON) bench/alarm_received.py
	$(PYTHON) bench/signin_flood.py
	$(PYTHON) bench/escalation.py
	$(PYTHON) bench/alarm_cost.py
	$(PYTHON) bench/console.py
	$(PYTHON) bench/ingest.py
	$(PYTHON) bench/ingest_contention.py
	$(PYTHON) bench/write_turn.py
	$(PYTHON) bench/detect.py
	$(PYTHON) bench/hub_footprint.py
	$(PYTHON) bench/outbox_replay.py
	$(PYTHON) bench/falls.py
	$(PYTHON) bench/eval_spo2.py
	$(PYTHON) bench/eval_activity.py
	$(PYTHON) bench/eval_trends.py
	$(PYTHON) bench/eval_sims.py
	$(PYTHON) bench/sim_fleet.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
