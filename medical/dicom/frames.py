"""Frames of a DICOM image as PNGs for the viewer: any frame, at any window, at full resolution.

Greyscale pixels go through the modality LUT (Rescale Slope/Intercept: Hounsfield units for CT),
then a window [center - width/2, center + width/2] maps them to 0-255. Without an explicit window
the default is the first window stored in the header, else the header's VOI LUT, else a
0.5-99.5 percentile window over the whole instance (all frames), so scrolling a stack does not
flicker from frame to frame. MONOCHROME1 shows low values white. Colour images are converted to
RGB and have no window.

Plain Python over pydicom, numpy and Pillow; the caller decides what to cache and where.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

from pydicom.dataset import Dataset

COLOUR_INTERPRETATIONS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR"})
# Pixels beyond this are refused: a window outside it cannot be meant (CT spans -1024..3071 HU;
# 16-bit unsigned data 0..65535; rescaled PET or float data stays far inside).
WINDOW_LIMIT = 1e7
# Frames larger than this (either side) are scaled down for the screen; everything else is sent
# at its own resolution, and the browser enlarges small images with nearest-neighbour.
MAX_FRAME_SIDE = 2048


class FrameError(ValueError):
    """A frame request that cannot be served as asked (the message says why)."""


@dataclass(frozen=True)
class Window:
    center: float
    width: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center) and math.isfinite(self.width)) or self.width <= 0:
            raise FrameError("Window center and width must be finite numbers, the width above 0.")

    @classmethod
    def rounded(cls, center: float, width: float) -> Window:
        """Four significant digits: dragging produces many windows; nearby ones share a cached frame."""
        return cls(float(f"{float(center):.4g}"), float(f"{float(width):.4g}"))

    @classmethod
    def requested(cls, center: float, width: float) -> Window:
        """A window asked for by a user: bounded, so a typo cannot make an absurd cache entry."""
        if not (math.isfinite(center) and math.isfinite(width)):
            raise FrameError("Window center (wc) and width (ww) must be finite numbers.")
        if abs(center) > WINDOW_LIMIT:
            raise FrameError(f"Window center (wc) must be between -{WINDOW_LIMIT:g} and {WINDOW_LIMIT:g}.")
        if not 1e-3 <= width <= 2 * WINDOW_LIMIT:
            raise FrameError(f"Window width (ww) must be between 0.001 and {2 * WINDOW_LIMIT:g}.")
        return cls.rounded(center, width)

    @property
    def key(self) -> str:
        return f"c{self.center:.4g}_w{self.width:.4g}"

    @property
    def bounds(self) -> tuple[float, float]:
        return self.center - self.width / 2.0, self.center + self.width / 2.0


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    window: Window | None  # None: the instance's default window


# Common radiology presets (center, width in HU). Only offered where the values are HU.
CT_PRESETS = (
    Preset("soft_tissue", "Soft tissue (W 400 L 40)", Window(40, 400)),
    Preset("lung", "Lung (W 1500 L -600)", Window(-600, 1500)),
    Preset("bone", "Bone (W 1800 L 400)", Window(400, 1800)),
    Preset("brain", "Brain (W 80 L 40)", Window(40, 80)),
)
DEFAULT_PRESET = Preset("default", "From the image", None)


def presets_for(modality: str, *, colour: bool) -> list[Preset]:
    if colour:
        return []
    return [DEFAULT_PRESET, *(CT_PRESETS if modality.upper() == "CT" else ())]


def is_colour(ds: Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "")).strip().upper() in COLOUR_INTERPRETATIONS


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


@dataclass
class DecodedImage:
    """All frames of one instance, decoded once: modality values (greyscale) or RGB (colour)."""

    frames: object  # numpy array, (frames, rows, columns) or (frames, rows, columns, 3)
    colour: bool
    monochrome1: bool
    default_window: Window | None  # greyscale only; None with a VOI LUT default
    voi_lut_default: bool
    dataset: Dataset

    @property
    def count(self) -> int:
        return int(self.frames.shape[0])


def decode(ds: Dataset, *, frame: int | None = None) -> DecodedImage:
    """Decode every frame of `ds`, or only frame `frame` (the preview's first) as a one-frame image.

    Raises FrameError when there are no pixels or no decoder.
    """
    import numpy as np
    from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

    if "PixelData" not in ds:
        raise FrameError("This image has no pixel data (it may be a report or a plan).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            count = frame_count(ds)
            if frame is not None and count > 1:
                if not 0 <= frame < count:
                    raise FrameError(f"Frame {frame + 1} does not exist: this image has {count} frame(s).")
                pixels, count = np.asarray(pixel_array(ds, index=frame)), 1
            else:
                pixels = np.asarray(pixel_array(ds))
    except Exception as exc:
        raise FrameError(f"The pixels cannot be decoded here ({type(exc).__name__}).") from exc
    interpretation = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if interpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    colour = interpretation in COLOUR_INTERPRETATIONS or (
        pixels.ndim == 3 + (count > 1) and pixels.shape[-1] in (3, 4)
    )
    if count == 1 or pixels.ndim == (3 if colour else 2):
        pixels = pixels[np.newaxis, ...]
    if colour:
        rgb = np.asarray(pixels[..., :3], dtype=np.float32)
        scale = 255.0 if rgb.max(initial=0) <= 255 else 65535.0  # 16-bit samples and palettes
        return DecodedImage(rgb / scale * 255.0, True, False, None, False, ds)
    values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)
    window = header_window(ds)
    voi_lut = window is None and "VOILUTSequence" in ds
    if window is None and not voi_lut:
        window = percentile_window(values)
    return DecodedImage(values, False, interpretation == "MONOCHROME1", window, voi_lut, ds)


def header_window(ds: Dataset) -> Window | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None or center == "" or width == "":
        return None
    center = center[0] if not isinstance(center, str | float | int) and len(center) else center
    width = width[0] if not isinstance(width, str | float | int) and len(width) else width
    try:
        center, width = float(center), float(width)
    except (TypeError, ValueError):
        return None
    return Window(center, width) if math.isfinite(center) and math.isfinite(width) and width >= 1 else None


def percentile_window(values) -> Window:
    """The 0.5-99.5 percentile range: a few extreme pixels (metal, padding) do not flatten the picture."""
    import numpy as np

    sample = values.reshape(-1)
    if sample.size > 4_000_000:  # a long cine loop: a strided sample gives the same percentiles
        sample = sample[:: sample.size // 4_000_000 + 1]
    low, high = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
    if not (math.isfinite(low) and math.isfinite(high)):  # NaN in float pixel data
        low, high = 0.0, 1.0
    if high <= low:
        high = low + 1.0
    return Window((low + high) / 2.0, high - low)


def render_frame(image: DecodedImage, index: int, window: Window | None = None):
    """Frame `index` (from 0) as a PIL image, greyscale at `window` (None: the default)."""
    import numpy as np
    from PIL import Image

    if not 0 <= index < image.count:
        raise FrameError(f"Frame {index + 1} does not exist: this image has {image.count} frame(s).")
    frame = image.frames[index]
    if image.colour:
        picture = Image.fromarray(np.clip(frame, 0, 255).round().astype(np.uint8), mode="RGB")
    else:
        if window is None and image.voi_lut_default:
            from pydicom.pixels import apply_voi_lut

            frame = np.asarray(apply_voi_lut(frame, image.dataset, index=0), dtype=np.float32)
            low, high = float(frame.min()), float(frame.max())
        else:
            low, high = (window or image.default_window).bounds
        grey = to_uint8(frame, low=low, high=high)
        if image.monochrome1:
            grey = 255 - grey
        picture = Image.fromarray(grey, mode="L")
    if max(picture.size) > MAX_FRAME_SIDE:
        picture.thumbnail((MAX_FRAME_SIDE, MAX_FRAME_SIDE))
    return picture


def png_bytes(picture, *, optimize: bool = False) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=optimize, compress_level=3 if not optimize else 9)
    return out.getvalue()


def to_uint8(values, *, low: float, high: float):
    import numpy as np

    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    return scaled.round().astype(np.uint8)
