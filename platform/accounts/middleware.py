"""`Cache-Control: no-store` on pages and APIs that carry patient or bank data (SUITE_NO_STORE_PREFIXES)."""

from __future__ import annotations

from django.conf import settings

from accounts.trail import acting_request


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
