"""read_dicom accepts sound files and rejects everything else with a reason; iter_zip_members is safe."""

from __future__ import annotations

import io
import random
import stat
import zipfile

import pydicom
import pytest

from medical.dicom import ArchiveRejected, DicomRejected, iter_zip_members, lacks_preamble, read_dicom
from tests.medical.dicom_files import all_test_files, file_bytes

# Deliberately broken or non-image files in the pydicom wheel, with the reason each must get.
BROKEN = {
    "MR_truncated.dcm": "truncated",
    "rtplan_truncated.dcm": "truncated",
    "badVR.dcm": "NumberOfFrames",
    "no_meta.dcm": "Part-10",
    "no_meta_group_length.dcm": "missing required",
    "meta_missing_tsyntax.dcm": "Transfer Syntax",
    "dicomdirtests/DICOMDIR": "DICOMDIR",
    "dicomdirtests/DICOMDIR-nooffset": "DICOMDIR",
    "dicomdirtests/TINY_ALPHA/DICOMDIR": "DICOMDIR",
    "UN_sequence.dcm": "missing required",
    "nested_priv_SQ.dcm": "missing required",
    "JPEGLSNearLossless_08.dcm": "StudyInstanceUID",
    "README.txt": "Part-10",
    "crayons.icc": "Part-10",
    "zipMR.gz": "gzip",
    "test1.json": "JSON",
}
SOUND = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_RLE.dcm",
    "image_dfl.dcm",
    "rtdose.dcm",
    "rtplan.dcm",
    "test-SR.dcm",
    "examples_ybr_color.dcm",
    "SC_rgb_jpeg.dcm",  # implicit VR under an explicit transfer syntax: pydicom and the walker both cope
    "dicomdirtests/77654033/CT2/17106",
]


@pytest.mark.parametrize("relative", all_test_files())
def test_every_shipped_file_is_read_or_rejected_with_a_reason(relative):
    try:
        dataset = read_dicom(file_bytes(relative), filename=relative)
    except DicomRejected as rejection:
        assert rejection.reason
        assert str(rejection).startswith(relative)
    else:
        assert isinstance(dataset, pydicom.Dataset)
        assert dataset.SOPInstanceUID and dataset.StudyInstanceUID


@pytest.mark.parametrize(("relative", "reason"), sorted(BROKEN.items()))
def test_broken_files_are_rejected_with_the_right_reason(relative, reason):
    with pytest.raises(DicomRejected) as rejected:
        read_dicom(file_bytes(relative), filename=relative)
    assert reason in rejected.value.reason


@pytest.mark.parametrize("relative", SOUND)
def test_sound_files_are_accepted(relative):
    dataset = read_dicom(file_bytes(relative), filename=relative)
    assert dataset.file_meta.TransferSyntaxUID


def test_reasons_never_echo_patient_identity():
    rejected = []
    for relative in ("MR_truncated.dcm", "rtplan_truncated.dcm", "badVR.dcm"):
        with pytest.raises(DicomRejected) as caught:
            read_dicom(file_bytes(relative), filename=relative)
        rejected.append(caught.value.reason)
    original = pydicom.dcmread(io.BytesIO(file_bytes("MR_truncated.dcm")))
    assert all(str(original.PatientName) not in reason for reason in rejected)


def test_data_sets_without_a_preamble_are_accepted_when_they_parse_and_carry_their_uids():
    data = file_bytes("ExplVR_LitEndNoMeta.dcm")
    assert lacks_preamble(data)
    dataset = read_dicom(data, filename="raw.dcm")
    big_endian = read_dicom(file_bytes("ExplVR_BigEndNoMeta.dcm"), filename="big.dcm")
    assert dataset.SOPInstanceUID == big_endian.SOPInstanceUID
    assert dataset.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert big_endian.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRBigEndian
    assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert read_dicom(file_bytes("rtstruct.dcm"), filename="rtstruct.dcm").Modality == "RTSTRUCT"
    # A Part-10 file cut before "DICM" or before its file meta still reads, with its own meta.
    part10 = file_bytes("CT_small.dcm")
    for headless in (part10[128:], part10[132:]):
        assert lacks_preamble(headless)
        read = read_dicom(headless, filename="headless.dcm")
        assert read.SOPInstanceUID == pydicom.dcmread(io.BytesIO(part10)).SOPInstanceUID
        assert read.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert not lacks_preamble(part10)
    # no_meta.dcm starts with a stray byte before its first element; a bare data set without its
    # identifying UIDs is no instance: both still refused.
    with pytest.raises(DicomRejected, match="Part-10"):
        read_dicom(file_bytes("no_meta.dcm"), filename="no_meta.dcm")
    without_uids = pydicom.dcmread(io.BytesIO(data), force=True)
    del without_uids.StudyInstanceUID
    buffer = io.BytesIO()
    without_uids.save_as(buffer, enforce_file_format=False)
    with pytest.raises(DicomRejected, match="StudyInstanceUID"):
        read_dicom(buffer.getvalue(), filename="no-uids.dcm")


