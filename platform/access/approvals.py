"""Four eyes for account changes that widen access to patient or bank data (issue 11).

A change widens access when it grants a role, moves someone to another department (or AML
team), adds a certification (break-glass needs one), re-activates a deactivated account or makes
someone staff or superuser. Such a change takes effect only once a second administrator approves:

- `split_widening(...)` separates the widening part of an edit from the rest (the admin saves
  the rest at once and holds the widening part back);
- `account_change_request(...)` queues it: the requester needs "manage" on the user;
- `account_change_approve(...)` applies it: the approver needs "approve" on the user and may be
  neither the requester nor the person concerned; the change is applied in the same transaction,
  so accounts.trail writes its before/after with the approver as actor;
- `account_change_reject(...)` closes it unapplied.

The same module holds the two-person rule for actions: a policy rule with `require_approval: true`
(e.g. break-glass, where a site wants it) allows only while another person's approval of that
use is in force (`action_approval_request` / `_approve` / `_reject`; decide() looks it up).

Each step is decided by access.decide() (through enforcement.check, which trails refusals) and
written to the trail in the transaction that makes it. Narrowing changes (a role removed, an
account deactivated) need no second person: they never open anything.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from access.decisions import decide
from access.enforcement import check, trail_decision
from access.errors import PolicyDenied
from access.models import AccountChangeRequest, ActionApproval
from access.resources import Resource, model_for_type, resource_for
from accounts.trail import acting_as, acting_request
from audit.sealing import sealed_texts
from audit.services import record

WIDENING_FLAGS = ("is_active", "is_staff", "is_superuser")


class FourEyesRefused(PermissionDenied):
    """The approver is the requester or the person concerned: a second person must approve."""


# Set while an approved change is applied: the backstop below lets exactly that through.
_applying: ContextVar[bool] = ContextVar("four_eyes_applying", default=False)


def guard_user_save(sender, instance, raw=False, **kwargs) -> None:
    """Backstop (pre_save of the user model): while serving a request, a save that widens access
    without an approval is refused, whatever page or API tried it. The Django admin never trips
    it: FourEyesUserAdmin holds the widening part back before saving."""
    if raw or _applying.get() or acting_request.get() is None:
        return
    stored = type(instance).objects.filter(pk=instance.pk).first() if instance.pk else None
    before = _values(stored) if stored is not None else {}
    change, _ = split_widening(before=before, after=_values(instance), roles_before=set(), roles_after=set())
    if stored is None:
        change = {flag: True for flag in ("is_staff", "is_superuser") if change.get(flag)}
    if change:
        raise FourEyesRefused(
            "This change widens access and needs a second administrator's approval: make it in the "
            "administration (Users), which queues it as an account change request."
        )


def guard_roles_change(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Backstop (m2m_changed of user groups): no role is added during a request without approval."""
    if action != "pre_add" or not pk_set or _applying.get() or acting_request.get() is None:
        return
    raise FourEyesRefused(
        "Granting a role needs a second administrator's approval: make the change in the administration "
        "(Users), which queues it as an account change request."
    )


def split_widening(
    *, before: dict, after: dict, roles_before: set[str], roles_after: set[str]
) -> tuple[dict, dict]:
    """(widening change, the target's values of those fields before) for an edit before -> after.

    before / after: the user's department, certifications and flags (missing keys: unchanged).
    """
    change: dict = {}
    added_roles = sorted(set(roles_after) - set(roles_before))
    if added_roles:
        change["roles_add"] = added_roles
    department = after.get("department", before.get("department", ""))
    if department and department != before.get("department", ""):
        change["department"] = department
    added_certifications = [
        item for item in after.get("certifications", []) if item not in (before.get("certifications") or [])
    ]
    if added_certifications:
        change["certifications_add"] = added_certifications
    for flag in WIDENING_FLAGS:
        if after.get(flag) and not before.get(flag, False):
            change[flag] = True
    previous = {
        "roles": sorted(roles_before),
        "department": before.get("department", ""),
        "certifications": list(before.get("certifications") or []),
        **{flag: bool(before.get(flag, False)) for flag in WIDENING_FLAGS},
    }
    return change, previous


def account_change_request(*, requested_by, target, change: dict) -> AccountChangeRequest:
    """Queue `change` (from split_widening) of `target` for a second administrator."""
    if not change:
        raise ValidationError("Nothing to approve: the change does not widen anyone's access.")
    decision = check(requested_by, "manage", target)
    _, before = split_widening(
        before=_values(target), after={}, roles_before=set(target.role_names()), roles_after=set()
    )
    with transaction.atomic():
        pending = AccountChangeRequest.objects.create(
            target=target, requested_by=requested_by, change=change, before=before
        )
        record(
            actor=requested_by,
            action="account.change_requested",
            resource_type="user",
            resource_id=target.pk,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={"request_id": pending.pk, "change": change, "before": before},
        )
    return pending


