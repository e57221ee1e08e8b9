"""The administrator's home panel: is the installation healthy?

Database and broker as /readyz sees them, and whether the periodic scheduler is alive, judged by
the age of the newest signed trail checkpoint (it signs one every AUDIT_CHECKPOINT_MINUTES while
`run_worker --beat` runs, and only when there are new events).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from audit.models import Checkpoint, Event
from ops.health import check_broker, check_database
from portal.homes import HomeRow


def installation_rows(user) -> list[HomeRow]:
    rows = []
    for label, check in (("Database", check_database()), ("Task broker", check_broker())):
        kind = check.get("vendor") or check.get("transport") or ""
        rows.append(
            HomeRow(
                label=label,
                url="/readyz",
                detail=kind if check["ok"] else check["error"],
                badge="ok" if check["ok"] else "unreachable",
                badge_kind="ok" if check["ok"] else "bad",
            )
        )
    rows.append(_scheduler_row())
    return rows


def _scheduler_row() -> HomeRow:
    newest = Checkpoint.objects.order_by("-signed_at").first()
    interval = timedelta(minutes=settings.AUDIT_CHECKPOINT_MINUTES)
    newest_event = Event.objects.order_by("-timestamp").values_list("timestamp", flat=True).first()
    if newest is None:
        oldest_event = Event.objects.order_by("timestamp").values_list("timestamp", flat=True).first()
        stale = oldest_event is not None and timezone.now() - oldest_event > 2 * interval
        detail = "no trail checkpoint signed yet"
    else:
        age = timezone.now() - newest.signed_at
        # Only late when events have arrived since the checkpoint and two intervals have passed.
        stale = age > 2 * interval and newest_event is not None and newest_event > newest.signed_at
        detail = f"newest signed trail checkpoint {_ago(age)} ago ({newest.chain}, {newest.size} events)"
    return HomeRow(
        label="Periodic scheduler",
        url="/audit/verify/",
        detail=detail + ("; is `run_worker --beat` running?" if stale else ""),
        badge="late" if stale else "ok",
        badge_kind="warn" if stale else "ok",
    )


def _ago(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h"
