"""Encrypted files on local disk: each file sealed on its own (see vault.envelope), written atomically.

The file's name is part of its authenticated context, so a sealed file copied or renamed onto
another name does not open there; callers add their own context (e.g. the study UID) on top.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path, PurePosixPath

from vault.envelope import open_sealed, seal
from vault.errors import VaultError
from vault.files import fsync_directory

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class EncryptedFileStore:
    """A directory of sealed files, addressed by relative names such as "studies/1.2.840/1.dcm"."""

    def __init__(self, root: Path | str, *, key_name: str = "default") -> None:
        self.root = Path(root)
        self.key_name = key_name

    def put(self, name: str, data: bytes, context: bytes = b"") -> None:
        """Seal `data` and store it under `name`, replacing any previous content in one step."""
        path = self._path(name)
        sealed = seal(data, key_name=self.key_name, context=self._context(name, context))
        self._make_private_directories(path.parent)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(sealed)
                handle.flush()
                os.fsync(handle.fileno())
            # rename is atomic: a reader sees the old file or the new one, never a partial write.
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)

    def get(self, name: str, context: bytes = b"") -> bytes:
        """The plaintext stored under `name`. Raises FileNotFoundError, or TamperedError if it was altered."""
        return open_sealed(self._path(name).read_bytes(), context=self._context(name, context))

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not name:
            raise VaultError("A stored file needs a non-empty name.")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or not all(_SEGMENT.match(part) for part in parts):
            raise VaultError(
                f"Invalid stored file name {name!r}: use a relative path whose parts are letters, digits, "
                "'.', '_' or '-' and start with a letter or digit."
            )
        return self.root.joinpath(*parts)

    @staticmethod
    def sealed_context(name: str, context: bytes = b"") -> bytes:
        """The whole context a file stored under `name` is sealed with (what vault.rotation needs to
        re-seal a format 1 file: see register_format1_context)."""
        return b"suite-vault/file/v1\x00" + name.encode("utf-8") + b"\x00" + bytes(context)

    _context = sealed_context

    def _make_private_directories(self, directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for created in reversed(missing):
            created.mkdir(mode=0o700, exist_ok=True)
