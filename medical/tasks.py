"""Celery tasks of the medical app: they receive ids, load, and call one service."""

from __future__ import annotations

from celery import shared_task

from medical.services.frames import instance_frames_render
from medical.services.previews import instance_preview_render


@shared_task(name="medical.render_instance_preview", ignore_result=False)
def render_instance_preview(instance_id: int) -> str:
    """Render the preview PNG of one de-identified instance; returns its preview status."""
    return instance_preview_render(instance_id=instance_id)


@shared_task(name="medical.render_instance_frames", ignore_result=True)
def render_instance_frames(
    instance_id: int, center: float | None, width: float | None, first: int = 0
) -> int:
    """Render one instance's frames at one window (None, None: the default) into the viewer's cache."""
    return instance_frames_render(instance_id=instance_id, center=center, width=width, first=first)
