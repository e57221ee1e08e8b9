"""A maintenance engineer's journey on a phone (390 px) in a real Chromium, with a real Celery worker:
upload a CWRU outer-race recording, see the zone, the envelope spectrum with BPFO marked and the
fault call; file a work order from the alert; accept the assistant's failure mode; close with codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from manufacturing.models import BearingGeometry, Component, FailureSuggestion, Line, Machine, Site, WorkOrder
from manufacturing.services import failure_codes_import

PHONE = {"width": 390, "height": 844}
CWRU = "bearings/cwru_de_0hp/cwru_de_0hp_outer_race_007_at6_130.npy"
HISTORY = [
    ("Motor DE bearing vibration high, outer race pitted", "VIB"),
    ("Fan bearing vibration and noise, replaced bearing", "VIB"),
    ("Gearbox oil leak at seal", "LKG"),
]


def _fits(page) -> bool:
    """Nothing in the page's content is wider than the phone screen."""
    return page.evaluate(
        "() => { const m = document.querySelector('.mfg'); return m.scrollWidth <= m.clientWidth + 1 "
        "&& m.getBoundingClientRect().right <= window.innerWidth + 1; }"
    )


@pytest.mark.e2e
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_recording_to_closed_work_order_on_a_phone(page, log_in, celery_worker, make_user, tmp_path):
    data = Path(settings.SHARED_DATA_DIR)
    failure_codes_import(path=data / "work_orders" / "failure_codes.csv")
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    line = Line.objects.create(site=site, name="Test rig")
    # A 2 hp test motor: its limits are set far below the ISO group 2 defaults so the seeded fault alerts.
    motor = Machine.objects.create(
        line=line, tag="MTR-RIG", name="CWRU test motor", zone_limits={"A/B": 0.05, "B/C": 0.1, "C/D": 0.15}
    )
    bearing = BearingGeometry.objects.create(
        designation="SKF 6205-2RS JEM", ball_count=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04
    )
    Component.objects.create(machine=motor, name="Drive end bearing", kind="bearing", bearing=bearing)
    for index, (title, code) in enumerate(HISTORY):
        WorkOrder.objects.create(
            site="site-a",
            machine=motor,
            external_id=f"H{index}",
            title=title,
            status="complete",
            failure_mode=code,
        )
    recording = tmp_path / "de_outer_race.npy"
    np.save(recording, np.load(data / CWRU)[:24000])  # 2 s at 12 kHz
    engineer = make_user("maintenance_engineer", site="site-a")

    page.set_viewport_size(PHONE)
    log_in(engineer)
    page.goto("/manufacturing/")
    page.click("text=MTR-RIG")
    form = page.locator('[data-testid="upload-recording"]')
    form.locator("input[type=file]").set_input_files(str(recording))
    form.locator('input[name="sample_rate"]').fill("12000")
    form.locator('input[name="rpm"]').fill("1796")
    form.locator("button[type=submit]").click()
    zone = page.locator('[data-testid="zone"]')
    zone.wait_for(timeout=120_000)  # the worker analyses it; the page reloads while it is pending
    assert zone.inner_text() == "Zone D"
    assert page.locator('[data-testid="fault-call"]').inner_text().startswith("Outer-race bearing defect")
    envelope = page.locator('svg[data-testid="envelope-spectrum"]')
    assert envelope.is_visible() and envelope.locator('[data-mark="BPFO"]').count() == 1
    assert page.locator('svg[data-testid="waveform"]').is_visible()
    assert _fits(page)

    page.click('[data-testid="alerts"] >> text=file work order')
    assert "Vibration zone D" in page.locator('[data-testid="from-alert"]').inner_text()
    page.fill('textarea[name="description"]', "Outer race fault call on the drive end bearing")
    page.click('[data-testid="new-work-order-form"] button[type=submit]')
    page.locator('[data-testid="assistant"]').wait_for()
    assert _fits(page)

    # the first request loads the embedding model into the server: wait for the page, not the click
    page.click('[data-testid="assistant-ask"] button[type=submit]', no_wait_after=True)
    page.locator('[data-testid="suggestion"]').wait_for(timeout=180_000)
    assert page.locator('[data-testid="suggested-code"]').inner_text() == "VIB"
    evidence = page.locator('[data-testid="evidence-list"]').inner_text()
    assert "outer-race bearing defect" in evidence and "Motor DE bearing vibration" in evidence
    assert "outer_race" not in evidence
    page.click('[data-testid="accept-suggestion"]')
    assert "Accepted: VIB" in page.locator('[data-testid="verdict"]').inner_text()

    transition = page.locator('[data-testid="transition"]')
    transition.locator('select[name="status"]').select_option("in_progress")
    transition.locator("button[type=submit]").click()
    assert page.locator('[data-testid="status"]').inner_text() == "In progress"
    transition.locator('select[name="status"]').select_option("complete")
    assert transition.locator('select[name="failure_mode"]').input_value() == "VIB"
    transition.locator('select[name="failure_cause"]').select_option("WEA")
    transition.locator('select[name="action_code"]').select_option("REP")
    transition.locator('input[name="labour_hours"]').fill("2")
    transition.locator("button[type=submit]").click()
    assert page.locator('[data-testid="status"]').inner_text() == "Complete"

    work_order = WorkOrder.objects.get(alert__isnull=False)
    assert (work_order.failure_mode, work_order.failure_cause, work_order.action_code) == (
        "VIB",
        "WEA",
        "REP",
    )
    assert work_order.labour_hours == 2.0 and work_order.alert.recording.analysis.fault == "outer_race"
    assert FailureSuggestion.objects.get(work_order=work_order).verdict == "accepted"
    page.click('[data-testid="report-link"]')
    assert "VIB Vibration" in page.locator('[data-testid="report-mode"]').inner_text()

    page.set_viewport_size({"width": 1280, "height": 900})  # the same asset page on a desktop
    page.goto(f"/manufacturing/assets/{motor.pk}/")
    for chart in ("waveform", "spectrum", "envelope-spectrum", "rms-trend"):
        assert page.locator(f'svg[data-testid="{chart}"]').is_visible(), chart
    assert page.locator('img[data-testid="qr"]').evaluate("img => img.complete && img.naturalWidth > 0")
