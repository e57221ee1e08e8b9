"""The finance app's home-page panels: what waits for this officer's second pair of eyes (a closing
or a SAR another officer prepared), and the alerts assigned to them. Each query is scoped by the
access policy through the selectors, and an item is offered only where the policy lets this officer
act on it (auditors read the queue, they approve nothing)."""

from __future__ import annotations

from django.urls import reverse

from access.decisions import decide
from portal.homes import HomeRow

SHOWN = 8


def disposition_label(case) -> str:
    """ "sar_filed" -> "SAR filed" (the model's field has no choices, so no get_..._display)."""
    from finance.models import Case

    value = case.disposition or ""
    return Case.Disposition(value).label if value in Case.Disposition.values else value


def awaiting_my_approval(user) -> list[HomeRow]:
    from finance.models import SAR, Case
    from finance.selectors import cases_visible_to

    visible = cases_visible_to(user)
    closings = (
        visible.filter(status=Case.Status.PENDING_CLOSE)
        .exclude(closing_prepared_by=user)
        .select_related("closing_prepared_by")
        .order_by("pk")[:SHOWN]
    )
    rows = [
        HomeRow(
            label=f"Case C{case.pk}: closing as {disposition_label(case).lower()}",
            url=reverse("finance:case_detail", args=[case.pk]),
            detail=f"prepared by {getattr(case.closing_prepared_by, 'username', '—')} · account {case.account}",
            badge="four eyes",
            badge_kind="warn",
        )
        for case in closings
        if decide(user, "close", case).allowed
    ]
    drafts = (
        SAR.objects.filter(case__in=visible, status=SAR.Status.DRAFT)
        .select_related("prepared_by")
        .order_by("pk")
    )
    rows += [
        HomeRow(
            label=f"SAR {sar.pk} for case C{sar.case_id}",
            url=reverse("finance:sar_detail", args=[sar.pk]),
            detail=f"drafted by {getattr(sar.prepared_by, 'username', '—')}",
            badge="four eyes",
            badge_kind="warn",
        )
        for sar in drafts
        if user.username not in sar.editors and decide(user, "sar", sar).allowed
    ][:SHOWN]
    return rows


def my_alerts(user) -> list[HomeRow]:
    from finance.models import Alert
    from finance.selectors import alerts_visible_to

    alerts = alerts_visible_to(user).filter(assignee=user).exclude(status=Alert.Status.CLOSED)[:SHOWN]
    return [
        HomeRow(
            label=f"Alert A{alert.pk}: risk {alert.risk:.3f}",
            url=reverse("finance:alert_detail", args=[alert.pk]),
            detail=f"{alert.transaction.amount_paid:,.2f} {alert.transaction.currency_paid} · "
            f"{alert.created_at:%Y-%m-%d %H:%M}",
            badge=alert.decision,
            badge_kind="bad" if alert.decision == "hold" else "warn",
        )
        for alert in alerts
    ]
