"""Break-glass across departments: marked on the trail, and the owning department's radiologists see it
on their home page (nobody else does)."""

from __future__ import annotations

import pytest

from audit.models import Event
from medical.models import Instance, Study

pytestmark = pytest.mark.django_db
REASON = "Patient transferred to cardiology ICU, identity unclear"


@pytest.fixture
def radiology_study(ingest) -> Study:
    return Study.objects.get(pk=ingest("CT_small.dcm").study_id)


def _break_glass(client, user, study):
    instance = Instance.objects.get(series__study=study)
    client.force_login(user)
    response = client.post(
        f"/api/medical/instances/{instance.pk}/break-glass/", {"reason": REASON}, "application/json"
    )
    assert response.status_code == 200
    return Event.objects.filter(action="study.break_glass").latest("id")


def test_cross_department_break_glass_is_marked_and_shown_to_the_owning_radiologists(
    client, make_user, radiology_study
):
    elsewhere = make_user("radiologist", department="cardiology", certifications=["board_certified"])
    event = _break_glass(client, elsewhere, radiology_study)
    assert event.payload["cross_department"] is True
    assert REASON not in event.payload_json  # sealed (audit.sealing); the notice below opens it
    assert (event.payload["owning_department"], event.payload["user_department"]) == (
        "radiology",
        "cardiology",
    )

    client.force_login(make_user("radiologist", department="radiology"))
    home = client.get("/", follow=True).content.decode()
    assert "Break-glass access to your department" in home and elsewhere.username in home and REASON in home

    for bystander in (
        make_user("radiologist", department="cardiology"),
        make_user("clinician", department="radiology"),
    ):
        client.force_login(bystander)
        assert elsewhere.username not in client.get("/", follow=True).content.decode()


def test_break_glass_within_the_department_is_not_a_notice(
    client, make_user, certified_radiologist, radiology_study
):
    event = _break_glass(client, certified_radiologist, radiology_study)
    assert event.payload["cross_department"] is False
    client.force_login(make_user("radiologist", department="radiology"))
    assert "Break-glass access to your department" not in client.get("/", follow=True).content.decode()
