"""Expired API tokens: refused and deleted when presented; the user's others swept when a token is issued
(not on every authenticated call: one query per call)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue

pytestmark = pytest.mark.django_db


def test_expired_tokens_are_swept_at_issue_and_a_call_reads_tokens_once(make_user):
    user = make_user(Role.AUDITOR)
    stale, stale_key = token_issue(user=user)
    AuthToken.objects.filter(pk=stale.pk).update(expiry=timezone.now() - timedelta(minutes=1))
    live, key = token_issue(user=user)  # sweeps the expired one
    assert list(AuthToken.objects.filter(user=user)) == [live]

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/me/").status_code == 200
    assert sum("knox_authtoken" in q["sql"] for q in queries.captured_queries) == 1

    AuthToken.objects.filter(pk=live.pk).update(expiry=timezone.now() - timedelta(minutes=1))
    assert api.get("/api/me/").status_code == 401
    assert not AuthToken.objects.filter(user=user).exists()  # the presented expired token is deleted
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {stale_key}")
    assert api.get("/api/me/").status_code == 401
