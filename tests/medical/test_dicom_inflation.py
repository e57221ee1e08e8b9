"""Deflated DICOM (1.2.840.10008.1.2.1.99): a decompression bomb is refused before anything inflates it."""

from __future__ import annotations

import io
import tracemalloc
import zlib

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from medical.dicom.validation import DicomRejected, read_dicom


def _deflated_file(body: bytes, *, compress: bool = True) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    if not compress:
        return buffer.getvalue() + body
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return buffer.getvalue() + packer.compress(body) + packer.flush()


def test_a_deflate_bomb_is_refused_without_inflating_it():
    bomb = _deflated_file(b"\x00" * (96 << 20))
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(DicomRejected, match="expands beyond 16 MiB"):
            read_dicom(bomb, filename="bomb.dcm")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20, f"peak {peak >> 20} MiB while refusing a 96 MiB bomb"


def test_corrupt_deflated_data_is_a_clear_rejection():
    with pytest.raises(DicomRejected, match="deflated data set is corrupt"):
        read_dicom(_deflated_file(b"\xff" * 64, compress=False), filename="broken.dcm")


def test_an_ordinary_deflated_file_is_still_read():
    dataset = Dataset()
    dataset.PatientName = "Test^Deflate"
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality = "CT"
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    read = read_dicom(buffer.getvalue(), filename="ok.dcm")
    assert str(read.PatientName) == "Test^Deflate"
