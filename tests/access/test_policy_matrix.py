"""Who may do what: the seed example and the default policy, role by role.

The expected answers are written out from the semantics in POLICY.md, not computed by decide().
"""

from __future__ import annotations

import itertools

import pytest

from access.decisions import decide
from access.loader import load_policy_file
from access.policy import DEFAULT_POLICY_FILE
from access.resources import Resource
from accounts.roles import Role
from tests.access.conftest import DATA

ROLES = [role.value for role in Role]
DOMAIN_AUDITORS = {"clinical_auditor", "aml_auditor", "plant_auditor"}
SEED = load_policy_file(DATA / "seed.yaml")
DEFAULT = load_policy_file(DEFAULT_POLICY_FILE)

# --- the seed example: radiologist_access ----------------------------------------------------
# Allowed exactly when: radiologist, department radiology, board certified, predict or fine_tune.
SEED_ALLOWED = {
    ("radiologist", "predict", "radiology", True),
    ("radiologist", "fine_tune", "radiology", True),
}
# One test per role, every combination inside it (one user per combination of attributes): the
# matrix grows with each role, and a test per cell cost more in set-up than in deciding.


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_seed_policy_matrix(make_user, role):
    wrong = []
    for department, certified in itertools.product(["radiology", "cardiology"], [True, False]):
        user = make_user(role, department=department, certifications=["board_certified"] if certified else [])
        for action in ["predict", "fine_tune", "promote"]:
            decision = decide(user, action, "model:medical_qa", policy=SEED)
            expected = (role, action, department, certified) in SEED_ALLOWED
            if decision.allowed is not expected or decision.policy != (
                "radiologist_access" if expected else None
            ):
                wrong.append((action, department, certified, decision.allowed))
            # The rule names one model only.
            if decide(user, action, "model:medical_qa_v2", policy=SEED).allowed:
                wrong.append((action, department, certified, "medical_qa_v2"))
    assert wrong == []


@pytest.mark.django_db
def test_seed_denial_explains_the_failed_condition(make_user):
    user = make_user(Role.RADIOLOGIST, department="radiology", certifications=[])
    decision = decide(user, "predict", "model:medical_qa", policy=SEED)
    assert not decision.allowed
    failed = [(c.condition, c.actual) for c in decision.conditions if not c.passed]
    assert failed == [("certification: board_certified", "(none)")]
    assert "certification: board_certified" in decision.reason


