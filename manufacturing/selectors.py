"""Reads of the manufacturing app, scoped by the access policy."""

from __future__ import annotations

from django.http import Http404

from access.querysets import restrict
from manufacturing.models import Machine, WorkOrder

NOT_FOUND_MESSAGE = "No such item, or you may not see it."


def _pk(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404(NOT_FOUND_MESSAGE) from None


def machines_visible_to(user):
    return restrict(Machine.objects.all(), user, "view")


def work_orders_visible_to(user, *, status: str = ""):
    queryset = restrict(WorkOrder.objects.select_related("machine"), user, "view")
    return queryset.filter(status=status) if status else queryset


def _checked(user, obj, action: str, actor):
    from access.enforcement import check
    from access.errors import PolicyDenied

    if obj is None:
        raise Http404(NOT_FOUND_MESSAGE)
    try:
        check(user, action, obj, actor=actor)
    except PolicyDenied:
        raise Http404(NOT_FOUND_MESSAGE) from None
    return obj


def machine_for(user, machine_id, *, action: str = "view", actor=None) -> Machine:
    """The machine if `user` may `action` it, else Http404 (after trailing the denial)."""
    return _checked(user, Machine.objects.filter(pk=_pk(machine_id)).first(), action, actor)


def work_order_for(user, work_order_id, *, action: str = "view", actor=None) -> WorkOrder:
    """The work order if `user` may `action` it, else Http404 (after trailing the denial)."""
    return _checked(user, WorkOrder.objects.filter(pk=_pk(work_order_id)).first(), action, actor)
