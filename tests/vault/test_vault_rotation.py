"""manage.py rotate_keys: a new KEK version, database values and files re-wrapped, the old one retired.

Run against both key providers: the local key directory and a real SoftHSM2 token.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import call_command

from audit.models import Event
from finance.models import Customer
from vault.envelope import open_sealed, seal, sealed_header
from vault.keys import get_key_provider, kek_versions
from vault.models import KeyRotation
from vault.rotation import rotate_kek
from vault.storage import EncryptedFileStore

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["local", "pkcs11"])
def provider(request):
    if request.param == "pkcs11":
        request.getfixturevalue("hsm")
    return get_key_provider()


def _customers(key_name: str, count: int) -> list[Customer]:
    return [
        Customer.objects.create(
            bank="rot",
            ref=f"C{i}",
            name_sealed=seal(f"Name {i}".encode(), key_name=key_name, context=b"cust"),
        )
        for i in range(count)
    ]


def _kek_of(customer: Customer) -> str:
    return sealed_header(bytes(Customer.objects.get(pk=customer.pk).name_sealed))["kek"]


def test_rotation_rewraps_every_sealed_value_and_retires_the_old_version(provider, tmp_path):
    name = f"rot-{uuid.uuid4().hex[:8]}"
    customers = _customers(name, 3)
    store = EncryptedFileStore(tmp_path / "files", key_name=name)
    store.put("studies/one.dcm", b"identified original", context=b"1.2.3")
    old_id = provider.kek(name).key_id

    out = io.StringIO()
    call_command("rotate_keys", name, "--files-root", str(tmp_path / "files"), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert (report["from_version"], report["to_version"], report["rewrapped"]) == (1, 2, 4)
    assert report["new_key_id"] != old_id and kek_versions(provider, name) == [1, 2]
    assert {_kek_of(customer) for customer in customers} == {f"{name}.v2"}
    assert sealed_header((tmp_path / "files/studies/one.dcm").read_bytes())["kek"] == f"{name}.v2"
    # New seals use the new version; the retired one is not needed to read anything re-wrapped.
    assert sealed_header(seal(b"new", key_name=name))["kek"] == f"{name}.v2"
    provider.destroy_kek(name)
    for index, customer in enumerate(customers):
        sealed = bytes(Customer.objects.get(pk=customer.pk).name_sealed)
        assert open_sealed(sealed, context=b"cust") == f"Name {index}".encode()
    assert store.get("studies/one.dcm", context=b"1.2.3") == b"identified original"
    # Trailed: the new key, the start and the end of the rotation.
    events = list(Event.objects.filter(resource_id__startswith=name).values_list("action", "resource_id"))
    assert ("key.create", f"{name}.v2") in events
    assert [action for action, _ in events if action.startswith("key.rotate")] == [
        "key.rotate_start",
        "key.rotate",
    ]


def test_an_interrupted_rotation_resumes_with_the_same_new_version(provider, tmp_path):
    name = f"rot-{uuid.uuid4().hex[:8]}"
    customers = _customers(name, 5)
    first = rotate_kek(name, file_roots=[], stop_after=2)
    assert first.rewrapped == 2
    rotation = KeyRotation.objects.get(key_name=name)
    assert (rotation.finished_at, rotation.rewrapped) == (None, 2)
    # Meanwhile the application seals under the new version already.
    late = Customer.objects.create(
        bank="rot", ref="late", name_sealed=seal(b"Late", key_name=name, context=b"c")
    )
    assert _kek_of(late) == f"{name}.v2"

    second = rotate_kek(name, file_roots=[])
    assert second.resumed and (second.to_version, second.rewrapped, second.already_current) == (2, 3, 3)
    rotation.refresh_from_db()
    assert rotation.finished_at is not None and rotation.rewrapped == 5
    assert kek_versions(provider, name) == [1, 2]  # no third version
    assert {_kek_of(customer) for customer in customers} == {f"{name}.v2"}
    done = Event.objects.get(action="key.rotate", resource_id=name)
    assert done.payload["resumed"] is True and done.payload["retired_versions"] == [1]


def test_rotating_a_key_that_does_not_exist_is_a_clear_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="holds no KEK named 'nope'"):
        call_command("rotate_keys", "nope", "--files-root", "/nonexistent")


def test_signing_key_rotation_keeps_old_checkpoints_verifiable(provider, settings):
    from audit.services import checkpoint_create, record
    from audit.verification import verify_chain

    settings.AUDIT_SIGNING_KEY = name = f"sign-{uuid.uuid4().hex[:8]}"
    chain = f"rot-{uuid.uuid4().hex[:8]}"

    def grow(count):
        for number in range(count):
            record(actor="task:tests.rotate", action="test.decide", resource_type="case", resource_id=number,
                   outcome="succeeded", chain=chain)  # fmt: skip

    grow(2)
    first = checkpoint_create(chain=chain)
    out = io.StringIO()
    call_command("rotate_keys", "--signing-key", name, "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert (report["from_version"], report["to_version"]) == (1, 2)
    grow(2)
    second = checkpoint_create(chain=chain)
    assert (first.key_name, second.key_name) == (name, f"{name}.v2") and first.key_id != second.key_id
    result = verify_chain(chain)
    assert result.ok and result.checkpoints_verified == 2
    assert Event.objects.filter(action="key.rotate", resource_type="signing_key", resource_id=name).exists()


def test_moving_from_the_key_directory_into_the_hsm(settings, tmp_path, request):
    """Data sealed by the local provider, then VAULT_KEY_PROVIDER switched to the HSM: rotate_keys
    --from-local re-wraps it under a KEK in the token; the local key file is then not needed."""
    name = f"move-{uuid.uuid4().hex[:8]}"
    local = get_key_provider()
    customers = _customers(name, 3)
    assert sealed_header(bytes(customers[0].name_sealed))["provider"] == "local"
    hsm = request.getfixturevalue("hsm")
    # Without --from-local the HSM's rotation leaves the local provider's objects alone (and says so).
    hsm.kek(name)
    untouched = rotate_kek(name, file_roots=[])
    assert (untouched.rewrapped, untouched.other_provider) == (0, 3)

    out = io.StringIO()
    call_command(
        "rotate_keys", name, "--from-local", "--files-root", str(tmp_path / "none"), "--json", stdout=out
    )
    assert json.loads(out.getvalue())["rewrapped"] == 3
    local.destroy_kek(name)
    for index, customer in enumerate(customers):
        sealed = bytes(Customer.objects.get(pk=customer.pk).name_sealed)
        assert sealed_header(sealed)["provider"] == "pkcs11"
        assert open_sealed(sealed, context=b"cust") == f"Name {index}".encode()
