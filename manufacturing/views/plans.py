"""Preventive maintenance plans on an asset's page (add, edit and take over, stop) and meter readings."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from manufacturing import selectors
from manufacturing.models import WorkOrder
from manufacturing.services.maintenance_plans import (
    LATE,
    MeterKeyReused,
    PlanRefused,
    meter_record,
    plan_create,
    plan_retire,
    plan_update,
)
from manufacturing.views import outcome_shown, posted_int, request_actor
from portal.drafts import confirm_sent, spend


def _plan_fields(request: HttpRequest) -> dict:
    """A plan's fields as posted by the add and edit forms (the service checks them)."""
    return {
        "title": request.POST.get("title", ""),
        "every_days": request.POST.get("every_days", "").strip() or None,
        "every_hours": request.POST.get("every_hours", "").strip() or None,
        "instructions": request.POST.get("instructions", ""),
        "priority": posted_int(request.POST.get("priority"), WorkOrder.Priority.MEDIUM),
        "team": request.POST.get("team", "")[:64],
    }


@require_POST
@login_required
def maintenance_plan_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a preventive maintenance plan to an asset (every N days and/or N running hours)."""
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    with outcome_shown(request, denied="You may not plan work for this site.", refusals=(PlanRefused,)):
        plan = plan_create(actor=request.user, machine=machine, **_plan_fields(request))
        messages.success(request, f"Plan added: {plan.title}.")
    return redirect(reverse("manufacturing:asset_detail", args=[machine.pk]) + "#maintenance")


@require_POST
@login_required
def maintenance_plan_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a plan and take it over (its work orders are filed on the editor's authority from now on)."""
    plan = selectors.maintenance_plan_for(request.user, pk, actor=request_actor(request))
    taken_over = plan.owner_id != request.user.pk
    with outcome_shown(request, denied="You may not change the plans of this site.", refusals=(PlanRefused,)):
        plan = plan_update(actor=request.user, plan=plan, **_plan_fields(request))
        filed = "".join(f"; it is due: preventive work order {wo.pk} filed" for wo in plan.filed)
        yours = ", yours from now on (its work orders are filed on your authority)" if taken_over else ""
        messages.success(request, f"Plan saved: {plan.title}{yours}{filed}.")
    return redirect(reverse("manufacturing:asset_detail", args=[plan.machine_id]) + "#maintenance")


@require_POST
@login_required
def maintenance_plan_stop(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a preventive maintenance plan (its open work order, if any, stays)."""
    plan = selectors.maintenance_plan_for(request.user, pk, actor=request_actor(request))
    with outcome_shown(request, denied="You may not change the plans of this site."):
        plan_retire(actor=request.user, plan=plan)
        messages.success(request, f"Plan stopped: {plan.title}.")
    return redirect(reverse("manufacturing:asset_detail", args=[plan.machine_id]) + "#maintenance")


def _read_at(text: str):
    """The time the meter was read, as the phone's form sends it (ISO 8601, filled when it is sent, so a
    reading kept on a phone with no connection keeps its time); None when absent."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        raise PlanRefused(f"the time read {text[:40]!r} is not a date and time: send the form again")
    return moment


@require_POST
@login_required
def meter_reading_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the asset's running hours; a plan it makes due files its work order at once. The form
    may be kept on the phone while there is no connection (the outbox) and sent later: it carries the
    time it was read and a submission key, so it is recorded once, at its time."""
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    key = request.POST.get("submission", "").strip()
    with outcome_shown(
        request, denied="You may not record readings for this asset.", refusals=(PlanRefused,)
    ):
        try:
            reading = meter_record(
                actor=request.user,
                machine=machine,
                hours=request.POST.get("hours", "").strip(),
                read_at=_read_at(request.POST.get("read_at", "")),
                submission_key=key,
            )
        except MeterKeyReused:
            spend(request, key)
            raise
        confirm_sent(request, reading.submission_key)
        when = ""
        if timezone.now() - reading.read_at > LATE:
            when = f" (read {timezone.localtime(reading.read_at):%Y-%m-%d %H:%M})"
        if reading.replayed:
            messages.info(
                request, f"This form was already sent: {reading.hours:g} h{when} was recorded once."
            )
        else:
            filed = "".join(f"; preventive work order {wo.pk} filed: {wo.title}" for wo in reading.filed)
            messages.success(request, f"Meter reading recorded: {reading.hours:g} h{when}{filed}.")
    return redirect(reverse("manufacturing:asset_detail", args=[machine.pk]) + "#maintenance")
