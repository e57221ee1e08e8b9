"""3-D scans on an asset's page and the API: a scan and its reference read, stored and trailed at upload,
registered (ICP) by the worker's step and trailed again; the deviation map shows the dent beyond
tolerance; bad files are refused with a message and nothing is kept; another site's engineer gets a 404
and nothing is stored. The worker itself runs `scan_register` in the test marked `worker`."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Event
from manufacturing import selectors
from manufacturing.models import ScanComparison
from manufacturing.services.scans import ScanRefused, scan_register, scan_upload
from tests.support import at_once, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _plate_with_dent(dent_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reference: a 100 x 60 mm plate with a curved edge, sampled every 1 mm. The scan: the same plate
    moved and turned as a scanner would see it, with a dent `dent_mm` deep over a 10 mm disc."""
    u, v = np.meshgrid(np.arange(0.0, 100.0), np.arange(0.0, 60.0))
    u, v = u.ravel(), v.ravel()
    reference = np.column_stack([u, v, 0.002 * (u - 50) ** 2])  # not flat: the fit has one answer
    dent = (u - 70) ** 2 + (v - 30) ** 2 <= 25
    scan = reference.copy()
    scan[dent, 2] -= dent_mm
    angle = np.radians(7)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return scan @ turn.T + [12.0, -4.0, 3.0], reference, dent


def _xyz(points: np.ndarray) -> bytes:
    return ("x y z\n" + "\n".join(f"{x:.5f} {y:.5f} {z:.5f}" for x, y, z in points)).encode()


def _ply(points: np.ndarray) -> bytes:
    head = f"ply\nformat ascii 1.0\nelement vertex {len(points)}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    return (head + "\n".join(f"{x:.5f} {y:.5f} {z:.5f}" for x, y, z in points)).encode()


def _registered(comparison: ScanComparison) -> ScanComparison:
    """The worker's step, run here (the tests' transactions never commit, so nothing is queued)."""
    assert comparison.status == "pending" and scan_register(comparison_id=comparison.pk) == "done"
    comparison.refresh_from_db()
    return comparison


def _upload(actor, machine, scan: np.ndarray, reference: np.ndarray, tolerance: float = 0.5, **more):
    """The upload's step: both files read, kept, the scan pending."""
    return scan_upload(
        actor=actor,
        machine=machine,
        scan_name="s.xyz",
        scan_data=_xyz(scan),
        reference_name="r.xyz",
        reference_data=_xyz(reference),
        tolerance=tolerance,
        **more,
    )


def _compare(actor, machine, scan: np.ndarray, reference: np.ndarray, tolerance: float = 0.5, **more):
    return _registered(_upload(actor, machine, scan, reference, tolerance, **more))


def test_the_dent_is_what_lies_beyond_tolerance_and_it_is_trailed(engineer_a, machine_a):
    scan, reference, dent = _plate_with_dent(2.0)
    uploaded = scan_upload(
        actor=engineer_a,
        machine=machine_a,
        scan_name="bracket.xyz",
        scan_data=_xyz(scan),
        reference_name="bracket-reference.ply",
        reference_data=_ply(reference),
        tolerance=0.5,
    )
    upload = Event.objects.get(action="scan.upload", resource_id=str(uploaded.pk))
    assert upload.payload["points"] == len(scan) and upload.payload["reference_points"] == len(reference)
    assert not Event.objects.filter(action="scan.compare").exists()
    comparison = _registered(uploaded)
    assert scan_register(comparison_id=comparison.pk) == "done"  # a message sent again changes nothing
    assert Event.objects.filter(action="scan.compare").count() == 1
    summary = comparison.summary
    assert summary["points"] == len(scan) and summary["converged"]
    # the dent's centre lies 2 mm from the surface; its rim (under 0.5 mm there) stays within
    assert 0.6 * dent.sum() <= summary["beyond_tolerance"] <= dent.sum()
    assert 1.9 <= summary["deviation_max"] <= 2.05 and summary["deviation_p95"] < 0.5
    beyond = [p for p in comparison.deviation_map if p[2] > 0.5]
    assert len(beyond) == summary["beyond_tolerance"]
    # on the map the points beyond tolerance sit together, where the dent is (a 10 mm disc)
    spread = np.ptp(np.array(beyond)[:, :2], axis=0)
    assert spread.max() <= 10.5
    event = Event.objects.get(action="scan.compare", resource_id=str(comparison.pk))
    assert event.payload["beyond_tolerance"] == summary["beyond_tolerance"]
    with comparison.scan.open("rb") as kept_scan, comparison.reference.open("rb") as kept_reference:
        assert kept_scan.read() == _xyz(scan) and kept_reference.read() == _ply(reference)


def test_a_scan_within_tolerance_has_nothing_beyond(engineer_a, machine_a):
    scan, reference, _ = _plate_with_dent(0.2)
    comparison = _compare(engineer_a, machine_a, scan, reference)
    assert comparison.summary["beyond_tolerance"] == 0 and comparison.summary["deviation_max"] < 0.25


