"""Settings come from the environment; a bad value stops start-up with a message naming the variable."""

import os

import pytest
from django.core.exceptions import ImproperlyConfigured

from ops import env
from tests.support import manage, subprocess_env


@pytest.fixture
def environ():
    saved = dict(os.environ)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("Yes", True), ("off", False), ("0", False)]
)
def test_env_bool_accepts_the_usual_spellings(environ, raw, expected):
    environ["X_FLAG"] = raw
    assert env.env_bool("X_FLAG", not expected) is expected


def test_env_bool_rejects_anything_else(environ):
    environ["X_FLAG"] = "maybe"
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env.env_bool("X_FLAG", False)


def test_env_int_bounds(environ):
    environ["X_N"] = "0"
    with pytest.raises(ImproperlyConfigured, match="X_N=0 is below the minimum 1"):
        env.env_int("X_N", 5, minimum=1)
    environ["X_N"] = "five"
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("X_N", 5)
    del environ["X_N"]
    assert env.env_int("X_N", 5) == 5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("512MiB", 512 * 2**20), ("2GiB", 2 * 2**30), ("1.5GB", 1_500_000_000), ("100", 100)],
)
def test_env_bytes(environ, raw, expected):
    environ["X_SIZE"] = raw
    assert env.env_bytes("X_SIZE", 0) == expected


def test_env_bytes_rejects_unknown_units(environ):
    environ["X_SIZE"] = "3 parsecs"
    with pytest.raises(ImproperlyConfigured, match="X_SIZE"):
        env.env_bytes("X_SIZE", 0)


def test_env_mapping_and_flags(environ):
    environ["X_MAP"] = "CT_SCANNER1=radiology, ECHO1 = cardiology,"
    assert env.env_mapping("X_MAP", {}) == {"CT_SCANNER1": "radiology", "ECHO1": "cardiology"}
    environ["X_MAP"] = "CT_SCANNER1"
    with pytest.raises(ImproperlyConfigured, match="X_MAP: 'CT_SCANNER1' is not KEY=value"):
        env.env_mapping("X_MAP", {})
    del environ["X_MAP"]
    assert env.env_mapping("X_MAP", {"A": "b"}) == {"A": "b"}
    environ["X_FLAGS"] = "retain_device_identity=on,scrub_unlisted_person_names=off"
    assert env.env_flags("X_FLAGS", {}) == {
        "retain_device_identity": True,
        "scrub_unlisted_person_names": False,
    }
    environ["X_FLAGS"] = "retain_uids=perhaps"
    with pytest.raises(ImproperlyConfigured, match="retain_uids='perhaps' is not on/off"):
        env.env_flags("X_FLAGS", {})


def test_database_url_defaults_and_errors(environ):
    environ.pop("DATABASE_URL", None)
    config = env.database_config("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/suite"
    config = env.database_config("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    assert (config["ENGINE"], config["NAME"], config["PORT"]) == (
        "django.db.backends.postgresql",
        "suite",
        5432,
    )
    # PostgreSQL connections persist (health-checked) unless the operator says otherwise.
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (60, True)
    environ["DATABASE_URL_CONN_MAX_AGE"] = "0"
    config = env.database_config("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (0, False)
    environ["DATABASE_URL_CONN_MAX_AGE"] = "-1"
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL_CONN_MAX_AGE"):
        env.database_config("DATABASE_URL", "sqlite:////tmp/x.sqlite3")
    environ.pop("DATABASE_URL_CONN_MAX_AGE")
    environ["DATABASE_URL"] = "mysql://root@localhost/x"
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme 'mysql'"):
        env.database_config("DATABASE_URL", "sqlite:////tmp/x.sqlite3")


def test_broker_url(environ):
    environ.pop("CELERY_BROKER_URL", None)
    assert env.broker_url("CELERY_BROKER_URL", "filesystem://") == "filesystem://"
    environ["CELERY_BROKER_URL"] = "amqp://guest@localhost//"
    with pytest.raises(ImproperlyConfigured, match="unsupported broker"):
        env.broker_url("CELERY_BROKER_URL", "filesystem://")


def test_secret_key_is_generated_once_with_private_permissions(tmp_path, environ):
    environ.pop("X_SECRET", None)
    key_file = tmp_path / "keys" / "secret"
    first = env.secret_key("X_SECRET", key_file)
    assert len(first) >= 50
    assert env.secret_key("X_SECRET", key_file) == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    environ["X_SECRET"] = "from-the-environment"
    assert env.secret_key("X_SECRET", key_file) == "from-the-environment"


def test_defaults_live_under_var_and_variables_override_them(tmp_path):
    script = "from django.conf import settings as s; print(s.DEBUG, s.MEDIA_ROOT, s.MODEL_ROOT, s.VAR_DIR)"
    clean = subprocess_env()
    for name in ("DJANGO_DEBUG", "MEDIA_ROOT", "MODEL_ROOT"):
        clean.pop(name, None)
    clean["DJANGO_SETTINGS_MODULE"] = "suite.settings"  # the defaults, not the test run's overrides
    result = manage("shell", "--no-imports", "-c", script, env=clean, timeout=60)
    debug, media, models, var = result.stdout.split()
    assert debug == "False"
    assert media == f"{var}/media" and models == f"{var}/models"
    overridden = manage("shell", "--no-imports", "-c", script, timeout=60,
                        env={**clean, "MODEL_ROOT": str(tmp_path), "DJANGO_DEBUG": "true"})  # fmt: skip
    debug, _media, models, _var = overridden.stdout.split()
    assert (debug, models) == ("True", str(tmp_path))


def test_the_medical_settings_follow_the_environment():
    script = (
        "from medical import conf; print(sorted(conf.ae_allowlist().items()), conf.deid_options().retain_uids, "
        "conf.upload_max_files())"
    )
    result = manage(
        "shell", "--no-imports", "-c", script, timeout=60,
        env=subprocess_env(DICOM_AE_ALLOWLIST="CT_SCANNER1=radiology", MEDICAL_DEID_OPTIONS="retain_uids=on",
                           MEDICAL_UPLOAD_MAX_FILES="50"),
    )  # fmt: skip
    assert result.stdout.strip() == "[('CT_SCANNER1', 'radiology')] True 50"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DJANGO_DEBUG", "perhaps", "DJANGO_DEBUG='perhaps' is not a boolean"),
        ("DATABASE_URL", "oracle://x/y", "unsupported scheme 'oracle'"),
        ("CELERY_BROKER_URL", "kafka://x", "unsupported broker"),
        ("SUITE_WEB_THREADS", "lots", "SUITE_WEB_THREADS='lots' is not an integer"),
        ("DICOM_AE_ALLOWLIST", "CT_SCANNER1", "DICOM_AE_ALLOWLIST: 'CT_SCANNER1' is not KEY=value"),
        ("MEDICAL_DEID_OPTIONS", "retain_uids=maybe", "retain_uids='maybe' is not on/off"),
    ],
)
def test_bad_values_stop_start_up_with_a_clear_message(variable, value, message):
    result = manage("serve_web", "--help", env=subprocess_env(**{variable: value}), timeout=60)
    assert result.returncode != 0
    assert message in result.stderr


def test_check_deploy_is_clean_with_production_variables(tmp_path):
    production = subprocess_env(
        DJANGO_SECRET_KEY="a" * 20 + "-production-secret-" + "z" * 40,
        DJANGO_ALLOWED_HOSTS="suite.hospital.example",
        SUITE_HTTPS="true",
        DJANGO_DEBUG="false",
    )
    production.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests in this process
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
