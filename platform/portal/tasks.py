"""Celery tasks of the portal: they call one service."""

from celery import shared_task

from portal.requeue import requeue_pending


@shared_task(name="portal.requeue_pending", ignore_result=True)
def requeue_pending_task() -> dict:
    """Send again the tasks of work left pending by a lost message (portal.requeue). Scheduled every
    minute (CELERY_BEAT_SCHEDULE) and sent once when a worker starts."""
    return requeue_pending()
