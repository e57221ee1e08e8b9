"""The PKCS#11 key provider against a real SoftHSM2 token (initialised under the per-run directory)."""

from __future__ import annotations

import os
import uuid

import pytest

from audit.models import Event
from audit.services import checkpoint_create, record
from audit.verification import ProblemKind, verify_chain
from tests.audit.conftest import run_sql, triggers_disabled
from vault.envelope import open_sealed, seal
from vault.errors import TamperedError
from vault.pkcs11 import DEFAULT_MODULE, Pkcs11KeyProvider

pytestmark = pytest.mark.django_db
PIN = "4711-test"


def test_wrong_pin_is_a_clear_error(softhsm_token):
    # On the run's second token, which no test logs in to: PKCS#11 logs in once per process and
    # token, and later sessions share that login whatever PIN they give.
    from vault.errors import VaultError

    with pytest.raises(VaultError, match="Cannot open PKCS#11 token"):
        Pkcs11KeyProvider(module=DEFAULT_MODULE, token_label=f"{softhsm_token}-fresh", pin="wrong")


def test_kek_is_aes_256_and_never_leaves_the_token(hsm):
    from pkcs11 import Attribute
    from pkcs11.exceptions import AttributeSensitive

    kek = hsm.kek(f"kek-{uuid.uuid4().hex[:6]}")
    key = kek._key
    assert key[Attribute.VALUE_LEN] == 32
    assert key[Attribute.EXTRACTABLE] is False and key[Attribute.SENSITIVE] is True
    with pytest.raises(AttributeSensitive):
        key[Attribute.VALUE]
    data_key = os.urandom(32)
    wrapped = kek.wrap(data_key)
    assert data_key not in wrapped and kek.unwrap(wrapped) == data_key
    with pytest.raises(TamperedError):
        kek.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]))


def test_envelope_round_trip_and_keys_found_again_by_label(hsm, softhsm_token):
    name = f"studies-{uuid.uuid4().hex[:6]}"
    sealed = seal(b"Patient^Known", key_name=name, context=b"study:1")
    assert b"Patient^Known" not in sealed and b'"provider":"pkcs11"' in sealed
    assert open_sealed(sealed, context=b"study:1") == b"Patient^Known"
    # A new session (another process would do the same) finds the KEK by its label.
    again = Pkcs11KeyProvider(module=DEFAULT_MODULE, token_label=softhsm_token, pin=PIN)
    assert again.kek(name, create=False).key_id == hsm.kek(name).key_id
    created = Event.objects.get(action="key.create", resource_id=name)
    assert created.payload["provider"] == "pkcs11" and created.actor_label == "system:vault"


def test_trail_checkpoints_are_signed_by_the_hsm_key(hsm, settings):
    from pkcs11 import Attribute

    settings.AUDIT_SIGNING_KEY = f"trail-{uuid.uuid4().hex[:6]}"
    for number in range(3):
        record(actor="task:tests", action="t.d", resource_type="case", resource_id=number, outcome="allowed")
    checkpoint = checkpoint_create()
    assert (checkpoint.key_provider, checkpoint.algorithm) == ("pkcs11", "ECDSA-P256-SHA256")
    assert hsm.signing_key(settings.AUDIT_SIGNING_KEY)._private_key[Attribute.EXTRACTABLE] is False
    assert verify_chain("suite").ok
    with triggers_disabled():
        run_sql("UPDATE {checkpoints} SET size = size + 1 WHERE id = %s", [checkpoint.pk])
    assert verify_chain("suite").problem.kind == ProblemKind.CHECKPOINT_SIGNATURE
