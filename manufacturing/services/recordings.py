"""Vibration recordings: upload (validated, stored in media storage, trailed) and analysis on the
Celery worker through manufacturing.analysis (part A's pure analysis, imported lazily)."""

from __future__ import annotations

import datetime
import hashlib
import logging
import uuid

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from audit.services import record
from manufacturing.analysis.waveform_files import MIN_SAMPLES, Waveform, read_waveform, sample_rate_of
from manufacturing.models import Machine, VibrationRecording

logger = logging.getLogger(__name__)

MAX_BYTES = 50 << 20
MAX_ABS_SAMPLE = 1e9  # far beyond any accelerometer; larger values overflow the analysis (NaN results)
# The ISO 10816-3 velocity band reaches 1000 Hz, so the analysis needs at least twice that
# (manufacturing.analysis.vibration.VELOCITY_BAND_HZ): refused at upload, not after storing the file.
MIN_SAMPLE_RATE_HZ = 2000.0
CLOCK_SKEW = datetime.timedelta(minutes=5)  # a phone's clock ahead of the server's
EARLIEST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # before digital route collectors: a typo


class RecordingRefused(Exception):
    """An upload that cannot be analysed; the message says what to fix (maps to 400)."""


def _samples(name: str, data: bytes, channel: str = "") -> Waveform:
    try:
        wave = read_waveform(name, data, channel)
    except ValueError as error:
        raise RecordingRefused(str(error)) from None
    signal = wave.signal
    if signal.size < MIN_SAMPLES:
        raise RecordingRefused(f"{name!r} has {signal.size} samples; at least {MIN_SAMPLES} are needed")
    if not np.all(np.isfinite(signal)):
        raise RecordingRefused(f"{name!r} contains NaN or infinite samples")
    if np.abs(signal).max() > MAX_ABS_SAMPLE:
        raise RecordingRefused(
            f"{name!r} has samples beyond ±{MAX_ABS_SAMPLE:g}: not a vibration measurement in g or mm/s; "
            "check the export's scaling"
        )
    return wave


def field_time(moment: datetime.datetime | None, *, verb: str, done: str, refused: type[Exception]):
    """When something was done on the floor (a recording made, a meter read), as given: a naive time is
    the site's, None is now. Before 2000 (a typo) or in the future beyond a phone's clock running a few
    minutes ahead is refused (`refused`, naming the time `verb`: "the time measured, ..."); a time a few
    minutes ahead is taken as now."""
    now = timezone.now()
    if moment is None:
        return now
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if moment < EARLIEST:
        raise refused(
            f"the time {verb}, {moment.date().isoformat()}, is before 2000: check the date, or leave it empty "
            "for now"
        )
    if moment > now + CLOCK_SKEW:
        raise refused(
            f"the time {verb}, {moment:%Y-%m-%d %H:%M}, is in the future: give the time {done}, or leave it "
            "empty for now"
        )
    return min(moment, now)


def uploads_in_turn(machine: Machine) -> None:
    """Hold the machine's row until this transaction ends, so that two uploads to it (a file sent twice
    at once: a phone's retry racing its first send) look for what is already kept one after the other,
    and the second finds the first. FOR NO KEY UPDATE: rows that only refer to the machine (alerts,
    readings, work orders) are still written meanwhile. (SQLite runs write transactions one at a time.)"""
    Machine.objects.select_for_update(no_key=True).filter(pk=machine.pk).values_list("pk").first()


