"""Envelope encryption: each object gets its own AES-256-GCM data key, wrapped by a named KEK.

Sealed layout (version 1), all lengths big-endian:

    b"SVLT" | version (1 byte) | header length (4 bytes) | header | ciphertext || GCM tag

The header is canonical JSON (sorted keys, compact, UTF-8) naming everything needed to open the
blob: provider, KEK name and fingerprint, wrapped data key and nonce (base64). The whole prefix
(magic, version, length, header) plus the caller's `context` is the GCM additional data, so a
changed header, a swapped wrapped key or a different context all fail authentication. Use the
context to bind a blob to where it belongs (a study UID, a file name), so it cannot be replayed
elsewhere.

Rotating a KEK only needs the small wrapped keys re-wrapped, never the data re-encrypted.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import SealedDataError, TamperedError
from vault.keys import get_key_provider

MAGIC = b"SVLT"
FORMAT_VERSION = 1
DATA_ALGORITHM = "AES-256-GCM"
_PREFIX = struct.Struct(">4sBI")
_NONCE_BYTES = 12
_MAX_HEADER_BYTES = 64 * 1024


def seal(plaintext: bytes, *, key_name: str = "default", context: bytes = b"") -> bytes:
    """Encrypt `plaintext` under a fresh data key wrapped by KEK `key_name` (created on first use)."""
    plaintext = _require_bytes(plaintext, "plaintext")
    context = _require_bytes(context, "context")
    provider = get_key_provider()
    kek = provider.kek(key_name)
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE_BYTES)
    header = {
        "alg": DATA_ALGORITHM,
        "kek": kek.name,
        "kek_alg": kek.algorithm,
        "kek_id": kek.key_id,
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "provider": provider.name,
        "wrapped_key": base64.b64encode(kek.wrap(data_key)).decode("ascii"),
    }
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes
    return prefix + AESGCM(data_key).encrypt(nonce, plaintext, prefix + context)


def open_sealed(blob: bytes, *, context: bytes = b"") -> bytes:
    """Decrypt a blob made by `seal`, with the same context. Raises TamperedError if it does not authenticate."""
    blob = _require_bytes(blob, "blob")
    context = _require_bytes(context, "context")
    header, prefix, ciphertext = _parse(blob)
    provider = get_key_provider()
    if header["provider"] != provider.name:
        raise SealedDataError(
            f"This blob was sealed by key provider {header['provider']!r}, but VAULT_KEY_PROVIDER "
            f"is {provider.name!r}: migrate the KEK or switch the provider back."
        )
    kek = provider.kek(header["kek"], create=False)
    if kek.key_id != header["kek_id"]:
        raise TamperedError(
            f"This blob was sealed with a different KEK named {header['kek']!r} "
            f"(fingerprint {header['kek_id']}, the vault holds {kek.key_id})."
        )
    data_key = kek.unwrap(header["wrapped_key"])
    try:
        return AESGCM(data_key).decrypt(header["nonce"], ciphertext, prefix + context)
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
    if version != FORMAT_VERSION:
        raise SealedDataError(
            f"Sealed format version {version} is not supported (this vault reads {FORMAT_VERSION})."
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
    return header, prefix, blob[len(prefix) :]


def _require_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}.")
    return bytes(value)