# --- the default policy ---------------------------------------------------------------------
# For each (resource type, action): the roles allowed when the resource belongs to the user's
# own department/team/site ("same"), and those allowed whatever it belongs to ("any").
# "certified": roles allowed whatever the owner, but only with the board_certified certification.
SAME, ANY, CERTIFIED = "same", "any", "certified"
DEFAULT_EXPECTED = {
    ("study", "view"): {SAME: {"radiologist", "clinician"}, ANY: set()},
    ("study", "ask"): {SAME: {"radiologist", "clinician"}, ANY: set()},
    ("study", "upload"): {SAME: {"radiologist", "clinician"}, ANY: set()},
    ("study", "share"): {SAME: {"radiologist"}, ANY: set()},
    ("study", "unshare"): {SAME: {"radiologist"}, ANY: set()},
    ("study", "review"): {SAME: {"radiologist"}, ANY: set()},
    ("study", "train"): {SAME: {"radiologist"}, ANY: {"ml_engineer"}},
    ("study", "break_glass"): {SAME: set(), ANY: set(), CERTIFIED: {"radiologist"}},
    # auditors (issue 13) and AML auditors read every team's cases
    ("case", "view"): {SAME: {"compliance_officer"}, ANY: {"auditor", "aml_auditor"}},
    ("case", "triage"): {SAME: {"compliance_officer"}, ANY: set()},
    ("case", "close"): {SAME: {"compliance_officer"}, ANY: set()},
    ("case", "sar"): {SAME: {"compliance_officer"}, ANY: set()},
    ("case", "share"): {SAME: {"compliance_officer"}, ANY: set()},
    ("alert", "triage"): {SAME: {"compliance_officer"}, ANY: set()},
    ("transaction", "screen"): {SAME: {"compliance_officer"}, ANY: set()},
    ("sar", "sar"): {SAME: {"compliance_officer"}, ANY: set()},
    ("work_order", "view"): {SAME: {"maintenance_engineer"}, ANY: set()},
    ("work_order", "file"): {SAME: {"maintenance_engineer"}, ANY: set()},
    ("work_order", "work"): {SAME: {"maintenance_engineer"}, ANY: set()},
    ("work_order", "close"): {SAME: {"maintenance_engineer"}, ANY: set()},
    ("asset", "view"): {SAME: {"maintenance_engineer"}, ANY: set()},
}
# Which attribute ties a resource to a user, and the user's value vs another value.
OWNERSHIP = {
    "study": ("department", "radiology", "cardiology"),
    "case": ("department", "aml-eu", "aml-us"),
    "alert": ("department", "aml-eu", "aml-us"),
    "transaction": ("department", "aml-eu", "aml-us"),
    "sar": ("department", "aml-eu", "aml-us"),
    "work_order": ("site", "site-a", "site-b"),
    "asset": ("site", "site-a", "site-b"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_default_policy_matrix_for_owned_resources(make_user, role):
    """Every (resource type, action) of DEFAULT_EXPECTED, owned by the user's unit or another, with
    and without the certification: (type, action, ownership, certified, decided) where it is wrong."""
    wrong = []
    for owning in sorted(set(OWNERSHIP.values())):  # (attribute, the user's value, another value)
        attribute, users_value, other_value = owning
        for certified in (True, False):
            user = make_user(
                role, certifications=["board_certified"] if certified else [], **{attribute: users_value}
            )
            for (resource_type, action), expected in DEFAULT_EXPECTED.items():
                if OWNERSHIP[resource_type] != owning:
                    continue
                for ownership in ("same", "other"):
                    owner = users_value if ownership == "same" else other_value
                    resource = Resource(resource_type, "r1", {attribute: owner})
                    allowed = (
                        role in expected[ANY]
                        or (ownership == "same" and role in expected[SAME])
                        or (certified and role in expected.get(CERTIFIED, set()))
                    )
                    decided = decide(user, action, resource, policy=DEFAULT).allowed
                    if decided is not allowed:
                        wrong.append((resource_type, action, ownership, certified, decided))
    assert wrong == []


# Resources named by string (no attributes): (resource, action) -> roles allowed.
DEFAULT_NAMED = {
    ("model:medical_qa", "predict"): {"clinician", "radiologist", "ml_engineer"},
    ("model:medical_qa", "fine_tune"): {"ml_engineer"},
    ("model:medical_qa", "promote"): {"ml_engineer"},
    ("model:medical_qa", "register"): {"ml_engineer"},
    ("model:finance_screening", "predict"): {"compliance_officer", "ml_engineer"},
    ("model:manufacturing_rul", "predict"): {"maintenance_engineer", "ml_engineer"},
    ("model:finance_screening", "fine_tune"): {"ml_engineer"},
    ("trail:suite", "read"): {"auditor", "admin", "compliance_officer", *DOMAIN_AUDITORS},
    ("trail:suite", "export"): {"auditor", "admin", *DOMAIN_AUDITORS},  # what each may read, only
    ("policy:suite", "explain"): {"auditor", "admin"},
    ("policy:suite", "reload"): {"admin"},
    ("user:someone", "manage"): {"admin"},
    ("user:someone", "approve"): {"admin"},  # four eyes: never one's own request (access.approvals)
    # each event type: the auditor, and the one domain's auditor (issue 11); never another domain's
    ("trail_event:study", "read"): {"auditor", "clinical_auditor"},  # not compliance, not admin
    ("trail_event:quarantine", "read"): {"auditor", "clinical_auditor"},
    ("trail_event:case", "read"): {"auditor", "compliance_officer", "aml_auditor"},
    ("trail_event:alert", "read"): {"auditor", "compliance_officer", "aml_auditor"},  # AML alerts
    ("trail_event:machine_alert", "read"): {"auditor", "plant_auditor"},  # plant alerts: not the AML roles
    ("trail_event:work_order", "read"): {"auditor", "plant_auditor"},
    ("trail_event:recording", "read"): {"auditor", "plant_auditor"},
    ("trail_event:sanctions_list", "read"): {"auditor", "compliance_officer", "aml_auditor"},
    ("trail_event:user", "read"): {"auditor", "admin"},
    ("trail_event:model", "read"): {"auditor"},
    ("trail_event:study", "unseal"): {"auditor", "clinical_auditor"},
    ("trail_event:case", "unseal"): set(),
    ("portal:medical", "view"): {"clinician", "radiologist"},
    ("portal:finance", "view"): {"compliance_officer", "auditor", "aml_auditor"},
    ("portal:trail", "view"): {"auditor", "admin", "compliance_officer", *DOMAIN_AUDITORS},
    ("portal:health", "view"): {"admin"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_default_policy_matrix_for_named_resources(make_user, role):
    user = make_user(role, department="radiology", site="site-a", certifications=["board_certified"])
    wrong = [
        (resource, action, role not in allowed)  # what was decided
        for (resource, action), allowed in DEFAULT_NAMED.items()
        if decide(user, action, resource, policy=DEFAULT).allowed is not (role in allowed)
    ]
    assert wrong == []


@pytest.mark.django_db
def test_deny_overrides_allow_for_a_user_with_two_roles(make_user):
    user = make_user(Role.ADMIN, Role.RADIOLOGIST, department="radiology")
    study = Resource("study", "s1", {"department": "radiology"})
    decision = decide(user, "view", study, policy=DEFAULT)
    assert not decision.allowed
    assert decision.policy == "administrators_never_see_patient_data"
    allow_rule = next(e for e in decision.evaluations if e.rule == "radiologist_department_studies")
    assert allow_rule.applies  # it applied, and lost


@pytest.mark.django_db
def test_nobody_without_a_rule(make_user, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", "root@example.org", "x" * 16)
    assert not decide(superuser, "read", "trail:suite", policy=DEFAULT).allowed  # no superuser bypass
    inactive = make_user(Role.AUDITOR, is_active=False)
    assert not decide(inactive, "read", "trail:suite", policy=DEFAULT).allowed
    from django.contrib.auth.models import AnonymousUser

    decision = decide(AnonymousUser(), "read", "trail:suite", policy=DEFAULT)
    assert not decision.allowed and "Not signed in" in decision.reason
    empty_department = make_user(Role.CLINICIAN, department="")
    # An empty attribute never matches, not even another empty one.
    assert not decide(empty_department, "view", Resource("study", "s", {"department": ""}), policy=DEFAULT)
    # An action outside the vocabulary (a typo in code) is denied, and the reason says why.
    typo = decide(empty_department, "veiw", Resource("study", "s", {}), policy=DEFAULT)
    assert not typo.allowed and "'veiw' is not an action on study resources" in typo.reason
    # A resource without the attribute a condition needs: the condition fails.
    clinician = make_user(Role.CLINICIAN, department="radiology")
    missing = decide(clinician, "view", Resource("study", "s", {}), policy=DEFAULT)
    assert not missing.allowed
    assert any(c.actual == "(the resource has no such attribute)" for c in missing.conditions)