@pytest.mark.parametrize("relative", ["CT_small.dcm", "rtplan.dcm", "examples_jpeg2k.dcm"])
def test_every_cut_inside_the_last_element_is_rejected(relative):
    data = file_bytes(relative)
    dataset = read_dicom(data, filename=relative)
    last = list(dataset)[-1]
    last_length = len(last.value) if isinstance(last.value, bytes) else 8
    start = len(data) - last_length
    for cut in range(start + 1, len(data), max(1, last_length // 40)):
        with pytest.raises(DicomRejected):
            read_dicom(data[:cut], filename=relative)


@pytest.mark.parametrize("relative", ["CT_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "image_dfl.dcm"])
def test_mutated_bytes_never_raise_anything_but_a_rejection(relative):
    data = file_bytes(relative)
    generator = random.Random(relative)
    for _ in range(150):
        mutated = bytearray(data)
        for _ in range(generator.randint(1, 12)):
            position = generator.randrange(128, len(mutated))
            mutated[position] = generator.randrange(256)
        cut = generator.choice([len(mutated), generator.randrange(132, len(mutated))])
        try:
            read_dicom(bytes(mutated[:cut]), filename=relative)
        except DicomRejected as rejection:
            assert rejection.reason


def test_random_bytes_and_fake_headers_are_rejected():
    generator = random.Random(7)
    for size in (0, 1, 4, 131, 132, 200, 5000):
        noise = bytes(generator.randrange(256) for _ in range(size))
        for data in (noise, b"\x00" * 128 + b"DICM" + noise):
            with pytest.raises(DicomRejected):
                read_dicom(data, filename="noise.bin")


def test_oversized_files_are_rejected_before_parsing():
    with pytest.raises(DicomRejected) as rejected:
        read_dicom(file_bytes("CT_small.dcm"), filename="CT_small.dcm", max_bytes=1024)
    assert "limit" in rejected.value.reason


# ------------------------------------------------------------------------------------------------ archives


def _zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_members_are_yielded_and_desktop_clutter_is_skipped():
    ct, mr = file_bytes("CT_small.dcm"), file_bytes("MR_small.dcm")
    data = _zip(
        {"study/ct.dcm": ct, "study/mr.dcm": mr, "__MACOSX/study/._ct.dcm": b"junk", ".DS_Store": b"x"}
    )
    members = list(iter_zip_members(data))
    assert [name for name, _ in members] == ["study/ct.dcm", "study/mr.dcm"]
    datasets = [read_dicom(payload, filename=name) for name, payload in members]
    assert [str(dataset.Modality) for dataset in datasets] == ["CT", "MR"]


@pytest.mark.parametrize(
    "name", ["../evil.dcm", "study/../../evil.dcm", "/etc/passwd", "C:/evil.dcm", "..\\evil.dcm"]
)
def test_zip_path_traversal_is_refused(name):
    data = _zip({"ok.dcm": b"fine", name: b"evil"})
    with pytest.raises(ArchiveRejected) as rejected:
        list(iter_zip_members(data))
    assert "unsafe member name" in rejected.value.reason


def test_zip_with_too_many_members_is_refused_before_anything_is_yielded():
    data = _zip({f"{index}.dcm": b"x" for index in range(4)})
    members = iter_zip_members(data, max_members=3)
    with pytest.raises(ArchiveRejected) as rejected:
        next(members)
    assert "4 files" in rejected.value.reason


def test_zip_bomb_is_refused_by_compression_ratio():
    data = _zip({"bomb.dcm": b"\x00" * (8 << 20)})
    assert len(data) < 100_000
    with pytest.raises(ArchiveRejected) as rejected:
        list(iter_zip_members(data))
    assert "compression ratio" in rejected.value.reason


def test_zip_total_and_member_size_limits():
    data = _zip({"a.dcm": b"a" * 5000, "b.dcm": b"b" * 5000}, compression=zipfile.ZIP_STORED)
    with pytest.raises(ArchiveRejected):
        list(iter_zip_members(data, max_total_bytes=8000))
    with pytest.raises(ArchiveRejected):
        list(iter_zip_members(data, max_member_bytes=4000))
    assert len(list(iter_zip_members(data, max_total_bytes=10_000, max_member_bytes=5000))) == 2


def test_zip_symlinks_are_refused():
    link = zipfile.ZipInfo("link.dcm")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(link, b"/etc/passwd")
    with pytest.raises(ArchiveRejected) as rejected:
        list(iter_zip_members(buffer.getvalue()))
    assert "symbolic link" in rejected.value.reason


def test_zip_encrypted_members_are_refused():
    # zipfile cannot write encrypted members: set the "encrypted" flag bit in both headers by hand.
    data = bytearray(_zip({"secret.dcm": b"payload"}))
    data[data.index(b"PK\x03\x04") + 6] |= 0x1
    data[data.index(b"PK\x01\x02") + 8] |= 0x1
    with pytest.raises(ArchiveRejected) as rejected:
        list(iter_zip_members(bytes(data)))
    assert "encrypted" in rejected.value.reason


def test_not_a_zip_is_refused():
    with pytest.raises(ArchiveRejected):
        list(iter_zip_members(file_bytes("CT_small.dcm")))
