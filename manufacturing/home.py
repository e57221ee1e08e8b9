"""The manufacturing app's home-page panels: open alerts at the engineer's site and the work orders
assigned to them (each query scoped by the access policy through the selectors)."""

from __future__ import annotations

from django.urls import reverse

from portal.homes import HomeRow

SHOWN = 5


def open_alerts(user) -> list[HomeRow]:
    from manufacturing.selectors import alerts_visible_to

    return [
        HomeRow(
            label=f"{alert.machine.tag}: {alert.message}",
            url=reverse("manufacturing:asset_detail", args=[alert.machine_id]),
            detail=f"{alert.get_kind_display()} · {alert.created_at:%Y-%m-%d %H:%M}",
            badge=alert.severity,
            badge_kind="bad" if alert.severity == "danger" else "warn",
        )
        for alert in alerts_visible_to(user)[:SHOWN]
    ]


def my_work_orders(user) -> list[HomeRow]:
    from manufacturing.selectors import ACTIVE, work_orders_visible_to

    queryset = work_orders_visible_to(user, status=ACTIVE).filter(assignee=user)
    return [
        HomeRow(
            label=work_order.title,
            url=reverse("manufacturing:work_order_detail", args=[work_order.pk]),
            detail=f"{work_order.machine.tag if work_order.machine else work_order.equipment_label} · P{work_order.priority}"
            + (f" · due {work_order.due}" if work_order.due else ""),
            badge=work_order.get_status_display(),
        )
        for work_order in queryset[:SHOWN]
    ]
