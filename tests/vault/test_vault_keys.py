"""The local key provider: files 0600 in a 0700 directory, created once, trailed, and refused if exposed."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.exceptions import ImproperlyConfigured

from audit.models import Event
from vault.errors import KeyNotFoundError, TamperedError, VaultError
from vault.keys import KeyEncryptionKey, KeyProvider, LocalKeyProvider, SigningKey, get_key_provider

pytestmark = pytest.mark.django_db


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_are_created_on_first_use_with_private_modes(private_keys):
    provider = get_key_provider()
    assert isinstance(provider, LocalKeyProvider) and isinstance(provider, KeyProvider)
    signing_key = provider.signing_key("checkpoints")
    kek = provider.kek("default")
    assert isinstance(signing_key, SigningKey) and isinstance(kek, KeyEncryptionKey)
    assert mode(private_keys) == 0o700
    files = sorted(private_keys.iterdir())
    assert [path.name for path in files] == ["checkpoints.ed25519.pem", "default.kek"]
    assert all(mode(path) == 0o600 for path in files)


def test_every_key_creation_is_trailed_once(private_keys):
    provider = get_key_provider()
    first = provider.signing_key("checkpoints")
    provider.kek("default")
    again = LocalKeyProvider(private_keys)  # another process, same directory
    assert again.signing_key("checkpoints").key_id == first.key_id
    created = Event.objects.filter(action="key.create").order_by("sequence")
    assert [(event.actor_label, event.resource_type, event.resource_id) for event in created] == [
        ("system:vault", "signing_key", "checkpoints"),
        ("system:vault", "kek", "default"),
    ]
    assert created[0].payload == {"algorithm": "Ed25519", "key_id": first.key_id, "provider": "local"}


def test_signing_key_signs_and_verifies(private_keys):
    key = get_key_provider().signing_key("checkpoints")
    signature = key.sign(b"chain suite at 42")
    assert key.verify(signature, b"chain suite at 42")
    assert not key.verify(signature, b"chain suite at 43")
    assert not key.verify(b"\x00" * 64, b"chain suite at 42")
    load_pem_public_key(key.public_key_pem().encode()).verify(signature, b"chain suite at 42")


def test_kek_wraps_and_unwraps_and_detects_tampering():
    kek = get_key_provider().kek("default")
    wrapped = kek.wrap(b"k" * 32)
    assert kek.unwrap(wrapped) == b"k" * 32 and wrapped != kek.wrap(b"k" * 32)
    with pytest.raises(TamperedError):
        kek.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
    with pytest.raises(TamperedError):
        get_key_provider().kek("other").unwrap(wrapped)


def test_missing_key_is_not_created_when_creation_is_not_allowed(private_keys):
    with pytest.raises(KeyNotFoundError):
        get_key_provider().kek("absent", create=False)
    assert not private_keys.exists() or not list(private_keys.iterdir())
    assert not Event.objects.exists()


def test_key_file_readable_by_others_is_refused(private_keys):
    get_key_provider().kek("default")
    (private_keys / "default.kek").chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        LocalKeyProvider(private_keys).kek("default")


@pytest.mark.parametrize("name", ["", "UPPER", "../escape", "a/b", "x" * 65, ".hidden"])
def test_invalid_key_names_are_refused(name):
    with pytest.raises(VaultError, match="Invalid key name"):
        get_key_provider().kek(name)


def test_provider_is_chosen_by_setting(settings):
    settings.VAULT_KEY_PROVIDER = "vault.keys.LocalKeyProvider"
    assert isinstance(get_key_provider(), LocalKeyProvider)
    settings.VAULT_KEY_PROVIDER = "hsm-that-does-not-exist"
    with pytest.raises(ImproperlyConfigured, match="VAULT_KEY_PROVIDER"):
        get_key_provider()
