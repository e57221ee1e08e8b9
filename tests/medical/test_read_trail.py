"""Successful reads of patient data are on the trail (HIPAA 164.312(b)): study page, preview, questions
list, study API; the reader, the study and the rule that allowed it."""

from __future__ import annotations

import pytest

from audit.models import Event
from medical.models import Instance, Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(ingest) -> Study:
    return Study.objects.get(pk=ingest("CT_small.dcm").study_id)


@pytest.mark.parametrize(
    "url",
    [
        "/medical/studies/{study}/",
        "/medical/instances/{instance}/preview.png",
        "/api/medical/studies/{study}/",
        "/api/medical/studies/{study}/questions/",
    ],
)
def test_allowed_reads_are_trailed(client, make_user, study, url):
    reader = make_user("radiologist", department="radiology")
    instance = Instance.objects.get(series__study=study)
    if "preview" in url:
        from medical.services.previews import instance_preview_render

        instance_preview_render(instance_id=instance.pk)
    client.force_login(reader)
    before = Event.objects.filter(action="study.view", outcome="allowed").count()
    response = client.get(url.format(study=study.pk, instance=instance.pk))
    assert response.status_code in (200, 202), response.status_code
    reads = Event.objects.filter(action="study.view", outcome="allowed").order_by("id")
    assert reads.count() == before + 1
    read = reads.last()
    assert (read.actor_label, read.resource_id) == (reader.username, str(study.pk))
    assert read.policy == "radiologist_department_studies"
