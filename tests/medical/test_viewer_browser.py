"""The viewer in a real browser at phone width: frames of a series and of a multi-frame image are
scrolled, and a window preset or a drag changes the pixels (rendered by the real worker)."""

from __future__ import annotations

import pytest

from medical.models import Channel, Instance, Study
from medical.services import IngestSource, instance_ingest
from tests.medical.dicom_files import file_bytes

CT_SERIES = [f"dicomdirtests/98892001/CT5N/{name}" for name in ("2062", "2392", "2693", "3023", "3353")]

# The frame on screen, read back through a canvas (the image is a same-origin blob).
PIXELS = """async () => {
  const img = document.querySelector('[data-testid=preview-image]');
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data.filter((_, i) => i % 4 === 0));
}"""
SHOWN = (
    "(previous) => { const img = document.querySelector('[data-testid=preview-image]'); "
    "return !img.hidden && img.src && img.src !== previous && img.complete && img.naturalWidth > 0; }"
)


def _store(relative: str) -> Instance:
    source = IngestSource(
        channel=Channel.API,
        department="radiology",
        actor="test:medical",
        received_from="tests",
        previews="inline",
    )
    return Instance.objects.get(
        pk=instance_ingest(source=source, filename=relative, data=file_bytes(relative)).instance_id
    )


def _src(page) -> str:
    return page.get_attribute('[data-testid="preview-image"]', "src") or ""


@pytest.mark.e2e
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_scroll_a_series_and_a_multi_frame_image_and_change_the_window_at_phone_width(
    page, log_in, make_user, celery_worker
):
    ct = [_store(relative) for relative in CT_SERIES]
    study = Study.objects.get()
    assert {instance.series_id for instance in ct} == {ct[0].series_id}  # one series of 5 images
    dose = _store("rtdose.dcm")  # one image of 15 frames
    log_in(make_user("radiologist", department="radiology"))
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(f"/medical/studies/{study.pk}/")
    page.wait_for_function(SHOWN, arg="")
    position = page.locator('[data-testid="frame-position"]')
    assert position.inner_text() == "1 / 5"
    first = page.evaluate(PIXELS)

    # next frame: another image of the series
    shown = _src(page)
    page.click("#frame-next")
    page.wait_for_function(SHOWN, arg=shown)
    assert position.inner_text() == "2 / 5"
    second = page.evaluate(PIXELS)
    assert second != first
    # the keyboard on the image, and the slider, reach the last frame
    shown = _src(page)
    page.focus('[data-testid="viewer-stage"]')
    page.keyboard.press("End")
    page.wait_for_function(SHOWN, arg=shown)
    assert position.inner_text() == "5 / 5"
    assert page.get_attribute('[data-testid="preview-image"]', "data-instance") == str(ct[-1].pk)
    page.keyboard.press("Home")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=frame-position]').textContent === '1 / 5'"
    )
    page.wait_for_function(SHOWN, arg="")
    assert page.evaluate(PIXELS) == first  # back where it started (cached, same pixels)

    # a window preset changes the pixels; the window used is reported
    page.select_option('[data-testid="window-preset"]', "lung")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-stage]').dataset.window === '-600,1500'"
    )
    lung = page.evaluate(PIXELS)
    assert lung != first
    assert "Window 1500 · level -600" in page.locator('[data-testid="window-readout"]').inner_text()

    # dragging sets a custom window: right widens it, down lowers the level
    box = page.locator('[data-testid="viewer-stage"]').bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + min(box["height"], 300) / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 80, y + 60, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "() => { const w = document.querySelector('[data-testid=viewer-stage]').dataset.window; "
        "return w && w !== '-600,1500'; }"
    )
    assert page.locator('[data-testid="window-preset"]').input_value() == "custom"
    center, width = (
        float(v) for v in page.get_attribute('[data-testid="viewer-stage"]', "data-window").split(",")
    )
    assert width > 1500 and center < -600
    assert page.evaluate(PIXELS) != lung

    # zoom: the image grows inside the stage, the page does not widen; small images stay crisp
    before = page.locator('[data-testid="preview-image"]').bounding_box()["width"]
    page.click("#zoom-in")
    page.click("#zoom-in")
    assert page.locator('[data-testid="zoom-level"]').inner_text() == "200%"
    assert page.locator('[data-testid="preview-image"]').bounding_box()["width"] > 1.5 * before
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('[data-testid=preview-image]')).imageRendering"
        )
        == "pixelated"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # a multi-frame image: its frames are the stack
    page.goto(f"/medical/studies/{dose.series.study_id}/")
    page.wait_for_function(SHOWN, arg="")
    assert position.inner_text() == "1 / 15"
    first = page.evaluate(PIXELS)
    shown = _src(page)
    page.locator('[data-testid="frame-slider"]').fill("9")
    page.wait_for_function(SHOWN, arg=shown)
    assert position.inner_text() == "9 / 15"
    assert "frame 9 of 15" in page.locator("#viewer-caption").inner_text()
    assert page.evaluate(PIXELS) != first
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_without_a_worker_the_viewer_says_the_frame_is_queued_and_why_and_retry_shows_it(
    page, log_in, make_user, settings, tmp_path, no_render_worker
):
    from medical.services.frames import instance_frames_render

    settings.MEDICAL_FRAME_CACHE_DIR = tmp_path / "frames"
    settings.MEDICAL_FRAME_WAIT_SECONDS = 0.2
    settings.MEDICAL_FRAME_QUEUED_NOTICE_SECONDS = 0  # stalled from the start: no need to wait for it
    mr = _store("MR_small.dcm")
    log_in(make_user("clinician", department="radiology"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/medical/studies/{mr.series.study_id}/")

    status = page.locator('[data-testid="viewer-status"]')
    status.wait_for(state="visible")  # not "Rendering…" forever: queued, with the reason
    text = status.inner_text()
    assert "Queued for the image worker" in text and "no worker has started it" in text, text
    assert "run_worker" in text
    assert page.locator('[data-testid="viewer-retry"]').is_visible()
    assert not page.locator('[data-testid="preview-image"]').is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # a worker renders it (the service the Celery task calls); Retry shows it at once
    instance_frames_render(instance_id=mr.pk)
    page.click('[data-testid="viewer-retry"]')
    page.wait_for_function(SHOWN, arg="", timeout=5_000)
    assert not status.is_visible()
    assert page.locator('[data-testid="frame-position"]').inner_text() == "1 / 1"
