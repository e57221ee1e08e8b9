"""Errors raised by the vault. All derive from VaultError so callers can catch one type."""


class VaultError(Exception):
    """A key or sealed object could not be used."""


class KeyNotFoundError(VaultError):
    """A key was asked for by name without permission to create it, and it does not exist."""


class SealedDataError(VaultError):
    """A sealed blob is not in a format this vault can read (wrong magic, version or header)."""


class TamperedError(SealedDataError):
    """A sealed blob failed authentication: it was modified, or opened with a different context or key."""
