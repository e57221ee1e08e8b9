"""Condition results become stored analyses, predictions and alerts: vibration zone C or D, a bearing
defect called while the zone is still A or B, a remaining useful life below the machine's threshold, or a
component's 3-D scans showing wear beyond or near its tolerance, raises one open alert (trailed); a
condition that stands raises no second one until it escalates."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import record
from manufacturing.analysis.vibration import DEFECT_CALLS, fault_label
from manufacturing.models import (
    Alert,
    Machine,
    RulModelVersion,
    RulPrediction,
    VibrationAnalysis,
    VibrationRecording,
    WorkOrder,
)

ALERT_ZONES = {"C": "warning", "D": "danger"}
VIBRATION_ALERTS = (Alert.Kind.VIBRATION_ZONE, Alert.Kind.DEFECT)


def _trail(*, actor, alert: Alert) -> None:

    record(
        actor=actor,
        action="alert.raise",
        resource_type="machine_alert",  # not "alert": that is the AML alert compliance officers read
        resource_id=alert.pk,
        outcome="succeeded",
        payload={
            "site": alert.machine.site,
            "machine": alert.machine.tag,
            "kind": alert.kind,
            "message": alert.message,
        },
    )


@transaction.atomic
def analysis_store(
    *, recording: VibrationRecording, result: dict, actor="task:manufacturing.analyse"
) -> VibrationAnalysis:
    """Store `result` (VibrationAnalysis.to_dict() of manufacturing.analysis) and alert on zone C/D."""

    zone = str(result.get("zone", "")).upper()[:1]
    if zone not in "ABCD" or not zone:
        raise ValueError(f"analysis result has no ISO zone A-D (got {result.get('zone')!r})")
    analysis, _ = VibrationAnalysis.objects.update_or_create(
        recording=recording,
        defaults={
            "rms_velocity": float(result.get("rms_velocity", 0.0)),
            "peak": float(result.get("peak", 0.0)),
            "crest_factor": float(result.get("crest_factor", result.get("crest", 0.0))),
            "kurtosis": float(result.get("kurtosis", 0.0)),
            "zone": zone,
            "fault": str(result.get("fault", "") or "")[:32],
            "result": result,
        },
    )
    recording.status = VibrationRecording.Status.DONE
    recording.error = ""
    recording.save(update_fields=["status", "error"])
    record(
        actor=actor,
        action="recording.analyse",
        resource_type="recording",
        resource_id=recording.pk,
        outcome="succeeded",
        payload={"site": recording.machine.site, "zone": zone, "rms_velocity": analysis.rms_velocity},
    )
    level = _vibration_level(zone, analysis.fault)
    standing = list(_standing_vibration_alerts(recording.machine))
    if level > max((_vibration_alert_level(alert) for alert in standing), default=0):
        # a route uploaded days later: the alert says which day the machine was in that state
        measured = (
            f" (measured {timezone.localtime(recording.recorded_at):%Y-%m-%d %H:%M})"
            if recording.uploaded_late
            else ""
        )
        if zone in ALERT_ZONES:
            kind, severity = Alert.Kind.VIBRATION_ZONE, ALERT_ZONES[zone]
            message = (
                f"Vibration zone {zone}: {analysis.rms_velocity:.2f} mm/s RMS"
                + (f", bearing fault call: {fault_label(analysis.fault)}" if analysis.fault else "")
                + measured
            )
        else:  # the envelope spectrum finds a bearing defect long before it moves the overall velocity
            kind, severity = Alert.Kind.DEFECT, "warning"
            message = (
                f"{fault_label(analysis.fault).capitalize()} called from the spectra while the "
                f"vibration is still in zone {zone} ({analysis.rms_velocity:.2f} mm/s RMS){measured}: "
                "plan the repair before the zone rises"
            )
        alert = Alert.objects.create(
            machine=recording.machine,
            kind=kind,
            severity=severity,
            recording=recording,
            message=message[:255],
        )
        _trail(actor=actor, alert=alert)
        _supersede(actor=actor, standing=standing, by=alert)
    return analysis


WEAR_SOON_DAYS = 30  # a wear line reaching the tolerance within this many days raises a warning


def scan_wear_alert(*, comparison, actor) -> Alert | None:
    """After a scan is registered (in its transaction): its component's wear raises an alert when the
    scan has points beyond the tolerance (danger) or the wear line through the component's scans reaches
    the tolerance within WEAR_SOON_DAYS (a warning: time to plan the repair). As for vibration, one
    stands per component (open, or covered by a work order still in hand) and a new one is raised only
    when it escalates, closing the open one below it. The new alert, if any.

    The condition judged is the component's latest scan by the time scanned: an older scan sent later
    (from a scanner's archive) refines the wear line but does not stand for the component now; an alert
    it leads to names the latest scan."""
    from manufacturing.selectors import scan_history, scan_wear

    if not comparison.component_id:  # no component: no history to follow, the scan's page says it all
        return None
    history = scan_history(comparison)
    latest = history[-1] if history else comparison  # the component now
    _, wear, reaches_on = scan_wear(history, latest)
    summary, unit = latest.summary, latest.unit
    beyond = int(summary.get("beyond_tolerance") or 0)
    days_left = (reaches_on - timezone.now()).total_seconds() / 86400 if reaches_on is not None else None
    soon = days_left is not None and days_left <= WEAR_SOON_DAYS
    level = 2 if beyond else 1 if soon else 0
    standing = list(
        _standing(Alert.objects.filter(kind=Alert.Kind.WEAR, scan__component_id=latest.component_id))
    )
    if level <= max((2 if alert.severity == "danger" else 1 for alert in standing), default=0):
        return None
    rate = (
        f", wearing {wear.rate_per_month:.3g} {unit} a month"
        if wear is not None and wear.rate_per_day > 0
        else ""
    )
    scanned = f" (scanned {timezone.localtime(latest.scanned_at):%Y-%m-%d})" if latest.uploaded_late else ""
    if beyond:
        message = (
            f"{latest.component.name}: {beyond:,} points beyond {latest.tolerance:g} {unit} "
            f"(largest {summary.get('deviation_max', 0):.2f} {unit}) on scan {latest.pk}{scanned}{rate}"
        )
    elif days_left >= 1:
        message = (
            f"{latest.component.name}: at its wear rate ({wear.rate_per_month:.3g} {unit} a month) the "
            f"largest deviation reaches the {latest.tolerance:g} {unit} tolerance in about "
            f"{days_left:.0f} days, around {timezone.localtime(reaches_on):%Y-%m-%d}: plan the repair"
        )
    else:  # the line crossed it since the latest scan: that scan is old
        message = (
            f"{latest.component.name}: at its wear rate ({wear.rate_per_month:.3g} {unit} a month) the "
            f"largest deviation has reached the {latest.tolerance:g} {unit} tolerance since scan "
            f"{latest.pk}{scanned}, around {timezone.localtime(reaches_on):%Y-%m-%d}: scan it again"
        )
    alert = Alert.objects.create(
        machine=latest.machine,
        kind=Alert.Kind.WEAR,
        severity="danger" if beyond else "warning",
        scan=latest,
        message=message[:255],
    )
    _trail(actor=actor, alert=alert)
    _supersede(actor=actor, standing=standing, by=alert)
    return alert


def _vibration_level(zone: str, fault: str) -> int:
    """How serious a vibration analysis is: 3 zone D, 2 zone C, 1 a defect called in zone A or B."""
    return {"D": 3, "C": 2}.get(zone, 1 if fault in DEFECT_CALLS else 0)


def _vibration_alert_level(alert: Alert) -> int:
    if alert.kind == Alert.Kind.DEFECT:
        return 1
    return 3 if alert.severity == "danger" else 2


def _standing(alerts):
    """Of `alerts`, those that still stand: open, or covered by a work order still in hand. One whose
    work order is complete or cancelled (the part replaced, or judged nothing) stands no more: the same
    condition found again raises a new alert."""
    in_hand = WorkOrder.objects.exclude(status__in=WorkOrder.TERMINAL)
    return alerts.filter(
        Q(status=Alert.Status.OPEN) | Q(status=Alert.Status.ACKNOWLEDGED, work_orders__in=in_hand)
    ).distinct()


def _standing_vibration_alerts(machine: Machine):
    return _standing(Alert.objects.filter(machine=machine, kind__in=VIBRATION_ALERTS))


def _supersede(*, actor, standing: list[Alert], by: Alert) -> None:
    """The earlier alerts nobody has acted on yet say less than `by`: closed, trailed (those
    acknowledged by a work order follow their work order)."""
    for earlier in standing:
        if earlier.status == Alert.Status.OPEN:
            earlier.status = Alert.Status.CLOSED
            earlier.save(update_fields=["status"])
            record(
                actor=actor,
                action="alert.supersede",
                resource_type="machine_alert",
                resource_id=earlier.pk,
                outcome="succeeded",
                payload={"site": by.machine.site, "machine": by.machine.tag, "by": by.pk},
            )


@transaction.atomic
def prediction_store(
    *,
    machine: Machine,
    model: RulModelVersion,
    unit: int,
    rul: float,
    lower: float,
    upper: float,
    actor="command:train_prognostics",
    cycle: int | None = None,
) -> RulPrediction:
    """Store a RUL prediction with its band (trailed); alert when it is below the machine's threshold
    (a warning: time to plan) or at the model's replacement point (danger: replace now, or order the
    parts now where the plan has a lead time). With the prediction renewed at every reading, a unit
    whose alert still stands (open, or acknowledged by a work order) gets a new one only when it
    escalates: warning -> danger (the whole band below the threshold) -> the replacement point."""

    if not lower <= rul <= upper:
        raise ValueError(f"the band [{lower}, {upper}] does not contain the prediction {rul}")
    prediction = RulPrediction.objects.create(
        machine=machine, model=model, unit=unit, cycle=cycle, rul=rul, lower=lower, upper=upper
    )
    record(
        actor=actor,
        action="rul.predict",
        resource_type="asset",
        resource_id=machine.pk,
        outcome="succeeded",
        payload={
            "site": machine.site,
            "model": f"{model.family} v{model.version}",
            "unit": unit,
            "cycle": cycle,
            "rul": rul,
        },
    )
    replace_at = model.replacement_point
    due = replace_at is not None and rul <= replace_at
    threshold = machine.rul_alert_threshold
    level = 3 if due else 2 if upper < threshold else 1 if rul < threshold else 0
    standing = list(
        Alert.objects.filter(machine=machine, kind=Alert.Kind.RUL, prediction__unit=unit)
        .exclude(status=Alert.Status.CLOSED)
        .select_related("prediction__model")
    )
    if level > max((_rul_level(alert) for alert in standing), default=0):
        message = f"Remaining useful life {rul:.0f} cycles [{lower:.0f}, {upper:.0f}]" + (
            f", at or below the replacement point of {model.family} v{model.version} ({replace_at} cycles): "
            f"{model.replacement_action}"
            if due
            else f", the whole band below {threshold:.0f}"
            if level == 2
            else f" below {threshold:.0f}"
        )
        alert = Alert.objects.create(
            machine=machine,
            kind=Alert.Kind.RUL,
            severity="danger" if level >= 2 else "warning",
            prediction=prediction,
            message=message,
        )
        _trail(actor=actor, alert=alert)
        _supersede(actor=actor, standing=standing, by=alert)
    return prediction


def _rul_level(alert: Alert) -> int:
    """How far a standing RUL alert went: 3 at its model's replacement point, 2 danger, 1 warning."""
    prediction = alert.prediction
    point = prediction.model.replacement_point if prediction is not None else None
    if point is not None and prediction.rul <= point:
        return 3
    return 2 if alert.severity == "danger" else 1
