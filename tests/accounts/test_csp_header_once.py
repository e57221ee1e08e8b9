"""The Content-Security-Policy middleware builds the settings' header once and sets exactly the
headers django-csp's own middleware sets, response by response."""

from __future__ import annotations

import pytest
from csp.middleware import CSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from accounts.middleware import ContentSecurityPolicyMiddleware

HEADERS = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")


def _view(status=200, nonce=False, **attributes):
    def view(request):
        response = HttpResponse("ok", status=status)
        if nonce:
            response.content = str(request.csp_nonce).encode()
        for name, value in attributes.items():
            setattr(response, name, value)
        return response

    return view


def _headers(middleware_class, view, path="/"):
    request = RequestFactory().get(path)
    response = middleware_class(view)(request)
    return {header: response.get(header) for header in HEADERS}


CASES = {
    "plain": (_view(), "/"),
    "api": (_view(), "/v1/models"),
    "update": (_view(_csp_update={"img-src": ["https://pacs.example"]}), "/"),
    "replace": (_view(_csp_replace={"script-src": ["'none'"]}), "/"),
    "config": (_view(_csp_config={"default-src": ["'none'"]}), "/"),
    "exempt": (_view(_csp_exempt=True), "/"),
    "nonce": (_view(nonce=True), "/"),
    "not found": (_view(status=404), "/missing/"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_same_headers_as_django_csp(case):
    view, path = CASES[case]
    ours, theirs = _headers(ContentSecurityPolicyMiddleware, view, path), _headers(CSPMiddleware, view, path)
    if case == "nonce":  # a fresh nonce each request: the same header around it
        ours, theirs = ({h: v and v.split("'nonce-")[0] for h, v in d.items()} for d in (ours, theirs))
    assert ours == theirs
    assert (ours["Content-Security-Policy"] is None) is (case == "exempt")


def test_settings_changes_reach_the_header():
    before = _headers(ContentSecurityPolicyMiddleware, _view())
    policy = {"DIRECTIVES": {"default-src": ["'none'"]}, "EXCLUDE_URL_PREFIXES": ["/excluded/"]}
    with override_settings(CONTENT_SECURITY_POLICY=policy, CONTENT_SECURITY_POLICY_REPORT_ONLY=policy):
        for path in ("/", "/excluded/page"):
            changed = _headers(ContentSecurityPolicyMiddleware, _view(), path)
            assert changed == _headers(CSPMiddleware, _view(), path), path
        assert changed == {header: None for header in HEADERS}
        assert (
            _headers(ContentSecurityPolicyMiddleware, _view())["Content-Security-Policy"]
            == "default-src 'none'"
        )
    with override_settings(DEBUG=True):
        assert _headers(ContentSecurityPolicyMiddleware, _view(status=404)) == {h: None for h in HEADERS}
    assert _headers(ContentSecurityPolicyMiddleware, _view()) == before


def test_a_nonce_asked_for_after_the_header_is_an_error():
    request = RequestFactory().get("/")
    ContentSecurityPolicyMiddleware(_view())(request)
    with pytest.raises(Exception, match="not available after the CSP header"):
        str(request.csp_nonce)
