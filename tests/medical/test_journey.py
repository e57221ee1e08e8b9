"""Previews rendered by a real Celery worker, and the clinician's journey in a real browser."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from PIL import Image

from medical import storage
from medical.models import Channel, Instance, Study
from medical.services import IngestSource, instance_ingest
from tests.medical.dicom_files import TEST_FILES, file_bytes
from tests.support import wait_for


def _queue(relative: str) -> Instance:
    source = IngestSource(
        channel=Channel.API,
        department="radiology",
        actor="test:medical",
        received_from="tests",
        previews="queue",
    )
    outcome = instance_ingest(source=source, filename=relative, data=file_bytes(relative))
    return Instance.objects.get(pk=outcome.instance_id)


def _ready(instance: Instance) -> Instance | None:
    instance.refresh_from_db()
    return instance if instance.preview_status != Instance.PreviewStatus.PENDING else None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_previews_are_rendered_by_the_worker(celery_worker):
    ct, ultrasound = (
        _queue("CT_small.dcm"),
        _queue("examples_ybr_color.dcm"),
    )  # windowed CT; first of 30 frames
    for instance, mode in ((ct, "L"), (ultrasound, "RGB")):
        wait_for(lambda instance=instance: _ready(instance), timeout=60, message="the preview")
        assert instance.preview_status == Instance.PreviewStatus.READY
        image = Image.open(io.BytesIO(storage.read_media(instance.preview_file)))
        assert image.format == "PNG" and image.mode == mode
        assert max(image.size) <= 512 and image.getextrema() != ((0, 0),)


@pytest.mark.e2e
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_view_ask_and_another_department_is_refused(
    page, log_in, celery_worker, make_user, medical_qa_model
):
    uploader = make_user("clinician", department="radiology")
    cardiologist = make_user("clinician", department="cardiology")
    log_in(uploader)
    page.click('nav.mainnav a[data-nav="studies"]')
    page.click('[data-testid="upload-link"]')
    page.set_input_files('[data-testid="upload-form"] input[type=file]', str(TEST_FILES / "CT_small.dcm"))
    page.click('[data-testid="upload-form"] button[type=submit]')
    assert "1 stored" in page.locator('[data-testid="upload-counts"]').inner_text()
    page.click('[data-testid="study-link"]')

    preview = page.locator('[data-testid="preview-image"]')
    preview.wait_for(state="visible", timeout=60_000)  # the worker renders it; the page polls for it
    page.wait_for_function(
        "() => { const img = document.querySelector('[data-testid=preview-image]'); "
        "return img && img.complete && img.naturalWidth > 0; }"
    )

    page.fill('[data-testid="chat-input"]', "What is the slice thickness?")
    page.click('[data-testid="chat-form"] button[type=submit]')
    answer = page.locator('[data-testid="chat-answer"]').last
    answer.wait_for(timeout=120_000)  # the first question loads the model into the server process
    assert "5 mm" in answer.inner_text()
    citation = page.locator('[data-testid="citation-text"]').last.inner_text()
    assert citation == "Slice Thickness = 5 mm"  # readable: the attribute's name and value
    assert float(page.locator('[data-testid="grounding-score"]').last.inner_text().split()[-1]) > 0.5
    cited = page.locator('[data-testid="cited-attribute"]').first
    assert not cited.is_visible()  # tags on demand
    page.locator("details.cited-details summary").last.click()
    assert "(0018,0050)" in cited.inner_text() and "SliceThickness" in cited.inner_text()

    study = Study.objects.get()
    page.click("text=Log out")
    log_in(cardiologist)
    response = page.goto(f"/medical/studies/{study.pk}/")
    assert response.status == 404
    assert "5 mm" not in page.inner_text("body")


def _inline(relative: str) -> Instance:
    source = IngestSource(
        channel=Channel.API,
        department="radiology",
        actor="test:medical",
        received_from="tests",
        previews="inline",
    )
    outcome = instance_ingest(source=source, filename=relative, data=file_bytes(relative))
    return Instance.objects.get(pk=outcome.instance_id)


@pytest.mark.e2e
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_burned_in_previews_are_masked_until_reviewed_and_the_review_is_shown(
    page, log_in, make_user, celery_worker
):
    ultrasound = _inline("examples_rgb_color.dcm")  # burned-in "BAPTIST MED CTR" on the pixels
    study = ultrasound.series.study
    assert study.burned_in_review == "pending" and ultrasound.preview_status == "ready"
    reviewer = make_user("radiologist", department="radiology")
    log_in(reviewer)
    frame_requests = []
    page.on("request", lambda request: frame_requests.append(request.url))
    page.goto(f"/medical/studies/{study.pk}/")
    warning = page.locator('[data-testid="burned-in-warning"]')
    assert warning.is_visible() and "review pending" in warning.inner_text()
    image = page.locator('[data-testid="preview-image"]')
    assert not image.is_visible() and image.get_attribute("src") is None
    assert page.locator(".thumb img").count() == 0  # no thumbnail shows the pixels either
    assert not [url for url in frame_requests if "/frames/" in url]  # the viewer asked for no frame
    assert "unknown: review pending" in page.locator('[data-testid="instance-burned-in"]').inner_text()

    page.click('[data-testid="reveal-images"]')  # an explicit choice to look
    page.wait_for_function(
        "() => { const img = document.querySelector('[data-testid=preview-image]'); "
        "return img && !img.hidden && img.complete && img.naturalWidth > 0; }"
    )

    page.check('[data-testid="review-form"] input[value="cleared"]')
    page.click('[data-testid="review-form"] button[type=submit]')
    page.wait_for_selector('[data-testid="review-decision"]:has-text("by")')
    decision = page.locator('[data-testid="review-decision"]').inner_text()
    assert reviewer.username in decision and "Reviewed: no identifying text" in decision
    study.refresh_from_db()
    assert timezone.localtime(study.burned_in_reviewed_at).strftime("%Y-%m-%d %H:%M") in decision
    assert page.locator('[data-testid="burned-in-warning"]').count() == 0
    # shown without a reveal click once cleared (the study script fills it in after the page loads)
    page.wait_for_selector('[data-testid="preview-image"]', state="visible", timeout=10_000)
    assert "reviewed: none" in page.locator('[data-testid="instance-burned-in"]').inner_text()
    assert not page.locator(
        '[data-testid="review-form"]'
    ).is_visible()  # changing it is a new, explicit decision
    page.click("text=Change the decision")
    assert page.locator('[data-testid="review-form"]').is_visible()


@pytest.mark.e2e
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_study_list_and_page_fit_a_phone_and_small_images_are_not_blurred(
    page, log_in, make_user, celery_worker
):
    instance = _inline("MR_small.dcm")  # 64 x 64 pixels
    # a long name and department must wrap in the top bar, not widen the page
    log_in(
        make_user(
            "clinician",
            department="radiology",
            first_name="Maximiliana",
            last_name="Oberhollenzer-Wittgenstein",
        )
    )
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/medical/")
    row = page.locator(f'[data-study="{instance.series.study_id}"]')
    assert row.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # the filters are folded at phone width: the studies come first, on the first screen
    panel = page.locator('[data-testid="filter-panel"]')
    assert panel.get_attribute("open") is None and not page.locator("#id_modality").is_visible()
    assert row.bounding_box()["y"] + row.bounding_box()["height"] <= 844
    page.click('[data-testid="filter-summary"]')  # opened on demand, compact (two fields a row)
    page.fill("#id_modality", "mr")
    assert (
        page.locator("#id_date_from").bounding_box()["y"] == page.locator("#id_date_to").bounding_box()["y"]
    )
    page.click('[data-testid="study-filters"] button[type=submit]')
    page.wait_for_url("**modality=mr**")
    assert page.locator('[data-testid="active-filters"]').inner_text() == "· Modality: MR"
    assert panel.get_attribute("open") is None and row.is_visible()
    assert row.bounding_box()["y"] + row.bounding_box()["height"] <= 844
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # per-file upload results read as cards, nothing cut off (an empty file: refused, no worker needed)
    page.goto("/medical/upload/")
    page.set_input_files(
        '[data-testid="upload-form"] input[type=file]',
        files=[{"name": "empty.dcm", "mimeType": "application/dicom", "buffer": b""}],
    )
    page.click('[data-testid="upload-form"] button[type=submit]')
    reason = page.locator('[data-testid="upload-report"] tr[data-status="rejected"] td').last
    assert "empty file" in reason.inner_text() and reason.is_visible()
    assert reason.bounding_box()["x"] + reason.bounding_box()["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"/medical/studies/{instance.series.study_id}/")
    page.wait_for_function(
        "() => { const img = document.querySelector('[data-testid=preview-image]'); "
        "return img && img.complete && img.naturalWidth > 0; }"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator('[data-testid="chat-input"]').is_visible()
    rendering = page.evaluate(
        "getComputedStyle(document.querySelector('[data-testid=preview-image]')).imageRendering"
    )
    assert rendering == "pixelated"
