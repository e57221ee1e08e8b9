"""Refuse work that needs the task queue while its broker is unreachable: 503 with Retry-After.

An API that queues work (a fine-tune job, an upload whose files are processed by a worker) calls
`require_broker()` before it writes anything, so a broker outage leaves nothing half-created: no
record waiting for a message that was never sent. A client retries after Retry-After; once the
broker is back the same request succeeds and the work runs. A portal form that does the same
work is decorated with `broker_required_for_post`: the same check, answered with a page.
"""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from rest_framework.exceptions import APIException

from ops.health import check_broker

RETRY_AFTER_S = 10


class BrokerUnavailable(APIException):
    status_code = 503
    default_code = "broker_unavailable"

    def __init__(self, error: str):
        super().__init__(
            f"The task queue is unreachable, so nothing was created ({error}). "
            f"Retry in {RETRY_AFTER_S} seconds; if it persists, check the broker (CELERY_BROKER_URL, /readyz)."
        )
        self.wait = RETRY_AFTER_S  # DRF's exception handler sends `wait` as the Retry-After header


def require_broker() -> None:
    """Raise BrokerUnavailable (503, Retry-After) unless the configured broker answers now."""
    check = check_broker()
    if not check["ok"]:
        raise BrokerUnavailable(check["error"])


def broker_required_for_post(view):
    """For a portal view whose POST queues work for a worker: while the broker is unreachable, a POST
    is answered with a 503 page (Retry-After) before the view runs, so nothing is stored. GET (the
    form itself) is served as usual. Put it under the sign-in/policy decorators, so that anonymous
    or refused requests keep their own answer."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method == "POST":
            check = check_broker()
            if not check["ok"]:
                return broker_unavailable_page(request, check["error"])
        return view(request, *args, **kwargs)

    return wrapped


def broker_unavailable_page(request, error: str):
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    response = render(
        request,
        "portal/broker_unavailable.html",
        {"error": error, "retry_after": RETRY_AFTER_S, "back_url": referer if safe else request.path},
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response
