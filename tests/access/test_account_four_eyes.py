"""Four eyes: changes that widen access wait for a second administrator (issue 11)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from access.approvals import FourEyesRefused, account_change_approve, account_change_request
from access.models import AccountChangeRequest
from accounts.models import User
from accounts.roles import Role
from audit.models import Event

pytestmark = pytest.mark.django_db
CHANGE_URL = "/admin/accounts/user/{pk}/change/"
REQUESTS_URL = "/admin/access/accountchangerequest/"


def _admin(make_user, name):
    return make_user(Role.ADMIN, username=name, is_staff=True, is_superuser=True)


def _change_form(user, **values) -> dict:
    """The admin change form as a browser posts it, for `user` with `values` edited."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "department": user.department,
        "site": user.site,
        "certifications": "\n".join(user.certifications),
        "groups": [group.pk for group in user.groups.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }
    flags = {"is_active": user.is_active, "is_staff": user.is_staff, "is_superuser": user.is_superuser}
    flags.update({key: values.pop(key) for key in list(values) if key in flags})
    data.update({key: "on" for key, value in flags.items() if value})
    data.update(values)
    return data


@pytest.fixture
def units(db):
    from accounts.models import OrgUnit

    for code in ("radiology", "cardiology"):
        OrgUnit.objects.create(kind=OrgUnit.Kind.DEPARTMENT, code=code, name=code.title())


def test_a_role_grant_waits_for_a_second_administrator(client, make_user, units):
    first, second = _admin(make_user, "ada"), _admin(make_user, "bea")
    target = make_user(Role.CLINICIAN, department="cardiology")
    radiologist = Group.objects.get_or_create(name=Role.RADIOLOGIST.value)[0]
    client.force_login(first)
    groups = [group.pk for group in target.groups.all()] + [radiologist.pk]
    response = client.post(
        CHANGE_URL.format(pk=target.pk), _change_form(target, groups=groups, first_name="Zoe")
    )
    assert response.status_code == 302, response.content[:3000]
    target = User.objects.get(pk=target.pk)
    # The harmless part is saved; the role is not granted yet.
    assert target.first_name == "Zoe" and target.role_names() == {"clinician"}
    pending = AccountChangeRequest.objects.get(target=target)
    assert (pending.state, pending.change, pending.requested_by) == (
        "pending",
        {"roles_add": ["radiologist"]},
        first,
    )
    requested = Event.objects.get(action="account.change_requested")
    assert (requested.actor_label, requested.payload["change"]) == ("ada", {"roles_add": ["radiologist"]})

    # The requester cannot approve it: refused, trailed, nothing changes.
    client.post(REQUESTS_URL, {"action": "approve", "_selected_action": [pending.pk]})
    assert User.objects.get(pk=target.pk).role_names() == {"clinician"}
    refused = Event.objects.get(action="account.change_approve")
    assert (refused.outcome, refused.actor_label) == ("denied", "ada")
    pending.refresh_from_db()
    assert pending.state == "pending"

    # A second administrator approves: the role takes effect, trailed with the approver as actor.
    client.force_login(second)
    client.post(REQUESTS_URL, {"action": "approve", "_selected_action": [pending.pk]})
    assert User.objects.get(pk=target.pk).role_names() == {"clinician", "radiologist"}
    pending.refresh_from_db()
    assert (pending.state, pending.decided_by) == ("approved", second)
    granted = Event.objects.filter(action="account.roles_change", resource_id=str(target.pk)).last()
    assert granted.actor_label == "bea" and granted.payload["after"] == ["clinician", "radiologist"]
    approved = Event.objects.get(action="account.change_approved")
    assert (approved.actor_label, approved.payload["requested_by"]) == ("bea", "ada")


def test_department_change_and_reactivation_are_held_narrowing_is_not(client, make_user, units):
    first = _admin(make_user, "ada")
    target = make_user(Role.RADIOLOGIST, department="radiology", certifications=["board_certified"])
    client.force_login(first)
    form = _change_form(target, department="cardiology", certifications="board_certified\nmammography")
    assert client.post(CHANGE_URL.format(pk=target.pk), form).status_code == 302
    target.refresh_from_db()
    assert (target.department, target.certifications) == ("radiology", ["board_certified"])
    assert AccountChangeRequest.objects.get(target=target).change == {
        "department": "cardiology",
        "certifications_add": ["mammography"],
    }
    # Deactivating narrows access: it takes effect at once. Re-activating waits.
    assert (
        client.post(CHANGE_URL.format(pk=target.pk), _change_form(target, is_active=False)).status_code == 302
    )
    target.refresh_from_db()
    assert target.is_active is False
    assert (
        client.post(CHANGE_URL.format(pk=target.pk), _change_form(target, is_active=True)).status_code == 302
    )
    target.refresh_from_db()
    assert target.is_active is False
    assert AccountChangeRequest.objects.filter(target=target, change={"is_active": True}).exists()


