"""bootstrap_demo: the organisation and one user per role, idempotent; then each app's demo steps in
order. The apps' own steps are tested in their folders (tests/medical, finance, manufacturing), so
these tests create the accounts only, or run one tiny step registered here: seconds, not minutes."""

import pytest
from django.core.management import CommandError, call_command

from accounts.demo import DEMO_USERS
from accounts.models import OrgUnit, User
from accounts.roles import Role
from portal import demo


@pytest.mark.django_db
def test_bootstrap_demo_is_idempotent_and_prints_passwords_once(capsys):
    call_command("bootstrap_demo", "--no-data")
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

    call_command("bootstrap_demo", "--no-data")
    second = capsys.readouterr().out
    assert "passwords are shown this once" not in second
    assert "already present" in second
    assert dict(User.objects.values_list("username", "password")) == hashes
    assert User.objects.count() == len(users)


@pytest.fixture
def tiny_step():
    ran = []

    @demo.register("zz tiny test step", order=999)
    def step(say):
        ran.append(OrgUnit.objects.count())
        say("tiny step done")

    yield ran
    demo._STEPS.pop("zz tiny test step")


@pytest.mark.django_db
def test_a_step_runs_after_the_organisation_exists_and_reports_progress(capsys, tiny_step):
    call_command("bootstrap_demo", "--step", "zz tiny test step")
    out = capsys.readouterr().out
    assert tiny_step and tiny_step[0] >= 6  # the organisation's units came first
    assert "demo data: zz tiny test step" in out and "    tiny step done" in out
    assert {"medical studies", "finance", "manufacturing"} <= {step.name for step in demo.steps()}
    with pytest.raises(CommandError, match="No demo step named nope; the steps are: .*medical studies"):
        call_command("bootstrap_demo", "--step", "nope")
