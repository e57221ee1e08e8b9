"""The suite's own middleware, and two of Django's made to step aside for API-token calls.

`Cache-Control: no-store` on pages and APIs that carry patient or bank data (SUITE_NO_STORE_PREFIXES);
the acting user of account changes (accounts.trail); the Content-Security-Policy header built once.

API-token calls (`is_api_token_call`): a request under API_TOKEN_PREFIXES (the OpenAI-compatible /v1)
that presents `Authorization: Bearer|Token <key>`. Its views authenticate by that header alone: the
API-token authentication comes first in every one of them (tests/accounts/test_api_token_bypass.py
checks each /v1 view) and either authenticates or answers 401, so the session's user is never read.
Django's authentication middleware (the session's lazy `request.user`, which DRF replaces) and its
flash messages then cannot apply, and they pass such a request straight through (sync and async
alike); every other request goes through them as before. The session and CSRF middleware stay
Django's own, by name (`check --deploy` looks for them): for a token call they read a cookie or two,
and a CSRF-exempt view skips the check. What applies to every response stays: security headers,
frame options, the Content-Security-Policy, no-store, the acting user, the lockout.
"""

from __future__ import annotations

import http

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.core.signals import setting_changed

from accounts.trail import acting_request

API_TOKEN_PREFIXES = ("/v1/",)
API_TOKEN_SCHEMES = ("bearer", "token")  # as accounts.authentication.ApiTokenAuthentication reads them


def is_api_token_call(request) -> bool:
    """A request under API_TOKEN_PREFIXES that presents an API token (valid or not: a wrong one is a 401)."""
    if not request.path_info.startswith(API_TOKEN_PREFIXES):
        return False
    return request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0].lower() in API_TOKEN_SCHEMES


class _BrowserOnly:
    """Mixin for a Django middleware that cannot apply to API-token calls: it passes them through."""

    def __call__(self, request):
        if is_api_token_call(request):
            return self.get_response(request)  # a coroutine in async mode, awaited by the caller
        return super().__call__(request)


class AuthenticationMiddleware(_BrowserOnly, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages_middleware.MessageMiddleware):
    pass


# What a view or decorator may set on a response to change its policy (django-csp 4).
_CSP_PER_RESPONSE = tuple(
    f"_csp_{part}{suffix}" for part in ("config", "update", "replace", "exempt") for suffix in ("", "_ro")
)
_CSP_HEADERS = (
    (HEADER, "CONTENT_SECURITY_POLICY", False),
    (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
)
# (header, its value built from the settings alone, the setting) for both headers; replaced whole,
# so a thread reads either the old tuple or the new one.
_csp_built: tuple[tuple[str, str, str], ...] | None = None


def _csp_policies() -> tuple[tuple[str, str, str], ...]:
    global _csp_built
    built = _csp_built
    if built is None:
        built = _csp_built = tuple(
            (header, build_policy(report_only=report_only), setting)
            for header, setting, report_only in _CSP_HEADERS
        )
    return built


def _forget_csp_policies(*, setting, **kwargs) -> None:
    global _csp_built
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _csp_built = None


setting_changed.connect(_forget_csp_policies, dispatch_uid="accounts.middleware.csp_policies")


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the policy built from the settings once instead of on every
    response. A response that names its own policy (or an exemption), a request that used a nonce,
    and DEBUG's error pages take django-csp's own path; the others get the same headers it would
    set (the settings' policy, unless the response has one or its path is excluded)."""

    def process_response(self, request, response):
        if (
            getattr(request, "_csp_nonce", None) is not None
            or (settings.DEBUG and response.status_code in (http.HTTPStatus.NOT_FOUND, 500))
            or any(hasattr(response, name) for name in _CSP_PER_RESPONSE)
        ):
            return super().process_response(request, response)
        for header, policy, setting in _csp_policies():
            if policy and header not in response:
                excluded = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
                if not request.path_info.startswith(tuple(excluded)):
                    response[header] = policy
        # As django-csp does: a nonce asked for after the header is written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


class NoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = tuple(settings.SUITE_NO_STORE_PREFIXES)

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(self.prefixes):
            response["Cache-Control"] = "no-store"
        return response


class ActingUserMiddleware:
    """Remembers who is acting for this request, so account changes made through any path
    (admin, portal, API) are trailed with the person who made them (accounts.trail)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = acting_request.set(request)
        try:
            return self.get_response(request)
        finally:
            acting_request.reset(token)
