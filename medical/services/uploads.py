"""Uploads through the portal and the API: several DICOM files and/or ZIP archives in one request.

The request is authorized once (`upload` on a study of the department), checked against the
upload limits as a whole, archives are expanded safely, and each resulting file goes through
medical.services.ingest.instance_ingest on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from medical import conf
from medical.dicom import ArchiveRejected, iter_zip_members
from medical.services.ingest import (
    SKIPPED,
    FileOutcome,
    IngestReport,
    IngestSource,
    instance_ingest,
    quarantine,
)

# Archive members that accompany studies on CDs and PACS exports and are not images.
_NOISE_NAME = re.compile(
    r"^(readme|read_me|license|licence|index|autorun|manifest)(\.[a-z0-9]+)?$"
    r"|\.(txt|md|htm|html|nfo|csv|xml|pdf|ini|inf|url|exe|js|css|jpg|jpeg|png|gif)$",
    re.IGNORECASE,
)
NESTED_ARCHIVE_REASON = (
    "a ZIP archive inside the uploaded archive: nested archives are not expanded; "
    "upload the inner archive on its own, or unpack it and upload its files"
)


class UploadRefused(Exception):
    """The whole upload is refused before any file is looked at (too many files, too large, no files)."""


def upload_ingest(
    *, actor, department: str, uploads: Iterable[tuple[str, bytes]], channel: str
) -> IngestReport:
    """Portal and API uploads: several DICOM files and/or ZIP archives of them.

    The actor needs `upload` on a study of `department` (PolicyDenied otherwise, trailed). Archives
    are expanded with zip-bomb limits; an unsafe archive is refused as a whole (one rejected entry),
    a sound one contributes one entry per member.
    """
    from access.enforcement import check
    from access.resources import Resource

    decision = check(actor, "upload", Resource("study", "new", {"department": department}))
    source = IngestSource(
        channel=channel,
        department=department,
        actor=actor,
        received_from=actor.get_username(),
        policy=decision.policy or "",
    )
    entries = _expand(list(uploads), source)
    report = IngestReport()
    for name, data_or_outcome in entries:
        if isinstance(data_or_outcome, FileOutcome):
            report.files.append(data_or_outcome)
        else:
            report.files.append(instance_ingest(source=source, filename=name, data=data_or_outcome))
    return report


def _expand(uploads: list[tuple[str, bytes]], source: IngestSource) -> list[tuple[str, bytes | FileOutcome]]:
    if not uploads:
        raise UploadRefused("no files were uploaded; choose DICOM files or a ZIP archive of them")
    max_files, max_total = conf.upload_max_files(), conf.upload_max_total_bytes()
    if len(uploads) > max_files:
        raise UploadRefused(f"{len(uploads)} files were uploaded; the limit is {max_files} per upload")
    if sum(len(data) for _, data in uploads) > max_total:
        raise UploadRefused(f"the upload is larger than the {max_total >> 20} MiB limit; split it")
    entries: list[tuple[str, bytes | FileOutcome]] = []
    for name, data in uploads:
        if not data.startswith(b"PK\x03\x04"):
            entries.append((name, data))
            continue
        try:
            members = list(
                iter_zip_members(
                    data,
                    max_members=max_files,
                    max_total_bytes=max_total,
                    max_member_bytes=conf.upload_max_file_bytes(),
                )
            )
        except ArchiveRejected as refusal:
            entries.append((name, quarantine(source=source, filename=name, data=data, reason=refusal.reason)))
            continue
        for member, member_bytes in members:
            entries.append(
                (f"{name}/{member}", _archive_member(f"{name}/{member}", member, member_bytes, source))
            )
    if len(entries) > max_files:
        raise UploadRefused(f"the upload holds {len(entries)} files; the limit is {max_files} per upload")
    return entries


def _archive_member(label: str, member: str, data: bytes, source: IngestSource) -> bytes | FileOutcome:
    """The member's bytes to ingest, or its outcome when it is archive noise or a nested archive."""
    basename = PurePosixPath(member.replace("\\", "/")).name
    is_dicom = data[128:132] == b"DICM"
    if basename.upper() == "DICOMDIR":
        reason = "skipped: DICOMDIR is the archive's index, not an image (the images it lists are read from the archive)"
        return FileOutcome(filename=label, status=SKIPPED, reason=reason)
    if not is_dicom and _NOISE_NAME.search(basename):
        return FileOutcome(
            filename=label,
            status=SKIPPED,
            reason="skipped: not a DICOM file (a document, page or picture that accompanies the study)",
        )
    if data.startswith(b"PK\x03\x04"):
        return quarantine(source=source, filename=label, data=data, reason=NESTED_ARCHIVE_REASON)
    return data
