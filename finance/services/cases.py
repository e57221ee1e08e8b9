"""Alerts and cases: grouping, assignment, notes, attachments and four-eyes dispositions."""

from __future__ import annotations

import hashlib

from django.db import connection, transaction
from django.utils import timezone

from access.decisions import decide
from access.enforcement import check
from audit.services import record, record_many
from finance.models import Alert, Attachment, Case, Note
from finance.services.bulk import bulk_insert
from finance.services.errors import FinanceRefused, FourEyesViolation, SubmissionKeyReused
from portal.submissions import checked_submission_key, created_once

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
REASON_REQUIRED = {Case.Disposition.FALSE_POSITIVE, Case.Disposition.NO_SAR}


def _check(actor, action: str, obj) -> None:

    if not isinstance(actor, str):
        check(actor, action, obj)


def _record(actor, action: str, obj, payload: dict, outcome: str = "succeeded"):

    return record(
        actor=actor,
        action=action,
        resource_type=obj.policy_resource_type,
        resource_id=str(obj.pk),
        outcome=outcome,
        payload=payload,
    )


def _subject_account(alert: Alert) -> str:
    """The account a case is about: the receiver for fan-in, the payer otherwise."""
    codes = {rule["code"] for rule in alert.evidence.get("rules", [])}
    tx = alert.transaction
    return tx.dst_account if codes == {"FAN_IN"} else tx.src_account


def alerts_group_into_cases(*, actor, alerts: list[Alert]) -> list[tuple[Case, Alert]]:
    """Give each new (unsaved) alert the open case of its team and account, opening one where none
    is (one query for the open cases, one insert for the new ones). Runs inside the screening
    transaction, before the alerts are inserted. Returns the opened cases with their first alert:
    the caller trails them (``cases_opened_record``) once the alerts have their ids."""
    keys = {}
    for alert in alerts:
        keys.setdefault((alert.team, _subject_account(alert)), []).append(alert)
    if not keys:
        return []
    found: dict[tuple[str, str], int] = {}
    accounts = sorted({account for _, account in keys})
    teams = sorted({team for team, _ in keys})
    for start in range(0, len(accounts), 4000):
        for pk, team, account in (
            Case.objects.filter(team__in=teams, account__in=accounts[start : start + 4000])
            .exclude(status=Case.Status.CLOSED)
            .order_by("pk")
            .values_list("pk", "team", "account")
        ):
            found.setdefault((team, account), pk)
    missing = [key for key in keys if key not in found]
    # one multi-row INSERT (COPY on PostgreSQL) instead of the ORM's per-object compile
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    ids = bulk_insert(
        Case,
        ("team", "region", "status", "disposition", "created_at", "account", "disposition_reason"),
        [(team, "", Case.Status.OPEN.value, "", stamp, account, "") for team, account in missing],
    )
    opened = []
    for (team, account), pk in zip(missing, ids, strict=True):
        case = Case(pk=pk, team=team, account=account, status=Case.Status.OPEN, created_at=now)
        case._state.adding = False
        opened.append(case)
        found[(team, account)] = pk
    for key, group in keys.items():
        for alert in group:
            alert.case_id = found[key]
    return [(case, keys[(case.team, case.account)][0]) for case in opened]


def cases_opened_record(*, actor, opened: list[tuple[Case, Alert]]) -> None:
    """Trail the cases screening opened (one chained run), each with the alert that opened it."""
    record_many(
        actor=actor,
        action="case.open",
        resource_type="case",
        outcome="succeeded",
        events=[
            (
                case.pk if case.pk is not None else alert.case_id,
                {"account": case.account, "team": case.team, "alert": alert.pk},
            )
            for case, alert in opened
        ],
    )


def alerts_assign(*, actor, alerts: list[Alert], assignee) -> int:
    """Bulk-assign alerts (and their cases) to an officer of the same team; all or nothing."""

    if not alerts:
        raise FinanceRefused("Select at least one alert.")
    for alert in alerts:
        _check(actor, "triage", alert)
    refused = [a.pk for a in alerts if not decide(assignee, "triage", a).allowed]
    if refused:
        raise FinanceRefused(
            f"{assignee.username} may not work on alert(s) {', '.join(map(str, refused))} (other team or role)."
        )
    with transaction.atomic():
        for alert in alerts:
            alert.assignee = assignee
            alert.status = Alert.Status.ASSIGNED
            alert.save(update_fields=["assignee", "status"])
            if alert.case_id:
                Case.objects.filter(pk=alert.case_id, assignee__isnull=True).update(assignee=assignee)
            _record(actor, "alert.assign", alert, {"assignee": assignee.username})
    return len(alerts)


def note_add(*, actor, case: Case, text: str, submission_key: str = "") -> Note:
    """Add a note to `case`. `submission_key` (the form's or the API's Idempotency-Key): the same key
    from the same officer returns the note it added, marked `replayed`, and adds nothing; the same key
    with another text is a SubmissionKeyReused."""
    text = (text or "").strip()
    if not text:
        raise FinanceRefused("A note needs some text.")
    key = checked_submission_key(
        submission_key, None if isinstance(actor, str) else actor, refused=FinanceRefused
    )
    _check(actor, "triage", case)

    def earlier() -> Note | None:
        if not key:
            return None
        note = Note.objects.filter(author=actor, submission_key=key).first()
        if note is not None and (note.case_id != case.pk or note.text != text):
            raise SubmissionKeyReused(
                f"submission key {key!r} already added note {note.pk} to case {note.case_id}; "
                "use a new key for a new note"
            )
        return note

    sent = earlier()
    if sent is not None:
        sent.replayed = True
        return sent

    def create() -> Note:
        note = Note.objects.create(
            case=case, author=None if isinstance(actor, str) else actor, text=text, submission_key=key
        )
        _record(
            actor, "case.note", case, {"note": note.pk, "sha256": hashlib.sha256(text.encode()).hexdigest()}
        )
        return note

    return created_once(create, earlier)


