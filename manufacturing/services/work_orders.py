"""Work orders: filing, the state machine (OPEN -> IN_PROGRESS <-> ON_HOLD -> COMPLETE, CANCELLED)
and the import of historical work orders. Every change is authorized by the access policy and
trailed in the same transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from access.resources import Resource
from access.services import grant
from audit.services import record
from manufacturing.models import FailureCode, Machine, WorkOrder, WorkOrderEvent
from portal.submissions import checked_submission_key as submission_key_checked
from portal.submissions import created_once


class WorkOrderRefused(Exception):
    """A request the work order cannot take (illegal transition, missing codes); maps to 400."""


class SubmissionKeyReused(WorkOrderRefused):
    """A submission key already filed a different work order; the API answers 422."""


def _record(
    *, actor, action: str, work_order: WorkOrder, policy: str = "", payload: dict | None = None
) -> None:

    record(
        actor=actor,
        action=f"work_order.{action}",
        resource_type="work_order",
        resource_id=work_order.pk,
        outcome="succeeded",
        policy=policy,
        payload={"site": work_order.site, **(payload or {})},
    )


def checked_submission_key(key: str, actor) -> str:
    """`key` if it is a valid submission key (portal.submissions), "" when absent or when there is no
    person to scope it to; a malformed one is a WorkOrderRefused."""
    return submission_key_checked(key, actor, refused=WorkOrderRefused)


def _filed_before(actor, key: str, machine: Machine, title: str) -> WorkOrder | None:
    """The work order this person already filed with `key`, if any; refused when it differs."""
    if not key:
        return None
    earlier = WorkOrder.objects.filter(created_by=actor, submission_key=key).first()
    if earlier is not None and (earlier.machine_id != machine.pk or earlier.title != title[:255]):
        raise SubmissionKeyReused(
            f"submission key {key!r} already filed work order {earlier.pk} ({earlier.title!r} on "
            f"{earlier.equipment_label}); use a new key for a new work order"
        )
    return earlier


@transaction.atomic
def work_order_file(
    *,
    actor,
    machine: Machine,
    title: str,
    description: str = "",
    priority: int = WorkOrder.Priority.MEDIUM,
    due: dt.date | None = None,
    team: str = "",
    assignee=None,
    alert=None,
    component=None,
    submission_key: str = "",
    plan=None,
    scan=None,
) -> WorkOrder:
    """File a work order against `machine` (the actor needs `file` on a work order of its site).

    `submission_key` (optional, 1-64 letters, digits, '-' or '_') makes a repeat harmless: the same
    key from the same person returns the work order it filed, with `replayed` set and nothing new
    stored or trailed. An alert is covered by one work order at a time: filing from an alert whose
    work order is still open, in progress or on hold is refused, naming it. `plan`: the preventive
    maintenance plan filing it (the work order is then preventive). `scan`: the 3-D scan whose wear it
    is filed for (a registered scan of the same asset; its component, unless one is given); filed from
    a wear alert, the alert's scan."""

    from manufacturing.selectors import covering_work_order

    decision = check(actor, "file", Resource("work_order", "new", {"site": machine.site}))
    title = (title or "").strip()
    if not title:
        raise WorkOrderRefused("a work order needs a title: say what is wrong, e.g. 'DE bearing noisy'")
    if priority not in WorkOrder.Priority.values:
        raise WorkOrderRefused(f"priority must be one of {WorkOrder.Priority.values}")
    submission_key = checked_submission_key(submission_key, actor)
    earlier = _filed_before(actor, submission_key, machine, title)
    if earlier is not None:
        earlier.replayed = True
        return earlier
    if alert is not None and alert.machine_id != machine.pk:
        raise WorkOrderRefused(f"alert {alert.pk} is on {alert.machine.tag}, not on {machine.tag}")
    if scan is None and alert is not None and alert.scan_id:  # a wear alert: its scan is the evidence
        scan = alert.scan
    if scan is not None and scan.machine_id != machine.pk:
        raise WorkOrderRefused(f"scan {scan.pk} is of {scan.machine.tag}, not of {machine.tag}")
    if scan is not None and scan.status != scan.Status.DONE:
        raise WorkOrderRefused(f"scan {scan.pk} is not registered yet: file from it once it is")
    if scan is not None and component is None:
        component = scan.component
    if alert is not None and (covering := covering_work_order(alert)) is not None:
        raise WorkOrderRefused(
            f"alert {alert.pk} is already covered by work order {covering.pk} "
            f"({covering.get_status_display().lower()}): add to that one, or file without the alert"
        )
    fields = dict(
        site=machine.site,
        machine=machine,
        component=component,
        alert=alert,
        equipment_label=str(machine),
        title=title[:255],
        description=description,
        priority=priority,
        due=due,
        team=team,
        assignee=assignee,
        created_by=actor,
        submission_key=submission_key,
        plan=plan,
        preventive=plan is not None,
        scan=scan,
    )
    work_order = created_once(
        lambda: WorkOrder.objects.create(**fields),
        lambda: _filed_before(actor, submission_key, machine, title),
    )
    if work_order.replayed:
        return work_order
    WorkOrderEvent.objects.create(
        work_order=work_order, to_status=work_order.status, actor=actor, note="filed"
    )
    if alert is not None:
        alert.status = alert.Status.ACKNOWLEDGED
        alert.save(update_fields=["status"])
    _record(
        actor=actor,
        action="file",
        work_order=work_order,
        policy=decision.policy or "",
        payload={
            "machine": machine.tag,
            "priority": priority,
            "alert": alert.pk if alert else None,
            **({"scan": scan.pk} if scan is not None else {}),
        },
    )
    return work_order


