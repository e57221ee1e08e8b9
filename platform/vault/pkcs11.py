"""Keys in an HSM over PKCS#11 (python-pkcs11): select with VAULT_KEY_PROVIDER="vault.pkcs11.Pkcs11KeyProvider".

What lives in the token, found by label (slot numbers change; labels do not):

- KEKs: AES-256 secret keys labelled ``suite-kek:<name>``, created with EXTRACTABLE=False and
  SENSITIVE=True, so the key value never leaves the token. A data key is "wrapped" by encrypting
  it inside the token with AES-GCM (fresh 96-bit nonce, the KEK name as additional data):
  wrapped = nonce (12 bytes) || ciphertext || tag.
- Signing keys: EC P-256 key pairs labelled ``suite-sign:<name>``; the private half is
  non-extractable. Trail checkpoints are signed with Mechanism.ECDSA over a SHA-256 digest
  computed here (SoftHSM2 and many HSMs do not offer ECDSA_SHA256); signatures are stored DER
  encoded and verified with the public key, which is read once from the token.

Settings (environment variables of the same name): VAULT_PKCS11_MODULE (the vendor's .so;
SoftHSM2's by default), VAULT_PKCS11_TOKEN_LABEL, VAULT_PKCS11_PIN (the user PIN; keep it out of
the repository, e.g. in the service's environment file). Every key created is trailed by the vault.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from typing import Self

import pkcs11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from django.conf import settings
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import NoSuchKey, PKCS11Error
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature, encode_named_curve_parameters

from vault.errors import KeyNotFoundError, TamperedError, VaultError
from vault.keys import _trail_key_created, validate_key_name

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
KEK_LABEL_PREFIX = "suite-kek:"
SIGNING_LABEL_PREFIX = "suite-sign:"
_NONCE_BYTES = 12


def _setting(name: str, default: str = "") -> str:
    return str(getattr(settings, name, "") or os.environ.get(name, "") or default)


class Pkcs11Kek:
    algorithm = "AES-256-GCM/PKCS11"

    def __init__(self, provider: Pkcs11KeyProvider, name: str, key) -> None:
        self.name = name
        self._provider = provider
        self._key = key
        self.key_id = bytes(key[_attr().ID]).hex()
        self._aad = b"suite-vault/wrap/v1\x00" + name.encode("ascii")

    def wrap(self, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        with self._provider.lock:
            sealed = self._key.encrypt(
                data_key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, self._aad)
            )
        return nonce + bytes(sealed)

    def unwrap(self, wrapped_key: bytes) -> bytes:
        nonce, sealed = wrapped_key[:_NONCE_BYTES], wrapped_key[_NONCE_BYTES:]
        try:
            with self._provider.lock:
                return bytes(
                    self._key.decrypt(
                        sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, self._aad)
                    )
                )
        except PKCS11Error:
            raise TamperedError(
                f"The wrapped data key does not authenticate under HSM KEK {self.name!r}: "
                "the blob was modified or was sealed with a different key."
            ) from None

    def __repr__(self) -> str:
        return f"<Pkcs11Kek {self.name} {self.key_id[:16]}>"


class Pkcs11SigningKey:
    algorithm = "ECDSA-P256-SHA256"

    def __init__(self, provider: Pkcs11KeyProvider, name: str, private_key, public_key) -> None:
        self.name = name
        self._provider = provider
        self._private_key = private_key
        public_der = encode_ec_public_key(public_key)
        self._public_key = serialization.load_der_public_key(public_der)
        self.key_id = hashlib.sha256(public_der).hexdigest()

    def sign(self, message: bytes) -> bytes:
        digest = hashlib.sha256(message).digest()
        with self._provider.lock:
            raw = self._private_key.sign(digest, mechanism=Mechanism.ECDSA)
        return encode_ecdsa_signature(bytes(raw))

    def verify(self, signature: bytes, message: bytes) -> bool:
        digest = hashlib.sha256(message).digest()
        try:
            self._public_key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        except (InvalidSignature, ValueError):
            return False
        return True

    def public_key_pem(self) -> str:
        return self._public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def __repr__(self) -> str:
        return f"<Pkcs11SigningKey {self.name} {self.key_id[:16]}>"


class Pkcs11KeyProvider:
    """One logged-in read/write session on the token named by label; calls are serialised by a lock."""

    name = "pkcs11"

    def __init__(self, *, module: str, token_label: str, pin: str) -> None:
        if not token_label or not pin:
            raise VaultError(
                "The PKCS#11 key provider needs VAULT_PKCS11_TOKEN_LABEL and VAULT_PKCS11_PIN "
                "(the token's label and its user PIN)."
            )
        try:
            library = pkcs11.lib(module)
            token = library.get_token(token_label=token_label)
            try:
                self._session = token.open(user_pin=pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # PKCS#11 logs in per application: this process already holds a logged-in session
                # on the token (another provider instance), and a new session shares that login.
                self._session = token.open(rw=True)
        except (PKCS11Error, RuntimeError, OSError) as error:
            raise VaultError(
                f"Cannot open PKCS#11 token {token_label!r} with module {module}: {type(error).__name__} {error}"
            ) from None
        self.token_label = token_label
        self.lock = threading.RLock()
        self._keks: dict[str, Pkcs11Kek] = {}
        self._signing_keys: dict[str, Pkcs11SigningKey] = {}

    @classmethod
    def from_settings(cls) -> Self:
        return cls(
            module=_setting("VAULT_PKCS11_MODULE", DEFAULT_MODULE),
            token_label=_setting("VAULT_PKCS11_TOKEN_LABEL"),
            pin=_setting("VAULT_PKCS11_PIN"),
        )

    def kek(self, name: str, *, create: bool = True) -> Pkcs11Kek:
        validate_key_name(name)
        label = KEK_LABEL_PREFIX + name
        with self.lock:
            if name not in self._keks:
                created = False
                try:
                    key = self._session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
                except NoSuchKey:
                    if not create:
                        raise KeyNotFoundError(
                            f"No KEK labelled {label!r} in token {self.token_label!r}."
                        ) from None
                    Attribute = _attr()
                    key = self._session.generate_key(
                        KeyType.AES,
                        256,
                        label=label,
                        id=secrets.token_bytes(16),
                        store=True,
                        template={
                            Attribute.EXTRACTABLE: False,
                            Attribute.SENSITIVE: True,
                            Attribute.TOKEN: True,
                            Attribute.PRIVATE: True,
                        },
                    )
                    created = True
                self._keks[name] = Pkcs11Kek(self, name, key)
                if created:
                    _trail_key_created("kek", self._keks[name], provider=self.name)
            return self._keks[name]

    def kek_names(self) -> list[str]:
        with self.lock:
            labels = [
                str(obj[Attribute.LABEL])
                for obj in self._session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
            ]
        return sorted(
            label.removeprefix(KEK_LABEL_PREFIX) for label in labels if label.startswith(KEK_LABEL_PREFIX)
        )

    def signing_key_names(self) -> list[str]:
        with self.lock:
            labels = [
                str(obj[Attribute.LABEL])
                for obj in self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            ]
        return sorted(
            label.removeprefix(SIGNING_LABEL_PREFIX)
            for label in labels
            if label.startswith(SIGNING_LABEL_PREFIX)
        )

    def destroy_kek(self, name: str) -> None:
        """Destroy KEK `name` in the token: whatever is still sealed under it can never be opened again."""
        validate_key_name(name)
        with self.lock:
            try:
                key = self._session.get_key(
                    object_class=ObjectClass.SECRET_KEY, label=KEK_LABEL_PREFIX + name
                )
            except NoSuchKey:
                raise KeyNotFoundError(
                    f"No KEK labelled {KEK_LABEL_PREFIX + name!r} in token {self.token_label!r}."
                ) from None
            key.destroy()
            self._keks.pop(name, None)

    def signing_key(self, name: str, *, create: bool = True) -> Pkcs11SigningKey:
        validate_key_name(name)
        label = SIGNING_LABEL_PREFIX + name
        with self.lock:
            if name not in self._signing_keys:
                created = False
                try:
                    private = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                    public = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
                except NoSuchKey:
                    if not create:
                        raise KeyNotFoundError(
                            f"No signing key labelled {label!r} in token {self.token_label!r}."
                        ) from None
                    Attribute = _attr()
                    parameters = self._session.create_domain_parameters(
                        KeyType.EC,
                        {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                        local=True,
                    )
                    public, private = parameters.generate_keypair(
                        store=True,
                        label=label,
                        id=secrets.token_bytes(16),
                        private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
                    )
                    created = True
                self._signing_keys[name] = Pkcs11SigningKey(self, name, private, public)
                if created:
                    _trail_key_created("signing_key", self._signing_keys[name], provider=self.name)
            return self._signing_keys[name]


def _attr():
    return Attribute
