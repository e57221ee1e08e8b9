import pytest
from django.core.management import call_command

from accounts.demo import DEMO_USERS
from accounts.models import OrgUnit, User
from accounts.roles import Role


@pytest.mark.django_db
def test_bootstrap_demo_is_idempotent_and_prints_passwords_once(capsys):
    call_command("bootstrap_demo")
    first = capsys.readouterr().out
    assert "DEMO ONLY" in first
    for spec in DEMO_USERS:
        assert spec.username in first
    users = {u.username: u for u in User.objects.all()}
    assert set(users) >= {spec.username for spec in DEMO_USERS}
    assert {r.value for spec in DEMO_USERS for r in spec.roles} == {r.value for r in Role}
    assert users["clinician"].department == "radiology" and users["cardiologist"].department == "cardiology"
    assert set(OrgUnit.objects.values_list("code", flat=True)) >= {
        "radiology",
        "cardiology",
        "aml-eu",
        "aml-us",
        "site-a",
        "site-b",
    }
    hashes = dict(User.objects.values_list("username", "password"))

    call_command("bootstrap_demo")
    second = capsys.readouterr().out
    assert "passwords are shown this once" not in second
    assert "already present" in second
    assert dict(User.objects.values_list("username", "password")) == hashes
    assert User.objects.count() == len(users)