@pytest.mark.parametrize(
    ("scan_name", "scan_data", "tolerance", "message"),
    [
        (
            "s.step",
            b"ISO-10303-21;",
            0.5,
            "or an .stl or .obj mesh",
        ),
        (
            "s.stl",
            b"solid x",
            0.5,
            "'s.stl' cannot be read: no vertices or faces could be read from this STL",
        ),
        ("s.xyz", b"", 0.5, "is empty"),
        ("s.xyz", b"1 2\n3 4\n", 0.5, "cannot be read"),
        ("s.xyz", b"0 0 0\n1 1 1\n2 2 0\n3 0 1\n0 3 2\n", 0.5, "at least 10"),
        # the plate in metres against its reference in millimetres
        (
            "s.xyz",
            "metres",
            0.5,
            "1,000 times smaller than the reference, the ratio of metres and millimetres",
        ),
        ("s.xyz", None, 0.0, "tolerance must be a positive number"),
        ("s.xyz", None, float("nan"), "tolerance must be a positive number"),
    ],
)
def test_bad_scans_are_refused_with_a_message_and_nothing_is_kept(
    engineer_a, machine_a, scan_name, scan_data, tolerance, message
):
    scan, reference, _ = _plate_with_dent(2.0)
    with pytest.raises(ScanRefused, match=message):
        scan_upload(
            actor=engineer_a,
            machine=machine_a,
            scan_name=scan_name,
            scan_data=_xyz(scan / 1000)
            if scan_data == "metres"
            else _xyz(scan)
            if scan_data is None
            else scan_data,
            reference_name="r.xyz",
            reference_data=_xyz(reference),
            tolerance=tolerance,
        )
    assert (
        not ScanComparison.objects.exists() and not Event.objects.filter(action__startswith="scan.").exists()
    )


def test_a_scan_beyond_the_size_the_worker_takes_is_refused_at_upload(engineer_a, machine_a, settings):
    settings.MANUFACTURING_SCAN_MAX_POINTS = 5_000  # a deployment's smaller worker; the plate has 6,000
    scan, reference, _ = _plate_with_dent(2.0)
    with pytest.raises(ScanRefused, match="the scan 's.xyz' has 6,000 points: at most 5,000; thin it out"):
        _compare(engineer_a, machine_a, scan, reference)
    assert not ScanComparison.objects.exists()


def test_a_scan_the_worker_cannot_register_says_why_on_its_page(client, engineer_a, machine_a):
    """Read at upload, but unreadable when the worker opens it (the stored file damaged meanwhile): the
    scan is marked failed with the reason, trailed, and its page says what to do."""
    scan, reference, _ = _plate_with_dent(2.0)
    comparison = _upload(engineer_a, machine_a, scan, reference)
    with open(comparison.scan.path, "wb") as damaged:
        damaged.write(b"1 2\n")
    assert scan_register(comparison_id=comparison.pk) == "failed"
    comparison.refresh_from_db()
    assert comparison.status == "failed" and "cannot be read" in comparison.error
    event = Event.objects.get(action="scan.compare", resource_id=str(comparison.pk))
    assert event.outcome == "failed" and "cannot be read" in event.payload["error"]
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/scans/{comparison.pk}/").content.decode()
    assert "could not be registered" in page and "cannot be read" in page and "deviation-map" not in page
    assert 'http-equiv="refresh"' not in page
    asset = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert "Registration failed" in asset


def test_the_asset_page_uploads_and_shows_the_deviation_map(client, engineer_a, machine_a):
    scan, reference, _ = _plate_with_dent(2.0)
    client.force_login(engineer_a)
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("housing.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("housing-ref.xyz", _xyz(reference)),
            "tolerance": "0.5",
            "unit": "mm",
        },
    )
    comparison = ScanComparison.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/scans/{comparison.pk}/")
    waiting = client.get(response["Location"]).content.decode()
    assert "Registering 6,000 points onto the reference's 6,000 on the worker" in waiting
    assert 'http-equiv="refresh"' in waiting and "deviation-map" not in waiting
    assert "Registering" in client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    comparison = _registered(comparison)
    page = client.get(response["Location"])
    html = page.content.decode()
    assert 'http-equiv="refresh"' not in html
    assert page.status_code == 200 and 'data-testid="deviation-map"' in html
    assert len(re.findall(r'data-beyond="true"', html)) == comparison.summary["beyond_tolerance"] > 0
    assert f"{comparison.summary['beyond_tolerance']} of {len(scan):,} points" in html  # 6,000
    assert "the scan was turned 7° onto the reference" in html  # the scanner's 7 degrees, undone
    assert "6,000 points</span> beyond 0.5 mm" in html  # the tolerance as entered, not "0.500"
    asset = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert f"/manufacturing/scans/{comparison.pk}/" in asset and 'data-testid="upload-scan"' in asset
    again = client.post(  # the form sent again (the answer was lost): the same scan, kept once
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("housing.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("housing-ref.xyz", _xyz(reference)),
            "tolerance": "0.5",
            "unit": "mm",
        },
        follow=True,
    )
    assert f"already sent with this reference and tolerance: scan {comparison.pk}, kept once" in (
        again.content.decode()
    )
    assert ScanComparison.objects.count() == 1


