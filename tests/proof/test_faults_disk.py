"""Fault: the disk under var/ fills up during an upload and during a training checkpoint.

A real small file system (a 4 MiB tmpfs mounted under this run's var/) is filled to a few KiB of
its end, and uploads and job outputs are pointed at it: the writes meet the kernel's own "No space
left on device". Mounting needs root (CAP_SYS_ADMIN); where the tests do not run as root the tests
are skipped with that reason: RLIMIT_FSIZE would raise EFBIG (and kill with SIGXFSZ) instead of the
ENOSPC a full disk gives, so it would not prove the same thing.

What must hold: a clear error that names the cause, no partial or corrupt file, no orphan (a file
without its row, a row without its file, a temporary checkpoint folder), and once space is freed
the same work succeeds.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from audit.models import Event
from inference.tuning import runner, services
from inference.tuning.lifecycle import checkpoint_step
from inference.tuning.lora_config import LoraSettings, TrainSettings
from inference.tuning.models import FineTuneJob
from manufacturing.models import Line, Machine, Site, VibrationRecording
from tests.factories import api_key
from tests.tuning.conftest import fast_password_hashing, in_process_jobs, work_orders  # noqa: F401  (fixtures)

DISK_BYTES = 4 << 20
LEFT_FREE = 16 << 10  # what stays free once the disk is "full": less than any write below needs


class SmallDisk:
    def __init__(self, mount: Path):
        self.mount = mount
        self.ballast = mount / "ballast"

    def fill(self, *, leave: int = LEFT_FREE) -> None:
        stats = os.statvfs(self.mount)
        free = stats.f_bavail * stats.f_frsize
        with open(self.ballast, "ab") as handle:
            handle.write(b"\0" * max(0, free - leave))

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def files(self) -> list[str]:
        return sorted(
            str(path.relative_to(self.mount)) for path in self.mount.rglob("*") if path != self.ballast
        )


@pytest.fixture
def small_disk():
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; RLIMIT_FSIZE gives EFBIG, not a full disk's ENOSPC")
    mount = Path(settings.VAR_DIR) / f"small-disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {done.stderr.strip()}")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)
        mount.rmdir()


# --- an upload -------------------------------------------------------------------------------
def _recording_csv(samples: int = 40_000) -> bytes:
    """A 12 kHz vibration signal (a 30 Hz shaft tone plus noise) as one CSV column: ~400 KB."""
    t = np.arange(samples) / 12_000
    signal = 0.3 * np.sin(2 * np.pi * 30 * t) + 0.05 * np.random.default_rng(0).standard_normal(samples)
    return "\n".join(f"{value:.6f}" for value in signal).encode()


def _upload(client, user, machine, data: bytes):
    return client.post(
        "/api/manufacturing/recordings/",
        {"machine": machine.pk, "sample_rate": 12000, "rpm": 1797,
         "file": SimpleUploadedFile("drive-end.csv", data, content_type="text/csv")},
        HTTP_AUTHORIZATION=f"Token {api_key(user)}",
    )  # fmt: skip


@pytest.mark.django_db
def test_a_full_disk_during_an_upload_refuses_it_clearly_and_keeps_nothing(
    client, small_disk, make_user, settings
):
    settings.MEDIA_ROOT = str(small_disk.mount / "media")
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "SITE-A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Line 1"), tag="DISK01", name="Fan"
    )
    engineer = make_user(Role.MAINTENANCE_ENGINEER, site="site-a")
    data = _recording_csv()
    small_disk.fill()

    response = _upload(client, engineer, machine, data)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "could not be stored (No space left on device); nothing was kept" in detail
    assert "free space" in detail
    assert small_disk.files() == [] or all(Path(small_disk.mount, f).is_dir() for f in small_disk.files())
    assert not VibrationRecording.objects.exists()
    assert not Event.objects.filter(action="recording.upload").exists()

    small_disk.free()
    response = _upload(client, engineer, machine, data)
    assert response.status_code == 201, response.content
    recording = VibrationRecording.objects.get()
    with recording.file.open("rb") as stored:
        assert stored.read() == data  # whole, byte for byte
    assert [f for f in small_disk.files() if Path(small_disk.mount, f).is_file()] == [
        f"media/{recording.file.name}"
    ]


@pytest.mark.django_db
def test_a_full_disk_during_a_dicom_upload_fails_the_file_clearly_and_keeps_nothing(
    client, small_disk, make_user, settings
):
    from medical.models import Instance
    from tests.medical.dicom_files import file_bytes

    settings.MEDIA_ROOT = str(small_disk.mount / "media")  # de-identified copies
    settings.MEDICAL_DATA_DIR = str(small_disk.mount / "medical")  # sealed originals
    radiologist = make_user(Role.RADIOLOGIST, department="radiology")
    data = file_bytes("CT_small.dcm")  # 39 KB: more than is left
    small_disk.fill()

    def upload():
        return client.post(
            "/api/medical/studies/upload/",
            {"files": [SimpleUploadedFile("ct.dcm", data, content_type="application/dicom")]},
            HTTP_AUTHORIZATION=f"Token {api_key(radiologist)}",
        )

    response = upload()
    assert response.status_code == 200, response.content
    [outcome] = response.json()["files"]
    assert (
        outcome["status"] == "failed"
        and "disk for medical data is full; nothing was kept" in outcome["reason"]
    )
    assert not Instance.objects.exists()
    # Only the installation's pseudonymisation key (created on first use, small, written atomically).
    kept = [f for f in small_disk.files() if Path(small_disk.mount, f).is_file()]
    assert kept in ([], ["medical/dicom-uid-key.sealed"]), kept

    small_disk.free()
    [outcome] = upload().json()["files"]
    assert outcome["status"] == "stored" and Instance.objects.count() == 1


# --- a training checkpoint ---------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("work_orders", "in_process_jobs")
def test_a_full_disk_at_a_checkpoint_fails_the_job_clearly_and_a_retry_resumes_cleanly(
    small_disk, served_model, make_user, settings
):
    settings.TUNING_OUTPUT_ROOT = small_disk.mount / "adapters"  # the job's outputs; its data stays put
    engineer = make_user(Role.ML_ENGINEER)
    job = services.job_create(
        user=engineer, base_model="suite-demo", data_adapter="tests.work_orders", adapter_name="full-disk",
        filters={"limit": 60}, lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(batch_size=8, max_seq_len=96, checkpoint_every=4), dp=None,
    )  # fmt: skip
    small_disk.fill(leave=4 << 10)

    assert runner.job_run(job_id=job.pk, task_id=job.task_id) == FineTuneJob.Status.FAILED
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.FAILED
    assert "Could not write the checkpoint of step 4" in job.error and "No space left on device" in job.error
    assert "retry the job" in job.error
    assert checkpoint_step(job) is None and job.adapter is None
    leftovers = [f for f in small_disk.files() if ".tmp-" in f or "step-" in f]
    assert leftovers == []  # no half-written checkpoint folder, complete or not
    failed = Event.objects.get(action="fine_tune_job.failed", resource_id=str(job.pk))
    assert "No space left on device" in failed.payload["error"]

    small_disk.free()
    job = services.job_retry(user=engineer, job=job)
    assert runner.job_run(job_id=job.pk, task_id=job.task_id) == FineTuneJob.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.SUCCEEDED and job.adapter is not None
    assert Path(job.adapter.path, "adapter_config.json").is_file()
    assert not [f for f in small_disk.files() if ".tmp-" in f]
