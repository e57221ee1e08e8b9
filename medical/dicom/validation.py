"""Accept or reject uploaded bytes as DICOM, one file at a time, with a reason a person can act on.

`read_dicom` never lets a parser exception escape: whatever the bytes, the caller gets a pydicom
Dataset or a `DicomRejected` carrying a short reason. Reasons never echo attribute values, since a
rejected file may still carry patient identity. `iter_zip_members` unpacks an uploaded archive
with limits on member count, sizes and compression ratio, and refuses unsafe member names.
"""

from __future__ import annotations

import io
import re
import stat
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

from medical.dicom.structure import EncodingError, check_encoding, file_meta_end

MAX_FILE_BYTES = 1 << 30
# A deflated data set may expand to this many times its compressed size (at least the floor, at
# most the upload limit): real images deflate a few times; a 98 KB bomb asked for 96 MiB.
DEFLATE_MAX_RATIO = 50
DEFLATE_FLOOR_BYTES = 16 << 20
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
_UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DICOMDIR_REASON = "this is a DICOMDIR index, not an image; upload the image files it lists"


class UploadRejected(Exception):
    """Base for uploads refused with a reason meant for the person who uploaded them."""

    def __init__(self, reason: str, *, filename: str = "") -> None:
        super().__init__(f"{filename}: {reason}" if filename else reason)
        self.reason = reason
        self.filename = filename


class DicomRejected(UploadRejected):
    """One file is not an acceptable DICOM instance."""


class ArchiveRejected(UploadRejected):
    """A whole archive is refused (unsafe or oversized); none of its members should be kept."""


def read_dicom(
    data: bytes, *, filename: str, allow_raw_dataset: bool = False, max_bytes: int = MAX_FILE_BYTES
) -> Dataset:
    """Parse one uploaded file into a fully read Dataset or raise DicomRejected.

    Part-10 files are read as they are. Files without the 128-byte preamble are accepted as well
    when the data set parses and carries its identifying UIDs (real archives hold them, and pydicom,
    dcmtk and Orthanc read them): a file that starts with "DICM" or with its file meta (group
    0002), or a bare data set whose first element is in group 0008 (given synthesized file meta).
    `lacks_preamble` tells the caller to say so in the result. `allow_raw_dataset` is kept for
    callers that pass it; bare data sets are accepted either way.
    """
    try:
        with warnings.catch_warnings():
            # pydicom warns about every odd value; acceptance is decided by the checks below.
            warnings.simplefilter("ignore")
            return _read(bytes(data), allow_raw_dataset=allow_raw_dataset, max_bytes=max_bytes)
    except _Rejection as rejection:
        raise DicomRejected(rejection.reason, filename=filename) from None
    except Exception as exc:  # any parser failure is a property of the upload, not a bug here
        reason = f"could not be parsed as DICOM ({type(exc).__name__})"
        raise DicomRejected(reason, filename=filename) from None


class _Rejection(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _read(data: bytes, *, allow_raw_dataset: bool, max_bytes: int) -> Dataset:
    if not data:
        raise _Rejection("empty file")
    if len(data) > max_bytes:
        raise _Rejection(f"file is larger than the {max_bytes // (1 << 20)} MiB limit")
    if data[128:132] == b"DICM":
        dataset = _read_part10(data, max_bytes=max_bytes)
    elif data[:4] == b"DICM":
        dataset = _read_part10(bytes(128) + data, max_bytes=max_bytes)
    elif data[:2] == b"\x02\x00" and data[4:6].isalpha():
        dataset = _read_part10(bytes(128) + b"DICM" + data)
    elif _starts_with_group_0008(data):
        dataset = _read_raw_dataset(data)
    else:
        raise _Rejection(_not_part10_reason(data))
    for _ in dataset.iterall():
        pass  # converts every raw element now, so a value pydicom cannot decode rejects the file here
    for _ in getattr(dataset, "file_meta", None) or ():
        pass  # the file meta too (an unknown VR there failed later, in de-identification; found by fuzzing)
    _check_identity(dataset)
    _check_pixel_module(dataset)
    return dataset


def _read_part10(data: bytes, *, max_bytes: int = MAX_FILE_BYTES) -> Dataset:
    try:
        meta_end = file_meta_end(data)
    except EncodingError as exc:
        raise _Rejection(exc.reason) from None
    deflated = DeflatedExplicitVRLittleEndian.encode("ascii") in data[:meta_end]
    if deflated:
        # Before pydicom sees it: dcmread inflates a deflated data set without any bound.
        _inflate(data[meta_end:], limit=_deflate_limit(len(data) - meta_end, max_bytes))
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=False)
    except InvalidDicomError as exc:
        raise _Rejection(f"corrupt DICOM header ({_first_line(exc)})") from None
    transfer_syntax = dataset.file_meta.get("TransferSyntaxUID")
    if not transfer_syntax:
        raise _Rejection(
            "file meta information has no Transfer Syntax UID; re-export the file from its source"
        )
    transfer_syntax = UID(str(transfer_syntax))
    if not transfer_syntax.is_transfer_syntax:
        raise _Rejection("unknown transfer syntax; re-export the file uncompressed or with a standard syntax")
    if str(dataset.file_meta.get("MediaStorageSOPClassUID", "")) == MediaStorageDirectoryStorage:
        raise _Rejection(_DICOMDIR_REASON)
    body = data
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        compressed = data[meta_end:]
        body, meta_end = _inflate(compressed, limit=_deflate_limit(len(compressed), max_bytes)), 0
    try:
        check_encoding(
            body,
            offset=meta_end,
            implicit_vr=transfer_syntax.is_implicit_VR,
            little_endian=transfer_syntax.is_little_endian,
        )
    except EncodingError as exc:
        raise _Rejection(f"{exc.reason}; the file is damaged, upload it again from its source") from None
    return dataset


