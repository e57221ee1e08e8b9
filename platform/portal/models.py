"""The portal's own state: which pending work `requeue_pending` sent again, and when (portal.requeue)."""

from __future__ import annotations

from django.db import models


class ResentWork(models.Model):
    """Row `object_id` of pending work `work` (a registered portal.requeue.PendingWork) had its task
    sent again at `sent_at`; it is not sent again before SUITE_REQUEUE_AFTER_SECONDS have passed."""

    work = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    sent_at = models.DateTimeField()
    sends = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["work", "object_id"], name="portal_resent_work_unique")
        ]

    def __str__(self) -> str:
        return f"{self.work} #{self.object_id} re-sent {self.sends}x"