def account_change_approve(*, approver, change_request: AccountChangeRequest) -> AccountChangeRequest:
    """Apply a pending change on a second administrator's word; FourEyesRefused for the same person."""
    pending = _pending(change_request)
    target = pending.target
    decision = check(approver, "approve", target)
    if approver.pk in (pending.requested_by_id, target.pk):
        who = "asked for" if approver.pk == pending.requested_by_id else "is about"
        reason = (
            f"Four eyes: {approver.get_username()} {who} this change; another administrator must approve it."
        )
        record(
            actor=approver,
            action="account.change_approve",
            resource_type="user",
            resource_id=target.pk,
            outcome="denied",
            policy="four_eyes",
            payload={"request_id": pending.pk, "reason": reason},
        )
        raise FourEyesRefused(reason)
    with transaction.atomic():
        locked = AccountChangeRequest.objects.select_for_update().get(pk=pending.pk)
        _pending(locked)
        _apply(locked, approver=approver)
        locked.state = AccountChangeRequest.State.APPROVED
        locked.decided_by = approver
        locked.decided_at = timezone.now()
        locked.save(update_fields=["state", "decided_by", "decided_at"])
        record(
            actor=approver,
            action="account.change_approved",
            resource_type="user",
            resource_id=target.pk,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={
                "request_id": locked.pk,
                "requested_by": locked.requested_by.get_username() if locked.requested_by else None,
                "change": locked.change,
            },
        )
    return locked


def account_change_reject(
    *, approver, change_request: AccountChangeRequest, note: str = ""
) -> AccountChangeRequest:
    """Close a pending change without applying it (the requester may withdraw their own, too)."""
    pending = _pending(change_request)
    decision = check(approver, "approve", pending.target)
    with transaction.atomic():
        locked = AccountChangeRequest.objects.select_for_update().get(pk=pending.pk)
        _pending(locked)
        locked.state = AccountChangeRequest.State.REJECTED
        locked.decided_by = approver
        locked.decided_at = timezone.now()
        locked.note = note[:500]
        locked.save(update_fields=["state", "decided_by", "decided_at", "note"])
        record(
            actor=approver,
            action="account.change_rejected",
            resource_type="user",
            resource_id=locked.target_id,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={"request_id": locked.pk, "change": locked.change, "note": locked.note},
        )
    return locked


def pending_changes_for(user):
    """Pending requests `user` may decide on: another administrator's, about someone else."""
    pending = AccountChangeRequest.objects.filter(state=AccountChangeRequest.State.PENDING)
    return pending.exclude(requested_by=user).exclude(target=user).select_related("target", "requested_by")


def account_changes_awaiting(user) -> list[AccountChangeRequest]:
    """Pending account changes `user` could approve now: another administrator's, about someone
    else, and the policy lets `user` approve changes of that person (the home page and menu ask)."""
    return [
        pending
        for pending in pending_changes_for(user).order_by("requested_at")[:200]
        if decide(user, "approve", pending.target).allowed
    ]


def _pending(change_request: AccountChangeRequest) -> AccountChangeRequest:
    if change_request.state != AccountChangeRequest.State.PENDING:
        raise ValidationError(
            f"Change request #{change_request.pk} is already {change_request.get_state_display().lower()}."
        )
    return change_request


def _values(user) -> dict:
    return {
        "department": user.department,
        "certifications": list(user.certifications or []),
        **{flag: getattr(user, flag) for flag in WIDENING_FLAGS},
    }


def _apply(change_request: AccountChangeRequest, *, approver) -> None:
    change = change_request.change
    target = get_user_model().objects.select_for_update().get(pk=change_request.target_id)
    token = _applying.set(True)
    try:
        _apply_fields(change, target, approver=approver)
    finally:
        _applying.reset(token)


def _apply_fields(change: dict, target, *, approver) -> None:
    with acting_as(approver):  # accounts.trail writes the before/after, naming the approver
        fields = []
        if "department" in change:
            target.department = change["department"]
            fields.append("department")
        if change.get("certifications_add"):
            current = list(target.certifications or [])
            target.certifications = current + [c for c in change["certifications_add"] if c not in current]
            fields.append("certifications")
        for flag in WIDENING_FLAGS:
            if change.get(flag):
                setattr(target, flag, True)
                fields.append(flag)
        if fields:
            target.save(update_fields=fields)
        if change.get("roles_add"):
            groups = list(Group.objects.filter(name__in=change["roles_add"]))
            missing = set(change["roles_add"]) - {group.name for group in groups}
            if missing:
                raise ValidationError(f"Unknown role(s) {', '.join(sorted(missing))}: no such group.")
            target.groups.add(*groups)


# --- second-person approval of an action (policy rules with require_approval: true) -------------

MIN_APPROVAL_REASON = 10


def approval_minutes() -> int:
    """How long an approval stays in force once given (ACCESS_APPROVAL_MINUTES, default 60)."""
    return int(getattr(settings, "ACCESS_APPROVAL_MINUTES", 60))