def _repeats_last_move(work_order: WorkOrder, actor, to_status: str, note: str, codes: tuple) -> bool:
    """Whether this request is the work order's last move sent again by the same person: it is already
    in `to_status`, that person moved it there with the same note (and, to complete it, the same
    codes). A phone that lost the answer to "complete" then hears it was done, not that it is final."""
    last = work_order.events.order_by("-created_at", "-pk").first()
    if work_order.status != to_status or last is None or last.to_status != to_status:
        return False
    if (
        last.actor_id is None
        or getattr(actor, "pk", None) != last.actor_id
        or (last.note or "") != (note or "")
    ):
        return False
    current = (work_order.failure_mode, work_order.failure_cause, work_order.action_code)
    return to_status != WorkOrder.Status.COMPLETE or current == tuple(codes)


def transition_action(to_status: str) -> str:
    """The policy action a move to `to_status` needs: completing is `close`; cancelling is the owning
    site's decision (`file`, like planning); starting, holding and resuming are `work`, which the
    assignee holds even when they come from another site (a grant given on assignment)."""
    if to_status == WorkOrder.Status.COMPLETE:
        return "close"
    if to_status == WorkOrder.Status.CANCELLED:
        return "file"
    return "work"


@transaction.atomic
def work_order_transition(
    *,
    actor,
    work_order: WorkOrder,
    to_status: str,
    note: str = "",
    failure_mode: str = "",
    failure_cause: str = "",
    action_code: str = "",
    labour_hours: float | None = None,
    downtime_hours: float | None = None,
) -> WorkOrder:
    """Move `work_order` to `to_status`; closing (COMPLETE) needs `close` and valid mode, cause, action codes.

    The last move sent again by the same person (same status, note and codes) returns the work order
    with `replayed` set and changes nothing; any other move to the status it has is refused."""

    work_order = WorkOrder.objects.select_for_update().get(pk=work_order.pk)
    decision = check(actor, transition_action(to_status), work_order)
    if to_status not in WorkOrder.Status.values:
        raise WorkOrderRefused(
            f"unknown status {to_status!r}; use one of {', '.join(WorkOrder.Status.values)}"
        )
    if _repeats_last_move(work_order, actor, to_status, note, (failure_mode, failure_cause, action_code)):
        work_order.replayed = True  # the same move sent again (its answer was lost): already made
        return work_order
    allowed = WorkOrder.TRANSITIONS[work_order.status]
    if to_status not in allowed:
        named = WorkOrder.Status  # labels for the engineer, codes in brackets for API callers
        raise WorkOrderRefused(
            f"a work order that is {named(work_order.status).label.lower()} cannot become "
            f"{named(to_status).label.lower()} ({to_status}); allowed: "
            f"{', '.join(f'{named(s).label.lower()} ({s})' for s in sorted(allowed)) or 'none (it is final)'}"
        )
    for value, name in ((labour_hours, "labour hours"), (downtime_hours, "downtime hours")):
        if value is not None and value < 0:
            raise WorkOrderRefused(f"{name} cannot be negative")
    if to_status == WorkOrder.Status.COMPLETE:
        missing = [
            name
            for name, value in (
                ("failure_mode", failure_mode),
                ("failure_cause", failure_cause),
                ("action_code", action_code),
            )
            if not value
        ]
        if missing:
            raise WorkOrderRefused(
                f"closing needs failure mode, cause and action codes; missing: {', '.join(missing)}"
            )
        for kind, code in (
            (FailureCode.Kind.MODE, failure_mode),
            (FailureCode.Kind.CAUSE, failure_cause),
            (FailureCode.Kind.ACTION, action_code),
        ):
            if not FailureCode.objects.filter(kind=kind, code=code).exists():
                raise WorkOrderRefused(f"{code!r} is not a known {FailureCode.Kind(kind).label.lower()} code")
        work_order.failure_mode, work_order.failure_cause, work_order.action_code = (
            failure_mode,
            failure_cause,
            action_code,
        )
        work_order.completed_at = timezone.now()
        work_order.closing_notes = note
    if labour_hours is not None:
        work_order.labour_hours = labour_hours
    if downtime_hours is not None:
        work_order.downtime_hours = downtime_hours
    from_status = work_order.status
    work_order.status = to_status
    work_order.save()
    work_order.replayed = False
    if to_status in WorkOrder.TERMINAL and work_order.plan_id:
        from manufacturing.services.maintenance_plans import plan_restart

        plan_restart(work_order)  # done, or this occurrence skipped: the next interval starts
    WorkOrderEvent.objects.create(
        work_order=work_order, from_status=from_status, to_status=to_status, note=note, actor=actor
    )
    _record(
        actor=actor,
        action="close" if to_status == WorkOrder.Status.COMPLETE else "transition",
        work_order=work_order,
        policy=decision.policy or "",
        payload={
            "from": from_status,
            "to": to_status,
            "failure_mode": work_order.failure_mode,
            "failure_cause": work_order.failure_cause,
            "action_code": work_order.action_code,
        },
    )
    return work_order


