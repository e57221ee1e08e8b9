"""The ingest pipeline on every file shipped in the pydicom wheel, through the service and the API."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pydicom
import pytest
from django.test import override_settings

from audit.models import Event
from medical import storage
from medical.dicom import DeidOptions, DicomRejected, load_basic_profile, pseudonymize_uid, read_dicom
from medical.keys import dicom_uid_key
from medical.models import Instance, Patient, QuarantinedFile, Series, Study
from tests.medical.dicom_files import all_test_files, file_bytes
from tests.medical.test_dicom_validation import BROKEN

ALL_FILES = all_test_files()


def _readable(relative: str) -> bool:
    try:
        read_dicom(file_bytes(relative), filename=relative)
    except DicomRejected:
        return False
    return True


def _row_counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Patient, Study, Series, Instance, QuarantinedFile))


@pytest.mark.django_db
@pytest.mark.parametrize("relative", ALL_FILES)
def test_every_shipped_file_is_stored_or_quarantined_whole(relative, ingest):
    before = _row_counts()
    outcome = ingest(relative)
    after = _row_counts()
    if _readable(relative):
        assert outcome.status == "stored", outcome.reason
        instance = Instance.objects.select_related("series__study").get(pk=outcome.instance_id)
        assert after[0] - before[0] in (0, 1)  # the pseudonymous patient may be known already
        assert after[1:] == (before[1] + 1, before[2] + 1, before[3] + 1, before[4])
        stored = storage.read_media(instance.deidentified_file)
        assert hashlib.sha256(stored).hexdigest() == instance.deidentified_sha256
        assert pydicom.dcmread(io.BytesIO(stored)).PatientIdentityRemoved == "YES"
        assert Event.objects.filter(action="study.ingest", resource_id=str(instance.series.study_id)).exists()
    else:
        assert outcome.status == "rejected" and outcome.reason
        assert after[:4] == before[:4], "a refused file left rows behind"
        quarantined = QuarantinedFile.objects.get(pk=outcome.quarantine_id)
        assert quarantined.reason == outcome.reason
        assert quarantined.sha256 == hashlib.sha256(file_bytes(relative)).hexdigest()
        event = Event.objects.get(
            action="study.ingest", resource_type="quarantine", resource_id=str(quarantined.pk)
        )
        assert event.outcome == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize(("relative", "reason"), sorted(BROKEN.items()))
def test_deliberately_broken_files_are_quarantined_with_their_reason(relative, reason, ingest):
    outcome = ingest(relative)
    assert outcome.status == "rejected"
    assert reason in QuarantinedFile.objects.get(pk=outcome.quarantine_id).reason


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, file_bytes(name))
    return buffer.getvalue()


@pytest.mark.django_db
def test_every_shipped_file_through_the_api_in_one_archive(client, radiologist):
    client.force_login(radiologist)
    archive = _zip(ALL_FILES)
    response = client.post("/api/medical/studies/upload/", {"files": [_named(archive, "pydicom.zip")]})
    assert response.status_code == 200
    report = response.json()
    assert [entry["filename"] for entry in report["files"]] == [f"pydicom.zip/{name}" for name in ALL_FILES]
    by_name = {entry["filename"].removeprefix("pydicom.zip/"): entry for entry in report["files"]}
    for name in ALL_FILES:
        noise = name.endswith(".txt") or name.endswith("/README") or name.endswith("/DICOMDIR")
        expected = {"skipped"} if noise else {"stored", "duplicate"} if _readable(name) else {"rejected"}
        assert by_name[name]["status"] in expected, (name, by_name[name])
        assert by_name[name]["status"] != "rejected" or by_name[name]["reason"]
    stored = [entry for entry in report["files"] if entry["status"] == "stored"]
    assert Instance.objects.count() == len(stored) == report["counts"]["stored"]
    assert set(Study.objects.values_list("department", flat=True)) == {"radiology"}
    assert QuarantinedFile.objects.count() == report["counts"]["rejected"]


@pytest.mark.django_db
def test_api_upload_of_several_files_reports_each(client, radiologist):
    client.force_login(radiologist)
    files = [
        _named(file_bytes("CT_small.dcm"), "CT_small.dcm"),
        _named(file_bytes("MR_small.dcm"), "MR_small.dcm"),
        _named(file_bytes("MR_truncated.dcm"), "MR_truncated.dcm"),
        _named(b"not dicom at all", "notes.txt"),
    ]
    response = client.post("/api/medical/studies/upload/", {"files": files})
    assert response.status_code == 200
    statuses = {entry["filename"]: entry["status"] for entry in response.json()["files"]}
    assert statuses == {
        "CT_small.dcm": "stored",
        "MR_small.dcm": "stored",
        "MR_truncated.dcm": "rejected",
        "notes.txt": "rejected",
    }
    assert response.json()["counts"] == {
        "stored": 2,
        "duplicate": 0,
        "rejected": 2,
        "failed": 0,
        "skipped": 0,
    }


@pytest.mark.django_db
def test_an_unsafe_archive_is_refused_whole(client, radiologist):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("CT_small.dcm", file_bytes("CT_small.dcm"))
        archive.writestr("../escape.dcm", file_bytes("MR_small.dcm"))
    client.force_login(radiologist)
    response = client.post(
        "/api/medical/studies/upload/", {"files": [_named(buffer.getvalue(), "study.zip")]}
    )
    assert response.status_code == 200
    [entry] = response.json()["files"]
    assert entry["status"] == "rejected" and "unsafe member name" in entry["reason"]
    assert not Instance.objects.exists()


@pytest.mark.django_db
def test_many_files_in_one_request_up_to_the_configured_limit(client, radiologist, settings):
    # More files than Django's default multipart cap (100) go through while within the suite's
    # limit; one more than the limit gets the upload service's 400 naming it, and nothing is kept.
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == settings.MEDICAL_UPLOAD_MAX_FILES + 1  # settings.py
    settings.MEDICAL_UPLOAD_MAX_FILES = 120
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = settings.MEDICAL_UPLOAD_MAX_FILES + 1  # as settings.py derives it
    client.force_login(radiologist)
    ct = file_bytes("CT_small.dcm")
    response = client.post(
        "/api/medical/studies/upload/", {"files": [_named(ct, f"ct-{n}.dcm") for n in range(120)]}
    )
    assert response.status_code == 200
    assert response.json()["counts"] == {
        "stored": 1,
        "duplicate": 119,
        "rejected": 0,
        "failed": 0,
        "skipped": 0,
    }
    over = client.post(
        "/api/medical/studies/upload/", {"files": [_named(ct, f"ct-{n}.dcm") for n in range(121)]}
    )
    assert over.status_code == 400 and "the limit is 120 per upload" in over.json()["detail"]
    assert Instance.objects.count() == 1


@pytest.mark.django_db
def test_an_upload_without_files_is_a_400(client, radiologist):
    client.force_login(radiologist)
    response = client.post("/api/medical/studies/upload/", {})
    assert response.status_code == 400
    assert "no files" in response.json()["detail"]


@pytest.mark.django_db
def test_a_duplicate_instance_is_idempotent(ingest):
    first = ingest("CT_small.dcm")
    counts = _row_counts()
    events = Event.objects.filter(action="study.ingest").count()
    second = ingest("CT_small.dcm")
    assert (first.status, second.status) == ("stored", "duplicate")
    assert second.instance_id == first.instance_id
    assert _row_counts() == counts
    assert Event.objects.filter(action="study.ingest").count() == events


@pytest.mark.django_db
def test_each_department_holds_its_own_copy(ingest):
    radiology = ingest("CT_small.dcm", department="radiology")
    cardiology = ingest("CT_small.dcm", department="cardiology")
    assert cardiology.status == "stored" and cardiology.study_id != radiology.study_id


@pytest.mark.django_db
def test_instances_of_one_study_share_study_series_and_patient(ingest):
    first = ingest("dicomdirtests/77654033/CT2/17106")
    second = ingest("dicomdirtests/77654033/CT2/17136")
    assert first.study_id == second.study_id
    original = pydicom.dcmread(io.BytesIO(file_bytes("dicomdirtests/77654033/CT2/17106")))
    study = Study.objects.get(pk=first.study_id)
    assert study.study_instance_uid == pseudonymize_uid(original.StudyInstanceUID, uid_key=dicom_uid_key())
    assert study.patient.pseudonym.startswith("ANON-")
    assert Instance.objects.filter(series__study=study).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("relative", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "examples_ybr_color.dcm"])
def test_the_stored_copy_keeps_nothing_the_profile_removes_or_replaces(relative, ingest):
    outcome = ingest(relative)
    instance = Instance.objects.get(pk=outcome.instance_id)
    original = read_dicom(file_bytes(relative), filename=relative)
    stored = pydicom.dcmread(storage.media_path(instance.deidentified_file))
    profile, options = load_basic_profile(), DeidOptions()
    after: dict[int, set[str]] = {}
    for element in [*stored.file_meta, *stored.iterall()]:
        after.setdefault(int(element.tag), set()).update(_texts(element))
    for element in [*original.file_meta, *original.iterall()]:
        tag = int(element.tag)
        rule = profile.rule_for(tag)
        action = rule.action(options) if rule else None
        if element.tag.is_private or action == "X":
            assert tag not in after, f"{element.keyword or hex(tag)} survived"
        elif action in ("Z", "D", "U") and tag not in (0x00100010, 0x00100020):
            assert not (_texts(element) & after.get(tag, set())), f"{element.keyword} kept its original value"
    assert not any(pydicom.tag.Tag(tag).is_private for tag in after)
    assert stored.PatientIdentityRemoved == "YES"
    assert stored.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert stored.SOPInstanceUID == pseudonymize_uid(original.SOPInstanceUID, uid_key=dicom_uid_key())
    assert stored.file_meta.MediaStorageSOPInstanceUID == stored.SOPInstanceUID
    assert str(original.PatientName) not in storage.read_media(instance.deidentified_file).decode("latin-1")


@pytest.mark.django_db
def test_a_storage_failure_leaves_no_file_and_no_row(ingest, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the sealed store expects a folder")
    before = _row_counts()
    key = "a-key-for-this-test-only-0123456789"
    # The de-identified copy is written, then sealing the original fails: the copy must go again.
    with override_settings(MEDICAL_DATA_DIR=str(blocked), DICOM_UID_KEY=key):
        outcome = ingest("CT_small.dcm")
    assert outcome.status == "failed" and "nothing was kept" in outcome.reason
    assert _row_counts() == before
    original = pydicom.dcmread(io.BytesIO(file_bytes("CT_small.dcm")))
    uid = lambda value: pseudonymize_uid(value, uid_key=key.encode())  # noqa: E731
    name = storage.deidentified_name(
        department="radiology",
        study_uid=uid(original.StudyInstanceUID),
        series_uid=uid(original.SeriesInstanceUID),
        sop_uid=uid(original.SOPInstanceUID),
    )
    assert not storage.media_path(name).exists(), "the de-identified copy of a failed ingest survived"


@pytest.mark.django_db
def test_a_burned_in_flag_puts_the_study_under_review(ingest):
    outcome = ingest("examples_ybr_color.dcm")  # ultrasound without Burned In Annotation: unknown
    assert outcome.burned_in == "unknown"
    study = Study.objects.get(pk=outcome.study_id)
    assert study.burned_in_review == Study.BurnedInReview.PENDING and not study.usable_by_models


def _texts(element) -> set[str]:
    if element.VR == "SQ" or element.is_empty:
        return set()
    values = element.value if element.VM > 1 else [element.value]
    return {str(value).strip() for value in values if str(value).strip()}


def _named(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.mark.django_db
def test_files_without_a_preamble_are_stored_by_api_and_portal_upload_and_say_so(client, radiologist):
    client.force_login(radiologist)
    headless_ct = file_bytes("CT_small.dcm")[132:]  # file meta first: no preamble, no "DICM"
    response = client.post(
        "/api/medical/studies/upload/",
        {
            "files": [
                _named(file_bytes("rtstruct.dcm"), "rtstruct.dcm"),  # a bare data set, implicit VR
                _named(headless_ct, "headless.dcm"),
                _named(file_bytes("MR_small.dcm"), "MR_small.dcm"),
            ]
        },
    )
    assert response.status_code == 200
    results = {entry["filename"]: entry for entry in response.json()["files"]}
    assert {name: entry["status"] for name, entry in results.items()} == dict.fromkeys(results, "stored")
    assert "stored without a preamble" in results["rtstruct.dcm"]["reason"]
    assert "stored without a preamble" in results["headless.dcm"]["reason"]
    assert results["MR_small.dcm"]["reason"] == ""
    assert Instance.objects.count() == 3
    page = client.post(
        "/medical/upload/", {"files": [_named(file_bytes("ExplVR_BigEndNoMeta.dcm"), "big.dcm")]}
    )
    assert page.status_code == 200
    assert "stored without a preamble" in page.content.decode()
    assert Instance.objects.count() == 4


@pytest.mark.django_db
def test_each_uploaded_file_gets_its_own_result_empty_noise_and_nested_archives_included(client, radiologist):
    client.force_login(radiologist)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("IM0001", file_bytes("MR_small.dcm"))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("CD/README.TXT", b"Patient CD. Open index.htm to view.")
        archive.writestr("CD/DICOMDIR", file_bytes("dicomdirtests/DICOMDIR"))
        archive.writestr("CD/IMAGES/IM0001", file_bytes("CT_small.dcm"))
        archive.writestr("CD/inner.zip", inner.getvalue())
    response = client.post(
        "/api/medical/studies/upload/",
        {
            "files": [
                _named(b"", "empty.dcm"),
                _named(b"just some notes", "notes.txt"),
                _named(outer.getvalue(), "cd.zip"),
                _named(file_bytes("rtplan.dcm"), "rtplan.dcm"),
            ]
        },
    )
    assert response.status_code == 200
    results = {entry["filename"]: (entry["status"], entry["reason"]) for entry in response.json()["files"]}
    assert list(results) == [
        "empty.dcm",
        "notes.txt",
        "cd.zip/CD/README.TXT",
        "cd.zip/CD/DICOMDIR",
        "cd.zip/CD/IMAGES/IM0001",
        "cd.zip/CD/inner.zip",
        "rtplan.dcm",
    ]
    assert results["empty.dcm"] == ("rejected", "empty file")
    assert results["notes.txt"][0] == "rejected" and "not a DICOM file" in results["notes.txt"][1]
    assert results["cd.zip/CD/README.TXT"][0] == "skipped"
    assert results["cd.zip/CD/DICOMDIR"][0] == "skipped" and "index" in results["cd.zip/CD/DICOMDIR"][1]
    assert results["cd.zip/CD/IMAGES/IM0001"][0] == "stored" and results["rtplan.dcm"][0] == "stored"
    assert (
        results["cd.zip/CD/inner.zip"][0] == "rejected"
        and "nested archives" in results["cd.zip/CD/inner.zip"][1]
    )
    assert response.json()["counts"] == {
        "stored": 2,
        "duplicate": 0,
        "rejected": 3,
        "failed": 0,
        "skipped": 2,
    }
    quarantined = set(QuarantinedFile.objects.values_list("filename", flat=True))
    assert quarantined == {
        "empty.dcm",
        "notes.txt",
        "cd.zip/CD/inner.zip",
    }  # noise is listed, not quarantined
    # The portal: an empty file next to a good one is its own refusal, not a form error for the request.
    page = client.post(
        "/medical/upload/",
        {"files": [_named(b"", "blank.dcm"), _named(file_bytes("MR_small.dcm"), "mr.dcm")]},
    )
    body = page.content.decode()
    assert page.status_code == 200 and "blank.dcm" in body and "empty file" in body
    assert "1 stored" in body and "1 refused" in body
