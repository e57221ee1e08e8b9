from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        # Here, not at the top: Django imports apps.py before the app registry is ready, and the
        # wiring loads models (access.decisions, portal.services).
        from celery.signals import worker_ready

        from portal import wiring

        wiring.connect()
        worker_ready.connect(_requeue_at_worker_start, weak=False, dispatch_uid="portal.requeue_pending")


def _requeue_at_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts (after an outage, a restart) first sends again what lost its message."""
    from portal.tasks import requeue_pending_task

    try:
        requeue_pending_task.delay()
    except Exception:  # the broker went away again: the scheduler's next run does it
        import logging

        logging.getLogger(__name__).warning("requeue_pending could not be queued at worker start")