ASSIGNEE_GRANTS = ("view", "work", "close")


def _user_named(username: str):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise WorkOrderRefused(f"no active user {username!r}: give the assignee's user name")
    return user


@transaction.atomic
def work_order_update(
    *,
    actor,
    work_order: WorkOrder,
    priority: int | None = None,
    due: dt.date | None = None,
    team: str | None = None,
    assignee: str | None = None,
    labour_hours: float | None = None,
    downtime_hours: float | None = None,
) -> WorkOrder:
    """Change the planning fields of an open work order (the actor needs `file`); None leaves a field.

    `assignee` is a user name ("" unassigns). An assignee from another site gets explicit grants
    (view, work, close) on this work order, given by the actor, who needs `share` for that."""

    work_order = WorkOrder.objects.select_for_update().get(pk=work_order.pk)
    decision = check(actor, "file", work_order)
    if work_order.status in WorkOrder.TERMINAL:
        raise WorkOrderRefused(f"the work order is {work_order.status}: it can no longer be changed")
    changes: dict = {}
    if priority is not None:
        if priority not in WorkOrder.Priority.values:
            raise WorkOrderRefused(f"priority must be one of {WorkOrder.Priority.values}")
        changes["priority"] = priority
    if due is not None:
        changes["due"] = due
    if team is not None:
        changes["team"] = team.strip()[:64]
    for value, name in ((labour_hours, "labour_hours"), (downtime_hours, "downtime_hours")):
        if value is not None:
            if value < 0:
                raise WorkOrderRefused(f"{name.replace('_', ' ')} cannot be negative")
            changes[name] = value
    new_assignee = None
    if assignee is not None:
        new_assignee = _user_named(assignee.strip()) if assignee.strip() else None
        changes["assignee"] = new_assignee
    for name, value in changes.items():
        setattr(work_order, name, value)
    work_order.save()
    if new_assignee is not None and getattr(new_assignee, "site", "") != work_order.site:
        for action in ASSIGNEE_GRANTS:
            grant(actor=actor, user=new_assignee, action=action, obj=work_order)
    note = ", ".join(
        f"{name}={getattr(value, 'username', value) if value is not None else '-'}"
        for name, value in changes.items()
    )
    WorkOrderEvent.objects.create(
        work_order=work_order,
        from_status=work_order.status,
        to_status=work_order.status,
        note=f"updated: {note}"[:2000],
        actor=actor,
    )
    _record(
        actor=actor,
        action="update",
        work_order=work_order,
        policy=decision.policy or "",
        payload={
            name: (
                getattr(value, "username", None)
                if name == "assignee"
                else str(value)
                if value is not None
                else None
            )
            for name, value in changes.items()
        },
    )
    return work_order


ATTACHMENT_TYPES = {
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"RIFF": ("image/webp", "webp"),
    b"%PDF-": ("application/pdf", "pdf"),
}
MAX_ATTACHMENT_BYTES = 15 << 20


