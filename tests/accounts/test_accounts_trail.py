"""Account, role, attribute and password changes on the trail with before/after; admin actions too."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.roles import Role
from accounts.trail import acting_as
from audit.models import Event

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-much-longer-secret-41"


def _events(action):
    return list(Event.objects.filter(action=action).order_by("id"))


def test_admin_resets_a_password_trailed_without_the_secret(client, make_user):
    admin = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    target = make_user(Role.RADIOLOGIST, department="radiology")
    client.force_login(admin)
    response = client.post(
        f"/admin/accounts/user/{target.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    changed = _events("account.password_change")[-1]
    assert (changed.resource_id, changed.actor_label) == (str(target.pk), admin.username)
    logged = _events("admin.change")[-1]
    assert (logged.actor_label, logged.resource_type, logged.resource_id) == (
        admin.username,
        "accounts.user",
        str(target.pk),
    )
    target.refresh_from_db()
    every_payload = " ".join(event.payload_json for event in Event.objects.all())
    assert NEW_PASSWORD not in every_payload and target.password not in every_payload


def test_account_creation_is_trailed_with_its_attributes(make_user):
    from accounts.models import User

    with acting_as("task:tests.accounts"):
        user = User.objects.create_user("newrad", password=NEW_PASSWORD, department="radiology")
    created = _events("account.create")[-1]
    assert created.resource_id == str(user.pk) and created.actor_label == "task:tests.accounts"
    assert created.payload["before"] is None and created.payload["after"]["department"] == "radiology"
    assert NEW_PASSWORD not in created.payload_json


def test_attribute_and_role_changes_carry_before_and_after(make_user):
    user = make_user(Role.CLINICIAN, department="cardiology")
    with acting_as("task:tests.accounts"):
        user.department = "radiology"
        user.is_staff = True
        user.save()
        user.groups.add(Group.objects.get_or_create(name=Role.RADIOLOGIST.value)[0])
        user.groups.remove(Group.objects.get_or_create(name=Role.CLINICIAN.value)[0])
    change = _events("account.change")[-1]
    assert change.payload == {
        "fields": ["department", "is_staff"],
        "before": {"department": "cardiology", "is_staff": False},
        "after": {"department": "radiology", "is_staff": True},
    }
    added, removed = _events("account.roles_change")[-2:]
    assert (added.payload["before"], added.payload["after"]) == (["clinician"], ["clinician", "radiologist"])
    assert (removed.payload["before"], removed.payload["after"]) == (
        ["clinician", "radiologist"],
        ["radiologist"],
    )


def test_a_save_that_changes_nothing_writes_nothing(make_user):
    user = make_user(Role.CLINICIAN)
    before = Event.objects.count()
    with acting_as("task:tests.accounts"):
        user.save()
    assert Event.objects.count() == before
