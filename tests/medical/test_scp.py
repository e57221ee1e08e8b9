"""The DICOM node: `manage.py run_dicom_scp` as a real process, and a pynetdicom SCU talking to it."""

from __future__ import annotations

import io
import subprocess
import sys

import pydicom
import pytest
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification

from audit.models import Event
from medical.dicom import pseudonymize_uid
from medical.keys import dicom_uid_key
from medical.models import Instance, QuarantinedFile, Study
from tests.medical.dicom_files import file_bytes
from tests.support import MANAGE, ROOT, dicom_association, dicom_echo, free_port, subprocess_env, wait_for

SCP_AE_TITLE = "SUITE"


@pytest.fixture(scope="module")
def dicom_node(django_db_setup, django_db_blocker):
    """`run_dicom_scp` on a free port, on the test database, with the default AE allow-list."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, MANAGE, "run_dicom_scp", "--port", str(port), "--ae-title", SCP_AE_TITLE],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        banner = process.stdout.readline()
        assert "listening" in banner, banner + (process.stdout.read() if process.poll() is not None else "")
        wait_for(lambda: dicom_echo(port, "MODALITY1") == 0x0000, timeout=20, message="C-ECHO from MODALITY1")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def _store(port: int, calling: str, *datasets) -> list:
    assoc = dicom_association(port, calling, [CTImageStorage, MRImageStorage])
    assert assoc.is_established
    try:
        return [assoc.send_c_store(dataset) for dataset in datasets]
    finally:
        assoc.release()


def _dataset(relative: str) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(file_bytes(relative)))


@pytest.mark.django_db(transaction=True)
def test_c_echo_answers_success(dicom_node):
    assert dicom_echo(dicom_node, "MODALITY1") == 0x0000


@pytest.mark.django_db(transaction=True)
def test_a_modality_sends_ct_and_mr_and_they_are_filed_for_its_department(dicom_node):
    responses = _store(dicom_node, "MODALITY1", _dataset("CT_small.dcm"), _dataset("MR_small.dcm"))
    assert [response.Status for response in responses] == [0x0000, 0x0000]
    instances = Instance.objects.select_related("series__study")
    assert sorted(instance.series.modality for instance in instances) == ["CT", "MR"]
    assert {instance.series.study.department for instance in instances} == {"radiology"}
    assert {instance.received_via for instance in instances} == {"scp"}
    assert {instance.received_from for instance in instances} == {"MODALITY1"}
    assert (
        Event.objects.filter(action="study.ingest", actor_label="scp:MODALITY1", outcome="succeeded").count()
        == 2
    )
    # Sending the same instance again changes nothing.
    assert _store(dicom_node, "MODALITY1", _dataset("CT_small.dcm"))[0].Status == 0x0000
    assert Instance.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_allow_list_maps_each_calling_title_to_its_department(dicom_node):
    assert _store(dicom_node, "ECHO1", _dataset("CT_small.dcm"))[0].Status == 0x0000
    assert list(Study.objects.values_list("department", flat=True)) == ["cardiology"]


@pytest.mark.django_db(transaction=True)
def test_an_unknown_calling_ae_is_rejected(dicom_node):
    assoc = dicom_association(dicom_node, "ROGUE", [CTImageStorage, Verification])
    assert assoc.is_rejected and not assoc.is_established
    # The node trails the refusal from its own thread after answering: wait for it (the test's
    # teardown truncates the tables, which deadlocks with a trail write still in flight).
    wait_for(
        lambda: Event.objects.filter(action="dicom.association", payload_json__contains="ROGUE").exists(),
        timeout=20,
        message="the refused association on the trail",
    )
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unacceptable_instance_gets_a_failure_status_and_the_node_carries_on(dicom_node):
    broken = _dataset("CT_small.dcm")
    del broken.StudyInstanceUID
    [response] = _store(dicom_node, "MODALITY1", broken)
    assert response.Status == 0xA900
    assert "StudyInstanceUID" in response.ErrorComment
    assert not Instance.objects.exists()
    quarantined = QuarantinedFile.objects.get()
    assert (quarantined.channel, quarantined.department) == ("scp", "radiology")
    assert _store(dicom_node, "MODALITY1", _dataset("MR_small.dcm"))[0].Status == 0x0000


@pytest.mark.django_db(transaction=True)
def test_uids_agree_across_the_api_and_the_network(dicom_node, client, radiologist):
    """Two instances of one study, one uploaded through the API and one sent by the modality."""
    client.force_login(radiologist)
    first, second = "dicomdirtests/77654033/CT2/17106", "dicomdirtests/77654033/CT2/17136"
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploaded = client.post(
        "/api/medical/studies/upload/", {"files": [SimpleUploadedFile("a.dcm", file_bytes(first))]}
    )
    assert uploaded.json()["counts"]["stored"] == 1
    assert _store(dicom_node, "MODALITY1", _dataset(second))[0].Status == 0x0000
    study = Study.objects.get()
    original = _dataset(first)
    assert study.study_instance_uid == pseudonymize_uid(original.StudyInstanceUID, uid_key=dicom_uid_key())
    channels = sorted(Instance.objects.filter(series__study=study).values_list("received_via", flat=True))
    assert channels == ["api", "scp"]
    assert study.series.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_data_set_from_a_file_without_a_preamble_is_stored_over_c_store(dicom_node):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from medical.dicom.structure import file_meta_end

    part10 = file_bytes("CT_small.dcm")
    bare = pydicom.dcmread(io.BytesIO(part10[file_meta_end(part10) :]), force=True)  # no preamble, no meta
    assert "PixelData" in bare and not getattr(bare, "file_meta", None)
    bare.file_meta = FileMetaDataset()
    bare.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # what the SCU negotiates, not part of the file
    [response] = _store(dicom_node, "MODALITY1", bare)
    assert response.Status == 0x0000
    instance = Instance.objects.get()
    assert instance.series.modality == "CT" and instance.received_via == "scp"
