"""The policy option require_approval: break-glass with a second person's approval (issue 11)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from access.approvals import (
    FourEyesRefused,
    action_approval_approve,
    action_approval_request,
    approvals_waiting_for,
)
from access.decisions import decide
from access.loader import parse_policy
from access.policy import DEFAULT_POLICY_FILE, activate, active_policy
from access.querysets import restrict
from accounts.roles import Role
from audit.models import Event
from audit.sealing import open_texts
from medical.models import Patient, Study

pytestmark = pytest.mark.django_db
REASON = "Trauma patient transferred tonight; need the identified original to match the referral."


@pytest.fixture
def break_glass_needs_approval():
    """The default policy with its break-glass rule asking for a second person's approval."""
    text = DEFAULT_POLICY_FILE.read_text()
    marker = '    actions: ["break_glass"]\n'
    assert text.count(marker) == 1
    original = active_policy()
    activate(parse_policy(text.replace(marker, marker + "    require_approval: true\n")))
    yield
    activate(original)


@pytest.fixture
def study(db):
    patient = Patient.objects.create(department="cardiology", pseudonym="ANON-1")
    return Study.objects.create(
        department="cardiology", patient=patient, study_instance_uid="1.2.3", received_via="upload"
    )


def _radiologist(make_user, name, department="radiology"):
    return make_user(
        Role.RADIOLOGIST, username=name, department=department, certifications=["board_certified"]
    )


def test_break_glass_waits_for_a_second_radiologist(make_user, study, break_glass_needs_approval):
    rosa, paul = _radiologist(make_user, "rosa"), _radiologist(make_user, "paul", department="cardiology")
    denied = decide(rosa, "break_glass", study)
    assert not denied.allowed and denied.approval_required and "second person's approval" in denied.reason
    assert not restrict(Study.objects.all(), rosa, "break_glass").exists()

    approval = action_approval_request(user=rosa, action="break_glass", resource=study, reason=REASON)
    requested = Event.objects.get(action="approval.requested")
    assert REASON not in requested.payload_json and open_texts(requested) == {"reason": REASON}
    assert not decide(rosa, "break_glass", study).allowed  # asked, not yet approved
    # The requester cannot approve her own request.
    with pytest.raises(FourEyesRefused):
        action_approval_approve(approver=rosa, approval=approval)
    assert approvals_waiting_for(paul) == [approval] and approvals_waiting_for(rosa) == []

    action_approval_approve(approver=paul, approval=approval)
    allowed = decide(rosa, "break_glass", study)
    assert allowed.allowed and allowed.approval == approval.pk and "paul" in allowed.reason
    assert list(restrict(Study.objects.all(), rosa, "break_glass")) == [study]
    granted = Event.objects.get(action="approval.granted")
    assert (granted.actor_label, granted.resource_type, granted.resource_id) == (
        "paul",
        "study",
        str(study.pk),
    )
    # The approval is for rosa only: paul's own use needs its own.
    assert not decide(paul, "break_glass", study).allowed


@pytest.mark.parametrize(
    "role",
    [Role.CLINICIAN, Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE_OFFICER],
)
def test_only_a_peer_who_could_act_may_approve(make_user, study, break_glass_needs_approval, role):
    rosa = _radiologist(make_user, "rosa")
    approval = action_approval_request(user=rosa, action="break_glass", resource=study, reason=REASON)
    other = make_user(role, department="cardiology", certifications=["board_certified"])
    with pytest.raises(PermissionDenied):
        action_approval_approve(approver=other, approval=approval)
    approval.refresh_from_db()
    assert approval.state == "pending" and not decide(rosa, "break_glass", study).allowed
    assert Event.objects.filter(
        action="study.break_glass", outcome="denied", actor_label=other.username
    ).exists()


def test_a_request_needs_a_reason_and_a_rule_that_asks_for_approval(
    make_user, study, break_glass_needs_approval
):
    rosa = _radiologist(make_user, "rosa")
    with pytest.raises(ValidationError, match="reason of at least"):
        action_approval_request(user=rosa, action="break_glass", resource=study, reason="need it")
    clinician = make_user(Role.CLINICIAN, department="radiology")
    with pytest.raises(PermissionDenied):  # no rule would allow it even with an approval
        action_approval_request(user=clinician, action="break_glass", resource=study, reason=REASON)


def test_without_the_option_break_glass_needs_no_approval(make_user, study):
    assert decide(_radiologist(make_user, "rosa"), "break_glass", study).allowed


def test_a_pending_request_waits_on_the_peers_home_and_menu(
    client, make_user, study, break_glass_needs_approval
):
    rosa, paul = _radiologist(make_user, "rosa"), _radiologist(make_user, "paul", department="cardiology")
    approval = action_approval_request(user=rosa, action="break_glass", resource=study, reason=REASON)

    def home_of(user) -> str:
        client.force_login(user)
        return client.get("/", follow=True).content.decode()

    page = home_of(paul)
    assert "Waiting for your approval" in page and f"#{approval.pk} rosa asks to break-glass" in page
    assert 'data-nav="access-approvals"' in page
    # The requester finds her pending request through the menu, not as something to approve.
    page = home_of(rosa)
    assert "Waiting for your approval" not in page and 'data-nav="access-approvals"' in page
    for role in (Role.CLINICIAN, Role.ADMIN, Role.AUDITOR):
        page = home_of(make_user(role, department="cardiology", certifications=["board_certified"]))
        assert "Waiting for your approval" not in page and 'data-nav="access-approvals"' not in page
    action_approval_approve(approver=paul, approval=approval)
    page = home_of(paul)
    assert "Waiting for your approval" not in page and 'data-nav="access-approvals"' not in page


def test_the_study_page_says_where_to_ask_when_break_glass_needs_approval(
    client, make_user, study, break_glass_needs_approval
):
    paul = _radiologist(make_user, "paul", department="cardiology")
    client.force_login(paul)
    page = client.get(f"/medical/studies/{study.pk}/").content.decode()
    link = f"/access/approvals/?action=break_glass&amp;resource_type=study&amp;resource_id={study.pk}"
    assert 'data-testid="break-glass-approval"' in page and link in page
    form = client.get(link.replace("&amp;", "&")).context["form"]
    assert (form["action"].value(), form["resource_id"].value()) == ("break_glass", str(study.pk))
    # Without the option the card is not there: break-glass is allowed straight away.
    activate(parse_policy(DEFAULT_POLICY_FILE.read_text()))
    assert (
        'data-testid="break-glass-approval"'
        not in client.get(f"/medical/studies/{study.pk}/").content.decode()
    )


def test_approvals_page(client, make_user, study, break_glass_needs_approval):
    rosa, paul = _radiologist(make_user, "rosa"), _radiologist(make_user, "paul", department="cardiology")
    assert client.get("/access/approvals/").status_code == 302  # sign in first
    client.force_login(rosa)
    asked = client.post(
        "/access/approvals/",
        {
            "do": "request",
            "action": "break_glass",
            "resource_type": "study",
            "resource_id": study.pk,
            "reason": REASON,
        },
    )
    assert asked.status_code == 302
    bad = client.post("/access/approvals/", {"do": "request", "action": "break_glass", "resource_type": "study",
                                             "resource_id": "999999", "reason": REASON})  # fmt: skip
    assert bad.status_code == 400 and b"No study with id 999999" in bad.content
    client.force_login(paul)
    page = client.get("/access/approvals/")
    assert REASON.encode() in page.content
    pending = page.context["waiting"][0]
    assert client.post("/access/approvals/", {"do": "approve", "approval": pending.pk}).status_code == 302
    assert decide(rosa, "break_glass", study).allowed
