# Suite: the two commands. `make run` sets up and starts everything on embedded defaults;
# `make test` sets up and runs the tests. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
export PIP_PROGRESS_BAR ?= on

.PHONY: run test lint format setup setup-dev models clean-var

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch==2.13.0 in requirements.txt resolves to the CPU wheel on local disk, never a CUDA build.
$(VENV)/.runtime-installed: requirements.txt | $(PY)
	@echo "Installing runtime requirements into $(VENV) ..."
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.runtime-installed
	@echo "Installing test and lint tools into $(VENV) ..."
	$(PIP) install -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.runtime-installed

setup-dev: $(VENV)/.dev-installed
	@scripts/system-deps.sh

models: setup
	$(PY) manage.py build_demo_models

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py build_demo_models
	$(PY) manage.py bootstrap_demo
	$(PY) manage.py run_suite

test: setup-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-var:
	rm -rf var
