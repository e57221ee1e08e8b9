"""API tokens: hashed at rest, expiring, owner-only, trailed, accepted as Token and Bearer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_issue, token_revoke
from audit.models import Event
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_key_is_not_stored_and_both_schemes_work(make_user):
    user = make_user(Role.AUDITOR)
    instance, key = token_issue(user=user)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        rows = " ".join(str(v) for row in cursor.fetchall() for v in row)
    assert key not in rows and instance.digest in rows
    for scheme in ("Token", "Bearer"):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        response = api.get("/api/me/")
        assert response.status_code == 200, response.content
        assert response.json()["username"] == user.username
    assert instance.expiry > timezone.now() + timedelta(days=1)


def test_expired_and_revoked_tokens_are_refused(make_user):
    user = make_user(Role.AUDITOR)
    instance, key = token_issue(user=user)
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/me/").status_code == 401
    instance, key = token_issue(user=user)
    assert token_revoke(user=user, token_prefix=instance.token_key) == 1
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/me/").status_code == 401


def test_issuance_and_revocation_trailed_without_the_key(make_user):
    user = make_user(Role.AUDITOR)
    instance, key = token_issue(user=user)
    token_revoke(user=user, token_prefix=instance.token_key)
    events = Event.objects.filter(action__startswith="api_token.").order_by("pk")
    assert [e.action for e in events] == ["api_token.issue", "api_token.revoke"]
    assert all(key not in str(e.payload) for e in events)


def test_owner_cannot_revoke_someone_elses_token(make_user):
    owner, other = make_user(Role.AUDITOR), make_user(Role.AUDITOR)
    instance, _key = token_issue(user=owner)
    assert token_revoke(user=other, token_prefix=instance.token_key) == 0
    assert AuthToken.objects.filter(pk=instance.pk).exists()


def test_token_page_shows_key_once_and_lists_only_own_tokens(client, make_user):
    user, other = make_user(Role.AUDITOR), make_user(Role.AUDITOR)
    other_instance, _ = token_issue(user=other)
    client.force_login(user)
    response = client.post("/account/api-token/", {"issue": "1"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    mine = AuthToken.objects.get(user=user)
    body = response.content.decode()
    assert mine.token_key in body and other_instance.token_key not in body
    again = client.get("/account/api-token/").content.decode()
    assert 'data-testid="api-token"' not in again and mine.token_key in again
    client.post("/account/api-token/", {"revoke": mine.token_key})
    assert not AuthToken.objects.filter(user=user).exists()


def test_issue_endpoint_with_password(make_user):
    from django.core.cache import cache

    cache.clear()
    user = make_user(Role.AUDITOR)
    user.set_password("correct horse battery")
    user.save()
    api = APIClient()
    assert api.post("/api/auth/token/", {"username": user.username, "password": "wrong"}).status_code == 400
    response = api.post("/api/auth/token/", {"username": user.username, "password": "correct horse battery"})
    assert response.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get("/api/me/").status_code == 200


def test_admin_registers_no_token_model_and_the_plaintext_token_table_is_gone():
    from django.apps import apps

    assert not admin.site.is_registered(AuthToken)
    assert not apps.is_installed("rest_framework.authtoken")
    assert "authtoken_token" not in connection.introspection.table_names()


def test_token_issuance_throttled_with_retry_after(make_user):
    from django.core.cache import cache

    cache.clear()
    user = make_user(Role.AUDITOR)
    api = APIClient()
    # Right password each time: failures would lock the account first (django-axes, 5 failures).
    credentials = {"username": user.username, "password": PASSWORD}
    codes = [api.post("/api/auth/token/", credentials).status_code for _ in range(10)]
    assert codes == [200] * 10
    response = api.post("/api/auth/token/", credentials)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    cache.clear()
