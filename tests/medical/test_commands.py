"""bench_dicom, the demo data step, navigation and the OpenAPI schema."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from audit.models import Event
from inference.models import LanguageModel
from medical.demo import DEMO_STUDIES, load_demo_studies
from medical.models import Instance, Study


@pytest.mark.django_db
def test_bench_dicom_measures_ingest_and_answers_and_leaves_nothing_behind(capsys):
    # A key the vault creates on first use stays (its file is on disk), so its trail event stays too.
    events = Event.objects.exclude(action="key.create")
    before = events.count()
    call_command("bench_dicom", "--json", "--questions", "5")
    result = json.loads(capsys.readouterr().out)
    assert (
        result["files"] > 150 and result["stored"] > 100 and result["rejected"] > 10 and result["failed"] == 0
    )
    assert result["ingest_instances_per_s"] > 0 and result["deid_instances_per_s"] > 0
    assert result["qa_questions"] == 5 and result["qa_latency_ms_p95"] >= result["qa_latency_ms_p50"] > 0
    assert not Study.objects.exists() and events.count() == before


@pytest.mark.django_db
def test_the_demo_step_loads_real_studies_once_and_registers_no_model():
    messages: list[str] = []
    load_demo_studies(messages.append)
    departments = set(Study.objects.values_list("department", flat=True))
    assert departments == {department for department, _ in DEMO_STUDIES}
    instances = Instance.objects.count()
    assert instances == len(DEMO_STUDIES)
    assert all(instance.preview_status != "pending" for instance in Instance.objects.all())

    again: list[str] = []
    load_demo_studies(again.append)
    assert Instance.objects.count() == instances
    assert sum("duplicate" in message for message in again) == len(DEMO_STUDIES)
    # Answers are phrased by the QA default model (build_demo_models sets SmolLM2), not by a
    # model the medical demo registers.
    assert not LanguageModel.objects.exists()


@pytest.mark.django_db
def test_studies_appear_in_the_navigation_of_clinical_roles_only(client, clinician, make_user):
    client.force_login(clinician)
    assert b'data-nav="studies"' in client.get("/medical/").content
    client.force_login(make_user("compliance_officer", department="aml-eu"))
    home = client.get("/", follow=True)
    assert b'data-nav="studies"' not in home.content


@pytest.mark.django_db
def test_the_medical_api_is_in_the_openapi_schema(client, clinician):
    client.force_login(clinician)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/medical/studies/",
        "/api/medical/studies/upload/",
        "/api/medical/studies/{id}/",
        "/api/medical/studies/{id}/share/",
        "/api/medical/studies/{id}/ask/",
        "/api/medical/instances/{id}/break-glass/",
    ):
        assert path in paths, path
    ask = paths["/api/medical/studies/{id}/ask/"]["post"]
    assert "attributes" in json.dumps(schema["components"]["schemas"]["AnswerOutput"])
    assert ask["operationId"] == "medical_studies_ask"
