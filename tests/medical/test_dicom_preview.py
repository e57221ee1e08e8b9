"""render_preview: windowed greyscale, first frame of multi-frame, colour, and None when it cannot decode."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate

from medical.dicom import deidentify, render_preview
from tests.medical.dicom_files import UID_KEY, read_test_file


def _image(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(png))


def test_ct_preview_uses_the_modality_lut_and_a_percentile_window(deidentified_ct):
    image = _image(render_preview(deidentified_ct.dataset))
    assert image.size == (128, 128) and image.mode == "L"
    pixels = np.asarray(image)
    assert pixels.std() > 30 and pixels.min() == 0 and pixels.max() == 255


def test_mr_preview_applies_the_stored_window():
    dataset = read_test_file("MR_small.dcm")
    center, width = float(dataset.WindowCenter), float(dataset.WindowWidth)
    expected = np.clip((dataset.pixel_array.astype(float) - (center - width / 2)) / width, 0, 1) * 255
    image = np.asarray(_image(render_preview(dataset)), dtype=float)
    assert image.shape == (64, 64)
    assert np.abs(image - expected.round()).max() <= 1


def test_multi_frame_preview_is_the_first_frame():
    dataset = read_test_file("examples_ybr_color.dcm")
    assert int(dataset.NumberOfFrames) == 30
    image = _image(render_preview(dataset))
    assert image.mode == "RGB" and image.size == (320, 240)
    first_frame = dataset.pixel_array[0]
    assert np.abs(np.asarray(image, dtype=int) - first_frame.astype(int)).max() <= 1
    assert not np.array_equal(dataset.pixel_array[0], dataset.pixel_array[-1])  # frames really differ


def test_rgb_and_palette_previews_are_colour_and_bounded():
    rgb = _image(render_preview(read_test_file("examples_rgb_color.dcm"), max_size=100))
    assert rgb.mode == "RGB" and max(rgb.size) == 100
    palette = _image(render_preview(read_test_file("examples_palette.dcm")))
    assert palette.mode == "RGB"
    channels = np.asarray(palette, dtype=int)
    assert (channels[..., 0] != channels[..., 2]).any()  # the palette gives real colour, not grey


def test_no_pixel_data_or_undecodable_pixels_give_none():
    assert render_preview(deidentify(read_test_file("rtplan.dcm"), uid_key=UID_KEY).dataset) is None
    assert render_preview(read_test_file("JPEG2000-embedded-sequence-delimiter.dcm")) is None
    garbage = read_test_file("CT_small.dcm")
    garbage.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000Lossless
    garbage.PixelData = encapsulate([b"\x00\x01not a codestream" * 10])
    assert render_preview(garbage) is None
