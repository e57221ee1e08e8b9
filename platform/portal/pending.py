"""What waits for the signed-in user's decision: second-person approvals of actions (a peer's
break-glass request, where the policy asks for one) and account changes held for a second
administrator. The home page shows them first; the menu shows "Approvals" while any wait."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from access.approvals import account_changes_awaiting, approvals_waiting_for
from access.models import ActionApproval
from portal.homes import HomeRow


def approval_rows(user) -> list[HomeRow]:
    approvals, account_changes = approvals_waiting_for(user), account_changes_awaiting(user)
    if not approvals and not account_changes:
        return []
    page = reverse("access:approvals")
    rows = [
        HomeRow(
            label=f"#{approval.pk} {approval.requester.get_username()} asks to {approval.action.replace('_', '-')}",
            url=page,
            detail=f"{approval.resource_label} · {approval.requested_at:%Y-%m-%d %H:%M}",
            badge="approve?",
            badge_kind="warn",
        )
        for approval in approvals
    ]
    for pending in account_changes:
        try:
            url = reverse("admin:access_accountchangerequest_change", args=[pending.pk])
        except NoReverseMatch:  # the administration is not mounted in this configuration
            url = page
        requester = pending.requested_by.get_username() if pending.requested_by else "(deleted)"
        rows.append(
            HomeRow(
                label=f"Account change #{pending.pk} for {pending.target.get_username()}",
                url=url,
                detail=f"{pending.summary()} · asked by {requester} · {pending.requested_at:%Y-%m-%d %H:%M}",
                badge="four eyes",
                badge_kind="warn",
            )
        )
    return rows


def has_something_to_decide(user) -> bool:
    """Approvals waiting for `user`, or `user`'s own requests still pending (so they find the page)."""
    if not user.is_authenticated:
        return False
    if ActionApproval.objects.filter(requester=user, state=ActionApproval.State.PENDING).exists():
        return True
    return bool(approvals_waiting_for(user) or account_changes_awaiting(user))
