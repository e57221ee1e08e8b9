"""The secret behind keyed UIDs and patient pseudonyms.

Every ingestion path (portal, API, DICOM network) and every process must use the same key, and
it must survive restarts: otherwise the same study would get new UIDs on its next upload and
split in two. A site may set DICOM_UID_KEY; by default the suite generates a random 256-bit key
once and keeps it sealed by the vault (envelope encryption under the KEK "medical-dicom-uid"),
so the key is as safe as the vault's keys (an HSM in production) and never sits on disk in clear.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from medical import conf

KEK_NAME = "medical-dicom-uid"
SEALED_KEY_FILE = "dicom-uid-key.sealed"
SEALED_KEY_CONTEXT = b"medical/dicom-uid-key/v1"
_CONTEXT = SEALED_KEY_CONTEXT
_lock = threading.Lock()
_cache: dict[str, bytes] = {}


def dicom_uid_key() -> bytes:
    configured = getattr(settings, "DICOM_UID_KEY", "") or ""
    if configured:
        key = configured.encode("utf-8") if isinstance(configured, str) else bytes(configured)
        if len(key) < 16:
            raise ImproperlyConfigured("DICOM_UID_KEY must be at least 16 bytes of secret.")
        return key
    path = conf.data_dir() / SEALED_KEY_FILE
    with _lock:
        if str(path) not in _cache:
            _cache[str(path)] = _sealed_key(path)
        return _cache[str(path)]


def _sealed_key(path: Path) -> bytes:
    from vault.envelope import open_sealed, seal
    from vault.errors import VaultError

    if not path.exists():
        sealed = seal(secrets.token_bytes(32), key_name=KEK_NAME, context=_CONTEXT)
        _create_once(path, sealed)
    try:
        return open_sealed(path.read_bytes(), context=_CONTEXT)
    except VaultError as exc:
        # Never silently make a new key: every stored UID and pseudonym would stop matching.
        raise ImproperlyConfigured(
            f"The DICOM UID key {path} cannot be opened with the vault's keys ({exc}). Restore the vault "
            "key directory it was sealed with, or set DICOM_UID_KEY to the original secret."
        ) from exc


def _create_once(path: Path, content: bytes) -> None:
    """Write `path` unless it exists; when two processes race, the first link wins and both read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
