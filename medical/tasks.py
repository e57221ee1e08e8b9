"""Celery tasks of the medical app: they receive ids, load, and call one service."""

from __future__ import annotations

from celery import shared_task

from medical.services.previews import instance_preview_render


@shared_task(name="medical.render_instance_preview", ignore_result=False)
def render_instance_preview(instance_id: int) -> str:
    """Render the preview PNG of one de-identified instance; returns its preview status."""
    return instance_preview_render(instance_id=instance_id)
