"""One ingest pipeline for every way a DICOM file arrives: portal upload, API upload, C-STORE.

This module handles one file (`instance_ingest`); medical.services.uploads expands an upload
request (several files, ZIP archives) into files for it.

Per file: validate (medical.dicom.read_dicom) -> de-identify (PS3.15 basic profile, keyed UIDs) ->
write the de-identified copy and seal the original -> index it and trail it in one transaction ->
queue its preview. A file is all or nothing: if anything after validation fails, the bytes written
for it are removed and no row survives. A refused file gets a quarantine record with its reason
(its bytes kept sealed by the vault for investigation). A SOP Instance the department already
holds is reported as a duplicate and changes nothing.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace

from django.db import IntegrityError, transaction

from medical import conf, storage
from medical.dicom import (
    PREAMBLE_NOTE,
    DeidResult,
    DicomRejected,
    deidentify,
    index_fields,
    lacks_preamble,
    read_dicom,
)
from medical.keys import dicom_uid_key
from medical.models import Channel, Instance, Patient, QuarantinedFile, Series, Study

logger = logging.getLogger(__name__)

STORED, DUPLICATE, REJECTED, FAILED = "stored", "duplicate", "rejected", "failed"
SKIPPED = "skipped"  # archive noise (README, DICOMDIR): listed, neither stored nor quarantined
PREVIEW_MODES = ("queue", "inline", "skip")
_DISK_FULL = (
    "could not be stored: the disk for medical data is full; nothing was kept. Free space, then send it again"
)
_INTERNAL_FAILURE = "could not be stored because of an internal error; nothing was kept, try again"


@dataclass(frozen=True)
class IngestSource:
    """Who sent the files, through which channel, on behalf of which department."""

    channel: str
    department: str
    actor: object  # the User, or a system actor string such as "scp:MODALITY1"
    received_from: str
    previews: str = "queue"
    policy: str = ""  # the access rule that allowed the upload ("" for the SCP's allow-list and the demo)

    def __post_init__(self) -> None:
        if self.channel not in Channel.values:
            raise ValueError(f"unknown channel {self.channel!r}")
        if self.previews not in PREVIEW_MODES:
            raise ValueError(f"previews must be one of {PREVIEW_MODES}")
        if not self.department:
            raise ValueError("a study must belong to a department")


@dataclass(frozen=True)
class FileOutcome:
    filename: str
    status: str  # stored | duplicate | rejected (the file's fault) | failed (ours: retry) | skipped
    reason: str = ""
    study_id: int | None = None
    series_id: int | None = None
    instance_id: int | None = None
    burned_in: str = ""
    quarantine_id: int | None = None

    @property
    def accepted(self) -> bool:
        return self.status in (STORED, DUPLICATE)

    def as_dict(self) -> dict:
        return {
            "filename": self.filename,
            "status": self.status,
            "reason": self.reason,
            "study_id": self.study_id,
            "instance_id": self.instance_id,
            "burned_in": self.burned_in,
        }


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        tally = Counter(outcome.status for outcome in self.files)
        return {status: tally.get(status, 0) for status in (STORED, DUPLICATE, REJECTED, FAILED, SKIPPED)}

    @property
    def study_ids(self) -> list[int]:
        return sorted({outcome.study_id for outcome in self.files if outcome.study_id is not None})


def instance_ingest(*, source: IngestSource, filename: str, data: bytes) -> FileOutcome:
    """Ingest one file. Never raises for a bad file: the outcome says what happened and why."""
    try:
        dataset = read_dicom(data, filename=filename, max_bytes=conf.upload_max_file_bytes())
    except DicomRejected as rejection:
        return quarantine(source=source, filename=filename, data=data, reason=rejection.reason)
    try:
        outcome = _store(source, filename, data, dataset)
        if outcome.status == STORED and lacks_preamble(data):
            outcome = replace(outcome, reason=PREAMBLE_NOTE)
        return outcome
    except _EncodingFailed:
        reason = "could not be re-encoded after de-identification; re-export it from its source"
        return quarantine(source=source, filename=filename, data=data, reason=reason)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            logger.exception("ingest of one file failed (channel %s)", source.channel)
            return FileOutcome(filename=filename, status=FAILED, reason=_INTERNAL_FAILURE)
        logger.error("ingest of %s failed: the disk holding MEDIA_ROOT or MEDICAL_DATA_DIR is full", filename)
        return FileOutcome(filename=filename, status=FAILED, reason=_DISK_FULL)
    except Exception:  # a bug or an outage must cost this one file, never the batch or the SCP
        logger.exception("ingest of one file failed (channel %s)", source.channel)
        return FileOutcome(filename=filename, status=FAILED, reason=_INTERNAL_FAILURE)


class _EncodingFailed(Exception):
    pass


def _store(source: IngestSource, filename: str, data: bytes, dataset) -> FileOutcome:
    result = deidentify(dataset, uid_key=dicom_uid_key(), options=conf.deid_options())
    fields = index_fields(result.dataset)
    department = source.department
    existing = (
        Instance.objects.filter(
            series__study__department=department, sop_instance_uid=fields["sop_instance_uid"]
        )
        .select_related("series")
        .first()
    )
    if existing is not None:
        return _duplicate(filename, existing)
    deidentified = _encode(result)
    names = {
        "deidentified": storage.deidentified_name(
            department=department,
            study_uid=fields["study_instance_uid"],
            series_uid=fields["series_instance_uid"],
            sop_uid=fields["sop_instance_uid"],
        ),
        "original": storage.original_name(
            department=department, study_uid=fields["study_instance_uid"], sop_uid=fields["sop_instance_uid"]
        ),
    }
    store = storage.sealed_store()
    try:
        storage.write_media(names["deidentified"], deidentified)
        store.put(
            names["original"],
            data,
            storage.original_context(department=department, sop_uid=fields["sop_instance_uid"]),
        )
        with transaction.atomic():
            instance = _index(
                source, result, fields, names, data=data, deidentified=deidentified, original=dataset
            )
    except IntegrityError:
        # A concurrent upload of the same instance won the race; its files are these same bytes.
        winner = Instance.objects.filter(
            series__study__department=department, sop_instance_uid=fields["sop_instance_uid"]
        ).first()
        if winner is None:
            _remove(names, store)
            raise
        return _duplicate(filename, winner)
    except BaseException:
        _remove(names, store)
        raise
    _schedule_preview(instance, source.previews)
    return FileOutcome(
        filename=filename,
        status=STORED,
        study_id=instance.series.study_id,
        series_id=instance.series_id,
        instance_id=instance.pk,
        burned_in=instance.burned_in,
    )


def _duplicate(filename: str, existing: Instance) -> FileOutcome:
    return FileOutcome(
        filename=filename,
        status=DUPLICATE,
        reason="this instance is already stored; nothing changed",
        study_id=existing.series.study_id,
        series_id=existing.series_id,
        instance_id=existing.pk,
        burned_in=existing.burned_in,
    )


def _encode(result: DeidResult) -> bytes:
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result.dataset.save_as(buffer, enforce_file_format=True)
    except Exception as exc:
        raise _EncodingFailed() from exc
    return buffer.getvalue()


def _remove(names: dict[str, str], store) -> None:
    storage.delete_media(names["deidentified"])
    store.delete(names["original"])


def _index(
    source: IngestSource,
    result: DeidResult,
    fields: dict,
    names: dict,
    *,
    data: bytes,
    deidentified: bytes,
    original,
):
    from audit.services import record

    department = source.department
    patient, _ = Patient.objects.get_or_create(department=department, pseudonym=result.patient_pseudonym)
    study, _ = Study.objects.select_for_update().get_or_create(
        department=department,
        study_instance_uid=fields["study_instance_uid"],
        defaults={
            "patient": patient,
            "study_date": fields["study_date"],
            "study_time": fields["study_time"],
            "description": (fields["study_description"] or "")[:128],
            "received_via": source.channel,
        },
    )
    series, _ = Series.objects.get_or_create(
        study=study,
        series_instance_uid=fields["series_instance_uid"],
        defaults={
            "modality": (fields["modality"] or "")[:16],
            "series_number": fields["series_number"],
            "description": (fields["series_description"] or "")[:128],
            "body_part_examined": (fields["body_part_examined"] or "")[:64],
            "manufacturer": (fields["manufacturer"] or "")[:128],
            "manufacturer_model_name": (fields["manufacturer_model_name"] or "")[:128],
        },
    )
    summary = dict(sorted(Counter(action.action for action in result.actions).items()))
    instance = Instance.objects.create(
        series=series,
        sop_instance_uid=fields["sop_instance_uid"],
        sop_class_uid=fields["sop_class_uid"] or "",
        sop_class_name=(fields["sop_class_name"] or "")[:128],
        instance_number=fields["instance_number"],
        rows=fields["rows"],
        columns=fields["columns"],
        number_of_frames=fields["number_of_frames"],
        photometric_interpretation=(fields["photometric_interpretation"] or "")[:32],
        transfer_syntax_uid=fields["transfer_syntax_uid"] or "",
        has_pixel_data=fields["has_pixel_data"],
        burned_in=result.burned_in,
        deidentified_file=names["deidentified"],
        deidentified_size=len(deidentified),
        deidentified_sha256=hashlib.sha256(deidentified).hexdigest(),
        original_name=names["original"],
        original_size=len(data),
        original_sha256=hashlib.sha256(data).hexdigest(),
        preview_status=Instance.PreviewStatus.PENDING,
        deid_profile=result.profile_name[:128],
        deid_options={name: True for name in result.options.enabled()},
        deid_summary=summary,
        removed_keywords=_removed_keywords(result, original),
        received_via=source.channel,
        received_from=source.received_from[:128],
    )
    _refresh_study(study, new_instance=instance)
    record(
        actor=source.actor,
        action="study.ingest",
        resource_type="study",
        resource_id=study.pk,
        outcome="succeeded",
        policy=source.policy,
        payload={
            "instance_id": instance.pk,
            "sop_instance_uid": instance.sop_instance_uid,
            "channel": source.channel,
            "department": department,
            "received_from": instance.received_from,
            "burned_in": instance.burned_in,
            "deid_profile": instance.deid_profile,
            "deid_options": sorted(instance.deid_options),
            "deid_actions": summary,
            "original_sha256": instance.original_sha256,
        },
    )
    return instance


def _removed_keywords(result: DeidResult, original) -> list[str]:
    """Top-level attributes the original recorded (with a value) that de-identification removed or
    replaced: for these a question is answered "removed", for the rest of the profile "not recorded"."""
    acted = {
        action.keyword for action in result.actions if action.keyword and action.action in ("X", "Z", "D")
    }
    recorded = {elem.keyword for elem in original if elem.keyword and not elem.is_empty}
    return sorted(acted & recorded)


def _refresh_study(study: Study, *, new_instance: Instance) -> None:
    modalities = set(filter(None, study.modalities.split("\\")))
    if new_instance.series.modality:
        modalities.add(new_instance.series.modality)
    study.modalities = "\\".join(sorted(modalities))[:64]
    flagged = new_instance.burned_in in (Instance.BurnedIn.YES, Instance.BurnedIn.UNKNOWN)
    if flagged and study.burned_in_review in (
        Study.BurnedInReview.NOT_REQUIRED,
        Study.BurnedInReview.CLEARED,
    ):
        # New material that may show burned-in text: a person has to look before models may use it.
        study.burned_in_review = Study.BurnedInReview.PENDING
    study.save(update_fields=["modalities", "burned_in_review", "updated_at"])


def _schedule_preview(instance: Instance, mode: str) -> None:
    if mode == "skip":
        return
    if mode == "inline":
        from medical.services.previews import instance_preview_render

        instance_preview_render(instance_id=instance.pk)
        return

    def enqueue() -> None:
        from medical.tasks import render_instance_preview

        try:
            render_instance_preview.delay(instance.pk)
        except Exception:  # the broker being down leaves the preview pending, never fails the ingest
            logger.exception("could not queue the preview of instance %s", instance.pk)

    transaction.on_commit(enqueue)


def quarantine(*, source: IngestSource, filename: str, data: bytes, reason: str) -> FileOutcome:
    """Refuse one file: a quarantine record with the reason (the bytes sealed), trailed; never raises for it."""
    from audit.services import record

    digest = hashlib.sha256(data).hexdigest()
    sealed_name = ""
    if data and len(data) <= conf.upload_max_file_bytes():
        sealed_name = storage.quarantine_name(department=source.department, digest=digest)
        storage.sealed_store().put(
            sealed_name, data, storage.quarantine_context(department=source.department)
        )
    with transaction.atomic():
        quarantined = QuarantinedFile.objects.create(
            department=source.department,
            channel=source.channel,
            received_from=source.received_from[:128],
            filename=filename[-255:],
            reason=reason[:500],
            size=len(data),
            sha256=digest,
            sealed_name=sealed_name,
        )
        # The file name is left off the trail: senders name files after patients.
        record(
            actor=source.actor,
            action="study.ingest",
            resource_type="quarantine",
            resource_id=quarantined.pk,
            outcome="failed",
            policy=source.policy,
            payload={
                "channel": source.channel,
                "department": source.department,
                "received_from": quarantined.received_from,
                "reason": quarantined.reason,
                "sha256": digest,
                "size": len(data),
            },
        )
    return FileOutcome(filename=filename, status=REJECTED, reason=reason, quarantine_id=quarantined.pk)