def _read_raw_dataset(data: bytes) -> Dataset:
    dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    implicit_vr, little_endian = dataset.original_encoding
    try:
        check_encoding(data, offset=0, implicit_vr=bool(implicit_vr), little_endian=bool(little_endian))
    except EncodingError as exc:
        raise _Rejection(f"{exc.reason}; the file is damaged, upload it again from its source") from None
    if implicit_vr:
        transfer_syntax = ImplicitVRLittleEndian
    else:
        transfer_syntax = ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = transfer_syntax
    meta.MediaStorageSOPClassUID = dataset.get("SOPClassUID", "")
    meta.MediaStorageSOPInstanceUID = dataset.get("SOPInstanceUID", "")
    dataset.file_meta = meta
    return dataset


def _check_identity(dataset: Dataset) -> None:
    if str(dataset.get("SOPClassUID", "")) == MediaStorageDirectoryStorage:
        raise _Rejection(_DICOMDIR_REASON)
    missing = [keyword for keyword in REQUIRED_UIDS if not str(dataset.get(keyword, "") or "").strip()]
    if missing:
        raise _Rejection(f"missing required {', '.join(missing)}; the instance cannot be filed without them")
    for keyword in REQUIRED_UIDS:
        value = str(dataset.get(keyword)).strip().rstrip("\x00")
        if len(value) > 64 or not _UID_PATTERN.match(value):
            raise _Rejection(f"{keyword} is not a valid UID (digits and dots, at most 64 characters)")


