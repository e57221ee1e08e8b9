"""Previews: a windowed PNG of the first frame of each instance, rendered on a worker."""

from __future__ import annotations

import io
import logging

import pydicom

from medical import storage
from medical.dicom import render_preview
from medical.models import Instance

logger = logging.getLogger(__name__)


def instance_preview_render(*, instance_id: int) -> str:
    """Render and store the preview of one instance; returns the resulting preview status.

    Idempotent: a ready preview is left alone. A missing instance (deleted since it was queued)
    is not an error.
    """
    instance = Instance.objects.select_related("series__study").filter(pk=instance_id).first()
    if instance is None:
        return "missing"
    if instance.preview_status == Instance.PreviewStatus.READY and instance.preview_file:
        return instance.preview_status
    try:
        dataset = pydicom.dcmread(io.BytesIO(storage.read_media(instance.deidentified_file)))
        png = render_preview(dataset)
    except Exception:  # an unreadable copy is reported on the instance; the worker carries on
        logger.exception("preview of instance %s failed", instance_id)
        png, status = None, Instance.PreviewStatus.FAILED
    else:
        status = Instance.PreviewStatus.READY if png else Instance.PreviewStatus.UNAVAILABLE
    name = ""
    if png:
        name = storage.preview_name(
            department=instance.series.study.department, sop_uid=instance.sop_instance_uid
        )
        storage.write_media(name, png)
    Instance.objects.filter(pk=instance.pk).update(preview_status=status, preview_file=name)
    return status
