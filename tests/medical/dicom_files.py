"""The real DICOM files that ship inside the pydicom wheel, read by path, and the QA question sets.

Never call pydicom.data.get_testdata_file for these: for a file that is not shipped it tries to
download and hangs on retries without a network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom

from medical.dicom import read_dicom

TEST_FILES = Path(pydicom.__file__).resolve().parent / "data" / "test_files"
SHARED_QA = Path(__file__).resolve().parents[3] / "shared" / "data" / "dicom_qa" / "dev_questions.jsonl"
UNSEEN_QA = Path(__file__).resolve().parent / "data" / "unseen_questions.jsonl"
SECOND_QA = Path(__file__).resolve().parent / "data" / "second_questions.jsonl"
UID_KEY = b"test-key-0123456789abcdef"


def all_test_files() -> list[str]:
    return sorted(str(path.relative_to(TEST_FILES)) for path in TEST_FILES.rglob("*") if path.is_file())


def file_bytes(relative: str) -> bytes:
    return (TEST_FILES / relative).read_bytes()


def read_test_file(relative: str) -> pydicom.Dataset:
    return read_dicom(file_bytes(relative), filename=relative)


def load_questions(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
