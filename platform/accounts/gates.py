"""Operational endpoints (/metrics, API schema and docs): signed-in users or allow-listed addresses only."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.http import HttpResponseForbidden


def signed_in_or_allow_listed(view):
    @wraps(view)
    def gated(request, *args, **kwargs):
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or request.META.get(
            "REMOTE_ADDR"
        ) in settings.SUITE_OPEN_ENDPOINT_ADDRESSES:
            return view(request, *args, **kwargs)
        return HttpResponseForbidden(
            "Sign in, or add this address to SUITE_OPEN_ENDPOINT_ADDRESSES (e.g. your Prometheus scraper)."
        )

    return gated
