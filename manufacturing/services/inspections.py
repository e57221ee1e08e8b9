"""Inspections: a checklist walked on an asset; every failed item raises an alert and files a work
order (priority high) for it, in the same transaction, all trailed."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from access.enforcement import check
from access.resources import Resource
from audit.services import record
from manufacturing.models import Alert, Inspection, InspectionItem, InspectionTemplate, Machine


class InspectionRefused(Exception):
    """An inspection that cannot be recorded; the message says what to fix (maps to 400)."""


class InspectionKeyReused(InspectionRefused):
    """The submission key already recorded a different inspection."""


@dataclass(frozen=True)
class ItemResult:
    text: str
    passed: bool
    note: str = ""


def _recorded_before(actor, key: str, machine: Machine, items: list[ItemResult]) -> Inspection | None:
    """The inspection this person already recorded with `key`, if any; refused when it differs."""
    earlier = Inspection.objects.filter(inspector=actor, submission_key=key).first() if key else None
    if earlier is None:
        return None
    stored = [(i.text, i.passed, i.note) for i in earlier.items.order_by("pk")]
    sent = [(i.text.strip()[:255], i.passed, i.note.strip()[:255]) for i in items]
    if earlier.machine_id != machine.pk or stored != sent:
        raise InspectionKeyReused(
            f"this form was already recorded as inspection {earlier.pk} of {earlier.machine.tag} with "
            "other results; send it again to record a new inspection"
        )
    return earlier


@transaction.atomic
def inspection_record(
    *,
    actor,
    machine: Machine,
    items: list[ItemResult],
    template: InspectionTemplate | None = None,
    submission_key: str = "",
) -> Inspection:
    """Record an inspection of `machine` (the actor needs `file` on its site's work orders).

    Each failed item becomes an INSPECTION alert and an open work order filed from that alert.
    `submission_key` (as for work_order_file): the same key from the same inspector returns the
    inspection already recorded, with `replayed` set, and files nothing again."""
    from manufacturing.services.alerts import _trail as trail_alert
    from manufacturing.services.work_orders import WorkOrderRefused, checked_submission_key, work_order_file
    from portal.submissions import created_once

    decision = check(actor, "file", Resource("work_order", "new", {"site": machine.site}))
    items = [item for item in items if item.text.strip()]
    if not items:
        raise InspectionRefused("an inspection needs at least one checklist item")
    failed_without_note = [item.text for item in items if not item.passed and not item.note.strip()]
    if failed_without_note:
        raise InspectionRefused(
            "say what was found for each failed item: " + "; ".join(failed_without_note)[:200]
        )
    try:
        submission_key = checked_submission_key(submission_key, actor)
    except WorkOrderRefused as refusal:
        raise InspectionRefused(str(refusal)) from None
    earlier = _recorded_before(actor, submission_key, machine, items)
    if earlier is not None:
        earlier.replayed = True
        return earlier
    inspection = created_once(
        lambda: Inspection.objects.create(
            machine=machine, template=template, inspector=actor, submission_key=submission_key
        ),
        lambda: _recorded_before(actor, submission_key, machine, items),
    )
    if inspection.replayed:
        return inspection
    filed = []
    for item in items:
        row = InspectionItem(
            inspection=inspection,
            text=item.text.strip()[:255],
            passed=item.passed,
            note=item.note.strip()[:255],
        )
        if not item.passed:
            alert = Alert.objects.create(
                machine=machine,
                kind=Alert.Kind.INSPECTION,
                message=f"Inspection failed: {row.text}: {row.note}"[:255],
            )
            trail_alert(actor=actor, alert=alert)
            row.work_order = work_order_file(
                actor=actor,
                machine=machine,
                title=f"Inspection: {row.text}"[:255],
                description=row.note,
                priority=2,
                alert=alert,
            )
            filed.append(row.work_order.pk)
        row.save()
    record(
        actor=actor,
        action="inspection.record",
        resource_type="asset",
        resource_id=machine.pk,
        outcome="succeeded",
        policy=decision.policy or "",
        payload={
            "site": machine.site,
            "inspection": inspection.pk,
            "items": len(items),
            "failed": len(filed),
            "work_orders": filed,
        },
    )
    return inspection
