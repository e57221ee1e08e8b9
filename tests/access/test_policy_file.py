"""The configured policy file: start-up, `manage.py check`, and reload."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from access import policy as policy_module
from access.checks import check_policy_file
from access.decisions import decide
from access.errors import PolicyError
from access.policy import DEFAULT_POLICY_FILE, active_policy, load_at_startup, reload
from accounts.roles import Role
from tests.access.conftest import DATA, trail
from tests.support import MANAGE, ROOT

UNKNOWN_ACTION = """\
policies:
  - name: typo
    subjects: ["role:radiologist"]
    resources: ["model:medical_qa"]
    actions: ["predcit"]
"""


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "bad-policy.yaml"
    path.write_text(UNKNOWN_ACTION)
    return path


@pytest.fixture
def restore_policy():
    original = active_policy()
    yield
    policy_module.activate(original)


def test_startup_refuses_a_malformed_file(settings, bad_file, restore_policy):
    settings.ACCESS_POLICY_FILE = str(bad_file)
    before = active_policy()
    with pytest.raises(ImproperlyConfigured, match=rf"{bad_file}, line 5: unknown action 'predcit'"):
        load_at_startup()
    assert active_policy() is before


def test_system_check_names_file_and_line(settings, bad_file):
    settings.ACCESS_POLICY_FILE = str(bad_file)
    (error,) = check_policy_file()
    assert error.id == "access.E001" and error.obj == f"{bad_file}:5"
    assert f"{bad_file}, line 5" in error.msg
    with pytest.raises(SystemCheckError, match="line 5: unknown action 'predcit'"):
        call_command("check")
    settings.ACCESS_POLICY_FILE = str(DEFAULT_POLICY_FILE)
    assert check_policy_file() == []


def manage_check(policy_file, var_dir) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SUITE_VAR_DIR": str(var_dir),  # never the checkout's var/: the subprocess may write a key there
        "ACCESS_POLICY_FILE": str(policy_file),
        "DJANGO_SETTINGS_MODULE": "tests.access.policy_file_settings",
    }
    return subprocess.run(
        [sys.executable, MANAGE, "check"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_manage_py_check_fails_on_a_malformed_file(bad_file, tmp_path):
    var_dir = tmp_path / "var"
    result = manage_check(bad_file, var_dir)
    assert result.returncode != 0
    assert f"{bad_file}, line 5: unknown action 'predcit'" in result.stderr
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text(UNKNOWN_ACTION.replace('["predcit"]', '["predict"'))
    result = manage_check(broken_yaml, var_dir)
    assert result.returncode != 0 and f"{broken_yaml}, line 6: is not valid YAML" in result.stderr
    good = manage_check(DATA / "seed.yaml", var_dir)
    assert good.returncode == 0, good.stderr


@pytest.mark.django_db
def test_reload_puts_the_new_file_in_force_and_trails_its_hash(settings, tmp_path, make_user, restore_policy):
    path = tmp_path / "policy.yaml"
    shutil.copy(DATA / "seed.yaml", path)
    settings.ACCESS_POLICY_FILE = str(path)
    radiologist = make_user(Role.RADIOLOGIST, department="radiology", certifications=["board_certified"])
    clinician = make_user(Role.CLINICIAN, department="radiology")
    previous_hash = active_policy().sha256
    admin = make_user(Role.ADMIN)

    reload(actor=admin)
    assert decide(radiologist, "fine_tune", "model:medical_qa").allowed  # only the seed policy allows this
    assert not decide(clinician, "predict", "model:medical_qa").allowed
    (event,) = trail(action="policy.reload")
    assert (event.outcome, event.actor_label, event.resource_type, event.resource_id) == (
        "succeeded",
        admin.username,
        "policy",
        "suite",
    )
    assert event.payload["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert event.payload["previous_sha256"] == previous_hash
    assert event.payload["rules"] == 1


@pytest.mark.django_db
def test_reload_of_a_malformed_file_keeps_the_policy_in_force(settings, bad_file, restore_policy):
    in_force = active_policy()
    settings.ACCESS_POLICY_FILE = str(bad_file)
    with pytest.raises(PolicyError):
        reload()
    assert active_policy() is in_force
    (event,) = trail(action="policy.reload")
    assert (event.outcome, event.actor_label) == ("failed", "system:access")
    (problem,) = event.payload["problems"]
    assert problem.startswith(f"Access policy {bad_file}, line 5: unknown action 'predcit'")
