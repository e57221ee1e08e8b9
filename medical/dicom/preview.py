"""A small PNG of the first frame, windowed the way a radiologist would first look at it.

Greyscale images get the modality LUT (Rescale Slope/Intercept) and then the first stored VOI window
(Window Center/Width); without one, a 0.5-99.5 percentile window keeps a few extreme pixels (metal,
padding) from flattening the picture. Colour images are converted to RGB. Anything that cannot be
decoded here (no pixel data, a compressed syntax without an installed decoder, broken fragments)
yields None: a preview is optional and must never fail an ingest.
"""

from __future__ import annotations

import io
import logging
import warnings

from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

_COLOUR_INTERPRETATIONS = frozenset(
    {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR"}
)


def render_preview(ds: Dataset, *, max_size: int = 512) -> bytes | None:
    if "PixelData" not in ds:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = _first_frame_image(ds)
    except Exception as exc:  # a decoder failure only means there is no preview
        logger.info("no preview: %s (%s)", type(exc).__name__, str(exc)[:200])
        return None
    image.thumbnail((max_size, max_size))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _first_frame_image(ds: Dataset):
    import numpy as np
    from PIL import Image
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

    frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = pixel_array(ds, index=0) if frames > 1 else pixel_array(ds)
    interpretation = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if interpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    if interpretation in _COLOUR_INTERPRETATIONS or (pixels.ndim == 3 and pixels.shape[-1] in (3, 4)):
        # pydicom returns YBR as RGB by default; 16-bit samples (and 16-bit palettes) span 0-65535.
        colour = np.asarray(pixels[..., :3], dtype=np.float64)
        return Image.fromarray(
            _to_uint8(colour, low=0.0, high=255.0 if colour.max() <= 255 else 65535.0), mode="RGB"
        )
    values = np.asarray(apply_modality_lut(np.asarray(pixels), ds), dtype=np.float64)
    window = _first_window(ds)
    if window is not None:
        center, width = window
        low, high = center - width / 2.0, center + width / 2.0
    elif "VOILUTSequence" in ds:
        values = np.asarray(apply_voi_lut(values, ds, index=0), dtype=np.float64)
        low, high = float(values.min()), float(values.max())
    else:
        low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    image = _to_uint8(values, low=low, high=high)
    if interpretation == "MONOCHROME1":
        image = 255 - image  # MONOCHROME1 shows low values white
    return Image.fromarray(image, mode="L")


def _first_window(ds: Dataset) -> tuple[float, float] | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None or center == "" or width == "":
        return None
    center = center[0] if not isinstance(center, str | float | int) and len(center) else center
    width = width[0] if not isinstance(width, str | float | int) and len(width) else width
    try:
        center, width = float(center), float(width)
    except (TypeError, ValueError):
        return None
    return (center, width) if width >= 1 else None


def _to_uint8(values, *, low: float, high: float):
    import numpy as np

    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    return scaled.round().astype(np.uint8)