@transaction.atomic
def recording_upload(
    *,
    actor,
    machine: Machine,
    name: str,
    data: bytes,
    sample_rate: float,
    rpm: float,
    units: str = "g",
    component=None,
    analyse=True,
    channel: str = "",
    recorded_at: datetime.datetime | None = None,
) -> VibrationRecording:
    """Store a recording of `machine` (the actor needs `view` on the asset) and queue its analysis.

    `component` (whose bearing geometry gives the fault frequencies) defaults to the machine's first
    component with a bearing. `channel` picks the column or variable of a file with several
    (manufacturing.analysis.waveform_files); a sample rate or rpm left empty (0) is taken from the
    file where it carries one (a time column; a .mat RPM variable). The same file with the same
    settings already stored for the machine (and not failed) is returned with `replayed` set:
    nothing is stored, trailed or analysed again. `recorded_at` is when it was measured (a naive time
    is read in the site's time zone); left out, the time of the upload. The asset's condition and
    trend follow the time measured, so a route's recordings uploaded later fall into place."""

    decision = check(actor, "view", machine)
    if len(data) > MAX_BYTES:
        raise RecordingRefused(f"the file is larger than {MAX_BYTES >> 20} MiB; upload a shorter recording")
    if units not in VibrationRecording.Units.values:
        raise RecordingRefused(f"units must be one of {', '.join(VibrationRecording.Units.values)}")
    wave = _samples(name, data, channel)
    fmt, signal = wave.fmt, wave.signal
    try:
        sample_rate = sample_rate_of(wave, sample_rate)
    except ValueError as error:
        raise RecordingRefused(str(error)) from None
    rpm = rpm or wave.rpm or 0
    if not sample_rate or sample_rate <= 0:
        raise RecordingRefused("sample rate must be a positive number of samples per second, e.g. 12000")
    if not sample_rate >= MIN_SAMPLE_RATE_HZ:  # written so that NaN is refused too
        raise RecordingRefused(
            f"sample rate {sample_rate:g} Hz is too low: the analysis covers the ISO 10816-3 band up to "
            f"1000 Hz and needs at least {MIN_SAMPLE_RATE_HZ:g} samples per second; record at 2 kHz or more"
        )
    if not rpm or rpm <= 0:
        raise RecordingRefused("rpm must be the positive shaft speed during the recording, e.g. 1797")
    if component is not None and component.machine_id != machine.pk:
        raise RecordingRefused(f"component {component} is not part of {machine.tag}")
    recorded_at = field_time(
        recorded_at, verb="measured", done="the recording was made", refused=RecordingRefused
    )
    if component is None:
        component = machine.components.filter(bearing__isnull=False).order_by("pk").first()
    settings = dict(
        machine=machine,
        component=component,
        sample_rate=sample_rate,
        rpm=rpm,
        units=units,
        channel=wave.channel[:64],
        sha256=hashlib.sha256(data).hexdigest(),
    )
    # The same file with the same settings sent again (a retry on a bad connection, a gateway that did
    # not get its answer): the recording already stored, analysed once, alerting once. One whose
    # analysis failed may be sent again to be analysed again. Two sends at once look in turn.
    uploads_in_turn(machine)
    earlier = (
        VibrationRecording.objects.filter(**settings)
        .exclude(status=VibrationRecording.Status.FAILED)
        .order_by("pk")
        .first()
    )
    if earlier is not None:
        earlier.replayed = True
        return earlier
    recording = VibrationRecording(
        **settings,
        original_name=name[:255],
        file_format=fmt,
        sample_count=signal.size,
        uploaded_by=actor,
        recorded_at=recorded_at,
    )
    recording.replayed = False
    # A name of its own, so that cleaning up after a failed write can only ever remove this file.
    unique = f"{machine.tag}-{uuid.uuid4().hex[:12]}.{fmt}"
    stored_name = recording.file.field.generate_filename(recording, unique)
    try:
        recording.file.save(unique, ContentFile(data), save=False)
    except OSError as exc:  # e.g. the disk is full: the storage leaves the partial file behind
        recording.file.storage.delete(stored_name)
        raise RecordingRefused(
            f"the recording could not be stored ({exc.strerror or exc}); nothing was kept. Ask an "
            "administrator to free space for uploads, then upload it again"
        ) from exc
    try:
        recording.save()
        record(
            actor=actor,
            action="recording.upload",
            resource_type="recording",
            resource_id=recording.pk,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={
                "site": machine.site,
                "machine": machine.tag,
                "samples": int(signal.size),
                "format": fmt,
                "channel": wave.channel[:64],
                "recorded_at": recorded_at.isoformat(),
            },
        )
    except BaseException:  # the row rolls back; its file must not stay behind as an orphan
        recording.file.storage.delete(stored_name)
        raise
    if analyse:

        def enqueue() -> None:
            from manufacturing.tasks import analyse_recording

            try:
                analyse_recording.delay(recording.pk)
            except Exception:  # a broker outage leaves the recording pending, never fails the upload
                logger.exception("could not queue the analysis of recording %s", recording.pk)

        transaction.on_commit(enqueue)
    return recording


def recording_signal(*, recording: VibrationRecording) -> np.ndarray:
    """The stored samples of a recording (validated as at upload)."""
    with recording.file.open("rb") as handle:
        return _samples(recording.file.name, handle.read(), recording.channel).signal


def recording_analyse(*, recording_id: int) -> str:
    """Run manufacturing.analysis.vibration.analyse on a stored recording; returns the status."""
    from manufacturing.services.alerts import analysis_store

    recording = VibrationRecording.objects.select_related("machine").get(pk=recording_id)
    if recording.status != VibrationRecording.Status.PENDING:
        # analysed already: a message sent again (portal.requeue) after a slow queue changes nothing
        return recording.status
    try:
        from manufacturing.analysis import vibration

        with recording.file.open("rb") as handle:
            signal = _samples(recording.file.name, handle.read(), recording.channel).signal
        bearing = None
        component = recording.component
        if component is not None and component.bearing is not None:
            geometry = component.bearing
            bearing = vibration.BearingGeometry(
                geometry.ball_count,
                geometry.ball_diameter_mm,
                geometry.pitch_diameter_mm,
                geometry.contact_angle_deg,
            )
        result = vibration.analyse(
            signal,
            recording.sample_rate,
            recording.rpm,
            bearing,
            recording.units,
            recording.machine.iso_group,
            recording.machine.foundation,
            recording.machine.zone_limits or None,
        ).to_dict()
        analysis_store(recording=recording, result=result)
    except Exception as error:  # recorded on the recording, shown to the engineer
        logger.exception("analysis of recording %s failed", recording_id)
        VibrationRecording.objects.filter(pk=recording_id).update(
            status=VibrationRecording.Status.FAILED, error=str(error)[:2000]
        )
        return VibrationRecording.Status.FAILED
    return VibrationRecording.Status.DONE
