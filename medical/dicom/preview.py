"""A small PNG of the first frame, windowed the way a radiologist would first look at it.

It is frame 1 of the viewer (medical.dicom.frames) at the default window, scaled to a thumbnail:
the modality LUT, then the first stored window, else the VOI LUT, else a percentile window.
Anything that cannot be decoded here (no pixel data, a compressed syntax without an installed
decoder, broken fragments) yields None: a preview is optional and must never fail an ingest.
"""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from medical.dicom.frames import decode, png_bytes, render_frame

logger = logging.getLogger(__name__)


def render_preview(ds: Dataset, *, max_size: int = 512) -> bytes | None:
    if "PixelData" not in ds:
        return None
    try:
        image = render_frame(decode(ds, frame=0), 0)
    except Exception as exc:  # a decoder failure only means there is no preview
        logger.info("no preview: %s (%s)", type(exc).__name__, str(exc)[:200])
        return None
    image.thumbnail((max_size, max_size))
    return png_bytes(image, optimize=True)