def attachment_add(*, actor, case: Case, filename: str, content: bytes) -> Attachment:
    """Seal `content` and attach it to `case`. The same bytes already attached to the case (a send
    whose answer was lost, a double click) return that attachment, marked `replayed`: kept once."""
    from vault.envelope import seal

    if not content:
        raise FinanceRefused("The attachment is empty.")
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise FinanceRefused(f"Attachments are limited to {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB.")
    filename = (filename or "attachment").replace("/", "_").replace("\\", "_")[:255]
    _check(actor, "triage", case)
    digest = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        # the case row's lock serialises two sends of the same file (SQLite's write lock does already)
        Case.objects.select_for_update().filter(pk=case.pk).first()
        earlier = case.attachments.filter(sha256=digest).order_by("pk").first()
        if earlier is not None:
            earlier.replayed = True
            return earlier
        attachment = Attachment.objects.create(
            case=case,
            filename=filename,
            sealed=seal(content, context=f"finance.attachment|{case.pk}".encode()),
            author=actor,
            sha256=digest,
            size=len(content),
        )
        _record(
            actor, "case.attach", case, {"attachment": attachment.pk, "filename": filename, "sha256": digest}
        )
    attachment.replayed = False
    return attachment


def attachment_content(attachment: Attachment) -> bytes:
    from vault.envelope import open_sealed

    return open_sealed(bytes(attachment.sealed), context=f"finance.attachment|{attachment.case_id}".encode())


def case_escalate(*, actor, case: Case, reason: str) -> Case:
    if not (reason or "").strip():
        raise FinanceRefused("Say why the case is escalated.")
    _check(actor, "triage", case)
    if case.status == Case.Status.CLOSED:
        raise FinanceRefused("The case is closed.")
    with transaction.atomic():
        case.status = Case.Status.ESCALATED
        case.save(update_fields=["status"])
        _record(actor, "case.escalate", case, {"reason": reason.strip()})
    return case


def case_close_prepare(*, actor, case: Case, disposition: str, reason: str = "") -> Case:
    """The maker: propose a closing disposition. Another officer approves it (case_close_approve)."""
    reason = (reason or "").strip()
    if disposition not in Case.Disposition.values:
        raise FinanceRefused(f"disposition must be one of {', '.join(Case.Disposition.values)}.")
    if disposition in REASON_REQUIRED and not reason:
        raise FinanceRefused(f"A reason is required for '{Case.Disposition(disposition).label}'.")
    _check(actor, "close", case)
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status == Case.Status.CLOSED:
            raise FinanceRefused("The case is already closed.")
        if disposition == Case.Disposition.SAR_FILED and not case.sars.filter(status="approved").exists():
            raise FinanceRefused("A SAR must be drafted and approved before closing as 'SAR filed'.")
        case.status = Case.Status.PENDING_CLOSE
        case.disposition = disposition
        case.disposition_reason = reason
        case.closing_prepared_by = None if isinstance(actor, str) else actor
        case.save(update_fields=["status", "disposition", "disposition_reason", "closing_prepared_by"])
        _record(actor, "case.close_prepare", case, {"disposition": disposition, "reason": reason})
    return case


def case_close_approve(*, actor, case: Case) -> Case:
    """The checker: approve the prepared closing. The preparer cannot approve (four eyes)."""
    _check(actor, "close", case)
    case.refresh_from_db()
    if case.status == Case.Status.PENDING_CLOSE and case.closing_prepared_by_id == getattr(actor, "pk", None):
        # trailed outside the work's transaction, which the refusal would roll back
        _record(actor, "case.close_approve", case, {"reason": "four eyes: preparer cannot approve"}, "denied")
        raise FourEyesViolation(
            "You prepared this closing; another compliance officer must approve it (four eyes)."
        )
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status != Case.Status.PENDING_CLOSE:
            raise FinanceRefused("No closing awaits approval on this case; prepare one first.")
        if case.closing_prepared_by_id == getattr(actor, "pk", None):
            raise FourEyesViolation("You prepared this closing; another compliance officer must approve it.")
        case.status = Case.Status.CLOSED
        case.closed_by = None if isinstance(actor, str) else actor
        case.closed_at = timezone.now()
        case.save(update_fields=["status", "closed_by", "closed_at"])
        case.alerts.update(status=Alert.Status.CLOSED)
        _record(
            actor,
            "case.close_approve",
            case,
            {
                "disposition": case.disposition,
                "reason": case.disposition_reason,
                "prepared_by": case.closing_prepared_by.username if case.closing_prepared_by else "",
                "alerts": list(case.alerts.values_list("pk", flat=True)),
            },
        )
    return case


def case_close_reject(*, actor, case: Case, reason: str) -> Case:
    """The checker sends a prepared closing back; the case reopens."""
    _check(actor, "close", case)
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status != Case.Status.PENDING_CLOSE:
            raise FinanceRefused("No closing awaits approval on this case.")
        case.status = Case.Status.OPEN
        case.save(update_fields=["status"])
        _record(actor, "case.close_reject", case, {"reason": (reason or "").strip()})
    return case
