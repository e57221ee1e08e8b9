"""Key providers: where the suite's signing keys and key-encryption keys (KEKs) live.

A provider hands out key *handles* that sign, verify, wrap and unwrap; callers never see private
or secret key material. That is what lets an HSM provider (PKCS#11: the key never leaves the
token) slot in beside the local file provider: implement `KeyProvider` and name the class in
the VAULT_KEY_PROVIDER setting ("local" by default, or a dotted path such as
"vault.pkcs11.Pkcs11KeyProvider"); the class is built with `from_settings()`.

Every key a provider creates is written to the decision trail (actor "system:vault").
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Protocol, Self, runtime_checkable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from vault.errors import KeyNotFoundError, TamperedError, VaultError
from vault.files import fsync_directory

KEY_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
BUILTIN_PROVIDERS = {"local": "vault.keys.LocalKeyProvider"}


@runtime_checkable
class SigningKey(Protocol):
    name: str
    algorithm: str  # e.g. "Ed25519"
    key_id: str  # stable public fingerprint, recorded next to every signature

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, signature: bytes, message: bytes) -> bool: ...

    def public_key_pem(self) -> str: ...


@runtime_checkable
class KeyEncryptionKey(Protocol):
    name: str
    algorithm: str  # how data keys are wrapped, e.g. "AES-256-GCM"
    key_id: str

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped_key: bytes) -> bytes: ...


@runtime_checkable
class KeyProvider(Protocol):
    name: str  # "local", "pkcs11", ...: written into every sealed header

    @classmethod
    def from_settings(cls) -> Self: ...

    def signing_key(self, name: str, *, create: bool = True) -> SigningKey: ...

    def kek(self, name: str, *, create: bool = True) -> KeyEncryptionKey: ...

    def kek_names(self) -> list[str]: ...

    def signing_key_names(self) -> list[str]: ...

    def destroy_kek(self, name: str) -> None: ...


VERSION_SUFFIX = re.compile(r"^(?P<name>.+)\.v(?P<version>[2-9]|[1-9][0-9]+)$")


def versioned_kek_name(name: str, version: int) -> str:
    """The provider's name for `version` of KEK `name`: version 1 is the bare name (keys made before
    rotation existed), later ones `<name>.v<N>`."""
    return name if version == 1 else f"{name}.v{version}"


def split_kek_name(physical: str) -> tuple[str, int]:
    """("default", 3) for "default.v3"; ("default", 1) for "default"."""
    match = VERSION_SUFFIX.match(physical)
    return (match["name"], int(match["version"])) if match else (physical, 1)


def kek_versions(provider: KeyProvider, name: str) -> list[int]:
    """The versions of KEK `name` the provider holds, oldest first."""
    return sorted(version for physical in provider.kek_names() for logical, version in [split_kek_name(physical)]
                  if logical == name)  # fmt: skip


def signing_key_versions(provider: KeyProvider, name: str) -> list[int]:
    """The versions of signing key `name` the provider holds, oldest first."""
    return sorted(version for physical in provider.signing_key_names() for logical, version in [split_kek_name(physical)]
                  if logical == name)  # fmt: skip


def active_signing_key(provider: KeyProvider, name: str) -> SigningKey:
    """The key new signatures are made with: the newest version of `name` (version 1 created on first
    use). Older versions stay to verify what they signed."""
    versions = signing_key_versions(provider, name)
    return provider.signing_key(versioned_kek_name(name, versions[-1] if versions else 1))


def active_kek(provider: KeyProvider, name: str) -> KeyEncryptionKey:
    """The KEK new data keys are wrapped with: the newest version of `name` (version 1 is created on
    first use). Older versions are retired: kept only to open what was sealed under them."""
    validate_key_name(name)
    if split_kek_name(name)[1] != 1:
        raise VaultError(f"KEK name {name!r} ends like a version suffix ('.vN'); choose another name.")
    versions = kek_versions(provider, name)
    return provider.kek(versioned_kek_name(name, versions[-1] if versions else 1))


def validate_key_name(name: str) -> str:
    if not isinstance(name, str) or not KEY_NAME_PATTERN.match(name):
        raise VaultError(
            f"Invalid key name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


# --- local file provider ------------------------------------------------------------------


class LocalSigningKey:
    algorithm = "Ed25519"

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._private_key = private_key
        self._public_key = private_key.public_key()
        public_der = self._public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = hashlib.sha256(public_der).hexdigest()

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def public_key_pem(self) -> str:
        return self._public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def __repr__(self) -> str:
        return f"<LocalSigningKey {self.name} {self.key_id[:16]}>"


class LocalKek:
    """AES-256 key that wraps data keys with AES-GCM: wrapped = nonce (12 bytes) || ciphertext+tag."""

    algorithm = "AES-256-GCM"
    _NONCE_BYTES = 12

    def __init__(self, name: str, secret: bytes) -> None:
        if len(secret) != 32:
            raise VaultError(f"KEK {name!r} is {len(secret)} bytes long; an AES-256 key is 32 bytes.")
        self.name = name
        self._aead = AESGCM(secret)
        # A one-way fingerprint: identifies the key in headers without revealing anything about it.
        self.key_id = hashlib.sha256(b"suite-vault/kek-id/v1\x00" + secret).hexdigest()[:32]
        self._aad = b"suite-vault/wrap/v1\x00" + name.encode("ascii")

    def wrap(self, data_key: bytes) -> bytes:
        nonce = os.urandom(self._NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, self._aad)

    def unwrap(self, wrapped_key: bytes) -> bytes:
        nonce, sealed = wrapped_key[: self._NONCE_BYTES], wrapped_key[self._NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, self._aad)
        except InvalidTag:
            raise TamperedError(
                f"The wrapped data key does not authenticate under KEK {self.name!r}: "
                "the blob was modified or was sealed with a different key."
            ) from None

    def __repr__(self) -> str:
        return f"<LocalKek {self.name} {self.key_id[:16]}>"


class LocalKeyProvider:
    """Keys as files in one directory (mode 0700), each file mode 0600, created on first use.

    Signing keys: `<name>.ed25519.pem` (PKCS#8, unencrypted: the file mode is the protection,
    as for an SSH host key). KEKs: `<name>.kek` (32 random bytes, base64). A key file that group
    or others can read is refused rather than used.
    """

    name = "local"
    _SIGNING_SUFFIX: ClassVar[str] = ".ed25519.pem"
    _KEK_SUFFIX: ClassVar[str] = ".kek"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._signing_keys: dict[str, LocalSigningKey] = {}
        self._keks: dict[str, LocalKek] = {}

    @classmethod
    def from_settings(cls) -> Self:
        return cls(key_directory())

    def signing_key(self, name: str, *, create: bool = True) -> LocalSigningKey:
        validate_key_name(name)
        with self._lock:
            if name not in self._signing_keys:
                path = self.root / f"{name}{self._SIGNING_SUFFIX}"
                created = create and self._create_exclusive(path, self._new_signing_key_pem())
                key = self._load_signing_key(name, path)
                if created:
                    _trail_key_created("signing_key", key, provider=self.name)
                self._signing_keys[name] = key
            return self._signing_keys[name]

    def kek(self, name: str, *, create: bool = True) -> LocalKek:
        validate_key_name(name)
        with self._lock:
            if name not in self._keks:
                path = self.root / f"{name}{self._KEK_SUFFIX}"
                secret_text = base64.b64encode(secrets.token_bytes(32)) + b"\n"
                created = create and self._create_exclusive(path, secret_text)
                key = self._load_kek(name, path)
                if created:
                    _trail_key_created("kek", key, provider=self.name)
                self._keks[name] = key
            return self._keks[name]

    def kek_names(self) -> list[str]:
        """Every KEK in the directory, by the name the provider knows it (versions included)."""
        if not self.root.is_dir():
            return []
        return sorted(path.name.removesuffix(self._KEK_SUFFIX) for path in self.root.glob(f"*{self._KEK_SUFFIX}")
                      if KEY_NAME_PATTERN.match(path.name.removesuffix(self._KEK_SUFFIX)))  # fmt: skip

    def signing_key_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = (
            path.name.removesuffix(self._SIGNING_SUFFIX)
            for path in self.root.glob(f"*{self._SIGNING_SUFFIX}")
        )
        return sorted(name for name in names if KEY_NAME_PATTERN.match(name))

    def destroy_kek(self, name: str) -> None:
        """Delete KEK `name` for good: whatever is still sealed under it can never be opened again."""
        validate_key_name(name)
        with self._lock:
            path = self.root / f"{name}{self._KEK_SUFFIX}"
            if not path.exists():
                raise KeyNotFoundError(f"No KEK named {name!r} in {self.root}.")
            path.unlink()
            fsync_directory(self.root)
            self._keks.pop(name, None)

    # -- files ---------------------------------------------------------------------------

    @staticmethod
    def _new_signing_key_pem() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def _create_exclusive(self, path: Path, content: bytes) -> bool:
        """Write `path` once, atomically. False if it already exists (another process won the race)."""
        if path.exists():
            return False
        self._ensure_root()
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)  # independent of the process umask
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                # link() fails if the name exists, so readers never see a half-written key
                # and two processes creating the same key cannot both win.
                os.link(temporary, path)
            except FileExistsError:
                return False
            fsync_directory(self.root)
            return True
        finally:
            temporary.unlink(missing_ok=True)

    def _read_private_file(self, path: Path, kind: str) -> bytes:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyNotFoundError(f"No {kind} named {path.name!r} in {self.root}.") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise VaultError(
                f"Key file {path} is accessible to group or others (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {path}` and check who could have read it."
            )
        return path.read_bytes()

    def _load_signing_key(self, name: str, path: Path) -> LocalSigningKey:
        private_key = serialization.load_pem_private_key(self._read_private_file(path, "signing key"), None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise VaultError(f"Signing key file {path} does not hold an Ed25519 private key.")
        return LocalSigningKey(name, private_key)

    def _load_kek(self, name: str, path: Path) -> LocalKek:
        try:
            secret = base64.b64decode(self._read_private_file(path, "KEK").strip(), validate=True)
        except ValueError:
            raise VaultError(f"KEK file {path} is not base64.") from None
        return LocalKek(name, secret)


# Key events go to the decision trail. The audit app sits above the vault (it signs checkpoints
# with these keys), so it registers the listener at start-up (AuditConfig.ready) instead of the
# vault importing it.
_key_event_listeners: list[Callable[..., None]] = []


def on_key_event(listener: Callable[..., None]) -> None:
    """listener(action=, resource_type=, resource_id=, payload=) for every key the vault creates."""
    if listener not in _key_event_listeners:
        _key_event_listeners.append(listener)


def _trail_key_created(kind: str, key: SigningKey | KeyEncryptionKey, *, provider: str) -> None:
    trail_key_event(
        action="key.create",
        resource_type=kind,
        resource_id=key.name,
        payload={"algorithm": key.algorithm, "key_id": key.key_id, "provider": provider},
    )


def trail_key_event(*, action: str, resource_type: str, resource_id: str, payload: dict) -> None:
    """Hand a key event (creation, rotation, destruction) to the trail's listener."""
    if not _key_event_listeners:
        raise VaultError("No key-event listener registered: the audit app must be installed to manage keys.")
    for listener in _key_event_listeners:
        listener(action=action, resource_type=resource_type, resource_id=resource_id, payload=payload)


