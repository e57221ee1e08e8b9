"""Where the medical app keeps bytes: de-identified copies and previews under MEDIA_ROOT, identified
originals and quarantined uploads sealed by the vault under MEDICAL_DATA_DIR.

Names are built from department codes and de-identified UIDs only, never from anything a sender
wrote, so a name cannot carry patient identity or escape its folder. MEDIA_ROOT is not served
directly: every read goes through a view that asks the access policy first.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from medical import conf
from medical.keys import SEALED_KEY_CONTEXT, SEALED_KEY_FILE
from vault.storage import EncryptedFileStore

ORIGINALS_KEK = "medical-originals"
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _segment(value: str) -> str:
    if not _SAFE_SEGMENT.match(value or ""):
        raise ValueError(f"{value!r} cannot be used in a stored file name")
    return value


def deidentified_name(*, department: str, study_uid: str, series_uid: str, sop_uid: str) -> str:
    parts = ("medical", "deidentified", department, study_uid, series_uid, f"{sop_uid}.dcm")
    return "/".join(_segment(part) for part in parts)


def preview_name(*, department: str, sop_uid: str) -> str:
    return "/".join(_segment(part) for part in ("medical", "previews", department, f"{sop_uid}.png"))


def frames_folder(*, department: str, sop_uid: str) -> str:
    """The viewer's frame cache folder of one instance, relative to MEDICAL_FRAME_CACHE_DIR."""
    return "/".join(_segment(part) for part in (department, sop_uid))


def original_name(*, department: str, study_uid: str, sop_uid: str) -> str:
    return "/".join(_segment(part) for part in ("originals", department, study_uid, f"{sop_uid}.dcm"))


def original_context(*, department: str, sop_uid: str) -> bytes:
    """Binds a sealed original to its department and instance: it cannot be replayed as another."""
    return f"medical/original/{department}/{sop_uid}".encode()


def media_path(name: str) -> Path:
    return conf.media_root().joinpath(*name.split("/"))


def write_media(name: str, data: bytes) -> None:
    """Write a file under MEDIA_ROOT atomically (a reader sees the old bytes or the new, never half)."""
    path = media_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_media(name: str) -> bytes:
    return media_path(name).read_bytes()


def delete_media(name: str) -> None:
    if name:
        media_path(name).unlink(missing_ok=True)


def sealed_store():
    """The vault's encrypted file store for originals and quarantined uploads."""
    return EncryptedFileStore(conf.data_dir(), key_name=ORIGINALS_KEK)


def quarantine_name(*, department: str, digest: str) -> str:
    return "/".join(_segment(part) for part in ("quarantine", department, f"{digest}.bin"))


def quarantine_context(*, department: str) -> bytes:
    return f"medical/quarantine/{department}".encode()


def format1_context(path: Path) -> bytes | None:
    """What a sealed file under the data directory was sealed with, read from its path alone (for
    vault.rotation, which re-seals files of the vault's format 1 with it); None for other files."""
    try:
        parts = Path(path).resolve().relative_to(conf.data_dir().resolve()).parts
    except ValueError:
        return None
    if parts == (SEALED_KEY_FILE,):
        return SEALED_KEY_CONTEXT  # sealed on its own (medical.keys), not through the file store
    if len(parts) == 4 and parts[0] == "originals" and parts[3].endswith(".dcm"):
        context = original_context(department=parts[1], sop_uid=parts[3].removesuffix(".dcm"))
    elif len(parts) == 3 and parts[0] == "quarantine":
        context = quarantine_context(department=parts[1])
    else:
        return None
    return EncryptedFileStore.sealed_context("/".join(parts), context)