def test_a_bad_upload_says_why_on_the_asset_page(client, engineer_a, machine_a):
    client.force_login(engineer_a)
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {"scan": SimpleUploadedFile("s.xyz", b"1 2\n"), "tolerance": "0.5"},
        follow=True,
    )
    assert response.status_code == 200 and "choose both files" in response.content.decode()
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("s.xyz", b"1 2 3\n"),
            "reference": SimpleUploadedFile("r.xyz", b"1 2 3\n"),
            "tolerance": "wide",
        },
        follow=True,
    )
    assert "the tolerance must be a number" in response.content.decode()
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("s.xyz", b"1 2 3\n"),
            "reference": SimpleUploadedFile("r.xyz", b"1 2 3\n"),
            "tolerance": "",
        },
        follow=True,
    )
    assert "enter a tolerance" in response.content.decode()
    assert not ScanComparison.objects.exists()


def test_another_sites_engineer_gets_404_and_nothing_is_stored(client, engineer_a, engineer_b, machine_a):
    scan, reference, _ = _plate_with_dent(2.0)
    client.force_login(engineer_b)
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("s.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("r.xyz", _xyz(reference)),
            "tolerance": "0.5",
        },
    )
    assert response.status_code == 404 and not ScanComparison.objects.exists()
    comparison = _compare(engineer_a, machine_a, scan, reference)
    assert client.get(f"/manufacturing/scans/{comparison.pk}/").status_code == 404
    client.logout()
    assert client.get(f"/manufacturing/scans/{comparison.pk}/").status_code == 302  # to the sign-in page


ANONYMOUS, WRONG_ROLE, OTHER_SITE, SAME_SITE = "anonymous", "wrong role", "other site", "same site"


@pytest.mark.parametrize("kind", [ANONYMOUS, WRONG_ROLE, OTHER_SITE, SAME_SITE])
def test_authorization_of_the_upload_and_the_scan_page(client, make_user, engineer_a, machine_a, kind):
    user = {
        ANONYMOUS: None,
        WRONG_ROLE: lambda: make_user("clinician", site="site-a", department="radiology"),
        OTHER_SITE: lambda: make_user("maintenance_engineer", site="site-b"),
        SAME_SITE: lambda: make_user("maintenance_engineer", site="site-a"),
    }[kind]
    user = user() if user else None
    if user is not None:
        client.force_login(user)
    scan, reference, _ = _plate_with_dent(2.0)
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("s.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("r.xyz", _xyz(reference)),
            "tolerance": "0.5",
        },
    )
    assert response.status_code == {ANONYMOUS: 302, WRONG_ROLE: 404, OTHER_SITE: 404, SAME_SITE: 302}[kind]
    assert ScanComparison.objects.count() == (1 if kind == SAME_SITE else 0)
    if kind == ANONYMOUS:
        assert "/login/" in response["Location"]
    if kind in (WRONG_ROLE, OTHER_SITE):
        assert Event.objects.filter(action="asset.view", outcome="denied", actor_label=user.username).exists()
    kept = _compare(engineer_a, machine_a, scan, reference)
    page = client.get(f"/manufacturing/scans/{kept.pk}/")
    assert page.status_code == {ANONYMOUS: 302, WRONG_ROLE: 404, OTHER_SITE: 404, SAME_SITE: 200}[kind]


def test_the_api_compares_and_refuses_with_a_message(client, engineer_a, engineer_b, machine_a):
    scan, reference, dent = _plate_with_dent(2.0)

    def post(scan_bytes, tolerance="0.5"):
        return client.post(
            f"/api/manufacturing/assets/{machine_a.pk}/scans/",
            {
                "scan": SimpleUploadedFile("s.xyz", scan_bytes),
                "reference": SimpleUploadedFile("r.ply", _ply(reference)),
                "tolerance": tolerance,
            },
        )

    client.force_login(engineer_a)
    created = post(_xyz(scan))
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "pending" and body["beyond_tolerance"] is None and body["points"] == len(scan)
    assert created["Location"] == body["url"] == f"/api/manufacturing/scans/{body['id']}/"
    assert client.get(body["url"]).json()["status"] == "pending"
    _registered(ScanComparison.objects.get())
    result = client.get(body["url"]).json()
    assert result["status"] == "done" and result["beyond_tolerance"] == dent.sum() and result["converged"]
    assert result["rotation_deg"] == pytest.approx(7, abs=0.05) and result["error"] == ""
    bad = post(b"1 2\n3 4\n")
    assert bad.status_code == 400 and "cannot be read" in bad.json()["detail"]
    assert post(_xyz(scan), tolerance="-1").status_code == 400
    client.force_login(engineer_b)
    assert post(_xyz(scan)).status_code == 404
    assert client.get(body["url"]).status_code == 404  # another site's scan is not there for them
    assert ScanComparison.objects.count() == 1