# --- provider selection ---------------------------------------------------------------------


def key_directory() -> Path:
    return Path(getattr(settings, "VAULT_KEY_DIR", None) or Path(settings.VAR_DIR) / "keys")


_providers: dict[tuple[str, str], KeyProvider] = {}
_providers_lock = threading.Lock()


def get_key_provider() -> KeyProvider:
    """The provider named by settings.VAULT_KEY_PROVIDER, built once per process and configuration."""
    choice = getattr(settings, "VAULT_KEY_PROVIDER", "local") or "local"
    cache_key = (choice, str(key_directory()))
    with _providers_lock:
        if cache_key not in _providers:
            dotted_path = BUILTIN_PROVIDERS.get(choice, choice)
            try:
                provider_class = import_string(dotted_path)
            except ImportError:
                raise ImproperlyConfigured(
                    f"VAULT_KEY_PROVIDER={choice!r} is neither one of {sorted(BUILTIN_PROVIDERS)} "
                    "nor an importable dotted path to a KeyProvider class."
                ) from None
            _providers[cache_key] = provider_class.from_settings()
        return _providers[cache_key]


@receiver(setting_changed)
def _forget_providers(*, setting: str, **kwargs) -> None:
    if setting in {"VAULT_KEY_PROVIDER", "VAULT_KEY_DIR", "VAR_DIR"}:
        with _providers_lock:
            _providers.clear()
