"""The APIs that queue work check access before the broker (issue 11), as the portal's forms do
(tests/proof/test_broker_portal_forms.py): with the broker down, an API token of a user who may not
do the work gets 403 (404 for another site's asset), the denial trailed and nothing stored; a user
who may gets 503 with Retry-After, as before. The broker here is the configured filesystem
transport with its queue folder missing: check_broker's real answer for a broker that is not there."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.roles import Role
from audit.models import Event
from inference.models import LanguageModel
from inference.tuning.models import FineTuneJob
from manufacturing.models import Line, Machine, Site, VibrationRecording
from medical.models import Instance, Study
from tests.factories import api_key
from tests.medical.dicom_files import file_bytes
from tests.tuning.api_support import JOBS, job_body
from tests.tuning.conftest import fast_password_hashing, work_orders  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def _token(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_key(user)}"}


def _counts():
    return (
        Study.objects.count(),
        Instance.objects.count(),
        VibrationRecording.objects.count(),
        FineTuneJob.objects.count(),
        Event.objects.exclude(outcome="denied").count(),
    )


def _upload(client, user):
    dicom = SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"), content_type="application/dicom")
    return client.post("/api/medical/studies/upload/", {"files": [dicom]}, **_token(user))


def _record(client, user, machine):
    buffer = io.BytesIO()
    np.save(buffer, 0.2 * np.sin(2 * np.pi * 30 * np.arange(12_000) / 12_000))
    upload = SimpleUploadedFile("pump.npy", buffer.getvalue(), content_type="application/octet-stream")
    body = {"machine": machine.pk, "sample_rate": 12000, "rpm": 1797, "units": "g", "file": upload}
    return client.post("/api/manufacturing/recordings/", body, **_token(user))


def _create(client, user):
    body = json.dumps(job_body(base_model="api-base", adapter_name="api-denied"))
    return client.post(JOBS, body, content_type="application/json", **_token(user))


def _retry(client, user, job):
    return client.post(f"{JOBS}{job.pk}/retry/", **_token(user))


def _try_later(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "10" and "task queue is unreachable" in response.json()["detail"]


def test_the_apis_refuse_a_user_without_the_right_before_telling_anyone_to_retry(
    client,
    make_user,
    broker_down,
    work_orders,  # noqa: F811  (the imported fixture)
    tmp_path,
):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Line 1"), tag="P-7", name="Pump"
    )
    model = LanguageModel.objects.create(name="api-base", backend="local", path=str(tmp_path))
    ml_engineer = make_user(Role.ML_ENGINEER, department="radiology")
    job = FineTuneJob.objects.create(
        base_model=model,
        data_adapter="tests.work_orders",
        data_adapter_resource=work_orders.resource,
        adapter_name="api-retry",
        status=FineTuneJob.Status.FAILED,
        created_by=ml_engineer,
        finished_at=timezone.now(),
    )
    job_row = FineTuneJob.objects.filter(pk=job.pk).values().get()
    before, denied = _counts(), Event.objects.filter(outcome="denied").count()

    # Without the right: refused, each denial on the trail, never a 503 inviting a retry.
    assert _upload(client, ml_engineer).status_code == 403  # may not upload studies
    other_site = make_user(Role.MAINTENANCE_ENGINEER, site="site-b")
    assert _record(client, other_site, machine).status_code == 404  # another site's pump
    radiologist = make_user(Role.RADIOLOGIST, department="radiology")
    assert _create(client, radiologist).status_code == 403  # fine-tuning is not theirs
    assert _retry(client, radiologist, job).status_code == 403
    assert Event.objects.filter(outcome="denied").count() - denied == 4
    assert _counts() == before

    # With the right: 503 and Retry-After as before, nothing stored, nothing trailed.
    _try_later(_upload(client, radiologist))
    _try_later(_record(client, make_user(Role.MAINTENANCE_ENGINEER, site="site-a"), machine))
    _try_later(_create(client, ml_engineer))
    _try_later(_retry(client, ml_engineer, job))
    assert Event.objects.filter(outcome="denied").count() - denied == 4
    assert _counts() == before
    assert FineTuneJob.objects.filter(pk=job.pk).values().get() == job_row
