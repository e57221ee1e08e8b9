"""Maintenance portal pages (phone-first), mounted at /manufacturing/ (namespace "manufacturing"), one
module per area (assets, plans, work_orders, offline); here what they share.

Thin: parse the form, fetch through a selector (404 for what the user may not see, denial trailed),
call one service, show its refusal as a message."""

from __future__ import annotations

import datetime as dt
import math
from contextlib import contextmanager

from django.contrib import messages
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime

from access.enforcement import trail_denial
from access.errors import PolicyDenied
from audit.actors import actor_from_request
from manufacturing import services
from manufacturing.models import WorkOrder
from portal.drafts import confirm_sent, spend


@contextmanager
def outcome_shown(
    request: HttpRequest, *, denied: str, success: str = "", refusals=(services.WorkOrderRefused,)
):
    """Run a service call; show its refusal, a policy denial or `success` as a message on the next page."""
    try:
        yield
    except refusals as refusal:
        messages.error(request, str(refusal))
    except PolicyDenied as denial:
        trail_denial(denial)  # the service's transaction rolled back with it
        messages.error(request, denied)
    else:
        if success:
            messages.success(request, success)


def request_actor(request):

    return actor_from_request(request)


def posted_float(value: str, name: str) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise services.WorkOrderRefused(f"{name} must be a number, e.g. 1.5") from None
    if not math.isfinite(number):  # 'inf' and 'nan' parse; the API refuses them too
        raise services.WorkOrderRefused(f"{name} must be a finite number, e.g. 1.5")
    return number


def posted_time(text: str, verb: str, *, refused: type[Exception]) -> dt.datetime | None:
    """A date and time from a form (a datetime-local field: 2026-12-05T09:30; naive, the site's time);
    None when empty; `refused` naming "the time `verb`" when it is not one."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = parse_datetime(text.replace(" ", "T", 1))
    except ValueError:
        moment = None
    if moment is None:
        raise refused(
            f"the time {verb} {text[:40]!r} is not a date and time: give it as 2026-12-05 09:30, or leave "
            "it empty for now"
        )
    return moment


def posted_date(value: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise services.WorkOrderRefused("due must be a date like 2026-12-31") from None


def posted_int(value: str, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        raise services.WorkOrderRefused("priority must be 1, 2, 3 or 4") from None


def file_from_post(request, machine, alert=None, scan=None):
    """File from a page's form. Its `submission` key (made when the form was shown, kept in the
    phone's draft: portal.drafts) makes a second send of the same form land on the work order
    already filed."""
    key = request.POST.get("submission", "").strip()
    try:
        work_order = services.work_order_file(
            actor=request.user,
            machine=machine,
            title=request.POST.get("title", ""),
            description=request.POST.get("description", ""),
            priority=posted_int(request.POST.get("priority"), WorkOrder.Priority.MEDIUM),
            due=posted_date(request.POST.get("due", "")),
            team=request.POST.get("team", "")[:64],
            alert=alert,
            scan=scan,
            submission_key=key,
        )
    except services.SubmissionKeyReused:
        spend(request, key)
        raise
    if work_order.replayed:
        messages.info(request, f"This form was already sent: work order {work_order.pk} was filed once.")
    else:
        messages.success(request, f"Work order {work_order.pk} filed.")
    confirm_sent(request, key)
    return work_order
