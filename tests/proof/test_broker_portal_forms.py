"""Portal forms that queue work for a worker refuse it while the broker is unreachable: a 503 page
with Retry-After and a message, and nothing stored (ops.broker.broker_required_for_post), as the APIs
answer 503; a user who may not do the work is refused (403/404) before the broker is asked. The broker here is the configured filesystem transport with its queue folder missing:
check_broker's real answer for a broker that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.roles import Role
from audit.models import Event
from inference.models import LanguageModel
from inference.tuning.models import FineTuneJob
from manufacturing.models import Line, Machine, Site, VibrationRecording
from medical.models import Instance, Study
from tests.medical.dicom_files import file_bytes

pytestmark = pytest.mark.django_db
CSV = b"0.1\n0.3\n-0.2\n-0.1\n" * 600


@pytest.fixture
def machine(db):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    return Machine.objects.create(line=Line.objects.create(site=site, name="Line 1"), tag="P-9", name="Pump")


def _counts():
    return (
        Study.objects.count(),
        Instance.objects.count(),
        VibrationRecording.objects.count(),
        FineTuneJob.objects.count(),
        Event.objects.exclude(action__startswith="auth.").count(),  # sign-ins are trailed, not work
    )


def _refused(response) -> None:
    body = response.content.decode()
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert "The task queue is unreachable: nothing was stored" in body and "is missing" in body


def test_the_forms_refuse_while_the_broker_is_down_and_store_nothing(client, make_user, machine, broker_down):
    radiologist = make_user(Role.RADIOLOGIST, department="radiology")
    engineer = make_user(Role.MAINTENANCE_ENGINEER, site="site-a")
    ml_engineer = make_user(Role.ML_ENGINEER, department="radiology")
    before = _counts()

    client.force_login(radiologist)
    assert client.get("/medical/upload/").status_code == 200  # the form itself is served
    dicom = SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"), content_type="application/dicom")
    _refused(client.post("/medical/upload/", {"files": [dicom]}))

    client.force_login(engineer)
    upload = SimpleUploadedFile("de.csv", CSV, content_type="text/csv")
    _refused(
        client.post(
            f"/manufacturing/assets/{machine.pk}/recordings/",
            {"file": upload, "sample_rate": "12000", "rpm": "1797"},
        )
    )

    client.force_login(ml_engineer)
    _refused(client.post("/tuning/new/", {"name": "x"}))
    assert _counts() == before


def test_a_user_who_may_not_do_the_work_is_refused_before_the_broker_is_asked(
    client, make_user, machine, broker_down, tmp_path
):
    """Issue 11: the access check comes first. With the broker down, a user without the right gets
    403 (404 for an asset of another site, as everywhere in the portal), the denial on the trail,
    nothing else stored; a 503 would tell them to retry what they will never be allowed to do."""
    owner = make_user(Role.ML_ENGINEER, department="radiology")
    model = LanguageModel.objects.create(name="denied-base", backend="local", path=str(tmp_path))
    job = FineTuneJob.objects.create(
        base_model=model,
        data_adapter="tests.work_orders",
        adapter_name="denied",
        status=FineTuneJob.Status.FAILED,
        created_by=owner,
        finished_at=timezone.now(),
    )
    before, job_before = _counts(), _job_state(job)
    denied = Event.objects.filter(outcome="denied").count()

    client.force_login(make_user(Role.ML_ENGINEER, department="radiology"))  # may not upload studies
    dicom = SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"), content_type="application/dicom")
    assert client.post("/medical/upload/", {"files": [dicom]}).status_code == 403

    client.force_login(make_user(Role.MAINTENANCE_ENGINEER, site="site-b"))  # another site's pump
    upload = SimpleUploadedFile("de.csv", CSV, content_type="text/csv")
    url = f"/manufacturing/assets/{machine.pk}/recordings/"
    assert client.post(url, {"file": upload, "sample_rate": "12000", "rpm": "1797"}).status_code == 404

    client.force_login(make_user(Role.RADIOLOGIST, department="radiology"))  # fine-tuning is not theirs
    assert client.post("/tuning/new/", {"name": "x"}).status_code == 403
    assert client.post(f"/tuning/{job.pk}/retry/").status_code == 403

    assert _job_state(job) == job_before
    studies, instances, recordings, jobs, events = _counts()
    assert (studies, instances, recordings, jobs) == before[:4]
    # the only events added are the four denials (sign-ins aside)
    assert events - before[4] == Event.objects.filter(outcome="denied").count() - denied == 4


def test_with_the_broker_up_the_same_forms_store_the_work(client, make_user, machine):
    client.force_login(make_user(Role.RADIOLOGIST, department="radiology"))
    dicom = SimpleUploadedFile("ct.dcm", file_bytes("CT_small.dcm"), content_type="application/dicom")
    assert client.post("/medical/upload/", {"files": [dicom]}).status_code == 200
    assert Instance.objects.count() == 1

    client.force_login(make_user(Role.MAINTENANCE_ENGINEER, site="site-a"))
    upload = SimpleUploadedFile("de.csv", CSV, content_type="text/csv")
    response = client.post(
        f"/manufacturing/assets/{machine.pk}/recordings/",
        {"file": upload, "sample_rate": "12000", "rpm": "1797"},
    )
    assert response.status_code == 302 and VibrationRecording.objects.count() == 1


def _job_state(job) -> dict:
    return FineTuneJob.objects.filter(pk=job.pk).values().get()


def test_a_job_retry_waits_for_the_broker_and_changes_nothing_until_it_is_back(
    client, make_user, broker_down, settings, tmp_path
):
    owner = make_user(Role.ML_ENGINEER, department="radiology")
    model = LanguageModel.objects.create(name="retry-base", backend="local", path=str(tmp_path))
    job = FineTuneJob.objects.create(
        base_model=model,
        data_adapter="tests.work_orders",
        adapter_name="retried",
        status=FineTuneJob.Status.FAILED,
        created_by=owner,
        attempts=3,
        error="The worker was lost three times.",
        finished_at=timezone.now(),
    )
    before = _job_state(job)
    client.force_login(owner)
    events = Event.objects.count()  # after the sign-in (trailed): the refused retry adds nothing

    _refused(client.post(f"/tuning/{job.pk}/retry/"))
    assert _job_state(job) == before and Event.objects.count() == events

    # the broker is back (its folders exist again): the same request queues the job again
    for key in ("data_folder_in", "processed_folder"):
        Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]).mkdir(parents=True)
    response = client.post(f"/tuning/{job.pk}/retry/")
    assert response.status_code == 302 and response["Location"] == f"/tuning/{job.pk}/"
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.QUEUED and job.attempts == 0 and "Retried by" in job.log
    assert Event.objects.filter(action="fine_tune_job.retried").exists()
