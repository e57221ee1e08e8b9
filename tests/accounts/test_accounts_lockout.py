"""Brute force: django-axes locks an account, or an address, after repeated failures (429, message, trail)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.roles import Role
from audit.models import Event
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 5  # settings.AXES_FAILURE_LIMIT (SUITE_LOGIN_FAILURE_LIMIT)


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def _token(api, username, password, address):
    return api.post("/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_account_locks_after_failures_from_many_addresses(make_user):
    user = make_user(Role.AUDITOR)
    api = APIClient()
    codes = [_token(api, user.username, "wrong", f"10.0.0.{i}").status_code for i in range(LIMIT)]
    assert codes[: LIMIT - 1] == [400] * (LIMIT - 1)
    # The right password from a fresh address is refused while the account is locked.
    locked = _token(api, user.username, PASSWORD, "10.0.1.1")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 15 * 60
    assert "Too many failed sign-ins" in locked.json()["detail"]
    assert "token" not in locked.json()
    event = Event.objects.filter(action="auth.lockout").latest("id")
    assert (event.outcome, event.resource_id) == ("denied", user.username)
    assert PASSWORD not in event.payload_json


def test_address_locks_after_failures_on_many_accounts(make_user):
    victim = make_user(Role.AUDITOR)
    api = APIClient()
    for i in range(LIMIT):
        _token(api, f"guess{i}", "wrong", "10.9.9.9")
    assert _token(api, victim.username, PASSWORD, "10.9.9.9").status_code == 429
    # The same account from another address is not locked: the lock was the address's.
    assert _token(api, victim.username, PASSWORD, "10.9.9.10").status_code == 200


def test_portal_login_shows_the_lockout_page(client, make_user):
    user = make_user(Role.AUDITOR)
    for _ in range(LIMIT):
        client.post("/login/", {"username": user.username, "password": "wrong"}, REMOTE_ADDR="10.7.0.1")
    response = client.post(
        "/login/", {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.7.0.2"
    )
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    body = response.content.decode()
    assert 'data-testid="locked-out"' in body and "Too many failed sign-ins" in body
    assert "_auth_user_id" not in client.session


def test_portal_sign_in_before_the_limit_resets_the_count(client, make_user):
    user = make_user(Role.AUDITOR)

    def sign_in(password):
        return client.post(
            "/login/", {"username": user.username, "password": password}, REMOTE_ADDR="10.5.0.1"
        )

    for _ in range(2):
        assert [sign_in("wrong").status_code for _ in range(LIMIT - 1)] == [200] * (LIMIT - 1)
        assert sign_in(PASSWORD).status_code == 302
        client.logout()
