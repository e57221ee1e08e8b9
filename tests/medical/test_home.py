"""Home-page panels of the medical app: only studies the user may open, review work for reviewers."""

from __future__ import annotations

import pytest

from medical.models import Study

pytestmark = pytest.mark.django_db


def _panels(client, user) -> dict[str, list[str]]:
    client.force_login(user)
    response = client.get("/", follow=True)
    assert response.status_code == 200
    return {panel["key"]: [row.url for row in panel["rows"]] for panel in response.context["panels"]}


def test_recent_studies_are_the_users_own_departments(client, ingest, clinician, cardiologist, make_user):
    ct = Study.objects.get(pk=ingest("CT_small.dcm").study_id)
    mr = Study.objects.get(pk=ingest("MR_small.dcm", department="cardiology").study_id)
    assert _panels(client, clinician)["medical-recent"] == [f"/medical/studies/{ct.pk}/"]
    assert _panels(client, cardiologist)["medical-recent"] == [f"/medical/studies/{mr.pk}/"]
    # Roles without the medical portal get no medical panel at all, not even an empty one.
    assert "medical-recent" not in _panels(client, make_user("maintenance_engineer", site="site-a"))


def test_studies_awaiting_review_are_shown_to_those_who_may_review(client, ingest, radiologist, clinician):
    flagged = Study.objects.get(pk=ingest("examples_ybr_color.dcm").study_id)
    assert flagged.burned_in_review == Study.BurnedInReview.PENDING
    assert _panels(client, radiologist)["medical-review"] == [f"/medical/studies/{flagged.pk}/"]
    assert "medical-review" not in _panels(client, clinician)  # may see the study, may not review it
    client.force_login(radiologist)
    client.post(
        f"/api/medical/studies/{flagged.pk}/burned-in-review/", {"decision": "cleared"}, "application/json"
    )
    assert "medical-review" not in _panels(client, radiologist)


def test_an_empty_department_is_told_how_studies_arrive(client, clinician):
    client.force_login(clinician)
    page = client.get("/", follow=True)
    assert b"No study yet: upload one" in page.content
