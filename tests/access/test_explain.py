"""Explain: the page and the API that say why the policy decides as it does."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from accounts.roles import Role
from tests.access.conftest import trail
from tests.factories import api_key

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.access.urls")]

PAGE = "/access/explain/"
API = "/api/access/explain"


@pytest.fixture
def radiologist(make_user):
    return make_user(Role.RADIOLOGIST, username="rosa", department="radiology", certifications=[])


# --- authorization ----------------------------------------------------------------------------
def test_anonymous(client):
    page = client.get(PAGE)
    assert page.status_code == 302 and "/login/" in page["Location"]
    assert client.get(API, {"user": "x", "action": "read", "resource": "trail:suite"}).status_code == 401


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.CLINICIAN, 403), (Role.ML_ENGINEER, 403), (Role.AUDITOR, 200), (Role.ADMIN, 200)],
)
def test_page_and_api_are_for_auditors_and_admins(client, make_user, radiologist, role, status):
    client.force_login(make_user(role, department="radiology"))
    assert client.get(PAGE).status_code == status
    query = {"user": "rosa", "action": "predict", "resource": "model:medical_qa"}
    assert client.get(API, query).status_code == status
    assert len(trail(action="policy.explain", outcome="denied")) == (2 if status == 403 else 0)


# --- content --------------------------------------------------------------------------------
def test_api_explains_an_allowed_decision(client, make_user, radiologist):
    key = api_key(make_user(Role.AUDITOR))
    response = client.get(
        API,
        {"user": "rosa", "action": "predict", "resource": "model:medical_qa"},
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["allowed"], body["policy"], body["subject"], body["resource"]) == (
        True,
        "medical_models",
        "rosa",
        "model:medical_qa",
    )
    assert body["subject_attributes"]["roles"] == ["radiologist"]
    rules = {rule["rule"]: rule for rule in body["rules"]}
    assert (
        rules["medical_models"]["applies"]
        and rules["medical_models"]["matched_subject"] == "role:radiologist"
    )
    assert rules["ml_engineering"]["matched_subject"] is None and not rules["ml_engineering"]["applies"]
    assert len(body["policy_sha256"]) == 64


def test_api_explains_a_failed_condition_on_an_object(client, make_user, radiologist):
    client.force_login(make_user(Role.ADMIN))
    record = make_user(username="someone", department="cardiology")
    # rosa (a radiologist) may not manage user records: only admins may.
    body = client.get(
        API, {"user": "rosa", "action": "manage", "resource_type": "user", "resource_id": record.pk}
    ).json()
    assert body["allowed"] is False and body["policy"] is None
    assert body["resource"] == "user:someone"
    assert body["resource_attributes"] == {"department": "cardiology", "site": ""}
    (rule,) = body["rules"]
    assert rule["rule"] == "user_administration" and rule["matched_subject"] is None


def test_api_explains_a_deny_and_a_grant(client, make_user, use_policy):
    use_policy("grants.yaml")
    client.force_login(make_user(Role.AUDITOR))
    clinician = make_user(Role.CLINICIAN, username="clin", department="radiology")
    shared = make_user(username="shared", department="cardiology")
    legal = make_user(username="legal", department="legal")
    assign_perm("view_user", clinician, shared)
    assign_perm("view_user", clinician, legal)

    granted = client.get(
        API, {"user": "clin", "action": "view", "resource_type": "user", "resource_id": shared.pk}
    )
    body = granted.json()
    assert (body["allowed"], body["policy"], body["grant"]) == (True, "shared_records", "user:clin view_user")
    own = next(rule for rule in body["rules"] if rule["rule"] == "own_department_records")
    assert own["conditions"] == [
        {
            "rule": "own_department_records",
            "condition": "resource.department: subject.department",
            "expected": "subject.department = radiology",
            "actual": "cardiology",
            "passed": False,
        }
    ]

    denied = client.get(
        API, {"user": "clin", "action": "view", "resource_type": "user", "resource_id": legal.pk}
    ).json()
    assert (denied["allowed"], denied["policy"], denied["grant"]) == (False, "protected_records", None)
    assert "overrides any allow rule or grant" in denied["reason"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"user": "nobody", "action": "read", "resource": "trail:suite"}, "user"),
        ({"user": "rosa", "action": "fly", "resource": "trail:suite"}, "action"),
        ({"user": "rosa", "action": "read", "resource": "trail"}, "resource"),
        ({"user": "rosa", "action": "read", "resource": "ledger:x"}, "resource"),
        ({"user": "rosa", "action": "view", "resource_type": "user", "resource_id": "999999"}, "resource_id"),
        ({"user": "rosa", "action": "view", "resource_type": "user"}, "resource"),
        ({"user": "rosa", "action": "view"}, "resource"),
    ],
)
def test_api_questions_that_cannot_be_asked(client, make_user, radiologist, query, field):
    client.force_login(make_user(Role.AUDITOR))
    response = client.get(API, query)
    assert response.status_code == 400
    assert field in response.json()


def test_page_shows_every_rule_evaluated(client, make_user, radiologist):
    client.force_login(make_user(Role.AUDITOR))
    response = client.get(
        PAGE, {"user": "rosa", "action": "view", "resource_type": "user", "resource_id": radiologist.pk}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-allowed="false"' in html
    assert 'data-rule="user_administration" data-applies="false"' in html
    assert "the subject is not one of role:admin" in html


def test_page_reports_bad_questions_on_the_form(client, make_user):
    client.force_login(make_user(Role.ADMIN))
    html = client.get(PAGE, {"user": "ghost", "action": "read", "resource": "trail:suite"}).content.decode()
    assert "There is no user" in html and "explain-result" not in html
    html = client.get(PAGE, {"user": "ghost", "action": "read"}).content.decode()
    assert "Give either a resource" in html


def test_explain_is_in_the_openapi_schema(client, make_user):
    client.force_login(make_user(Role.ADMIN))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/access/explain/"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"user", "action", "resource"}
    response_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response_schema == {"$ref": "#/components/schemas/ExplanationOutput"}
    assert "rules" in schema["components"]["schemas"]["ExplanationOutput"]["properties"]
