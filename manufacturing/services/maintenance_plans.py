"""Preventive maintenance: plans (a task every N days or every N running hours, whichever comes first)
and the running-hours meter they count on. A plan that falls due files a preventive work order on its
owner's authority, checked by the access policy each time; completing that work order, or cancelling
it (the occurrence is skipped), starts the next interval. Every write is trailed in its transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from access.errors import PolicyDenied
from access.resources import Resource
from audit.services import record
from manufacturing.models import Machine, MaintenancePlan, MeterReading, WorkOrder
from manufacturing.services.recordings import field_time
from portal.submissions import checked_submission_key, created_once

logger = logging.getLogger(__name__)

MAX_EVERY_DAYS = 3650
MAX_HOURS = 10_000_000.0  # beyond any machine's life on a running-hours meter
LATE = dt.timedelta(minutes=10)  # a reading sent this long after it was read was kept on the phone


class PlanRefused(Exception):
    """A plan or meter reading that cannot be taken; the message says what to fix (maps to 400)."""


class MeterKeyReused(PlanRefused):
    """A submission key already recorded another reading; the API answers 422."""


def latest_hours(machine: Machine) -> float | None:
    """The machine's running hours at its latest meter reading, None before the first."""
    return machine.meter_readings.values_list("hours", flat=True).first()


def _may_file(actor, machine: Machine):
    return check(actor, "file", Resource("work_order", "new", {"site": machine.site}))


