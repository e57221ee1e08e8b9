"""/metrics and the API docs: signed-in users or allow-listed addresses; sessions expire when idle."""

from __future__ import annotations

import pytest

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
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    client.force_login(make_user(Role.AUDITOR))
    client.get("/account/api-token/")
    assert client.session.get_expiry_age() <= settings.SESSION_COOKIE_AGE


@pytest.mark.parametrize("path,no_store", [("/medical/", True), ("/audit/", True), ("/healthz", False)])
def test_no_store_on_patient_and_bank_paths(client, make_user, path, no_store):
    client.force_login(make_user(Role.AUDITOR))
    response = client.get(path)
    assert (response.get("Cache-Control") == "no-store") is no_store, (response.status_code, response.headers)