def test_the_reference_may_be_the_cad_model(client, engineer_a, machine_a):
    """Scan-to-CAD through the API: the reference is an .stl mesh (8 corners; its surface is sampled),
    the scan a point cloud of the part, moved and turned, with a 1 mm dent."""
    import trimesh

    model = trimesh.creation.box(extents=[60.0, 40.0, 10.0])
    points, _ = trimesh.sample.sample_surface(model, 4000, seed=3)
    points = np.asarray(points)
    dent = np.isclose(points[:, 2], 5.0) & ((points[:, 0] - 15) ** 2 + (points[:, 1] - 8) ** 2 < 25)
    points[dent, 2] -= 1.0
    angle = np.radians(25)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    client.force_login(engineer_a)
    created = client.post(
        f"/api/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("part.xyz", _xyz(points @ turn.T + [100.0, 50.0, 0.0])),
            "reference": SimpleUploadedFile("part.stl", model.export(file_type="stl")),
            "tolerance": "0.5",
        },
    )
    assert created.status_code == 201, created.content
    _registered(ScanComparison.objects.get())
    result = client.get(created["Location"]).json()
    assert result["beyond_tolerance"] == dent.sum() > 0 and result["rotation_deg"] == pytest.approx(
        25, abs=0.1
    )
    assert result["deviation_max"] == pytest.approx(1.0, abs=0.05)
    assert ScanComparison.objects.get().reference.name.endswith(".stl")


def test_the_scan_names_the_component_scanned(client, engineer_a, machine_a):
    """The form and the API say which of the asset's components was scanned; it is shown and trailed. One
    that is not the asset's is refused and nothing is kept."""
    from manufacturing.models import Component

    housing = Component.objects.create(machine=machine_a, name="Bearing housing")
    scan, reference, _ = _plate_with_dent(2.0)
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert f'<option value="{housing.pk}">Bearing housing</option>' in page
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("housing.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("housing-ref.xyz", _xyz(reference)),
            "tolerance": "0.5",
            "component": str(housing.pk),
        },
    )
    comparison = _registered(ScanComparison.objects.get())
    assert response.status_code == 302 and comparison.component == housing
    assert f"Scan {comparison.pk} of Bearing housing" in client.get(response["Location"]).content.decode()
    assert Event.objects.get(action="scan.upload").payload["component"] == "Bearing housing"
    assert Event.objects.get(action="scan.compare").payload["component"] == "Bearing housing"
    asset = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert f"Scan {comparison.pk}</a> of Bearing housing" in asset

    worn_further, _, _ = _plate_with_dent(2.5)  # a later scan: the dent deeper

    def api(component):
        return client.post(
            f"/api/manufacturing/assets/{machine_a.pk}/scans/",
            {
                "scan": SimpleUploadedFile("s.xyz", _xyz(worn_further)),
                "reference": SimpleUploadedFile("r.xyz", _xyz(reference)),
                "tolerance": "0.5",
                "component": component,
            },
        )

    assert api(housing.pk).status_code == 201
    # the same housing scanned again: the page lists both
    later = _registered(ScanComparison.objects.latest("pk"))
    page = client.get(f"/manufacturing/scans/{later.pk}/").content.decode()
    history = page[page.index('data-testid="scan-history"') :].split("</table>")[0]
    assert f"/manufacturing/scans/{comparison.pk}/" in history and f"{later.pk} (this one)" in history
    refused = api(housing.pk + 1000)
    assert refused.status_code == 400 and "has no component" in refused.json()["detail"]
    assert ScanComparison.objects.count() == 2


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_registers_a_scan_sent_through_the_api(
    client, settings, engineer_a, machine_a, celery_worker
):
    """The whole path: the API answers at once with the scan pending, the real worker registers it, and
    the scan's URL then gives the deviations."""
    settings.MEDIA_ROOT = os.environ["MEDIA_ROOT"]  # where the worker process reads the files
    scan, reference, dent = _plate_with_dent(2.0)
    client.force_login(engineer_a)
    created = client.post(
        f"/api/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("s.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("r.ply", _ply(reference)),
            "tolerance": "0.5",
        },
    )
    assert created.status_code == 201 and created.json()["status"] == "pending", created.content
    wait_for(
        lambda: client.get(created["Location"]).json()["status"] != "pending",
        timeout=120,
        message="the worker to register the scan",
    )
    result = client.get(created["Location"]).json()
    assert result["status"] == "done" and result["beyond_tolerance"] == dent.sum()
    event = Event.objects.get(action="scan.compare", resource_id=str(result["id"]))
    assert event.actor_label == "task:manufacturing.register_scan" and event.outcome == "succeeded"


