"""A maintenance engineer sends a 3-D scan from a phone (390 px, real Chromium) with a real Celery worker:
the page says the worker is registering it and shows the deviation map by itself when it is done."""

from __future__ import annotations

import numpy as np
import pytest

from manufacturing.models import Component, Line, Machine, ScanComparison, Site

PHONE = {"width": 390, "height": 844}


def _xyz(points: np.ndarray) -> str:
    return "x y z\n" + "\n".join(f"{x:.5f} {y:.5f} {z:.5f}" for x, y, z in points)


@pytest.mark.e2e
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_scan_sent_from_a_phone_is_registered_by_the_worker(
    page, log_in, celery_worker, make_user, tmp_path
):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Line 1"), tag="PMP-7", name="Pump"
    )
    Component.objects.create(machine=machine, name="Impeller housing")
    # a curved 100 x 60 mm plate every 1 mm; the scan turned 20 degrees and moved, a 2 mm dent in it
    u, v = np.meshgrid(np.arange(0.0, 100.0), np.arange(0.0, 60.0))
    u, v = u.ravel(), v.ravel()
    reference = np.column_stack([u, v, 0.002 * (u - 50) ** 2])
    dent = (u - 30) ** 2 + (v - 20) ** 2 <= 16
    scan = reference.copy()
    scan[dent, 2] -= 2.0
    angle = np.radians(20)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    (tmp_path / "housing.xyz").write_text(_xyz(scan @ turn.T + [40.0, -10.0, 5.0]))
    (tmp_path / "housing-ref.xyz").write_text(_xyz(reference))

    page.set_viewport_size(PHONE)
    log_in(make_user("maintenance_engineer", site="site-a"))
    page.goto(f"/manufacturing/assets/{machine.pk}/#scans")
    form = page.locator('[data-testid="upload-scan"]')
    form.locator('input[name="scan"]').set_input_files(str(tmp_path / "housing.xyz"))
    form.locator('input[name="reference"]').set_input_files(str(tmp_path / "housing-ref.xyz"))
    form.locator('input[name="tolerance"]').fill("0.5")
    form.locator('select[name="component"]').select_option(label="Impeller housing")
    form.locator("button[type=submit]").click()

    page.locator('[data-testid="scan-summary"], [data-testid="scan-status"]').first.wait_for()
    comparison = ScanComparison.objects.get()
    # the page reloads itself while the worker registers the scan, then shows the map
    page.locator('[data-testid="deviation-map"]').wait_for(timeout=120_000)
    comparison.refresh_from_db()
    assert comparison.status == "done" and comparison.summary["beyond_tolerance"] == dent.sum()
    beyond = page.locator('[data-testid="beyond"]').inner_text()
    assert f"{dent.sum()} of 6,000 points" in beyond
    assert "turned 20° onto the reference" in page.locator('[data-testid="scan-summary"]').inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
