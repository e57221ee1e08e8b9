"""EncryptedFileStore: byte-identical round trips, nothing readable on disk, names bound to content."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pydicom
import pytest

from vault.errors import TamperedError, VaultError
from vault.storage import EncryptedFileStore

pytestmark = pytest.mark.django_db
DICOM_FILE = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"


@pytest.fixture
def store(tmp_path):
    return EncryptedFileStore(tmp_path / "originals", key_name="medical-originals")


def test_round_trip_is_byte_identical(store, tmp_path):
    original = DICOM_FILE.read_bytes()
    store.put("studies/1.2.3/CT_small.dcm", original, context=b"study:1.2.3")
    stored = tmp_path / "originals" / "studies" / "1.2.3" / "CT_small.dcm"
    assert store.get("studies/1.2.3/CT_small.dcm", context=b"study:1.2.3") == original
    assert original[128:132] == b"DICM" and b"DICM" not in stored.read_bytes()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert store.exists("studies/1.2.3/CT_small.dcm")


def test_put_replaces_atomically_without_leftovers(store, tmp_path):
    data = os.urandom(300_000)
    store.put("a.bin", b"first version")
    store.put("a.bin", data)
    assert store.get("a.bin") == data
    assert sorted(path.name for path in (tmp_path / "originals").iterdir()) == ["a.bin"]


def test_file_moved_to_another_name_does_not_open(store, tmp_path):
    store.put("patient-a.dcm", b"A's images")
    root = tmp_path / "originals"
    shutil.copyfile(root / "patient-a.dcm", root / "patient-b.dcm")
    with pytest.raises(TamperedError):
        store.get("patient-b.dcm")


def test_wrong_context_and_tampered_file_fail(store, tmp_path):
    store.put("x.dcm", b"pixels", context=b"study:1")
    with pytest.raises(TamperedError):
        store.get("x.dcm", context=b"study:2")
    path = tmp_path / "originals" / "x.dcm"
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(TamperedError):
        store.get("x.dcm", context=b"study:1")


def test_missing_file_and_delete(store):
    with pytest.raises(FileNotFoundError):
        store.get("never-stored.dcm")
    store.put("gone.dcm", b"x")
    store.delete("gone.dcm")
    assert not store.exists("gone.dcm")


@pytest.mark.parametrize("name", ["", "../escape.dcm", "/etc/passwd", "a/../b", "studies/.hidden", "a b.dcm"])
def test_unsafe_names_are_refused(store, name):
    with pytest.raises(VaultError, match="name"):
        store.put(name, b"x")