def test_a_work_order_is_filed_from_a_scans_wear(client, engineer_a, engineer_b, machine_a):
    """The scan's page offers a work order for the wear it shows: the form comes filled in (the asset,
    the component, what the scan found), the work order keeps the scan as its evidence and links back,
    and the scan's page lists it. Another site's engineer cannot file from the scan."""
    from manufacturing.models import Component, WorkOrder

    housing = Component.objects.create(machine=machine_a, name="Bearing housing")
    scan, reference, dent = _plate_with_dent(2.0)
    comparison = _compare(engineer_a, machine_a, scan, reference, component=housing)
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/scans/{comparison.pk}/").content.decode()
    link = f"/manufacturing/work-orders/new/?scan={comparison.pk}"
    assert link in page and 'data-testid="file-from-scan"' in page
    form = client.get(link).content.decode()
    beyond = comparison.summary["beyond_tolerance"]
    title = f"Bearing housing: {beyond} points beyond 0.5 mm (scan {comparison.pk})"
    assert f'value="{title}"' in form and f'name="scan" value="{comparison.pk}"' in form
    largest = comparison.summary["deviation_max"]
    assert f"{beyond} of 6,000 points beyond 0.5 mm, largest deviation {largest:.2f} mm" in form
    assert f'<option value="{machine_a.pk}" selected>' in form
    response = client.post(
        "/manufacturing/work-orders/new/",
        {
            "machine": machine_a.pk,
            "scan": comparison.pk,
            "title": title,
            "priority": 3,
            "submission": "scan-1",
        },
    )
    work_order = WorkOrder.objects.get(scan=comparison)
    assert response.status_code == 302 and work_order.component == housing
    assert Event.objects.get(action="work_order.file", resource_id=str(work_order.pk)).payload["scan"] == (
        comparison.pk
    )
    detail = client.get(f"/manufacturing/work-orders/{work_order.pk}/").content.decode()
    assert f'href="/manufacturing/scans/{comparison.pk}/" data-testid="from-scan"' in detail
    page = client.get(f"/manufacturing/scans/{comparison.pk}/").content.decode()
    assert f"Work order {work_order.pk}</a> (open) was filed from this scan" in page

    # the same through the API; a scan of another asset is refused with the reason
    filed = client.post(
        "/api/manufacturing/work-orders/",
        {"machine": machine_a.pk, "title": "Housing worn", "scan": comparison.pk},
        content_type="application/json",
    )
    assert filed.status_code == 201 and filed.json()["scan"] == comparison.pk, filed.content

    client.force_login(engineer_b)
    assert client.get(link).status_code == 404
    assert (
        client.post(
            "/api/manufacturing/work-orders/",
            {"machine": machine_a.pk, "title": "x", "scan": comparison.pk},
            content_type="application/json",
        ).status_code
        == 404
    )
    assert WorkOrder.objects.count() == 2


def test_a_work_order_names_only_a_registered_scan_of_its_own_asset(engineer_a, machine_a):
    from manufacturing.models import Machine
    from manufacturing.services import WorkOrderRefused, work_order_file

    scan, reference, _ = _plate_with_dent(2.0)
    pending = _upload(engineer_a, machine_a, scan, reference)
    with pytest.raises(WorkOrderRefused, match=f"scan {pending.pk} is not registered yet"):
        work_order_file(actor=engineer_a, machine=machine_a, title="Wear", scan=pending)
    other = Machine.objects.create(line=machine_a.line, tag="P-2", name="Second pump")
    registered = _registered(pending)
    with pytest.raises(WorkOrderRefused, match=f"scan {registered.pk} is of {machine_a.tag}, not of P-2"):
        work_order_file(actor=engineer_a, machine=other, title="Wear", scan=registered)
    assert not registered.work_orders.exists()


