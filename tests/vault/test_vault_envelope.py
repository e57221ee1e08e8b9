"""Envelope encryption: a fresh data key per object, the KEK wraps it, the context is authenticated."""

from __future__ import annotations

import json
import os
import struct

import pytest

from vault.envelope import open_sealed, seal, seal_many
from vault.errors import KeyNotFoundError, SealedDataError, TamperedError, VaultError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"x", b"PatientName=DOE^JOHN", os.urandom(100_000)],
    ids=["empty", "one", "text", "100k"],
)
def test_round_trip(plaintext):
    sealed = seal(plaintext, context=b"study:1.2.3")
    assert open_sealed(sealed, context=b"study:1.2.3") == plaintext
    if len(plaintext) > 8:
        assert plaintext[:16] not in sealed


def test_each_seal_uses_a_fresh_data_key():
    first, second = seal(b"same", context=b"c"), seal(b"same", context=b"c")
    assert first != second
    header = lambda blob: json.loads(blob[9 : 9 + struct.unpack(">I", blob[5:9])[0]])  # noqa: E731
    assert header(first)["wrapped_key"] != header(second)["wrapped_key"]
    assert header(first)["kek"] == "default" and header(first)["provider"] == "local"


def test_header_is_self_describing():
    sealed = seal(b"data", key_name="medical-originals")
    assert sealed[:4] == b"SVLT" and sealed[4] == 2
    length = struct.unpack(">I", sealed[5:9])[0]
    header = json.loads(sealed[9 : 9 + length])
    assert set(header) == {"alg", "kek", "kek_alg", "kek_id", "nonce", "provider", "wrapped_key"}
    assert header["kek"] == "medical-originals" and header["alg"] == "AES-256-GCM"
    assert open_sealed(sealed) == b"data"


def test_wrong_context_fails():
    sealed = seal(b"secret", context=b"study:1")
    with pytest.raises(TamperedError, match="context differs"):
        open_sealed(sealed, context=b"study:2")
    with pytest.raises(TamperedError):
        open_sealed(sealed)


def test_any_changed_byte_fails():
    """Every single-bit change fails: as tampering, or (in the header) as a key or format the vault lacks."""
    sealed = seal(b"patient data", context=b"ctx")
    for position in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(VaultError):
            open_sealed(bytes(tampered), context=b"ctx")
    body_start = len(sealed) - len(b"patient data") - 16
    for position in range(body_start, len(sealed)):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(TamperedError):
            open_sealed(bytes(tampered), context=b"ctx")
    with pytest.raises(SealedDataError):
        open_sealed(sealed[:-1], context=b"ctx")
    with pytest.raises(SealedDataError, match="too short"):
        open_sealed(b"SV", context=b"ctx")


def test_blob_sealed_under_a_key_the_vault_does_not_hold(settings, tmp_path):
    sealed = seal(b"data", key_name="elsewhere")
    settings.VAULT_KEY_DIR = tmp_path / "other-vault"
    with pytest.raises(KeyNotFoundError):
        open_sealed(sealed)
    assert not (tmp_path / "other-vault" / "elsewhere.kek").exists()


def test_inputs_must_be_bytes():
    with pytest.raises(TypeError, match="plaintext must be bytes"):
        seal("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="context must be bytes"):
        open_sealed(seal(b"x"), context="ctx")  # type: ignore[arg-type]


def test_seal_many_seals_each_under_its_own_data_key():
    blobs = seal_many([b"same", b"same", b"other"], context=b"names")
    assert [open_sealed(b, context=b"names") for b in blobs] == [b"same", b"same", b"other"]
    assert len(set(blobs)) == 3
    assert blobs[0][-32:] != blobs[1][-32:]  # fresh data key and nonce: different ciphertexts
    with pytest.raises(TamperedError):
        open_sealed(blobs[0], context=b"other context")
    assert seal_many([], context=b"names") == []
