"""Periodic signing of the trail. Scheduled by CELERY_BEAT_SCHEDULE every AUDIT_CHECKPOINT_MINUTES."""

from __future__ import annotations

from celery import shared_task

from audit.services import checkpoint_all_chains


@shared_task(name="audit.checkpoint_trail")
def checkpoint_trail() -> list[int]:
    """Sign a checkpoint of every chain that grew since its last one; returns the new checkpoint ids."""
    return [checkpoint.pk for checkpoint in checkpoint_all_chains()]
