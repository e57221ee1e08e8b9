"""Fine-tuning the medical model on de-identified studies: who may, and what the job sees."""

from __future__ import annotations

import json

import pytest

from audit.models import Event
from inference.tuning.models import FineTuneJob
from medical.models import Instance

pytestmark = pytest.mark.django_db

JOBS = "/api/tuning/jobs/"


def _body(**overrides) -> dict:
    return {
        "base_model": "medical_qa",
        "data_adapter": "medical.dicom_qa",
        "adapter_name": "dicom-qa",
        "lora_r": 4,
        "lora_alpha": 8,
        "epochs": 1,
        "batch_size": 4,
        "max_seq_len": 128,
        **overrides,
    }


@pytest.fixture
def studies(ingest):
    """A CT study of radiology, an MR study of cardiology, and a flagged ultrasound still under review."""
    for name, department in [
        ("CT_small.dcm", "radiology"),
        ("MR_small.dcm", "cardiology"),
        ("examples_ybr_color.dcm", "radiology"),
    ]:
        ingest(name, department=department)
    return Instance.objects.select_related("series__study")


@pytest.fixture
def private_tuning_dirs(settings, tmp_path):
    settings.TUNING_OUTPUT_ROOT = tmp_path / "adapters"
    settings.TUNING_DATA_ROOT = tmp_path / "tuning"


def test_an_ml_engineer_of_the_hospital_fine_tunes_on_every_departments_deidentified_studies(
    client, make_user, medical_qa_model, studies, private_tuning_dirs
):
    engineer = make_user("ml_engineer")
    client.force_login(engineer)
    # The engineer cannot open a study ...
    ct = studies.get(series__study__department="radiology", series__modality="CT")
    assert client.get(f"/api/medical/studies/{ct.series.study_id}/").status_code == 404
    # ... but may use the de-identified copies as training data.
    response = client.post(JOBS, json.dumps(_body()), content_type="application/json")
    assert response.status_code == 201, response.content
    job = FineTuneJob.objects.get()
    assert job.dataset_train_examples > 0 and job.dataset_eval_examples > 0
    sources = {source.split(":")[1] for source in job.dataset_source_ids}
    mr = studies.get(series__study__department="cardiology")
    flagged = studies.get(series__study__burned_in_review="pending")
    assert sources == {str(ct.pk), str(mr.pk)}, "every department's cleared studies, not the flagged one"
    assert str(flagged.pk) not in sources
    assert f"{engineer.username} may train on" in job.dataset_query and "2 instances" in job.dataset_query
    assert Event.objects.filter(action="fine_tune_job.created", resource_id=str(job.pk)).exists()


@pytest.mark.parametrize("role", ["clinician", "radiologist"])
def test_clinical_staff_may_not_fine_tune_the_medical_model(
    client, make_user, medical_qa_model, studies, private_tuning_dirs, role
):
    user = make_user(role, department="radiology", certifications=["board_certified"])
    client.force_login(user)
    response = client.post(JOBS, json.dumps(_body()), content_type="application/json")
    assert response.status_code == 403
    assert not FineTuneJob.objects.exists()
    assert Event.objects.filter(
        action="model.fine_tune", outcome="denied", actor_label=user.get_username()
    ).exists()
