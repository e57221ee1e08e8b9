"""Sensitive free text in trail payloads, sealed by the vault (issue 11).

A clinician's question and the answer it got are personal health information: the trail keeps them
(the record of what was asked and answered), but sealed, like generation texts. A service builds
the payload part with `sealed_texts({...}, action=..., resource_type=..., resource_id=...)`:

    {"sealed_texts": {"fields": ["answer", "question"], "sha256": {field: hex digest},
                      "kek": "audit-payloads", "blob": base64 of vault.envelope.seal(...)}}

The whole payload (blob and digests included) is covered by the event's hash, so the trail still
verifies without opening anything, and a digest proves which text was asked without revealing it.
The blob is bound (envelope context) to the event's action and resource: copied into another event
it does not open. `open_texts(event)` opens it; callers decide first (audit.permissions.
unseal_decision: "unseal" on trail_event:<type>) and checks the texts against the hashed digests.

Key rotation: trail payloads are append-only, so `manage.py rotate_keys` cannot rewrite these blobs
in place. `rotation_source()` (registered with vault.rotation by AuditConfig.ready) hands it each
one not yet re-wrapped, with its context; the new blob goes to audit.models.RewrappedTexts, which
`open_texts` prefers. Format 1 blobs are re-sealed the same way. After a finished rotation the
retired KEK version is needed for none of them.

Other sealed blobs a service put in a payload as base64 text (finance's sealed name matches in an
alert's evidence) are handed over by `payload_blobs_source()`: their re-wrapped copies go to
vault.models.SealedCopy, which vault.envelope.open_sealed opens once the original's KEK version is
gone; the owner reads them as before. A format 1 one needs the context its app lends for the place
"audit.Event.payload <action>" (vault.rotation.register_format1_context).
"""

from __future__ import annotations

import base64
import hashlib
import json

from django.conf import settings

from audit.models import Event, RewrappedTexts
from vault.envelope import open_sealed, seal
from vault.errors import TamperedError
from vault.models import SealedCopy
from vault.rotation import SEALED_BASE64_PREFIX, SealedObject, format1_context_for, sealed_strings, store_copy

SEALED_KEY = "sealed_texts"


def payload_kek() -> str:
    return getattr(settings, "AUDIT_PAYLOAD_KEK", "audit-payloads")


def sealed_texts(texts: dict[str, str], *, action: str, resource_type: str, resource_id: str | int) -> dict:
    """The payload entry that carries `texts` sealed; merge it into the event's payload."""
    fields = sorted(texts)
    plain = json.dumps({field: texts[field] for field in fields}, ensure_ascii=False, sort_keys=True)
    blob = seal(
        plain.encode("utf-8"), key_name=payload_kek(), context=_context(action, resource_type, resource_id)
    )
    return {
        SEALED_KEY: {
            "fields": fields,
            "sha256": {
                field: hashlib.sha256(str(texts[field]).encode("utf-8")).hexdigest() for field in fields
            },
            "kek": payload_kek(),
            "blob": base64.b64encode(blob).decode("ascii"),
        }
    }


def has_sealed_texts(event) -> bool:
    return SEALED_KEY in event.payload


def open_texts(event) -> dict[str, str]:
    """The texts sealed in `event`'s payload ({} when there are none). VaultError if they do not
    open, TamperedError if what opens is not what the payload's (hashed) digests name."""
    entry = event.payload.get(SEALED_KEY)
    if not entry:
        return {}
    rewrapped = RewrappedTexts.objects.filter(event_id=event.pk).values_list("blob", flat=True).first()
    blob = bytes(rewrapped) if rewrapped is not None else base64.b64decode(entry["blob"])
    plain = open_sealed(blob, context=_context(event.action, event.resource_type, event.resource_id))
    texts = json.loads(plain.decode("utf-8"))
    digests = {
        field: hashlib.sha256(str(texts.get(field)).encode("utf-8")).hexdigest() for field in entry["fields"]
    }
    if sorted(texts) != sorted(entry["fields"]) or digests != entry["sha256"]:
        raise TamperedError(f"The sealed texts of event #{event.pk} do not match the digests in its payload.")
    return texts


def rotation_source():
    """For vault.rotation: each event's sealed texts not yet re-wrapped, with its context; the new
    blob is stored in RewrappedTexts (once: a second writer finds the row and leaves it)."""
    done = RewrappedTexts.objects.values("event_id")
    events = (
        Event.objects.filter(payload_json__contains=f'"{SEALED_KEY}":')
        .exclude(pk__in=done)
        .only("pk", "action", "resource_type", "resource_id", "payload_json")
        .order_by("pk")
    )
    for event in events.iterator(chunk_size=500):
        entry = event.payload.get(SEALED_KEY)
        if not entry:
            continue

        def write(new: bytes, *, _event_id=event.pk) -> bool:
            _, created = RewrappedTexts.objects.get_or_create(event_id=_event_id, defaults={"blob": new})
            return created

        yield SealedObject(
            place="audit.Event.payload sealed_texts",
            blob=base64.b64decode(entry["blob"]),
            write=write,
            context=_context(event.action, event.resource_type, event.resource_id),
        )


def payload_blobs_source():
    """For vault.rotation: every other sealed blob inside a payload (not the sealed_texts entry) that
    has no re-wrapped copy yet; the new blob is kept as its vault.models.SealedCopy."""
    events = (
        Event.objects.filter(payload_json__contains=SEALED_BASE64_PREFIX)
        .only("pk", "action", "payload_json")
        .order_by("pk")
    )
    chunk: list[tuple[Event, tuple, bytes]] = []
    for event in events.iterator(chunk_size=500):
        for path, blob in sealed_strings(json.loads(event.payload_json)):
            if path != (SEALED_KEY, "blob"):
                chunk.append((event, path, blob))
        if len(chunk) >= 500:
            yield from _without_copies(chunk)
            chunk = []
    yield from _without_copies(chunk)


def _without_copies(found: list[tuple[Event, tuple, bytes]]):
    digests = {blob: hashlib.sha256(blob).hexdigest() for _, _, blob in found}
    done = set(
        SealedCopy.objects.filter(original_sha256__in=digests.values()).values_list(
            "original_sha256", flat=True
        )
    )
    for event, _path, blob in found:
        if digests[blob] in done:
            continue
        place = f"audit.Event.payload {event.action}"

        def write(new: bytes, *, _place=place, _blob=blob) -> bool:
            return store_copy(_place, _blob, new)

        format1 = blob[4:5] == b"\x01"
        yield SealedObject(place, blob, write, format1_context_for(place, event.pk) if format1 else None)


def _context(action: str, resource_type: str, resource_id: str | int) -> bytes:
    return f"audit.payload|{action}|{resource_type}|{resource_id}".encode()
