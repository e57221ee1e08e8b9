"""/metrics and the API docs: signed-in users or allow-listed addresses; sessions expire when idle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.shortcuts import resolve_url
from django.utils import timezone

from accounts.roles import Role

pytestmark = pytest.mark.django_db

GATED = ["/metrics", "/api/docs/", "/api/schema/", "/api/redoc/"]


@pytest.mark.parametrize("path", GATED)
def test_anonymous_remote_address_refused(client, path):
    response = client.get(path, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 403
    assert b"SUITE_OPEN_ENDPOINT_ADDRESSES" in response.content


@pytest.mark.parametrize("path", GATED)
def test_signed_in_user_from_anywhere(client, make_user, path):
    client.force_login(make_user(Role.AUDITOR))
    assert client.get(path, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_allow_listed_address(client, settings):
    settings.SUITE_OPEN_ENDPOINT_ADDRESSES = ["10.9.9.9"]
    assert client.get("/metrics", REMOTE_ADDR="10.9.9.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_session_expiry_slides_with_each_request(client, make_user, settings):
    client.force_login(make_user(Role.AUDITOR))
    stored = Session.objects.get(session_key=client.session.session_key)
    # Used a while ago, within the idle limit: the next request pushes the expiry out again.
    Session.objects.filter(pk=stored.pk).update(expire_date=timezone.now() + timedelta(seconds=60))
    assert client.get("/account/api-token/").status_code == 200
    renewed = Session.objects.get(pk=stored.pk).expire_date - timezone.now()
    assert renewed > timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_an_idle_session_is_signed_out(client, make_user, settings):
    client.force_login(make_user(Role.AUDITOR))
    key = client.session.session_key
    # No request for longer than SUITE_SESSION_SECONDS: the stored session has expired.
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/account/api-token/")
    assert response.status_code == 302 and response["Location"].startswith(resolve_url(settings.LOGIN_URL))


@pytest.mark.parametrize(
    "path,no_store",
    [("/medical/", True), ("/api/medical/studies/", True), ("/finance/", True), ("/audit/", True),
     ("/healthz", False)],
)  # fmt: skip
def test_no_store_on_patient_and_bank_paths(client, make_user, path, no_store):
    client.force_login(make_user(Role.AUDITOR))
    response = client.get(path)
    assert (response.get("Cache-Control") == "no-store") is no_store, (response.status_code, response.headers)
