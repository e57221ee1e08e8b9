"""API-token calls to /v1 pass Django's authentication and messages middleware straight through;
every other request goes through them as before, and every response keeps its security headers."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import URLResolver, get_resolver
from rest_framework.views import APIView

from accounts.authentication import ApiTokenAuthentication
from accounts.middleware import AuthenticationMiddleware, MessageMiddleware, is_api_token_call
from accounts.roles import Role
from inference import openai_api
from tests.factories import api_key

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.mark.parametrize(
    ("path", "authorization", "expected"),
    [
        ("/v1/chat/completions", "Bearer abc", True),
        ("/v1/models", "token abc", True),
        ("/v1/models", "Bearer", True),  # no key: the token check answers 401
        ("/v1/models", None, False),
        ("/v1/models", "Basic abc", False),
        ("/v1", "Bearer abc", False),
        ("/api/inference/models/", "Bearer abc", False),
        ("/", "Bearer abc", False),
    ],
)
def test_which_requests_are_api_token_calls(path, authorization, expected):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    assert is_api_token_call(RequestFactory().get(path, **extra)) is expected


def _v1_views():
    (v1,) = [p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "v1/"]
    return [pattern.callback for pattern in v1.url_patterns]


def test_every_v1_view_authenticates_by_the_token_first():
    """What makes passing the session by safe: a /v1 view that could read the session for a request
    carrying a token would be served without its middleware."""
    views = _v1_views()
    assert len(views) >= 5
    for view in views:
        view_class = getattr(view, "view_class", None)
        if view_class is None:
            assert view is openai_api.not_found, f"{view} is not a DRF view: does it need the session?"
            continue
        assert issubclass(view_class, APIView)
        assert view_class().get_authenticators()[0].__class__ is ApiTokenAuthentication, view_class


@pytest.mark.parametrize("middleware_class", [AuthenticationMiddleware, MessageMiddleware])
def test_only_token_calls_pass_by(middleware_class):
    factory, seen = RequestFactory(), []
    middleware = middleware_class(lambda request: seen.append(request) or HttpResponse())
    token_call = factory.get("/v1/models", HTTP_AUTHORIZATION="Bearer abc")
    browser = factory.get("/v1/models")
    browser.session = SessionStore()
    browser.COOKIES = {}
    for request in (token_call, browser):
        middleware(request)
    assert seen == [token_call, browser]
    attribute = "user" if middleware_class is AuthenticationMiddleware else "_messages"
    assert not hasattr(token_call, attribute) and hasattr(browser, attribute)


@pytest.mark.django_db
def test_a_token_call_beside_a_browser_session_is_served_by_the_token_with_the_security_headers(make_user):
    user = make_user(Role.ML_ENGINEER)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    by_session = browser.get("/v1/models")
    by_token = browser.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {api_key(user)}")
    assert by_session.status_code == by_token.status_code == 200
    assert by_token.json()["data"] == by_session.json()["data"]
    for response in (by_session, by_token):
        assert "default-src 'self'" in response["Content-Security-Policy"]
        for header, value in SECURITY_HEADERS.items():
            assert response[header] == value, header
    # A wrong token is refused even beside a signed-in session, as before: the token decides.
    wrong = browser.get("/v1/models", HTTP_AUTHORIZATION="Bearer not-a-key")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.django_db
def test_csrf_still_guards_browser_forms_and_no_v1_answer_is_its_html_page(make_user):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post("/login/", {"username": "x", "password": "y"}).status_code == 403
    user = make_user(Role.ML_ENGINEER)
    for extra in ({"HTTP_AUTHORIZATION": f"Bearer {api_key(user)}"}, {}):
        response = browser.post("/v1/no/such/endpoint", data="{}", content_type="application/json", **extra)
        assert response.status_code == 404, extra
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "unknown_url"
