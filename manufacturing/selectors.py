"""Reads of the manufacturing app, scoped by the access policy."""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, Count, DateField, F, IntegerField, Prefetch, Q, Sum, Value, When
from django.http import Http404
from django.utils import timezone

from access.decisions import decide
from access.enforcement import check
from access.errors import PolicyDenied
from access.querysets import restrict
from access.resources import Resource
from manufacturing.models import Alert, FailureCode, Machine, ScanComparison, WorkOrder
from manufacturing.services.failure_codes import ISO_CATEGORY

NOT_FOUND_MESSAGE = "No such item, or you may not see it."


def _pk(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404(NOT_FOUND_MESSAGE) from None


def machines_visible_to(user):
    return restrict(Machine.objects.all(), user, "view")


def machines_with_health(user, *, pk: int | None = None) -> list[Machine]:
    """The machines `user` may view, each with what the asset list shows at a glance, as the asset page
    would: `zone` of its latest analysed recording, `rul` of its latest prediction and `replace_now`
    (that prediction at or below its model's replacement point; `replacement_action` says what to
    do), its line at hand. Three queries whatever the count; `pk`: that machine only."""
    from django.db.models import OuterRef, Subquery

    from manufacturing.models import RulModelVersion, RulPrediction, VibrationAnalysis

    analysis = VibrationAnalysis.objects.filter(recording__machine=OuterRef("pk")).order_by(
        "-recording__recorded_at", "-pk"
    )
    prediction = RulPrediction.objects.filter(machine=OuterRef("pk")).order_by("-created_at", "-pk")
    visible = machines_visible_to(user).select_related("line")
    machines = list(
        (visible if pk is None else visible.filter(pk=pk)).annotate(
            zone=Subquery(analysis.values("zone")[:1]),
            rul=Subquery(prediction.values("rul")[:1]),
            rul_model_id=Subquery(prediction.values("model_id")[:1]),
        )
    )
    models = {
        model.pk: model
        for model in RulModelVersion.objects.filter(pk__in={m.rul_model_id for m in machines} - {None}).only(
            "pk", "description"
        )
    }
    for machine in machines:
        model = models.get(machine.rul_model_id)
        point = model.replacement_point if model else None
        machine.replace_now = machine.rul is not None and point is not None and machine.rul <= point
        machine.replacement_action = model.replacement_action if machine.replace_now else ""
    return machines


ACTIVE = "active"  # the list's default: what is still to do


SEARCHED_FIELDS = (
    "title", "description", "closing_notes", "equipment_label", "external_id", "failure_mode",
    "machine__tag", "machine__name",
)  # fmt: skip


def work_orders_visible_to(user, *, status: str = "", search: str = ""):
    """`status` one of WorkOrder.Status, ACTIVE (open, in progress, on hold: by priority, then the
    earliest due date) or "" (all, newest first). `search`: every word must appear (any case) in the
    title, description, closing notes, equipment, history ID, failure mode code or the asset's tag or
    name."""
    queryset = restrict(WorkOrder.objects.select_related("machine"), user, "view")
    for word in search.split()[:8]:
        match = Q()
        for name in SEARCHED_FIELDS:
            match |= Q(**{f"{name}__icontains": word})
        queryset = queryset.filter(match)
    if status == ACTIVE:
        return queryset.exclude(status__in=WorkOrder.TERMINAL).order_by(
            "priority", F("due").asc(nulls_last=True), "-created_at", "-pk"
        )
    return queryset.filter(status=status) if status else queryset


def _checked(user, obj, action: str, actor):

    if obj is None:
        raise Http404(NOT_FOUND_MESSAGE)
    try:
        check(user, action, obj, actor=actor)
    except PolicyDenied as denied:
        raise Http404(NOT_FOUND_MESSAGE) from denied  # the 404 handler makes sure it is trailed
    return obj


def machine_for(user, machine_id, *, action: str = "view", actor=None) -> Machine:
    """The machine if `user` may `action` it, else Http404 (after trailing the denial)."""
    return _checked(user, Machine.objects.filter(pk=_pk(machine_id)).first(), action, actor)


def work_order_for(user, work_order_id, *, action: str = "view", actor=None) -> WorkOrder:
    """The work order if `user` may `action` it, else Http404 (after trailing the denial)."""
    return _checked(user, WorkOrder.objects.filter(pk=_pk(work_order_id)).first(), action, actor)


def work_order_ids_visible_to(user) -> set[int]:
    return set(restrict(WorkOrder.objects.all(), user, "view").values_list("pk", flat=True))


def suggestion_for(user, suggestion_id, *, actor=None):
    """A failure-mode suggestion if `user` may view its work order, else Http404."""
    from manufacturing.models import FailureSuggestion

    suggestion = FailureSuggestion.objects.select_related("work_order").filter(pk=_pk(suggestion_id)).first()
    _checked(user, suggestion.work_order if suggestion else None, "view", actor)
    return suggestion


def attachment_for(user, attachment_id, *, actor=None):
    from manufacturing.models import WorkOrderAttachment

    attachment = (
        WorkOrderAttachment.objects.select_related("work_order").filter(pk=_pk(attachment_id)).first()
    )
    _checked(user, attachment.work_order if attachment else None, "view", actor)
    return attachment


def alert_for(user, alert_id, *, actor=None):
    """An alert if `user` may view its asset, else Http404."""
    from manufacturing.models import Alert

    alert = Alert.objects.select_related("machine").filter(pk=_pk(alert_id)).first()
    _checked(user, alert.machine if alert else None, "view", actor)
    return alert


def covering_work_order(alert):
    """The work order still in hand for `alert` (open, in progress or on hold), if any: an alert is
    covered by one work order at a time. (The caller has already been allowed to see the alert.)"""
    return alert.work_orders.exclude(status__in=WorkOrder.TERMINAL).order_by("pk").first()


def alerts_visible_to(user, *, status: str = "open"):
    visible = machines_visible_to(user).values("pk")
    return Alert.objects.filter(machine__in=visible, status=status).select_related("machine")


def alerts_in_hand(alerts):
    """Of `alerts`, those a work order still in hand covers (filed from the alert, not yet complete or
    cancelled), newest first, each with those work orders as `covering`: an alert an engineer is
    already working on, shown beside the open ones so "no open alerts" is never read as "no alerts"."""
    in_hand = WorkOrder.objects.exclude(status__in=WorkOrder.TERMINAL).order_by("pk")
    return (
        alerts.filter(status=Alert.Status.ACKNOWLEDGED, work_orders__in=in_hand)
        .distinct()
        .select_related("machine")
        .prefetch_related(Prefetch("work_orders", queryset=in_hand, to_attr="covering"))
        .order_by("-created_at", "-pk")
    )


def failure_codes(kind: str):
    """The codes of `kind` grouped by category, the ISO 14224 failure modes first (the ones the
    assistant suggests), then the imported tables' categories alphabetically."""
    iso_first = Case(
        When(category=ISO_CATEGORY, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    return FailureCode.objects.filter(kind=kind).order_by(iso_first, "category", "code")


RUL_TREND_POINTS = 500


def machine_condition(machine: Machine, *, recordings: int = 30) -> dict:
    """What an asset page shows (the caller has checked `view` on `machine`): the latest analysed
    recording and the RMS velocity trend of its recent recordings, both by the time measured, its
    latest RUL prediction with that unit's predictions by cycle (`rul_trend`) and the sensor trend of
    its latest condition unit."""
    from manufacturing.models import ConditionRecord, VibrationAnalysis

    analyses = list(
        VibrationAnalysis.objects.filter(recording__machine=machine)
        .select_related("recording", "recording__component__bearing")
        .order_by("-recording__recorded_at", "-pk")[:recordings]
    )
    latest_unit = (
        ConditionRecord.objects.filter(machine=machine)
        .order_by("-unit")
        .values_list("unit", flat=True)
        .first()
    )
    condition = (
        list(
            ConditionRecord.objects.filter(machine=machine, unit=latest_unit)
            .order_by("cycle")
            .values_list("cycle", "settings", "sensors")
        )
        if latest_unit is not None
        else []
    )
    prediction = machine.rul_predictions.select_related("model").first()
    rul_trend = {}  # cycle -> the latest prediction made at it, for the unit of the latest prediction
    if prediction is not None:
        for earlier in (
            machine.rul_predictions.filter(unit=prediction.unit, cycle__isnull=False)
            .select_related("model")
            .order_by("-created_at", "-pk")[:RUL_TREND_POINTS]
        ):
            rul_trend.setdefault(earlier.cycle, earlier)
    return {
        "analysis": analyses[0] if analyses else None,
        "trend": [(a.recording.recorded_at, a.rms_velocity, a.zone) for a in reversed(analyses)],
        "prediction": prediction,
        "rul_trend": [rul_trend[cycle] for cycle in sorted(rul_trend)],
        "condition_unit": latest_unit,
        "condition": condition,
        "pending": machine.recordings.exclude(status="done").order_by("-created_at")[:5],
    }


def maintenance_plan_for(user, plan_id, *, actor=None):
    """An active maintenance plan if `user` may view its asset, else Http404."""
    from manufacturing.models import MaintenancePlan

    plan = MaintenancePlan.objects.select_related("machine").filter(pk=_pk(plan_id), active=True).first()
    _checked(user, plan.machine if plan else None, "view", actor)
    return plan


def maintenance_plans_of(machine) -> list[dict]:
    """The machine's active preventive maintenance plans, each with when it falls due (date and/or
    running hours), whether that is now, and its open work order. (The caller may view the machine.)"""
    from manufacturing.services.maintenance_plans import latest_hours, plan_due, plan_schedule

    hours, now = latest_hours(machine), timezone.now()
    plans = (
        machine.maintenance_plans.filter(active=True).select_related("owner").prefetch_related("work_orders")
    )
    filing = Resource("work_order", "new", {"site": machine.site})
    return [
        {
            "plan": plan,
            "due": plan_schedule(plan),
            "due_now": plan_due(plan, now=now, hours=hours),
            "open": next((wo for wo in plan.work_orders.all() if wo.status not in WorkOrder.TERMINAL), None),
            # whether its work orders can still be filed: an owner moved to another site, or whose
            # account was closed, files nothing until someone of the site takes the plan over
            "owner_may_file": plan.owner is not None
            and plan.owner.is_active
            and decide(plan.owner, "file", filing).allowed,
        }
        for plan in plans
    ]


def recording_for(user, recording_id, *, actor=None):
    """A vibration recording (with its analysis, if any) if `user` may view its asset, else Http404
    (after trailing the denial)."""
    from manufacturing.models import VibrationRecording

    recording = (
        VibrationRecording.objects.select_related("machine", "component__bearing", "uploaded_by")
        .filter(pk=_pk(recording_id))
        .first()
    )
    _checked(user, recording.machine if recording is not None else None, "view", actor)
    return recording


def scan_for(user, scan_id, *, actor=None) -> ScanComparison:
    """A scan comparison if `user` may view its asset, else Http404 (after trailing the denial)."""
    scan = ScanComparison.objects.select_related("machine").filter(pk=_pk(scan_id)).first()
    _checked(user, scan.machine if scan is not None else None, "view", actor)
    return scan


def scan_history(comparison: ScanComparison) -> list[ScanComparison]:
    """The registered scans of `comparison`'s component, in the order they were scanned (the caller has
    checked `view` on its asset; none for a scan with no component)."""
    if not comparison.component_id:
        return []
    return list(
        comparison.machine.scans.filter(
            component_id=comparison.component_id, status=ScanComparison.Status.DONE
        ).order_by("scanned_at", "pk")
    )


def scan_wear(history: list[ScanComparison], comparison: ScanComparison):
    """(points, trend, reaches_on): each scan of `history` in `comparison`'s length unit as (scanned at,
    largest deviation), the wear trend of those deviations against `comparison`'s tolerance
    (`pointcloud.WearTrend`; None with fewer than two scans a day apart) and the date its line reaches
    the tolerance (None when beyond it or not growing)."""
    from manufacturing.analysis.pointcloud import wear_trend

    points = [
        (scan.scanned_at, float(scan.summary["deviation_max"]))
        for scan in history
        if scan.unit == comparison.unit and isinstance(scan.summary.get("deviation_max"), int | float)
    ]
    first = points[0][0] if points else None
    trend = wear_trend(
        [(when - first).total_seconds() / 86400 for when, _ in points],
        [deviation for _, deviation in points],
        comparison.tolerance,
    )
    if trend is None or trend.reaches_in_days is None:
        return points, trend, None
    return points, trend, points[-1][0] + dt.timedelta(days=trend.reaches_in_days)


def asset_work_orders(machine: Machine):
    """The asset's work orders: those in hand (open, in progress, on hold) by priority and due date,
    then the others by when they were completed, latest first."""
    done = Case(
        When(status__in=WorkOrder.TERMINAL, then=Value(1)), default=Value(0), output_field=IntegerField()
    )
    return machine.work_orders.annotate(done=done).order_by(
        "done",
        Case(When(done=0, then=F("priority")), default=Value(0), output_field=IntegerField()),
        Case(When(done=0, then=F("due")), default=None, output_field=DateField()).asc(nulls_last=True),
        F("completed_at").desc(nulls_last=True),
        "-pk",
    )


RELIABILITY_PERIODS = {"365": "the last 12 months", "1095": "the last 3 years", "all": "its recorded history"}


def machine_reliability(machine: Machine, period: str = "365", *, now=None) -> dict | None:
    """The asset's reliability from its completed work orders over `period` (RELIABILITY_PERIODS: days
    up to now, or "all": from its first completed work order to its last): `figures`
    (`analysis.reliability.Reliability`), `modes` ((code, description, count), most frequent first) and
    the period's words; None when it has no completed work order at all. The operating time is the
    meter's advance where its readings span at least 90% of the period, else the calendar's less the
    downtime. (The caller has checked `view`.)"""
    from manufacturing.analysis.reliability import reliability

    done = list(
        machine.work_orders.filter(status=WorkOrder.Status.COMPLETE, completed_at__isnull=False).values_list(
            "completed_at", "preventive", "downtime_hours", "failure_mode"
        )
    )
    if not done:
        return None
    now = now or timezone.now()
    if period == "all":
        start, end = min(w[0] for w in done), max(w[0] for w in done)
    else:
        start, end = now - dt.timedelta(days=int(period)), now
    readings = machine.meter_readings.filter(read_at__gte=start, read_at__lte=end).order_by("read_at")
    first, last = readings.first(), readings.last()
    spans = first is not None and end > start and (last.read_at - first.read_at) >= 0.9 * (end - start)
    meter = last.hours - first.hours if spans else None
    figures = reliability(done, start=start, end=end, meter_hours=meter)
    names = dict(
        FailureCode.objects.filter(kind=FailureCode.Kind.MODE, code__in=[c for c, _ in figures.modes])
        .values_list("code", "description")
        .distinct()
    )
    return {
        "figures": figures,
        "modes": [(code, names.get(code, ""), count) for code, count in figures.modes],
        "period": period,
        "period_label": RELIABILITY_PERIODS[period],
    }


def bad_actors(user, *, period: str = "365", limit: int = 5) -> list[tuple[Machine, dict]]:
    """The assets `user` may view with the most failures (corrective work orders completed in the last
    `period` days, one of RELIABILITY_PERIODS but "all"), then the most downtime: each with its
    reliability over those days (`machine_reliability`), worst first. Where to look for a root cause
    first."""
    ranked = list(
        WorkOrder.objects.filter(
            machine__in=machines_visible_to(user).values("pk"),
            status=WorkOrder.Status.COMPLETE,
            preventive=False,
            completed_at__gte=timezone.now() - dt.timedelta(days=int(period)),
        )
        .values("machine")
        .annotate(failures=Count("pk"), downtime=Sum("downtime_hours"))
        .order_by("-failures", "-downtime", "machine")[:limit]
    )
    machines = Machine.objects.in_bulk([row["machine"] for row in ranked])
    return [
        (machines[row["machine"]], machine_reliability(machines[row["machine"]], period)) for row in ranked
    ]
