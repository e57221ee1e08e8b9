"""Send again the task of work whose Celery message was lost, so no row stays `pending` for ever.

A request checks the broker before it stores work for a worker (ops.broker), but a row committed
just as the broker goes away waits for a message that never reached the queue: a DICOM preview or
a vibration recording's analysis would stay pending. Apps register what such rows look like and
which task handles one (`register(PendingWork(...))` in AppConfig.ready()); `requeue_pending()`
sends the task again, with the row's primary key, for every row pending for longer than
SUITE_REQUEUE_AFTER_SECONDS, at most once per that period per row (ResentWork remembers the sends).

It runs when a worker starts (celery's worker_ready: `run_worker`, so `run_suite`/`make run` too),
every minute from the scheduler (CELERY_BEAT_SCHEDULE "portal-requeue-pending"), and on demand
(`manage.py requeue_pending`). The registered tasks must be idempotent: a message that was only
slow (a long queue) is then handled twice, and the second run must change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.models import ResentWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingWork:
    name: str  # e.g. "medical.preview"
    task: str  # the Celery task's name; called with the row's primary key
    pending: Callable[[datetime], QuerySet]  # pending(cutoff): rows still pending, created before cutoff


_WORK: dict[str, PendingWork] = {}


def register(work: PendingWork) -> None:
    _WORK[work.name] = work


def registered() -> list[PendingWork]:
    return [_WORK[name] for name in sorted(_WORK)]


def requeue_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "SUITE_REQUEUE_AFTER_SECONDS", 300))


def requeue_pending(
    *,
    older_than: timedelta | None = None,
    limit: int = 500,
    now: datetime | None = None,
    queue: str | None = None,
) -> dict:
    """Send each registered pending row's task again; {work name: rows sent}. Stops at the first
    send the broker refuses (still down: the next run sends them) and reports it under "error".
    queue: send to this queue instead of the tasks' own (the default queue)."""
    now = now or timezone.now()
    cutoff = now - (older_than if older_than is not None else requeue_after())
    sent: dict = {}
    for work in registered():
        sent[work.name] = 0
        ids = [
            str(pk) for pk in work.pending(cutoff).order_by("pk").values_list("pk", flat=True)[: limit * 4]
        ]
        recent = set(
            ResentWork.objects.filter(work=work.name, object_id__in=ids, sent_at__gte=cutoff).values_list(
                "object_id", flat=True
            )
        )
        for object_id in [i for i in ids if i not in recent][:limit]:
            pk = int(object_id) if object_id.isdigit() else object_id
            try:
                current_app.send_task(work.task, args=[pk], **({"queue": queue} if queue else {}))
            except Exception as error:  # the broker is still away: leave the rest to the next run
                logger.warning("requeue_pending: could not send %s #%s: %s", work.name, object_id, error)
                sent["error"] = f"{type(error).__name__}: {error}"[:300]
                return sent
            _remember(work.name, object_id, now)
            sent[work.name] += 1
            logger.info("requeue_pending: %s #%s sent again (%s)", work.name, object_id, work.task)
    # what is no longer pending needs no memory (a read first: most runs have nothing to delete, and
    # a DELETE takes SQLite's write lock even when it matches no row)
    stale = ResentWork.objects.filter(sent_at__lt=now - timedelta(days=1))
    if stale.exists():
        stale.delete()
    return sent


def _remember(work: str, object_id: str, now: datetime) -> None:
    with transaction.atomic():
        row, created = ResentWork.objects.select_for_update().get_or_create(
            work=work, object_id=object_id, defaults={"sent_at": now}
        )
        if not created:
            row.sent_at, row.sends = now, row.sends + 1
            row.save(update_fields=["sent_at", "sends"])
