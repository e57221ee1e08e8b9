"""The enforcement points: check() for services, the DRF permission, the portal mixin and decorator.
Every denial of a signed-in user is trailed; a denied write changes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.utils.html import escape
from guardian.shortcuts import assign_perm

from access.enforcement import check
from access.errors import PolicyDenied
from accounts.models import User
from accounts.roles import Role
from tests.access.conftest import trail
from tests.factories import api_key

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.access.urls")]


# --- check(), for services and Celery tasks ---------------------------------------------------
def test_check_denies_with_a_trailed_reason(make_user):
    clinician = make_user(Role.CLINICIAN, username="clin", department="radiology")
    with pytest.raises(PolicyDenied) as caught:
        check(clinician, "export", "trail:suite")
    assert isinstance(caught.value, PermissionDenied)
    assert not caught.value.decision.allowed
    (event,) = trail(action="trail.export")
    assert (event.outcome, event.actor_label, event.resource_type, event.resource_id) == (
        "denied",
        "clin",
        "trail",
        "suite",
    )
    assert event.payload["reason"] == caught.value.decision.reason
    assert event.payload["resource"] == "trail:suite"


def test_check_allows_and_trails_allowed_decisions_only_when_asked(make_user):
    auditor = make_user(Role.AUDITOR, username="aud")
    decision = check(auditor, "read", "trail:suite")
    assert decision.allowed and decision.policy == "trail_reading"
    assert trail(action="trail.read") == []  # not a sensitive action: nothing recorded
    check(auditor, "read", "trail:suite", record_allowed=True)  # the caller asks
    check(auditor, "export", "trail:suite")  # the rule asks (record_allowed: true)
    assert [(e.action, e.outcome, e.policy) for e in trail(actor_label="aud")] == [
        ("trail.read", "allowed", "trail_reading"),
        ("trail.export", "allowed", "trail_export"),
    ]


def test_check_records_the_system_actor_for_tasks(make_user):
    clinician = make_user(Role.CLINICIAN, department="radiology")
    with pytest.raises(PolicyDenied):
        check(clinician, "promote", "model:medical_qa", actor="task:tuning.promote")
    (event,) = trail(action="model.promote")
    assert (event.actor_kind, event.actor_label) == ("system", "task:tuning.promote")


# --- DRF ------------------------------------------------------------------------------------
def test_api_anonymous_gets_401_without_an_event(client):
    assert client.get("/probe/api/trail/").status_code == 401
    assert trail(outcome="denied") == []


@pytest.mark.parametrize(("role", "status"), [(Role.CLINICIAN, 403), (Role.AUDITOR, 200)])
def test_api_resource_level_decision(client, make_user, role, status):
    user = make_user(role, username="someone")
    client.force_login(user)
    response = client.get("/probe/api/trail/")
    assert response.status_code == status
    (event,) = trail(action="trail.read")
    assert event.outcome == ("denied" if status == 403 else "allowed")  # the view asks for allowed too
    assert event.payload["path"] == "/probe/api/trail/"
    if status == 403:
        assert response.json()["detail"] == event.payload["reason"]


@pytest.mark.parametrize(
    ("roles", "status"),
    [((), 403), ((Role.CLINICIAN,), 403), ((Role.AUDITOR,), 403), ((Role.ADMIN,), 200)],
)
def test_api_denied_write_changes_nothing(client, make_user, roles, status):
    record = make_user(username="patient", department="cardiology")
    actor = make_user(*roles, department="cardiology")
    key = api_key(actor)
    response = client.patch(
        f"/probe/api/records/{record.pk}/",
        {"department": ""},  # clearing a department narrows access: no second administrator needed
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == status
    record.refresh_from_db()
    assert record.department == ("" if status == 200 else "cardiology")
    denials = trail(action="user.manage", outcome="denied")
    if status == 403:
        (event,) = denials
        assert (event.actor_kind, event.resource_id) == ("token", str(record.pk))
    else:
        assert denials == []


def test_api_write_that_widens_access_needs_four_eyes(client, make_user):
    """Moving someone to another department through any API is refused: it needs a second administrator."""
    record = make_user(username="patient", department="cardiology")
    key = api_key(make_user(Role.ADMIN, department="cardiology"))
    response = client.patch(
        f"/probe/api/records/{record.pk}/",
        {"department": "legal"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 403 and "second administrator" in response.json()["detail"]
    record.refresh_from_db()
    assert record.department == "cardiology"


def test_api_object_level_decision_with_grants(client, make_user, use_policy):
    use_policy("grants.yaml")
    clinician = make_user(Role.CLINICIAN, department="radiology")
    same = make_user(username="same", department="radiology")
    other = make_user(username="other", department="cardiology")
    legal = make_user(username="legal", department="legal")
    client.force_login(clinician)
    assert client.get(f"/probe/api/records/{same.pk}/").status_code == 200
    assert client.get(f"/probe/api/records/{other.pk}/").status_code == 403
    assign_perm("view_user", clinician, other)
    assign_perm("view_user", clinician, legal)
    assert client.get(f"/probe/api/records/{other.pk}/").json() == {
        "username": "other",
        "department": "cardiology",
    }
    assert client.get(f"/probe/api/records/{legal.pk}/").status_code == 403  # deny beats the grant
    assert [e.resource_id for e in trail(action="user.view", outcome="denied")] == [
        str(other.pk),
        str(legal.pk),
    ]
    # PUT is not in the view's policy_action mapping: refused whatever the policy says.
    assert (
        client.put(f"/probe/api/records/{same.pk}/", {}, content_type="application/json").status_code == 403
    )


def test_api_list_is_restricted(client, make_user, use_policy):
    use_policy("grants.yaml")
    clinician = make_user(Role.CLINICIAN, username="clin", department="radiology")
    make_user(username="same", department="radiology")
    shared = make_user(username="shared", department="cardiology")
    make_user(username="hidden", department="cardiology")
    assign_perm("view_user", clinician, shared)
    client.force_login(clinician)
    names = [row["username"] for row in client.get("/probe/api/records/").json()]
    assert names == ["clin", "same", "shared"]


def test_api_without_a_resource_must_decide_per_object_or_per_row(client, make_user):
    client.force_login(make_user(Role.ADMIN))
    with pytest.raises(
        ImproperlyConfigured, match="UnscopedListApi uses PolicyPermission without policy_resource"
    ):
        client.get("/probe/api/unscoped/")


# --- portal ---------------------------------------------------------------------------------
def test_portal_anonymous_is_sent_to_log_in(client):
    for url in ("/probe/records/1/", "/probe/records/", "/probe/trail/suite/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert trail(outcome="denied") == []


def test_portal_mixin_decides_on_the_object(client, make_user, use_policy):
    use_policy("grants.yaml")
    clinician = make_user(Role.CLINICIAN, department="radiology")
    same = make_user(username="same", department="radiology")
    other = make_user(username="other", department="cardiology")
    client.force_login(clinician)
    assert client.get(f"/probe/records/{same.pk}/").content == b"record same"
    response = client.get(f"/probe/records/{other.pk}/")
    assert response.status_code == 403
    (event,) = trail(action="user.view", outcome="denied")
    assert event.resource_id == str(other.pk) and event.payload["method"] == "GET"
    assert escape(event.payload["reason"]) in response.content.decode()  # the 403 page says why
    assert client.get("/probe/records/").content.decode().split() == sorted([clinician.username, "same"])


@pytest.mark.parametrize(
    ("role", "status"), [(Role.MAINTENANCE_ENGINEER, 403), (Role.COMPLIANCE_OFFICER, 200)]
)
def test_portal_decorator(client, make_user, role, status):
    client.force_login(make_user(role))
    assert client.get("/probe/trail/suite/").status_code == status
    assert len(trail(action="trail.read", outcome="denied")) == (1 if status == 403 else 0)


def test_user_has_perm_is_not_the_decision(make_user):
    """Guardian answers has_perm with True for a grant the policy does not honour."""
    user = make_user(Role.CLINICIAN, department="radiology")
    record = User.objects.create(username="r", department="legal")
    assign_perm("view_user", user, record)
    assert user.has_perm("view_user", record)
    with pytest.raises(PolicyDenied):
        check(user, "view", record)
