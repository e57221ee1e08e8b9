"""A test run writes under its own temporary directory, never into the deployment's var/."""

from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.settings import DEPLOYMENT_VAR_DIR

DEPLOYMENT_SNAPSHOT = (
    {
        str(p.relative_to(DEPLOYMENT_VAR_DIR)): p.stat().st_mtime_ns
        for p in DEPLOYMENT_VAR_DIR.rglob("*")
        if p.is_file()
    }
    if DEPLOYMENT_VAR_DIR.exists()
    else {}
)


def _outside_deployment_var(path) -> bool:
    return not Path(path).resolve().is_relative_to(DEPLOYMENT_VAR_DIR.resolve())


def test_every_writable_folder_is_outside_the_deployment_var(db):
    for name in ("VAR_DIR", "MEDIA_ROOT", "MODEL_ROOT", "VAULT_KEY_DIR", "STATIC_ROOT"):
        assert _outside_deployment_var(getattr(settings, name)), name
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            assert _outside_deployment_var(options[key]), key
    if connection.vendor == "sqlite":
        assert _outside_deployment_var(connection.settings_dict["NAME"])


def test_the_run_so_far_left_the_deployment_var_untouched():
    now = (
        {
            str(p.relative_to(DEPLOYMENT_VAR_DIR)): p.stat().st_mtime_ns
            for p in DEPLOYMENT_VAR_DIR.rglob("*")
            if p.is_file()
        }
        if DEPLOYMENT_VAR_DIR.exists()
        else {}
    )
    assert now == DEPLOYMENT_SNAPSHOT