def _positive(value, name: str, upper: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlanRefused(f"{name} must be a number, e.g. 30") from None
    if not math.isfinite(number) or not 0 < number <= upper:
        raise PlanRefused(f"{name} must be more than 0 and at most {upper:,.0f}")
    return number


def _plan_values(*, title, every_days, every_hours, instructions, priority, team) -> dict:
    """The checked fields of a plan (PlanRefused names what to fix)."""
    title = (title or "").strip()
    if not title:
        raise PlanRefused("a plan needs a title: the task to do, e.g. 'Grease DE and NDE bearings'")
    days = _positive(every_days, "every days", MAX_EVERY_DAYS)
    if days is not None and days != int(days):
        raise PlanRefused("every days must be a whole number of days")
    hours = _positive(every_hours, "every running hours", MAX_HOURS)
    if days is None and hours is None:
        raise PlanRefused("give an interval: every N days, every N running hours, or both")
    if priority not in WorkOrder.Priority.values:
        raise PlanRefused(f"priority must be one of {WorkOrder.Priority.values}")
    return {
        "title": title[:255],
        "instructions": instructions or "",
        "every_days": int(days) if days is not None else None,
        "every_hours": hours,
        "priority": priority,
        "team": (team or "")[:64],
    }


@transaction.atomic
def plan_create(
    *,
    actor,
    machine: Machine,
    title: str,
    every_days=None,
    every_hours=None,
    instructions: str = "",
    priority: int = WorkOrder.Priority.MEDIUM,
    team: str = "",
) -> MaintenancePlan:
    """A plan for `machine` (the actor needs `file` on its site's work orders; its work orders are
    filed on the actor's authority). The first interval starts now, and at the current meter reading
    (or at the first reading to come)."""
    decision = _may_file(actor, machine)
    values = _plan_values(
        title=title,
        every_days=every_days,
        every_hours=every_hours,
        instructions=instructions,
        priority=priority,
        team=team,
    )
    plan = MaintenancePlan.objects.create(
        machine=machine,
        owner=actor,
        last_done_at=timezone.now(),
        last_done_hours=latest_hours(machine),
        **values,
    )
    record(
        actor=actor,
        action="maintenance_plan.create",
        resource_type="asset",
        resource_id=machine.pk,
        outcome="succeeded",
        policy=decision.policy or "",
        payload={
            "site": machine.site,
            "plan": plan.pk,
            "title": plan.title,
            "every_days": plan.every_days,
            "every_hours": plan.every_hours,
        },
    )
    return plan


@transaction.atomic
def plan_update(
    *,
    actor,
    plan: MaintenancePlan,
    title: str,
    every_days=None,
    every_hours=None,
    instructions: str = "",
    priority: int = WorkOrder.Priority.MEDIUM,
    team: str = "",
) -> MaintenancePlan:
    """Change a plan (the actor needs `file` on its site's work orders) and take it over: its work
    orders are filed on the actor's authority from now on (how a plan whose owner moved on is kept
    running). The current interval keeps its start; a shorter interval that is already over files the
    work order at once (`filed` on the returned plan). A stopped plan cannot be changed."""
    decision = _may_file(actor, plan.machine)
    plan = (
        MaintenancePlan.objects.select_for_update(of=("self",))
        .select_related("machine", "owner")
        .get(pk=plan.pk)
    )
    if not plan.active:
        raise PlanRefused(f"plan {plan.pk} ({plan.title}) was stopped: add a new plan instead")
    values = _plan_values(
        title=title,
        every_days=every_days,
        every_hours=every_hours,
        instructions=instructions,
        priority=priority,
        team=team,
    )
    changes = {
        name: [getattr(plan, name), value] for name, value in values.items() if getattr(plan, name) != value
    }
    if plan.owner_id != actor.pk:
        changes["owner"] = [plan.owner.username if plan.owner else None, actor.username]
    for name, value in values.items():
        setattr(plan, name, value)
    plan.owner = actor
    plan.save()
    record(
        actor=actor,
        action="maintenance_plan.update",
        resource_type="asset",
        resource_id=plan.machine_id,
        outcome="succeeded",
        policy=decision.policy or "",
        payload={"site": plan.machine.site, "plan": plan.pk, "changes": changes},
    )
    plan.filed = plans_file_due(machine=plan.machine)
    return plan


@transaction.atomic
def plan_retire(*, actor, plan: MaintenancePlan) -> MaintenancePlan:
    """Stop a plan (the actor needs `file` on its site's work orders): it files nothing more; a work
    order it already filed stays as it is."""
    decision = _may_file(actor, plan.machine)
    if plan.active:
        plan.active = False
        plan.save(update_fields=["active"])
        record(
            actor=actor,
            action="maintenance_plan.retire",
            resource_type="asset",
            resource_id=plan.machine_id,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={"site": plan.machine.site, "plan": plan.pk, "title": plan.title},
        )
    return plan


def _read_before(actor, key: str, machine: Machine, value: float) -> MeterReading | None:
    """The reading this person already recorded with `key`, if any; refused when it differs."""
    if not key:
        return None
    earlier = MeterReading.objects.filter(recorded_by=actor, submission_key=key).first()
    if earlier is not None and (earlier.machine_id != machine.pk or earlier.hours != value):
        raise MeterKeyReused(
            f"submission key {key!r} already recorded {earlier.hours:g} h on {earlier.machine.tag}; "
            "use a new key for a new reading"
        )
    return earlier


def _fits_between(machine: Machine, value: float, read_at: dt.datetime) -> None:
    """A running-hours meter only goes up: the reading must be at least the one read before it and at
    most the one read after it (a reading typed offline arrives after later ones)."""
    readings = machine.meter_readings.order_by()
    before = readings.filter(read_at__lte=read_at).order_by("-read_at", "-pk").first()
    after = readings.filter(read_at__gt=read_at).order_by("read_at", "pk").first()
    if before is not None and value < before.hours:
        latest = "the latest reading" if after is None else "the reading before it"
        raise PlanRefused(
            f"{value:g} h is below {latest} ({before.hours:g} h on {before.read_at:%Y-%m-%d %H:%M}): "
            "a running-hours meter only goes up; check the figure"
        )
    if after is not None and value > after.hours:
        raise PlanRefused(
            f"{value:g} h read {read_at:%Y-%m-%d %H:%M} is above a later reading ({after.hours:g} h on "
            f"{after.read_at:%Y-%m-%d %H:%M}): a running-hours meter only goes up; check the figure"
        )


@transaction.atomic
def meter_record(
    *,
    actor,
    machine: Machine,
    hours,
    read_at: dt.datetime | None = None,
    submission_key: str = "",
) -> MeterReading:
    """Record the machine's running hours (the actor needs `view` on it). A meter only goes up: a
    reading below the one read before it, or above one read after it, is refused. `read_at` is when it
    was read (a reading typed on a phone with no connection is sent later); left out, now. Plans
    counting hours start at the first reading; those it makes due file their work orders at once
    (`filed` on the returned reading).

    `submission_key` (1-64 letters, digits, '-' or '_') makes a repeat harmless: the same key from the
    same person returns the reading it recorded, with `replayed` set, and records nothing; the same key
    with another figure or asset is refused (MeterKeyReused)."""
    decision = check(actor, "view", machine)
    try:
        value = float(hours)
    except (TypeError, ValueError):
        raise PlanRefused("give the running hours on the meter as a number, e.g. 12450") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_HOURS:
        raise PlanRefused(f"running hours must be between 0 and {MAX_HOURS:,.0f}")
    key = checked_submission_key(submission_key, actor, refused=PlanRefused)
    earlier = _read_before(actor, key, machine, value)
    if earlier is not None:
        earlier.replayed, earlier.filed = True, []
        return earlier
    read_at = field_time(read_at, verb="read", done="the meter was read", refused=PlanRefused)
    _fits_between(machine, value, read_at)
    reading = created_once(
        lambda: MeterReading.objects.create(
            machine=machine, hours=value, read_at=read_at, recorded_by=actor, submission_key=key
        ),
        lambda: _read_before(actor, key, machine, value),
    )
    if reading.replayed:
        reading.filed = []
        return reading
    machine.maintenance_plans.filter(last_done_hours__isnull=True, every_hours__isnull=False).update(
        last_done_hours=value
    )
    record(
        actor=actor,
        action="meter.record",
        resource_type="asset",
        resource_id=machine.pk,
        outcome="succeeded",
        policy=decision.policy or "",
        payload={
            "site": machine.site,
            "hours": value,
            "reading": reading.pk,
            "read_at": read_at.isoformat(),
            "sent_later": (timezone.now() - read_at) > LATE,
        },
    )
    reading.filed = plans_file_due(machine=machine)  # in this transaction: the reading and what it causes
    return reading


def plan_schedule(plan: MaintenancePlan) -> dict:
    """When `plan` falls due: the date and the meter reading (each None when it does not count that)."""
    return {
        "date": plan.last_done_at + dt.timedelta(days=plan.every_days) if plan.every_days else None,
        "hours": plan.last_done_hours + plan.every_hours
        if plan.every_hours and plan.last_done_hours is not None
        else None,
    }


def plan_due(plan: MaintenancePlan, *, now: dt.datetime, hours: float | None) -> str:
    """Why `plan` is due now ("" when it is not)."""
    due = plan_schedule(plan)
    reasons = []
    if due["date"] is not None and now >= due["date"]:
        reasons.append(f"{plan.every_days} days since {plan.last_done_at:%Y-%m-%d}")
    if due["hours"] is not None and hours is not None and hours >= due["hours"]:
        reasons.append(
            f"{hours - plan.last_done_hours:g} running hours since {plan.last_done_hours:g} h "
            f"(every {plan.every_hours:g} h)"
        )
    return " and ".join(reasons)


def plans_file_due(*, now: dt.datetime | None = None, machine: Machine | None = None) -> list[WorkOrder]:
    """File a preventive work order for every active plan that is due and has none open. Each is filed
    on the plan owner's authority, checked (and a denial trailed) each time; a plan whose owner may no
    longer file is left for an engineer of the site to take over."""
    from manufacturing.services.work_orders import work_order_file

    now = now or timezone.now()
    plans = MaintenancePlan.objects.filter(active=True).select_related("machine", "owner")
    if machine is not None:
        plans = plans.filter(machine=machine)
    filed = []
    for plan in plans:
        reason = plan_due(plan, now=now, hours=latest_hours(plan.machine))
        if not reason or plan.work_orders.exclude(status__in=WorkOrder.TERMINAL).exists():
            continue
        if plan.owner is None or not plan.owner.is_active:
            logger.warning("maintenance plan %s is due but has no active owner to file it", plan.pk)
            continue
        try:
            _may_file(plan.owner, plan.machine)  # outside the filing's transaction: a denial stays trailed
        except PolicyDenied:
            logger.warning("maintenance plan %s is due but its owner may no longer file work orders", plan.pk)
            continue
        filed.append(
            work_order_file(
                actor=plan.owner,
                machine=plan.machine,
                title=plan.title,
                description="\n\n".join(
                    part
                    for part in (plan.instructions.strip(), f"Preventive maintenance due: {reason}.")
                    if part
                ),
                priority=plan.priority,
                team=plan.team,
                plan=plan,
                # one work order per interval, however often this runs
                submission_key=f"pm-{plan.pk}-{plan.last_done_at:%Y%m%d%H%M%S%f}",
            )
        )
    return filed


def plan_restart(work_order: WorkOrder) -> None:
    """The plan's next interval starts: its work order was completed, or cancelled (skipped)."""
    plan = work_order.plan
    if plan is None:
        return
    plan.last_done_at = work_order.completed_at or timezone.now()
    plan.last_done_hours = latest_hours(plan.machine)
    plan.save(update_fields=["last_done_at", "last_done_hours"])