def test_a_scan_sent_again_is_kept_once_and_a_reference_is_stored_once(client, engineer_a, machine_a, media):
    """A phone that lost the answer to a long upload sends it again: the scan already kept is answered
    (200, Idempotent-Replayed), nothing stored, trailed or queued again. A later scan of the same part
    against the same reference (its CAD model) stores the new scan only."""
    scan, reference, _ = _plate_with_dent(2.0)
    client.force_login(engineer_a)

    def post(scan_points, tolerance="0.5"):
        return client.post(
            f"/api/manufacturing/assets/{machine_a.pk}/scans/",
            {
                "scan": SimpleUploadedFile("s.xyz", _xyz(scan_points)),
                "reference": SimpleUploadedFile("r.xyz", _xyz(reference)),
                "tolerance": tolerance,
            },
        )

    first = post(scan)
    assert first.status_code == 201, first.content
    files = {p for p in media.rglob("*") if p.is_file()}
    again = post(scan)
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and ScanComparison.objects.count() == 1
    assert Event.objects.filter(action="scan.upload").count() == 1
    assert {p for p in media.rglob("*") if p.is_file()} == files
    # another tolerance is another comparison; the same reference bytes are not stored again
    other = post(scan, tolerance="1.0")
    assert other.status_code == 201 and ScanComparison.objects.count() == 2
    later = ScanComparison.objects.get(pk=other.json()["id"])
    assert later.reference.name == ScanComparison.objects.get(pk=first.json()["id"]).reference.name
    assert len({p for p in media.rglob("*") if p.is_file()} - files) == 1  # the scan only
    assert Event.objects.get(action="scan.upload", resource_id=str(later.pk)).payload["reference_kept_before"]
    assert _registered(later).summary["beyond_tolerance"] > 0  # the shared reference reads as its own
    # a scan whose registration failed may be sent again
    ScanComparison.objects.filter(pk=first.json()["id"]).update(status="failed", error="worker stopped")
    assert post(scan).status_code == 201 and ScanComparison.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_same_scan_sent_twice_at_once_is_kept_once(engineer_a, machine_a):
    """A phone's retry racing its first send: the second waits for the first at the machine's row and
    finds it, so one scan is stored, trailed and registered (PostgreSQL; SQLite runs the two one after
    the other)."""
    scan, reference, _ = _plate_with_dent(1.0)
    results = at_once(lambda: _upload(engineer_a, machine_a, scan, reference, register=False))
    assert all(isinstance(result, ScanComparison) for result in results), results
    assert {result.pk for result in results} == {ScanComparison.objects.get().pk}
    assert sorted(result.replayed for result in results) == [False, True]
    assert Event.objects.filter(action="scan.upload").count() == 1


def _ago(days: float):
    """The time `days` ago: when a scan of one component over months was taken."""
    import datetime as dt

    from django.utils import timezone

    return timezone.now() - dt.timedelta(days=days)


def test_a_worn_components_scans_give_its_wear_rate_and_when_it_reaches_the_tolerance(
    client, engineer_a, machine_a
):
    """An impeller's dent 0.2, 0.3 and 0.4 mm deep at three scans 30 days apart (each registered by the
    real pipeline): about 0.1 mm a month, so the 0.5 mm tolerance is about 30 days off; the chart carries
    the line on to that day. A fourth scan at 0.6 mm is beyond it already."""
    import datetime as dt

    from django.utils import timezone

    from manufacturing.models import Component

    impeller = Component.objects.create(machine=machine_a, name="Impeller")
    scans = []
    for depth, days_ago in ((0.2, 60), (0.3, 30), (0.4, 0)):
        scan, reference, _ = _plate_with_dent(depth)
        scans.append(
            _compare(engineer_a, machine_a, scan, reference, component=impeller, scanned_at=_ago(days_ago))
        )
    assert [round(s.summary["deviation_max"], 2) for s in scans] == pytest.approx([0.2, 0.3, 0.4], abs=0.03)
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/scans/{scans[-1].pk}/").content.decode()
    said = page.split('data-testid="wear-rate"')[1].split("</p>")[0]
    rate = float(re.search(r"grows ([\d.]+) mm a month", said).group(1))
    assert 0.08 <= rate <= 0.12 and "3 scans over 60 days" in said
    reaches = dt.date.fromisoformat(re.search(r'data-testid="wear-reaches-on">([\d-]+)<', said).group(1))
    assert abs((reaches - timezone.localdate()).days - 30) <= 8
    chart = page.split('data-testid="wear-trend"')[1].split("</svg>")[0]
    assert 'data-mark="reaches tolerance"' in chart and 'polyline class="overlay"' in chart
    assert reaches.isoformat() in chart  # the x axis runs to that day
    wear = client.get(f"/api/manufacturing/scans/{scans[-1].pk}/").json()["wear"]  # the API says the same
    assert wear["rate_per_month"] == pytest.approx(rate, abs=0.0006) and wear["scans"] == 3
    assert wear["reaches_on"].startswith(reaches.isoformat()) and wear["beyond"] is False

    scan, reference, _ = _plate_with_dent(0.6)
    worst = _compare(engineer_a, machine_a, scan, reference, component=impeller)
    page = client.get(f"/manufacturing/scans/{worst.pk}/").content.decode()
    assert "beyond the 0.5 mm tolerance already" in page.split('data-testid="wear-rate"')[1].split("</p>")[0]
    assert 'data-mark="reaches tolerance"' not in page
    wear = client.get(f"/api/manufacturing/scans/{worst.pk}/").json()["wear"]
    assert wear["beyond"] is True and wear["reaches_on"] is None and wear["scans"] == 4


