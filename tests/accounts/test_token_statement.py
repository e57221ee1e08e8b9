"""An API call finds its token, the token's user and the user's roles in one statement
(accounts.authentication): what the policy then sees is the user as stored now, attributes and groups."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.roles import Role
from tests.factories import api_key

pytestmark = pytest.mark.django_db


def _me(key: str):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/me/")
    return response, [q["sql"] for q in queries.captured_queries]


def test_token_user_and_roles_come_from_one_statement_and_follow_the_stored_groups(make_user):
    user = make_user(
        Role.AUDITOR,
        Role.ML_ENGINEER,
        department="radiology",
        site="site-a",
        certifications=["board_certified"],
    )
    key = api_key(user)
    response, statements = _me(key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert sorted(body["roles"]) == sorted([Role.AUDITOR.value, Role.ML_ENGINEER.value])
    assert (body["department"], body["site"], body["certifications"]) == (
        "radiology",
        "site-a",
        ["board_certified"],
    )
    reading_roles = [sql for sql in statements if "auth_group" in sql]
    assert len(reading_roles) == 1 and "knox_authtoken" in reading_roles[0], statements

    # Each call reads the groups as they are now: nothing is kept between calls.
    user.groups.remove(Group.objects.get(name=Role.ML_ENGINEER.value))
    assert _me(key)[0].json()["roles"] == [Role.AUDITOR.value]
    user.groups.clear()
    assert _me(key)[0].json()["roles"] == []  # no group: still found (LEFT JOIN), with no roles


def test_two_tokens_of_one_user_and_a_wrong_or_inactive_one(make_user):
    user = make_user(Role.AUDITOR)
    first, second = api_key(user), api_key(user)
    assert _me(first)[0].status_code == 200 and _me(second)[0].status_code == 200
    wrong = first[:-1] + ("0" if first[-1] != "0" else "1")  # the same prefix, another key
    assert _me(wrong)[0].status_code == 401
    user.is_active = False
    user.save()
    assert _me(first)[0].status_code == 401
