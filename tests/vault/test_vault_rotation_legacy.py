"""rotate_keys and what cannot be re-wrapped in place: format 1 blobs (re-sealed with the context
their app lends: finance.apps for its columns, the test itself for a file) and the sealed texts in
trail payloads (re-wrapped into a side table).

Each test destroys the retired KEK version afterwards and reads everything back, so "readable"
means readable without the old key.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audit.models import Event, RewrappedTexts
from audit.sealing import open_texts, sealed_texts
from audit.services import record
from audit.verification import verify_chain
from finance.models import Customer
from finance.services.parties import NAME_CONTEXT
from medical.keys import SEALED_KEY_CONTEXT, SEALED_KEY_FILE
from medical.storage import original_context, quarantine_context, sealed_store
from vault.envelope import open_sealed, sealed_header
from vault.errors import TamperedError, VaultError
from vault.keys import get_key_provider
from vault.rotation import FILES, register_format1_context, rotate_kek, unregister_format1_context
from vault.storage import EncryptedFileStore

pytestmark = pytest.mark.django_db
PLACE = "finance.Customer.name_sealed"


def seal_format1(plaintext: bytes, *, key_name: str, context: bytes) -> bytes:
    """A blob exactly as vault.envelope wrote it before format 2 (commit 9457034): the whole
    prefix plus the context is the GCM additional data."""
    provider = get_key_provider()
    kek = provider.kek(key_name)
    data_key, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
    header = {
        "alg": "AES-256-GCM",
        "kek": kek.name,
        "kek_alg": kek.algorithm,
        "kek_id": kek.key_id,
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "provider": provider.name,
        "wrapped_key": base64.b64encode(kek.wrap(data_key)).decode("ascii"),
    }
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    prefix = struct.pack(">4sBI", b"SVLT", 1, len(header_bytes)) + header_bytes
    return prefix + AESGCM(data_key).encrypt(nonce, plaintext, prefix + context)


@pytest.fixture(params=["local", "pkcs11"])
def provider(request):
    if request.param == "pkcs11":
        request.getfixturevalue("hsm")
    return get_key_provider()


def test_format1_blobs_are_resealed_with_the_context_their_app_lends(provider, tmp_path):
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    customers = [
        Customer.objects.create(
            bank="rot", ref=f"C{i}", name_sealed=seal_format1(f"Name {i}".encode(), key_name=name,
                                                               context=NAME_CONTEXT)
        )
        for i in range(3)
    ]  # fmt: skip
    assert {bytes(c.name_sealed)[4] for c in customers} == {1}
    files = tmp_path / "files"
    files.mkdir()
    (files / "old.bin").write_bytes(seal_format1(b"old file", key_name=name, context=b"file|old.bin"))
    (files / "orphan.bin").write_bytes(seal_format1(b"no context", key_name=name, context=b"?"))

    def file_context(path):
        return b"file|old.bin" if path.name == "old.bin" else None

    register_format1_context(FILES, file_context)
    try:
        report = rotate_kek(name, file_roots=[files])
    finally:
        unregister_format1_context(FILES, file_context)

    assert (report.rewrapped, report.resealed_format1, report.left_format1) == (4, 4, 1)
    assert report.left_places == {f"files under {files}": 1}
    done = Event.objects.get(action="key.rotate", resource_id=name)
    assert done.payload["resealed_format1"] == 4 and done.payload["left_format1"] == 1
    provider.destroy_kek(name)  # the retired version 1 is gone: only the re-sealed blobs still open
    for index, customer in enumerate(customers):
        sealed = bytes(Customer.objects.get(pk=customer.pk).name_sealed)
        assert (sealed[4], sealed_header(sealed)["kek"]) == (2, f"{name}.v2")
        assert open_sealed(sealed, context=NAME_CONTEXT) == f"Name {index}".encode()
    assert open_sealed((files / "old.bin").read_bytes(), context=b"file|old.bin") == b"old file"
    with pytest.raises(VaultError):  # the one without a context was left under the destroyed version
        open_sealed((files / "orphan.bin").read_bytes(), context=b"?")


def test_a_blob_that_does_not_open_with_the_lent_context_is_reported_and_left(tmp_path):
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    blob = seal_format1(b"Name", key_name=name, context=b"something else")
    customer = Customer.objects.create(bank="rot", ref="X", name_sealed=blob)
    good = Customer.objects.create(
        bank="rot", ref="Y", name_sealed=seal_format1(b"Other", key_name=name, context=NAME_CONTEXT)
    )
    report = rotate_kek(name, file_roots=[])
    assert (report.failed_format1, report.failed_places, report.resealed_format1) == (1, {PLACE: 1}, 1)
    assert bytes(Customer.objects.get(pk=customer.pk).name_sealed) == blob
    assert sealed_header(bytes(Customer.objects.get(pk=good.pk).name_sealed))["kek"] == f"{name}.v2"


def _asked(number: int, key_name: str, *, legacy: bool = False) -> Event:
    texts = {"question": f"Is patient {number}'s femur fractured?", "answer": f"Answer {number}"}
    entry = sealed_texts(texts, action="study.ask", resource_type="study", resource_id=number)
    if legacy:  # as a format 1 seal would have left it
        plain = json.dumps(texts, ensure_ascii=False, sort_keys=True).encode()
        context = f"audit.payload|study.ask|study|{number}".encode()
        blob = seal_format1(plain, key_name=key_name, context=context)
        entry["sealed_texts"]["blob"] = base64.b64encode(blob).decode("ascii")
    return record(actor="task:tests.ask", action="study.ask", resource_type="study", resource_id=number,
                  outcome="succeeded", payload={"question_id": number, **entry})  # fmt: skip


def test_sealed_trail_texts_are_rewrapped_beside_the_append_only_payload(provider, settings):
    settings.AUDIT_PAYLOAD_KEK = name = f"payloads-{uuid.uuid4().hex[:8]}"
    events = [_asked(1, name), _asked(2, name), _asked(3, name, legacy=True)]
    payloads = [event.payload_json for event in events]

    first = rotate_kek(name, file_roots=[], stop_after=1)  # interrupted after one
    assert RewrappedTexts.objects.count() == 1
    second = rotate_kek(name, file_roots=[])
    assert second.resumed and (first.rewrapped + second.rewrapped, second.resealed_format1) == (3, 1)
    assert second.left_format1 == 0
    provider.destroy_kek(name)

    for number, event in enumerate(events, start=1):
        event = Event.objects.get(pk=event.pk)
        assert event.payload_json == payloads[number - 1]  # the trail itself is untouched
        assert open_texts(event) == {"question": f"Is patient {number}'s femur fractured?",
                                     "answer": f"Answer {number}"}  # fmt: skip
        assert sealed_header(bytes(event.rewrapped_texts.blob))["kek"] == f"{name}.v2"
    assert verify_chain(events[0].chain).ok

    # A second rotation re-wraps the side table's blobs in place (the database column scan).
    third = rotate_kek(name, file_roots=[])
    assert third.rewrapped == 3 and {
        sealed_header(bytes(r.blob))["kek"] for r in RewrappedTexts.objects.all()
    } == {f"{name}.v3"}
    provider.destroy_kek(f"{name}.v2")
    assert open_texts(Event.objects.get(pk=events[1].pk))["answer"] == "Answer 2"


def test_a_side_table_row_swapped_for_another_text_is_refused(settings):
    settings.AUDIT_PAYLOAD_KEK = name = f"payloads-{uuid.uuid4().hex[:8]}"
    event = _asked(4, name)
    rotate_kek(name, file_roots=[])
    # Someone with database access puts in a text sealed with the right context but other words.
    forged = sealed_texts({"question": "Nothing to see", "answer": "Nothing"}, action="study.ask",
                          resource_type="study", resource_id=4)  # fmt: skip
    RewrappedTexts.objects.filter(event=event).update(blob=base64.b64decode(forged["sealed_texts"]["blob"]))
    with pytest.raises(TamperedError, match="do not match the digests"):
        open_texts(Event.objects.get(pk=event.pk))


def test_medical_lends_the_contexts_of_its_sealed_files(settings, tmp_path):
    """Originals, quarantined uploads and the UID key file: contexts read from the path (medical.apps)."""
    settings.MEDICAL_DATA_DIR = data = tmp_path / "medical"
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    original = "originals/radiology/1.2.3/1.2.3.4.dcm"
    quarantined = "quarantine/radiology/abc123.bin"
    files = {
        original: (b"identified original", original_context(department="radiology", sop_uid="1.2.3.4")),
        quarantined: (b"held upload", quarantine_context(department="radiology")),
    }
    for stored, (content, context) in files.items():
        (data / stored).parent.mkdir(parents=True, exist_ok=True)
        sealed = seal_format1(
            content, key_name=name, context=EncryptedFileStore.sealed_context(stored, context)
        )
        (data / stored).write_bytes(sealed)
    (data / SEALED_KEY_FILE).write_bytes(seal_format1(b"k" * 32, key_name=name, context=SEALED_KEY_CONTEXT))
    (data / "elsewhere.bin").write_bytes(seal_format1(b"?", key_name=name, context=b"unknown"))

    report = rotate_kek(name, file_roots=[data])
    assert (report.resealed_format1, report.left_format1, report.failed_format1) == (3, 1, 0)
    get_key_provider().destroy_kek(name)
    for stored, (content, context) in files.items():
        assert sealed_store().get(stored, context) == content
    assert open_sealed((data / SEALED_KEY_FILE).read_bytes(), context=SEALED_KEY_CONTEXT) == b"k" * 32