@transaction.atomic
def work_order_attach(*, actor, work_order: WorkOrder, name: str, data: bytes):
    """Attach a photo (JPEG, PNG, WebP) or a PDF to a work order (the actor needs `work`), trailed.

    The type is read from the file's first bytes, not its name, so a phone photo of any name works
    and a renamed executable does not. The same bytes attached again (a retried upload) return the
    attachment already stored, with `replayed` set, and store nothing."""
    from django.core.files.base import ContentFile

    from manufacturing.models import WorkOrderAttachment

    decision = check(actor, "work", work_order)
    if not data:
        raise WorkOrderRefused("the attachment is empty: choose a photo or a PDF")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise WorkOrderRefused(f"the attachment is larger than {MAX_ATTACHMENT_BYTES >> 20} MiB")
    kind = next((value for magic, value in ATTACHMENT_TYPES.items() if data.startswith(magic)), None)
    if kind is None or (kind[1] == "webp" and data[8:12] != b"WEBP"):
        raise WorkOrderRefused(f"{name!r} is not a JPEG, PNG or WebP photo or a PDF")
    content_type, extension = kind
    digest = hashlib.sha256(data).hexdigest()
    earlier = work_order.attachments.filter(sha256=digest).first()
    if earlier is not None:  # the same photo sent again (a retry on a bad connection): kept once
        earlier.replayed = True
        return earlier
    attachment = WorkOrderAttachment(
        work_order=work_order,
        original_name=name[:255],
        content_type=content_type,
        sha256=digest,
        uploaded_by=actor,
    )
    attachment.file.save(f"wo{work_order.pk}.{extension}", ContentFile(data), save=False)
    attachment.save()
    attachment.replayed = False
    _record(
        actor=actor,
        action="attach",
        work_order=work_order,
        policy=decision.policy or "",
        payload={"attachment": attachment.pk, "content_type": content_type, "bytes": len(data)},
    )
    return attachment


@dataclass
class ImportReport:
    created: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _hours(value: str) -> float:
    value = (value or "").strip()
    if not value:
        return 0.0
    if ":" in value:
        hours, minutes = value.split(":")[:2]
        return int(hours) + int(minutes) / 60
    return float(value)


def _chiller_rows(path: Path, site: str):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            yield {
                "site": site,
                "external_id": row["wo_id"],
                "tag": row["equipment_id"],
                "equipment_label": f"{row['equipment_name']} ({row['equipment_id']})",
                "title": row["wo_description"][:255],
                "description": row["wo_description"],
                "status": WorkOrder.Status.COMPLETE,
                "priority": min(max(int(row["work_priority"] or 3), 1), 4),
                "preventive": row["preventive"].upper() == "TRUE",
                "labour_hours": _hours(row["actual_labor_hours"]),
                "downtime_hours": _hours(row["duration"]),
                "failure_mode": row["secondary_code"],
                "completed_at": timezone.make_aware(
                    dt.datetime.strptime(row["actual_finish"], "%m/%d/%y %H:%M")
                ),
            }


def _excavator_rows(path: Path, site: str):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            text = row["OriginalShorttext"].strip()
            yield {
                "site": site,
                "external_id": f"EXC-{row['id']}",
                "equipment_label": f"Excavator {row['Asset']} {row['MajorSystem']}".strip(),
                "title": text[:255] or "(no text)",
                "description": " ".join(v for v in (text, row.get("Comments", "")) if v),
                "status": WorkOrder.Status.COMPLETE,
                "priority": WorkOrder.Priority.MEDIUM,
                "preventive": row["PMType"] != "PM01",
                "labour_hours": 0.0,
                "downtime_hours": 0.0,
                "failure_mode": (row.get("FM") or "")[:32],
                "completed_at": timezone.make_aware(dt.datetime.strptime(row["BscStartDate"], "%Y-%m-%d")),
            }


FORMATS = {"chiller": _chiller_rows, "excavator": _excavator_rows}


@transaction.atomic
def work_order_history_import(
    *, path: Path, fmt: str, site: str, actor="command:import_work_orders"
) -> ImportReport:
    """Import closed historical work orders, all or nothing: any bad row -> nothing written, errors listed.
    A row whose equipment is an asset of the site (the same tag: the chiller history's CWC04009) joins
    that asset's work orders, and so its page, history and reliability figures."""

    if fmt not in FORMATS:
        raise WorkOrderRefused(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    report = ImportReport()
    existing = set(
        WorkOrder.objects.filter(site=site).exclude(external_id="").values_list("external_id", flat=True)
    )
    assets = {machine.tag: machine for machine in Machine.objects.filter(site=site)}
    objects = []
    rows = FORMATS[fmt](Path(path), site)
    line = 1
    while True:
        line += 1
        try:
            data = next(rows)
        except StopIteration:
            break
        except (KeyError, ValueError) as error:
            report.errors.append(f"row {line}: {error}")
            continue
        if data["external_id"] in existing:
            report.skipped += 1
            continue
        existing.add(data["external_id"])
        machine = assets.get(data.pop("tag", ""))
        objects.append(WorkOrder(**data, machine=machine))
    if report.errors:
        transaction.set_rollback(True)
        return report
    WorkOrder.objects.bulk_create(objects, batch_size=500)
    report.created = len(objects)
    record(
        actor=actor,
        action="work_order.import",
        resource_type="work_order",
        outcome="succeeded",
        payload={"source": Path(path).name, "format": fmt, "site": site, "created": report.created},
    )
    return report
