"""On a phone (390 px, real Chromium) an engineer opens an older recording from the asset page and
zooms its spectrum into the band where the bearing's resonance rings, then the envelope spectrum onto
the fault frequency's harmonics: the server redraws each chart over the stretch asked for. Then the
asset's spectra over time, switched to orders of the shaft speed, still fit the phone's width."""

from __future__ import annotations

import datetime as dt

import pytest

from manufacturing.models import BearingGeometry, Component, Line, Machine, Site
from tests.support import cwru_recording

PHONE = {"width": 390, "height": 844}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_an_engineer_zooms_an_older_recordings_spectra_on_a_phone(page, log_in, make_user):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Line 1"), tag="FAN-3", name="Supply fan"
    )
    bearing = BearingGeometry.objects.create(
        designation="6205-2RS JEM", ball_count=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04
    )
    Component.objects.create(machine=machine, name="DE bearing", bearing=bearing)
    engineer = make_user("maintenance_engineer", site="site-a")
    older = cwru_recording(engineer, machine, "outer_race_007_at6_130", rpm=1796)
    healthy = cwru_recording(
        engineer, machine, "normal_97", rpm=1797, recorded_at=older.recorded_at - dt.timedelta(days=30)
    )

    page.set_viewport_size(PHONE)
    log_in(engineer)
    page.goto(f"/manufacturing/assets/{machine.pk}/")
    page.click(f'#recording-{older.pk} a:has-text("Recording {older.pk}")')
    page.wait_for_url(f"**/manufacturing/recordings/{older.pk}/")
    assert "Outer-race bearing defect" in page.locator('[data-testid="fault-call"]').inner_text()
    assert page.locator('figcaption:has-text("Spectrum")').first.inner_text() == "Spectrum"

    form = page.locator('[data-testid="spectrum-range"]')
    form.locator('input[name="spectrum_from"]').fill("2000")
    form.locator('input[name="spectrum_to"]').fill("4000")
    form.locator('button[type="submit"]').click()
    page.wait_for_url("**spectrum_from=2000**")
    assert page.locator('figcaption:has-text("Spectrum, 2000–4000 Hz")').count() == 1

    form = page.locator('[data-testid="envelope-range"]')
    assert form.locator('input[name="spectrum_from"]').input_value() == "2000"  # the spectrum stays zoomed
    form.locator('input[name="envelope_from"]').fill("300")
    form.locator('input[name="envelope_to"]').fill("600")
    form.locator('button[type="submit"]').click()
    page.wait_for_url("**envelope_from=300**")
    marks = page.locator('[data-testid="envelope-spectrum"] [data-mark]')
    labels = [marks.nth(i).get_attribute("data-mark") for i in range(marks.count())]
    assert {"BPFO 3x", "BPFO 4x", "BPFO 5x"} <= set(labels)
    assert page.locator('figcaption:has-text("Spectrum, 2000–4000 Hz")').count() == 1
    page.click('[data-testid="envelope-usual"]')
    page.wait_for_load_state()
    assert page.locator('figcaption:text-is("Envelope spectrum")').count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # last month's healthy recording beneath, in grey, the spectrum still zoomed
    page.select_option('[data-testid="compare"] select', str(healthy.pk))
    page.click('[data-testid="compare"] button[type="submit"]')
    page.wait_for_url(f"**compare={healthy.pk}**")
    assert page.locator('[data-testid="spectrum"] polyline.overlay').count() == 1
    assert page.locator('figcaption:has-text("Spectrum, 2000–4000 Hz · grey: recording")').count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # both recordings stacked on the asset's spectra over time, the table's columns within the phone
    page.click("text=This asset's spectra over time")
    page.wait_for_url(f"**/manufacturing/assets/{machine.pk}/spectra/**")
    traces = page.locator('[data-testid="waterfall"] g.trace')
    assert traces.count() == 2 and traces.nth(1).get_attribute("data-trace").endswith(older.analysis.zone)
    assert page.locator('[data-testid="fault-lines"] tbody tr').count() == 2
    page.select_option('[data-testid="spectra-form"] select[name="axis"]', "orders")
    page.click('[data-testid="spectra-form"] button[type="submit"]')
    page.wait_for_url("**axis=orders**")
    assert page.locator('[data-testid="waterfall"] [data-mark="BPFO"]').count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