def _check_pixel_module(dataset: Dataset) -> None:
    if "PixelData" not in dataset:
        return
    rows = _positive_int(dataset, "Rows", default=None)
    columns = _positive_int(dataset, "Columns", default=None)
    bits_allocated = _positive_int(dataset, "BitsAllocated", default=None)
    samples = _positive_int(dataset, "SamplesPerPixel", default=1)
    frames = _positive_int(dataset, "NumberOfFrames", default=1)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        return  # fragment structure was checked byte by byte; decoding is the preview's business
    if str(dataset.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        samples = 2  # 4:2:2 subsampling stores two samples per pixel
    expected = (rows * columns * frames * samples * bits_allocated + 7) // 8
    actual = len(dataset.PixelData or b"")
    if actual < expected:
        raise _Rejection(
            f"truncated: pixel data has {actual} bytes but the image attributes need {expected}; "
            "upload the complete file"
        )


def _positive_int(dataset: Dataset, keyword: str, *, default: int | None) -> int:
    value = dataset.get(keyword)
    text = "" if value is None else str(value).strip()
    if not text and default is not None:
        return default
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise _Rejection(f"{keyword} is missing or not a positive whole number, so the image cannot be read")
    return number


def _deflate_limit(compressed_bytes: int, max_bytes: int) -> int:
    return min(max_bytes, max(DEFLATE_FLOOR_BYTES, DEFLATE_MAX_RATIO * compressed_bytes))


def _inflate(compressed: bytes, *, limit: int) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        body = inflater.decompress(compressed, limit)
    except zlib.error:
        raise _Rejection("the deflated data set is corrupt; re-export the file from its source") from None
    if inflater.unconsumed_tail:
        raise _Rejection(
            f"deflated data set expands beyond {limit // (1 << 20)} MiB "
            f"({DEFLATE_MAX_RATIO}:1 its compressed size, at least {DEFLATE_FLOOR_BYTES >> 20} MiB): "
            "a decompression bomb, or re-export it uncompressed"
        )
    return body


def lacks_preamble(data: bytes) -> bool:
    """True for bytes `read_dicom` accepts without the Part-10 preamble and 'DICM' prefix."""
    return data[128:132] != b"DICM"


PREAMBLE_NOTE = (
    "stored without a preamble: the file has no 128-byte preamble and 'DICM' prefix, "
    "but its data set parsed and carries its identifying UIDs"
)


def _starts_with_group_0008(data: bytes) -> bool:
    return len(data) >= 8 and data[0:2] in (b"\x08\x00", b"\x00\x08")


def _not_part10_reason(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        return "this is a ZIP archive, not a DICOM file; upload it as an archive"
    if data.startswith(b"\x1f\x8b"):
        return "this file is gzip-compressed; decompress it before uploading"
    if data.lstrip()[:1] in (b"{", b"["):
        return "DICOM JSON is not accepted; upload DICOM Part-10 files"
    return (
        "not a DICOM file (no 'DICM' marker at byte 128 and no DICOM data set at the start); "
        "export it from the PACS or viewer as DICOM Part-10"
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------- archives

MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_TOTAL_BYTES = 8 << 30
MAX_COMPRESSION_RATIO = 200
# Small members compress well for innocent reasons (blank images); the ratio check starts above this.
_RATIO_CHECK_FLOOR = 1 << 20
_READ_CHUNK = 1 << 20
_SKIPPED_BASENAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def iter_zip_members(
    zip_bytes: bytes,
    *,
    max_members: int = MAX_ARCHIVE_MEMBERS,
    max_total_bytes: int = MAX_ARCHIVE_TOTAL_BYTES,
    max_member_bytes: int = MAX_FILE_BYTES,
    max_ratio: int = MAX_COMPRESSION_RATIO,
) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) for each regular file in a ZIP archive, or raise ArchiveRejected.

    Every member header is vetted before the first member is yielded, so an unsafe archive is
    refused whole. Decompressed sizes are enforced while reading too, since headers can lie.
    Directory entries and desktop metadata (__MACOSX/, ._*, .DS_Store) are skipped.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
        members = [info for info in archive.infolist() if not _is_skipped(info)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveRejected(f"not a readable ZIP archive ({type(exc).__name__})") from None
    if len(members) > max_members:
        raise ArchiveRejected(f"archive holds {len(members)} files; the limit is {max_members}")
    declared_total = 0
    for info in members:
        _vet_member(info, max_member_bytes=max_member_bytes, max_ratio=max_ratio)
        declared_total += info.file_size
    if declared_total > max_total_bytes:
        raise ArchiveRejected(f"archive expands to more than the {max_total_bytes >> 30} GiB limit")
    read_total = 0
    for info in members:
        data = _read_member(archive, info)
        read_total += len(data)
        if read_total > max_total_bytes:
            raise ArchiveRejected(f"archive expands to more than the {max_total_bytes >> 30} GiB limit")
        yield info.filename, data


def _is_skipped(info: zipfile.ZipInfo) -> bool:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    return bool(
        info.is_dir()
        or (path.parts and path.parts[0] == "__MACOSX")
        or path.name.startswith("._")
        or path.name in _SKIPPED_BASENAMES
    )


def _vet_member(info: zipfile.ZipInfo, *, max_member_bytes: int, max_ratio: int) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", name)
        or ".." in parts
    ):
        raise ArchiveRejected(f"unsafe member name {name!r} (absolute path or '..'); archive refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveRejected(f"member {name!r} is a symbolic link; archive refused")
    if info.flag_bits & 0x1:
        raise ArchiveRejected(f"member {name!r} is encrypted; upload an unencrypted archive")
    if info.file_size > max_member_bytes:
        raise ArchiveRejected(f"member {name!r} expands beyond the per-file limit; archive refused")
    if info.file_size > _RATIO_CHECK_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
        raise ArchiveRejected(f"member {name!r} has a compression ratio above {max_ratio}:1 (zip bomb?)")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    chunks, size = [], 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_READ_CHUNK):
                size += len(chunk)
                if size > info.file_size:
                    raise ArchiveRejected(f"member {info.filename!r} expands beyond its declared size")
                chunks.append(chunk)
    except (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        NotImplementedError,
        ValueError,
        RuntimeError,
    ) as exc:
        # ValueError: a header offset that points before the archive ("negative seek value"), found by fuzzing
        raise ArchiveRejected(f"member {info.filename!r} is corrupt ({type(exc).__name__})") from None
    return b"".join(chunks)