def test_a_new_privileged_account_starts_without_its_roles(client, make_user, units):
    client.force_login(_admin(make_user, "ada"))
    auditor = Group.objects.get_or_create(name=Role.AUDITOR.value)[0]
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "newaud",
            "password1": "a-long-enough-secret-41",
            "password2": "a-long-enough-secret-41",
            "usable_password": "true",
            "department": "",
            "site": "",
            "groups": [auditor.pk],
        },
    )
    assert response.status_code == 302, response.content[:3000]
    created = User.objects.get(username="newaud")
    assert created.role_names() == set()
    assert AccountChangeRequest.objects.get(target=created).change == {"roles_add": ["auditor"]}


@pytest.mark.parametrize("role", [role for role in Role if role is not Role.ADMIN])
def test_only_administrators_approve(make_user, role):
    requester = make_user(Role.ADMIN, username="ada")
    target = make_user(Role.CLINICIAN, department="cardiology")
    pending = account_change_request(
        requested_by=requester, target=target, change={"department": "radiology"}
    )
    other = make_user(role, department="cardiology")
    with pytest.raises(PermissionDenied):
        account_change_approve(approver=other, change_request=pending)
    target.refresh_from_db()
    pending.refresh_from_db()
    assert (target.department, pending.state) == ("cardiology", "pending")
    denial = Event.objects.order_by("-id").first()
    assert (denial.action, denial.outcome, denial.actor_label) == ("user.approve", "denied", other.username)


def test_the_person_concerned_cannot_approve_their_own_widening(make_user):
    requester = make_user(Role.ADMIN, username="ada")
    target = make_user(Role.ADMIN, username="bea")
    pending = account_change_request(requested_by=requester, target=target, change={"is_superuser": True})
    with pytest.raises(FourEyesRefused):
        account_change_approve(approver=target, change_request=pending)
    target.refresh_from_db()
    assert target.is_superuser is False


def test_a_pending_change_waits_on_the_other_administrators_home_and_menu(client, make_user):
    requester, second = _admin(make_user, "ada"), _admin(make_user, "bea")
    target = make_user(Role.CLINICIAN, username="zoe")
    pending = account_change_request(
        requested_by=requester, target=target, change={"department": "radiology"}
    )

    def home_of(user) -> str:
        client.force_login(user)
        return client.get("/", follow=True).content.decode()

    page = home_of(second)
    assert "Waiting for your approval" in page and f"Account change #{pending.pk} for zoe" in page
    assert f"/admin/access/accountchangerequest/{pending.pk}/change/" in page
    assert 'data-nav="access-approvals"' in page  # the menu entry
    approvals = client.get("/access/approvals/").content.decode()
    assert f"#{pending.pk}" in approvals and "department" in approvals
    # Not for the requester, the person concerned, or anyone who may not approve.
    for other in (requester, target, make_user(Role.AUDITOR)):
        page = home_of(other)
        assert "Waiting for your approval" not in page and 'data-nav="access-approvals"' not in page
    account_change_approve(approver=second, change_request=pending)
    assert "Waiting for your approval" not in home_of(second)


def test_anonymous_and_non_admins_do_not_see_the_queue(client, make_user):
    assert client.get(REQUESTS_URL).status_code == 302  # to the admin's sign-in
    client.force_login(make_user(Role.AUDITOR))
    assert client.get(REQUESTS_URL).status_code == 302


def test_no_other_request_path_widens_access_unapproved(rf, make_user):
    """The backstop: while a request is served, a widening save or role grant outside the admin's
    four-eyes flow is refused; narrowing and harmless changes go through."""
    from django.db import transaction

    from accounts.trail import acting_request

    target = make_user(Role.CLINICIAN, department="cardiology")
    request = rf.post("/somewhere/")
    request.user = make_user(Role.ADMIN, username="ada")
    token = acting_request.set(request)
    try:
        target.department = "radiology"
        with pytest.raises(FourEyesRefused), transaction.atomic():
            target.save()
        target.department = "cardiology"
        target.first_name = "Zoe"
        target.save()  # harmless
        with pytest.raises(FourEyesRefused), transaction.atomic():
            target.groups.add(Group.objects.get_or_create(name=Role.RADIOLOGIST.value)[0])
        with pytest.raises(FourEyesRefused), transaction.atomic():
            User.objects.create(username="sneaky", is_superuser=True)
        target.groups.remove(Group.objects.get(name=Role.CLINICIAN.value))  # narrowing: fine
    finally:
        acting_request.reset(token)
    target = User.objects.get(pk=target.pk)
    assert (target.department, target.first_name, target.role_names()) == ("cardiology", "Zoe", set())
    assert not User.objects.filter(username="sneaky").exists()