def test_scans_sent_in_one_sitting_give_no_wear_rate(client, engineer_a, machine_a):
    from manufacturing.models import Component

    impeller = Component.objects.create(machine=machine_a, name="Impeller")
    for depth in (0.2, 0.3):
        scan, reference, _ = _plate_with_dent(depth)
        latest = _compare(engineer_a, machine_a, scan, reference, component=impeller)
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/scans/{latest.pk}/").content.decode()
    assert 'data-testid="scan-history"' in page and 'data-testid="wear-rate"' not in page


def test_wear_near_or_beyond_tolerance_raises_one_alert_that_escalates(client, engineer_a, machine_a):
    """An impeller worn 0.25, 0.35 and 0.45 mm at scans 30 days apart: its wear line reaches 0.5 mm in
    about 15 days from today. Counted from today, the second scan's line (sent now, taken 30 days ago)
    already reaches it then: the warning is raised as it is registered (trailed in its transaction), and
    the third, which does not escalate, raises none. A fourth
    scan 0.6 mm deep is beyond it: a danger alert that closes the warning; a fifth raises nothing while
    it stands. A work order filed from it keeps the scan as its evidence."""
    from manufacturing.models import Alert, Component
    from manufacturing.services import work_order_file

    impeller = Component.objects.create(machine=machine_a, name="Impeller")
    scans = []
    for depth, days_ago in ((0.25, 60), (0.35, 30), (0.45, 0)):
        scan, reference, _ = _plate_with_dent(depth)
        scans.append(
            _compare(engineer_a, machine_a, scan, reference, component=impeller, scanned_at=_ago(days_ago))
        )
    warning = Alert.objects.get()
    assert (warning.kind, warning.severity, warning.scan) == ("wear", "warning", scans[1])
    assert (
        warning.message.startswith("Impeller: at its wear rate (")
        and "reaches the 0.5 mm tolerance in about" in warning.message
    )
    assert Event.objects.get(action="alert.raise", resource_id=str(warning.pk)).payload["kind"] == "wear"
    worse, reference, _ = _plate_with_dent(0.6)
    beyond = _compare(engineer_a, machine_a, worse, reference, component=impeller)
    danger = Alert.objects.get(status="open")
    assert (danger.severity, danger.scan) == ("danger", beyond) and danger.message.startswith(
        f"Impeller: {beyond.summary['beyond_tolerance']:,} points beyond 0.5 mm"
    )
    assert Alert.objects.get(pk=warning.pk).status == "closed"
    _compare(engineer_a, machine_a, *_plate_with_dent(0.65)[:2], component=impeller)
    assert Alert.objects.count() == 2
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    alerts = page.split('data-testid="alerts"')[1].split("</ul>")[0]
    assert f'href="/manufacturing/scans/{beyond.pk}/">scan {beyond.pk}</a>' in alerts
    work_order = work_order_file(
        actor=engineer_a, machine=machine_a, title="Replace the impeller", alert=danger
    )
    assert work_order.scan == beyond and work_order.component == impeller
    # a scan of no component has no history to follow: no alert, whatever it shows
    _compare(engineer_a, machine_a, *_plate_with_dent(2.0)[:2])
    assert Alert.objects.count() == 2


def test_an_archives_older_scans_sent_later_fall_into_place_by_the_time_scanned(
    client, engineer_a, machine_a
):
    """A scanner's archive sent after today's scan: the two older scans, given the dates they were taken
    (on the asset page's form and through the API), fall before it in the component's history, and the
    wear rate counts the days between the scans' own dates (0.1 mm a month), not between the uploads
    (minutes). The warning they lead to names today's scan, the component's condition now; the older
    scans' pages say when each was scanned and sent."""
    from django.utils import timezone

    from manufacturing.models import Alert, Component

    impeller = Component.objects.create(machine=machine_a, name="Impeller")
    today = _compare(engineer_a, machine_a, *_plate_with_dent(0.45)[:2], component=impeller)
    assert not Alert.objects.exists()  # one scan: no rate yet
    client.force_login(engineer_a)
    scan, reference, _ = _plate_with_dent(0.25)
    sixty_days_ago = timezone.localtime(_ago(60))
    response = client.post(
        f"/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("impeller-2026-a.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("impeller-model.xyz", _xyz(reference)),
            "tolerance": "0.5",
            "unit": "mm",
            "component": str(impeller.pk),
            "scanned_at": sixty_days_ago.strftime("%Y-%m-%dT%H:%M"),  # the form's datetime-local
        },
    )
    oldest = _registered(ScanComparison.objects.get(pk=response["Location"].rstrip("/").split("/")[-1]))
    assert oldest.scanned_at == sixty_days_ago.replace(second=0, microsecond=0)
    scan, reference, _ = _plate_with_dent(0.35)
    sent = client.post(
        f"/api/manufacturing/assets/{machine_a.pk}/scans/",
        {
            "scan": SimpleUploadedFile("impeller-2026-b.xyz", _xyz(scan)),
            "reference": SimpleUploadedFile("impeller-model.xyz", _xyz(reference)),
            "tolerance": "0.5",
            "component": str(impeller.pk),
            "scanned_at": _ago(30).isoformat(),
        },
    )
    assert sent.status_code == 201, sent.content
    middle = _registered(ScanComparison.objects.get(pk=sent.json()["id"]))
    assert selectors.scan_history(today) == [oldest, middle, today]
    _, wear, _ = selectors.scan_wear(selectors.scan_history(today), today)
    assert 0.08 <= wear.rate_per_month <= 0.12 and round(wear.span_days) == 60
    warning = Alert.objects.get()  # the line through the three reaches 0.5 mm in about 15 days
    assert (warning.kind, warning.severity, warning.scan) == ("wear", "warning", today)
    assert "reaches the 0.5 mm tolerance in about 1" in warning.message  # 15 days or so, from today
    body = client.get(f"/api/manufacturing/scans/{middle.pk}/").json()
    assert body["scanned_at"].startswith(_ago(30).date().isoformat()) and body["wear"]["scans"] == 3
    page = client.get(f"/manufacturing/scans/{middle.pk}/").content.decode()
    assert f"scanned {timezone.localtime(middle.scanned_at):%Y-%m-%d %H:%M}, sent " in page
    history = page.split('data-testid="scan-history"')[1].split("</table>")[0]
    dates = re.findall(r'<td class="date">([\d-]+)</td>', history)
    assert dates == [f"{timezone.localtime(s.scanned_at):%Y-%m-%d}" for s in (oldest, middle, today)]
    assert dates == sorted(dates) and "dated by when each was scanned" in page
    assert (
        Event.objects.get(action="scan.upload", resource_id=str(middle.pk))
        .payload["scanned_at"]
        .startswith(middle.scanned_at.isoformat()[:16])
    )


