"""Settings for a test run: suite.settings with every writable folder under one per-run temporary
directory, never the deployment's var/.

pytest-django imports this module before any conftest (DJANGO_SETTINGS_MODULE in pyproject.toml),
so the environment is set before suite.settings reads it. Subprocesses the tests start (worker,
manage.py) inherit SUITE_TEST_RUN_DIR and reuse the same folder; the process that created the
folder removes it at exit. The test database (VAR_DIR/test_suite.sqlite3 on SQLite) is therefore
per run too; on PostgreSQL .ci/run names the database per run.
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

DEPLOYMENT_VAR_DIR = Path(__file__).resolve().parents[1] / "var"

if not os.environ.get("SUITE_TEST_RUN_DIR"):
    _run_dir = tempfile.mkdtemp(prefix="suite-test-")
    os.environ["SUITE_TEST_RUN_DIR"] = _run_dir
    atexit.register(shutil.rmtree, _run_dir, ignore_errors=True)
# pytest-xdist (make test runs `-n 2`): each worker gets its own folder and Celery queue inside the
# run, so workers never share a database file, key directory, model cache or queue. Subprocesses a
# worker starts inherit the adjusted variables (and the marker, so they do not nest them again).
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and not os.environ.get("SUITE_TEST_WORKER"):
    os.environ["SUITE_TEST_WORKER"] = _worker
    _worker_dir = Path(os.environ["SUITE_TEST_RUN_DIR"]) / _worker
    _worker_dir.mkdir(parents=True, exist_ok=True)
    os.environ["SUITE_TEST_RUN_DIR"] = str(_worker_dir)
    os.environ["CELERY_QUEUE"] = f"{os.environ.get('CELERY_QUEUE', 'suite')}-{_worker}"
_run = Path(os.environ["SUITE_TEST_RUN_DIR"])
os.environ["SUITE_VAR_DIR"] = str(_run / "var")
os.environ["MEDIA_ROOT"] = str(_run / "var" / "media")
os.environ["MODEL_ROOT"] = str(_run / "var" / "models")
os.environ["VAULT_KEY_DIR"] = str(_run / "var" / "keys")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_run / "var" / "metrics")

from suite.settings import *  # noqa: E402, F403

# Fast password hashing: every factory user sets a password (PBKDF2 at Django's 1M iterations costs
# ~0.5 s per hash on this machine). Production keeps the default hashers.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    # which test process a session on the server belongs to (pg_stat_activity), for the teardown check
    # in tests/conftest.py
    DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = (  # noqa: F405
        f"suite-tests {os.environ.get('SUITE_TEST_WORKER', 'main')} pid {os.getpid()} "
        f"{Path(sys.argv[0]).name} {' '.join(sys.argv[1:3])}"[:63]
    )
