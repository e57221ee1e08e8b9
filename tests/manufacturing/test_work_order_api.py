"""The work-order API beyond filing: planning, attachments, the assistant; two sites, nothing changed on denial."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from manufacturing.models import FailureSuggestion, WorkOrder, WorkOrderAttachment
from manufacturing.services import work_order_file

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def work_order(engineer_a, machine_a, failure_codes):
    WorkOrder.objects.create(
        site="site-a",
        machine=machine_a,
        title="Pump bearing vibration",
        status="complete",
        failure_mode="VIB",
    )
    return work_order_file(actor=engineer_a, machine=machine_a, title="Bearing vibration on pump")


def _state():
    return (
        list(WorkOrder.objects.values_list("priority", "team", "labour_hours", "assignee")),
        FailureSuggestion.objects.count(),
        list(FailureSuggestion.objects.values_list("verdict", flat=True)),
        WorkOrderAttachment.objects.count(),
    )


def test_same_site_plans_attaches_asks_and_reviews(client, engineer_a, work_order, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(engineer_a)
    base = f"/api/manufacturing/work-orders/{work_order.pk}"
    bad = client.post(f"{base}/plan/", {"labour_hours": -1}, content_type="application/json")
    assert bad.status_code == 400 and "labour_hours" in bad.json()
    planned = client.post(f"{base}/plan/", {"priority": 1, "team": "mech"}, content_type="application/json")
    assert planned.status_code == 200 and planned.json()["priority"] == 1
    attached = client.post(f"{base}/attachments/", {"file": SimpleUploadedFile("a.png", PNG)})
    assert attached.status_code == 201 and attached.json()["content_type"] == "image/png"
    asked = client.post(
        f"{base}/suggest/", {"problem": "pump bearing vibration"}, content_type="application/json"
    )
    assert asked.status_code == 201 and asked.json()["suggested_code"] == "VIB"
    pk = asked.json()["id"]
    review = f"/api/manufacturing/suggestions/{pk}/review/"
    unknown = client.post(review, {"code": "NOPE"}, content_type="application/json")
    assert unknown.status_code == 400 and "not a known failure mode" in unknown.json()["detail"]
    reviewed = client.post(review, {"code": "VIB"}, content_type="application/json")
    assert reviewed.status_code == 200 and reviewed.json()["verdict"] == "accepted"


def test_other_site_is_refused_everything_and_nothing_changes(
    client, engineer_a, engineer_b, work_order, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(engineer_a)
    base = f"/api/manufacturing/work-orders/{work_order.pk}"
    pk = client.post(f"{base}/suggest/", {"problem": "vibration"}, content_type="application/json").json()[
        "id"
    ]
    before = _state()
    client.force_login(engineer_b)
    responses = [
        client.post(f"{base}/plan/", {"priority": 1}, content_type="application/json"),
        client.post(f"{base}/attachments/", {"file": SimpleUploadedFile("a.png", PNG)}),
        client.post(f"{base}/suggest/", {"problem": "x"}, content_type="application/json"),
        client.post(
            f"/api/manufacturing/suggestions/{pk}/review/", {"code": "VIB"}, content_type="application/json"
        ),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert _state() == before
    client.logout()
    assert client.post(f"{base}/plan/", {"priority": 1}, content_type="application/json").status_code == 401
