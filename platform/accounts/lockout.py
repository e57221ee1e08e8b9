"""What a locked-out sign-in sees (django-axes calls `lockout_response`): 429, Retry-After, a clear message.

Failures count per account and per address (settings.AXES_LOCKOUT_PARAMETERS); either limit locks.
The lockout itself is trailed (`account.lockout`) with the username and address, never the password.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string


def cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    minutes = max(1, math.ceil(cooloff_seconds() / 60))
    return (
        f"Too many failed sign-ins for this account or from this address. Sign-in is locked for "
        f"{minutes} minutes; try again later, or ask an administrator to unlock it "
        "(python manage.py axes_reset_username USERNAME)."
    )


def lockout_response(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    message = lockout_message()
    wants_json = request.path.startswith(("/api/", "/v1/")) or "json" in request.headers.get("Accept", "")
    if wants_json:
        response = JsonResponse({"detail": message}, status=429)
    else:
        html = render_to_string("accounts/locked_out.html", {"message": message}, request=request)
        response = HttpResponse(html, status=429)
    response["Retry-After"] = str(cooloff_seconds())
    return response