def test_a_scan_dated_in_the_future_before_2000_or_unreadable_is_refused(client, engineer_a, machine_a):
    import datetime as dt

    scan, reference, _ = _plate_with_dent(1.0)
    with pytest.raises(ScanRefused, match="is in the future: give the time the scan was taken"):
        _upload(engineer_a, machine_a, scan, reference, scanned_at=_ago(-2))
    with pytest.raises(ScanRefused, match="is before 2000"):
        _upload(engineer_a, machine_a, scan, reference, scanned_at=dt.datetime(1999, 12, 1, 8, 0))
    client.force_login(engineer_a)

    def send(where: str, when: str):
        return client.post(
            where,
            {
                "scan": SimpleUploadedFile("s.xyz", _xyz(scan)),
                "reference": SimpleUploadedFile("r.xyz", _xyz(reference)),
                "tolerance": "0.5",
                "scanned_at": when,
            },
            follow=where.startswith("/manufacturing/"),
        )

    api = send(f"/api/manufacturing/assets/{machine_a.pk}/scans/", _ago(-2).isoformat())
    assert api.status_code == 400 and "is in the future" in api.json()["detail"], api.content
    api = send(f"/api/manufacturing/assets/{machine_a.pk}/scans/", "last tuesday")
    assert api.status_code == 400 and "scanned_at" in api.json()
    page = send(f"/manufacturing/assets/{machine_a.pk}/scans/", "last tuesday").content.decode()
    assert "the time scanned &#x27;last tuesday&#x27; is not a date and time" in page
    assert not ScanComparison.objects.exists() and not Event.objects.filter(action="scan.upload").exists()


def test_a_wear_line_that_crossed_the_tolerance_since_an_old_latest_scan_asks_for_a_new_scan(
    client, engineer_a, machine_a
):
    """The latest scan is 100 days old and the line through it reached the tolerance 75 days ago: the
    page and the alert count from today and ask for a new scan, not "in about -75 days"."""
    import datetime as dt

    from django.utils import timezone

    from manufacturing.models import Alert, Component

    impeller = Component.objects.create(machine=machine_a, name="Impeller")
    for depth, days_ago in ((0.2, 150), (0.4, 100)):
        latest = _compare(
            engineer_a, machine_a, *_plate_with_dent(depth)[:2], component=impeller, scanned_at=_ago(days_ago)
        )
    alert = Alert.objects.get()
    assert (alert.severity, alert.scan) == ("warning", latest)
    scanned = f"(scanned {timezone.localtime(latest.scanned_at):%Y-%m-%d})"
    assert f"has reached the 0.5 mm tolerance since scan {latest.pk} {scanned}" in alert.message
    assert alert.message.endswith("scan it again")
    client.force_login(engineer_a)
    said = (
        client.get(f"/manufacturing/scans/{latest.pk}/").content.decode().split('data-testid="wear-rate"')[1]
    )
    reached = re.search(r'by now, around <strong data-testid="wear-reaches-on">([\d-]+)<', said).group(1)
    assert abs((timezone.localdate() - dt.date.fromisoformat(reached)).days - 75) <= 8
    assert "if the rate held since the latest scan: scan it again" in said.split("</p>")[0]