def action_approval_request(*, user, action: str, resource, reason: str) -> ActionApproval:
    """Ask a second person to approve `user`'s use of `action` on `resource`.

    Only where a rule with require_approval is what stands between the user and the action; any
    other refusal is raised (and trailed) as the policy's denial.
    """
    reason = " ".join((reason or "").split())
    if len(reason) < MIN_APPROVAL_REASON:
        raise ValidationError(
            f"Give a reason of at least {MIN_APPROVAL_REASON} characters: who needs it, and why."
        )
    target = resource_for(resource)
    decision = decide(user, action, target)
    if decision.allowed:
        raise ValidationError(f"No approval needed: {decision.reason}")
    if not decision.approval_required:
        check(user, action, target)  # trails the denial and raises PolicyDenied
    with transaction.atomic():
        approval = ActionApproval.objects.create(
            requester=user,
            action=action,
            resource_type=target.resource_type,
            resource_id=target.identifier,
            resource_label=str(target)[:255],
            reason=reason[:1000],
        )
        record(
            actor=user,
            action="approval.requested",
            resource_type=target.resource_type,
            resource_id=target.identifier,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={
                "approval_id": approval.pk,
                "action": action,
                "resource": str(target),
                # A break-glass reason names the emergency, often the patient: sealed, digest hashed.
                **sealed_texts(
                    {"reason": reason},
                    action="approval.requested",
                    resource_type=target.resource_type,
                    resource_id=target.identifier,
                ),
            },
        )
    return approval


def action_approval_approve(*, approver, approval: ActionApproval) -> ActionApproval:
    """A second person approves: someone else whom the policy would let do the action themselves."""
    _still_pending(approval)
    target = _approval_target(approval)
    if approver.pk == approval.requester_id:
        reason = "Four eyes: a use of this action needs another person's approval, not the requester's."
        record(actor=approver, action="approval.approve", resource_type=target.resource_type,
               resource_id=target.identifier, outcome="denied", policy="four_eyes",
               payload={"approval_id": approval.pk, "reason": reason})  # fmt: skip
        raise FourEyesRefused(reason)
    decision = decide(approver, approval.action, target, approval_needed=False)
    if not decision.allowed:
        trail_decision(decision, target=target, actor=approver, context={"approval_id": approval.pk})
        raise PolicyDenied(decision)
    with transaction.atomic():
        locked = ActionApproval.objects.select_for_update().get(pk=approval.pk)
        _still_pending(locked)
        now = timezone.now()
        locked.state = ActionApproval.State.APPROVED
        locked.approver = approver
        locked.decided_at = now
        locked.expires_at = now + timedelta(minutes=approval_minutes())
        locked.save(update_fields=["state", "approver", "decided_at", "expires_at"])
        record(
            actor=approver,
            action="approval.granted",
            resource_type=target.resource_type,
            resource_id=target.identifier,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={
                "approval_id": locked.pk,
                "action": locked.action,
                "requester": locked.requester.get_username(),
                **sealed_texts(
                    {"reason": locked.reason},
                    action="approval.granted",
                    resource_type=target.resource_type,
                    resource_id=target.identifier,
                ),
                "expires_at": locked.expires_at,
            },
        )
    return locked


def action_approval_reject(*, approver, approval: ActionApproval) -> ActionApproval:
    """Refuse a pending request (a peer who could approve it, or the requester withdrawing it)."""
    _still_pending(approval)
    target = _approval_target(approval)
    if approver.pk != approval.requester_id:
        decision = decide(approver, approval.action, target, approval_needed=False)
        if not decision.allowed:
            trail_decision(decision, target=target, actor=approver, context={"approval_id": approval.pk})
            raise PolicyDenied(decision)
    with transaction.atomic():
        locked = ActionApproval.objects.select_for_update().get(pk=approval.pk)
        _still_pending(locked)
        locked.state = ActionApproval.State.REJECTED
        locked.approver = approver
        locked.decided_at = timezone.now()
        locked.save(update_fields=["state", "approver", "decided_at"])
        record(
            actor=approver,
            action="approval.rejected",
            resource_type=target.resource_type,
            resource_id=target.identifier,
            outcome="succeeded",
            payload={
                "approval_id": locked.pk,
                "action": locked.action,
                "requester": locked.requester.get_username(),
            },
        )
    return locked


def approvals_waiting_for(user) -> list[ActionApproval]:
    """Pending requests of others that `user` could approve (a peer allowed the action)."""
    pending = ActionApproval.objects.filter(state=ActionApproval.State.PENDING).exclude(requester=user)
    return [
        approval
        for approval in pending.select_related("requester")[:200]
        if decide(user, approval.action, _approval_target(approval), approval_needed=False).allowed
    ]


def _still_pending(approval: ActionApproval) -> None:
    if approval.state != ActionApproval.State.PENDING:
        raise ValidationError(
            f"Approval request #{approval.pk} is already {approval.get_state_display().lower()}."
        )


def _approval_target(approval: ActionApproval) -> Resource:
    model = model_for_type(approval.resource_type)
    if model is not None:
        instance = (
            model._default_manager.filter(pk=approval.resource_id).first()
            if approval.resource_id.isdigit()
            else None
        )
        if instance is not None:
            return resource_for(instance)
    return Resource(approval.resource_type, approval.resource_id)
