"""Logins, logouts and failed logins are on the trail; the attempted password never is."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.roles import Role
from audit.models import Event
from audit.verification import verify_chain
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
WRONG_PASSWORD = "Tr0ub4dor&3-not-mine"


def test_login_and_logout_are_recorded(client, make_user):
    user = make_user(Role.CLINICIAN, username="grace")
    response = client.post(
        reverse("portal:login"), {"username": "grace", "password": PASSWORD}, HTTP_USER_AGENT="pytest-browser"
    )
    assert response.status_code == 302
    client.post(reverse("portal:logout"))
    login, logout = Event.objects.filter(action__startswith="auth.").order_by("sequence")
    assert (login.action, login.outcome, login.actor_kind, login.actor_user) == (
        "auth.login",
        "succeeded",
        "user",
        user,
    )
    assert login.resource_id == str(user.pk)
    assert login.payload == {"ip": "127.0.0.1", "user_agent": "pytest-browser"}
    assert (logout.action, logout.actor_label) == ("auth.logout", "grace")
    assert verify_chain("suite").ok


def test_failed_login_is_recorded_without_the_password(client, make_user):
    make_user(Role.CLINICIAN, username="grace")
    response = client.post(reverse("portal:login"), {"username": "grace", "password": WRONG_PASSWORD})
    assert response.status_code == 200
    failed = Event.objects.get(action="auth.login_failed")
    assert (failed.outcome, failed.actor_kind, failed.resource_id) == ("failed", "anonymous", "grace")
    assert failed.payload["username"] == "grace"
    for event in Event.objects.all():
        stored = " ".join(str(value) for value in Event.objects.filter(pk=event.pk).values().get().values())
        assert WRONG_PASSWORD not in stored
        assert "*****" not in stored  # not even Django's masked placeholder


def test_failed_login_for_an_unknown_user_is_recorded(client):
    client.post(reverse("portal:login"), {"username": "nobody-here", "password": WRONG_PASSWORD})
    assert Event.objects.get(action="auth.login_failed").resource_id == "nobody-here"
