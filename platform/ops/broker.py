"""Refuse work that needs the task queue while its broker is unreachable: 503 with Retry-After.

An API that queues work (a fine-tune job, an upload whose files are processed by a worker) calls
`require_broker(authorize=...)` before it writes anything (the service's access check first), so
a broker outage leaves nothing half-created: no record waiting for a message that was never sent.
A client retries after Retry-After; once the broker is back the same request succeeds and the work
runs. A portal form that does the same work is decorated with `broker_required_for_post(authorize=...)`: the same check, answered with a
page, after the view's access check (a user who may not do the work gets 403/404, not 503).
"""

from __future__ import annotations

from collections.abc import Callable
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


def require_broker(*, authorize: Callable[[], object]) -> None:
    """Raise BrokerUnavailable (503, Retry-After) unless the configured broker answers now.

    `authorize()` is the access check the service will make (the same action on the same
    resource, raising PolicyDenied (403, trailed) or Http404): while the broker is unreachable it
    runs first, so a caller who may not do the work is refused, never told to retry (issue 11).
    With the broker up it is not called; the service makes that check itself, trailed once.
    Keyword-only and required, as for broker_required_for_post, so that no API forgets it."""
    check = check_broker()
    if not check["ok"]:
        authorize()
        raise BrokerUnavailable(check["error"])


def broker_required_for_post(*, authorize: Callable[..., object]):
    """For a portal view whose POST queues work for a worker (a form whose result a worker makes).

    On POST, `authorize(request, *args, **kwargs)` runs first: the view's own access check, which
    raises PolicyDenied (403, trailed) or Http404 for a user who may not do this. Only then is the
    broker asked: while it is unreachable the answer is a 503 page (Retry-After) and the view does
    not run, so nothing is stored. A refused user hears "refused", never "try again later" (which
    would invite retries they will never be allowed and tell them the queue's state). GET (the form
    itself) is served as usual, under the view's own check. `authorize` is keyword-only and
    required so that no form can be decorated without its access check; put this decorator under
    login_required (anonymous users are sent to sign in)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "POST":
                authorize(request, *args, **kwargs)
                check = check_broker()
                if not check["ok"]:
                    return broker_unavailable_page(request, check["error"])
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


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
