"""Per-object grants (django-guardian) combined with the policy (tests/access/data/grants.yaml)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm, get_perms

from access.decisions import decide
from access.errors import PolicyDenied
from access.grants import codename_for, find_grant, grant_permissions, granted_pks
from access.selectors import ObjectGrant, object_grants
from access.services import grant, revoke
from accounts.models import User
from accounts.roles import Role
from tests.access.conftest import trail

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user, use_policy):
    use_policy("grants.yaml")
    return {
        "clinician": make_user(Role.CLINICIAN, username="clin", department="radiology"),
        "radiologist": make_user(Role.RADIOLOGIST, username="rad", department="cardiology"),
        "cardiology_record": make_user(username="patient_c", department="cardiology"),
        "legal_record": make_user(username="counsel", department="legal"),
    }


def test_without_a_grant_the_require_grant_rule_does_not_apply(people):
    decision = decide(people["clinician"], "view", people["cardiology_record"])
    assert not decision.allowed
    shared = next(e for e in decision.evaluations if e.rule == "shared_records")
    assert shared.note == "no grant for this object" and not shared.applies


def test_policy_and_grant_together_allow(people):
    assign_perm("view_user", people["clinician"], people["cardiology_record"])
    decision = decide(people["clinician"], "view", people["cardiology_record"])
    assert decision.allowed
    assert decision.policy == "shared_records"
    assert decision.grant == "user:clin view_user"
    # Only that object: the grant is per object.
    other = User.objects.create(username="patient_d", department="cardiology")
    assert not decide(people["clinician"], "view", other).allowed


def test_a_grant_to_a_role_group_counts(people):
    assign_perm("view_user", Group.objects.get(name="clinician"), people["cardiology_record"])
    decision = decide(people["clinician"], "view", people["cardiology_record"])
    assert decision.allowed and decision.grant == "group:clinician view_user"


def test_grant_does_not_bypass_a_deny_rule(people):
    assign_perm("view_user", people["clinician"], people["legal_record"])
    decision = decide(people["clinician"], "view", people["legal_record"])
    assert not decision.allowed
    assert decision.policy == "protected_records"
    assert decision.grant is None


def test_grant_alone_without_a_require_grant_rule_does_nothing(people):
    # No rule lets radiologists view user records, with or without grants.
    assign_perm("view_user", people["radiologist"], people["cardiology_record"])
    assert people["radiologist"].has_perm("view_user", people["cardiology_record"])  # guardian says yes
    decision = decide(people["radiologist"], "view", people["cardiology_record"])
    assert not decision.allowed and decision.policy is None
    # A grant for an action whose rule does not admit grants does nothing either.
    assign_perm("change_user", people["clinician"], people["cardiology_record"])
    assert not decide(people["clinician"], "manage", people["cardiology_record"]).allowed


def test_inactive_users_hold_no_grants(people):
    assign_perm("view_user", people["clinician"], people["cardiology_record"])
    people["clinician"].is_active = False
    people["clinician"].save()
    assert find_grant(people["clinician"], "view", people["cardiology_record"]) is None
    assert granted_pks(people["clinician"], "view", User) == set()
    assert not decide(people["clinician"], "view", people["cardiology_record"]).allowed


def test_grant_service_is_authorized_by_share_and_trailed(people):
    radiologist, clinician, record = people["radiologist"], people["clinician"], people["cardiology_record"]
    description = grant(actor=radiologist, user=clinician, action="view", obj=record)
    assert description == "user:clin view_user"
    assert decide(clinician, "view", record).allowed
    (event,) = trail(action="user.grant")
    assert (event.actor_label, event.outcome, event.policy, event.resource_id) == (
        "rad",
        "succeeded",
        "sharing",
        str(record.pk),
    )
    assert event.payload["grantee"] == "clin" and event.payload["permission"] == "view_user"
    assert object_grants(record) == [ObjectGrant("clin", "view")]

    assert revoke(actor=radiologist, user=clinician, action="view", obj=record) is True
    assert not decide(clinician, "view", record).allowed
    (event,) = trail(action="user.revoke")
    assert event.payload["was_granted"] is True
    assert object_grants(record) == []


def test_grant_refused_changes_nothing_and_is_trailed(people):
    clinician, radiologist = people["clinician"], people["radiologist"]
    # The radiologist (cardiology) may not share a legal-department record.
    with pytest.raises(PolicyDenied) as caught:
        grant(actor=radiologist, user=clinician, action="view", obj=people["legal_record"])
    assert "No rule allows 'share'" in str(caught.value)
    assert get_perms(clinician, people["legal_record"]) == []
    assert trail(action="user.grant") == []
    (denial,) = trail(action="user.share")
    assert (denial.outcome, denial.actor_label, denial.resource_id) == (
        "denied",
        "rad",
        str(people["legal_record"].pk),
    )
    assert "resource.department: subject.department" in denial.payload["failed_conditions"]


def test_grant_of_an_undeclared_action_is_refused_before_anything_is_written(people):
    with pytest.raises(ValueError, match="'predict' is not an action on user resources"):
        grant(
            actor=people["radiologist"],
            user=people["clinician"],
            action="predict",
            obj=people["cardiology_record"],
        )
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="declare it in User.Meta.permissions"):
        grant(
            actor="task:access.tests",
            user=people["clinician"],
            action="share",
            obj=people["cardiology_record"],
        )
    assert trail(action="user.grant") == []


def test_permission_naming_convention():
    assert codename_for("break_glass", User) == "break_glass_user"
    assert grant_permissions("study", ["ask", "break_glass"]) == [
        ("ask_study", "Can ask this study"),
        ("break_glass_study", "Can break glass this study"),
    ]
