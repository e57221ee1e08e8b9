"""Envelope encryption: each object gets its own AES-256-GCM data key, wrapped by a named KEK.

Sealed layout, all lengths big-endian:

    b"SVLT" | version (1 byte) | header length (4 bytes) | header | ciphertext || GCM tag

The header is canonical JSON (sorted keys, compact, UTF-8) naming everything needed to open the
blob: provider, KEK name and fingerprint, wrapped data key and nonce (base64).

Version 2 (written now): the GCM additional data is the magic, the version, the algorithm, the
nonce and the caller's `context`. The KEK fields and the wrapped key are not in it, so a KEK
rotation re-wraps the small data key (`rewrap`) without the context and without touching the
ciphertext. They are still authenticated: the wrapped key only unwraps under the KEK it names
(AES-GCM with the KEK name as additional data), and a data key swapped in from another blob
fails the data's own tag. Version 1 (read only): the whole prefix plus context was the additional
data, so such a blob can be re-wrapped only by re-sealing it with its context.

Use the context to bind a blob to where it belongs (a study UID, a file name), so it cannot be
replayed elsewhere. New data keys are wrapped by the newest version of the KEK (vault.keys.active_kek).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import KeyNotFoundError, SealedDataError, TamperedError
from vault.keys import active_kek, get_key_provider
from vault.models import SealedCopy

MAGIC = b"SVLT"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
DATA_ALGORITHM = "AES-256-GCM"
_PREFIX = struct.Struct(">4sBI")
_NONCE_BYTES = 12
_MAX_HEADER_BYTES = 64 * 1024


def seal(plaintext: bytes, *, key_name: str = "default", context: bytes = b"") -> bytes:
    """Encrypt `plaintext` under a fresh data key wrapped by KEK `key_name` (created on first use)."""
    plaintext = _require_bytes(plaintext, "plaintext")
    context = _require_bytes(context, "context")
    provider = get_key_provider()
    return _seal_under(active_kek(provider, key_name), provider.name, plaintext, context)


def seal_many(plaintexts: list[bytes], *, key_name: str = "default", context: bytes = b"") -> list[bytes]:
    """``seal`` for each of ``plaintexts`` (same context), with the KEK looked up once: each still
    gets its own data key and nonce. For services sealing thousands of fields in one batch."""
    plaintexts = [_require_bytes(p, "plaintext") for p in plaintexts]
    context = _require_bytes(context, "context")
    if not plaintexts:
        return []
    provider = get_key_provider()
    kek = active_kek(provider, key_name)
    return [_seal_under(kek, provider.name, p, context) for p in plaintexts]


def _seal_under(kek, provider_name: str, plaintext: bytes, context: bytes) -> bytes:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE_BYTES)
    prefix = _prefix(kek, provider_name, nonce, kek.wrap(data_key))
    return prefix + AESGCM(data_key).encrypt(nonce, plaintext, _fixed_aad(nonce) + context)


def rewrap(blob: bytes, *, kek, source_provider=None) -> bytes:
    """The same sealed object with its data key re-wrapped by `kek` (a newer KEK version of the
    configured provider). source_provider: the provider the blob was sealed by, when it is another
    one (moving from the local key directory to an HSM); by default the configured provider.

    Needs neither the context nor the data's decryption: only the small wrapped key changes.
    SealedDataError for a version 1 blob (re-seal it with its context instead).
    """
    blob = _require_bytes(blob, "blob")
    header, prefix, ciphertext = _parse(blob)
    if header["version"] != 2:
        raise SealedDataError("A version 1 sealed blob cannot be re-wrapped: re-seal it with its context.")
    data_key = _unwrap(header, source_provider)
    provider = get_key_provider()
    return _prefix(kek, provider.name, header["nonce"], kek.wrap(data_key)) + ciphertext


def reseal(blob: bytes, *, kek, context: bytes, source_provider=None) -> bytes:
    """A version 1 blob (or any other) opened with its `context` and sealed again under `kek` in
    format 2, with a fresh data key and nonce (a key and nonce are never reused for new additional
    data). How a rotation moves format 1 blobs, whose wrapped key their own tag authenticates.
    TamperedError when the context is not the one the blob was sealed with.
    """
    blob = _require_bytes(blob, "blob")
    context = _require_bytes(context, "context")
    plaintext = _decrypt(blob, context, source_provider)
    return _seal_under(kek, get_key_provider().name, plaintext, context)


def sealed_header(blob: bytes) -> dict:
    """The header of a sealed blob (kek, kek_id, provider, version, ...); SealedDataError if it is not one."""
    header, _, _ = _parse(_require_bytes(blob, "blob"))
    return header


def _prefix(kek, provider_name: str, nonce: bytes, wrapped_key: bytes) -> bytes:
    header = {
        "alg": DATA_ALGORITHM,
        "kek": kek.name,
        "kek_alg": kek.algorithm,
        "kek_id": kek.key_id,
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "provider": provider_name,
        "wrapped_key": base64.b64encode(wrapped_key).decode("ascii"),
    }
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes


def _fixed_aad(nonce: bytes) -> bytes:
    """What version 2 authenticates besides the context: everything a re-wrap leaves unchanged."""
    return MAGIC + bytes([2]) + DATA_ALGORITHM.encode("ascii") + b"\x00" + nonce


def _unwrap(header: dict, provider=None) -> bytes:
    provider = provider or get_key_provider()
    if header["provider"] != provider.name:
        raise SealedDataError(
            f"This blob was sealed by key provider {header['provider']!r}, but VAULT_KEY_PROVIDER "
            f"is {provider.name!r}: migrate the KEK or switch the provider back."
        )
    kek = provider.kek(header["kek"], create=False)
    if kek.key_id != header["kek_id"] or kek.algorithm != header.get("kek_alg"):
        raise TamperedError(
            f"This blob was sealed with a different KEK named {header['kek']!r} "
            f"(fingerprint {header['kek_id']}, the vault holds {kek.key_id})."
        )
    return kek.unwrap(header["wrapped_key"])


def open_sealed(blob: bytes, *, context: bytes = b"") -> bytes:
    """Decrypt a blob made by `seal`, with the same context. Raises TamperedError if it does not authenticate.

    A blob whose KEK version is gone (destroyed after a rotation, or in the provider the data moved
    from) opens through its re-wrapped copy when a rotation made one (vault.models.SealedCopy: blobs
    inside append-only trail payloads); otherwise the original error stands.
    """
    blob, context = _require_bytes(blob, "blob"), _require_bytes(context, "context")
    try:
        return _decrypt(blob, context)
    except TamperedError:
        raise
    except (KeyNotFoundError, SealedDataError):
        try:
            _parse(blob)
        except SealedDataError:
            raise  # not a sealed blob at all: no copy to look for
        copy = _rewrapped_copy(bytes(blob))
        if copy is None:
            raise
        return _decrypt(copy, context)


def _rewrapped_copy(blob: bytes) -> bytes | None:
    row = SealedCopy.objects.filter(original_sha256=hashlib.sha256(blob).hexdigest()).values_list(
        "blob", flat=True
    )
    copy = row.first()
    if copy is None:
        return None
    copy = bytes(copy)
    header, _, ciphertext = _parse(blob)
    copy_header, _, copy_ciphertext = _parse(copy)
    if header["version"] == 2 and (copy_header["nonce"], copy_ciphertext) != (header["nonce"], ciphertext):
        raise TamperedError("The re-wrapped copy of this sealed blob holds other data: it was swapped.")
    return copy


def _decrypt(blob: bytes, context: bytes, provider=None) -> bytes:
    header, prefix, ciphertext = _parse(blob)
    data_key = _unwrap(header, provider)
    aad = prefix if header["version"] == 1 else _fixed_aad(header["nonce"])
    try:
        return AESGCM(data_key).decrypt(header["nonce"], ciphertext, aad + context)
    except InvalidTag:
        raise TamperedError(
            "Sealed data failed authentication: it was modified, or the context differs from the one "
            "it was sealed with."
        ) from None


def _parse(blob: bytes) -> tuple[dict, bytes, bytes]:
    if len(blob) < _PREFIX.size:
        raise SealedDataError("Not a sealed blob: too short.")
    magic, version, header_length = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise SealedDataError("Not a sealed blob: the magic bytes are missing.")
    if version not in READABLE_VERSIONS:
        raise SealedDataError(
            f"Sealed format version {version} is not supported (this vault reads versions 1 and 2)."
        )
    if header_length > _MAX_HEADER_BYTES or _PREFIX.size + header_length > len(blob):
        raise SealedDataError("Sealed blob is truncated or its header length is corrupt.")
    prefix = blob[: _PREFIX.size + header_length]
    try:
        header = json.loads(prefix[_PREFIX.size :].decode("utf-8"))
        if header["alg"] != DATA_ALGORITHM:
            raise SealedDataError(f"Sealed blob uses {header['alg']!r}; only {DATA_ALGORITHM} is supported.")
        header["nonce"] = base64.b64decode(header["nonce"], validate=True)
        header["wrapped_key"] = base64.b64decode(header["wrapped_key"], validate=True)
        for field in ("kek", "kek_id", "provider"):
            if not isinstance(header[field], str):
                raise TypeError(field)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, binascii.Error):
        raise SealedDataError("Sealed blob header is corrupt.") from None
    header["version"] = version
    return header, prefix, blob[len(prefix) :]


def _require_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}.")
    return bytes(value)
