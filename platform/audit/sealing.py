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
unseal_decision: "unseal" on trail_event:<type>). Trail payloads are append-only, so a KEK rotation
cannot re-wrap these blobs: the retired KEK version stays in the vault to open them.
"""

from __future__ import annotations

import base64
import hashlib
import json

from django.conf import settings

SEALED_KEY = "sealed_texts"


def payload_kek() -> str:
    return getattr(settings, "AUDIT_PAYLOAD_KEK", "audit-payloads")


def sealed_texts(texts: dict[str, str], *, action: str, resource_type: str, resource_id: str | int) -> dict:
    """The payload entry that carries `texts` sealed; merge it into the event's payload."""
    from vault.envelope import seal

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
    """The texts sealed in `event`'s payload ({} when there are none). VaultError if they do not open."""
    from vault.envelope import open_sealed

    entry = event.payload.get(SEALED_KEY)
    if not entry:
        return {}
    context = _context(event.action, event.resource_type, event.resource_id)
    plain = open_sealed(base64.b64decode(entry["blob"]), context=context)
    return json.loads(plain.decode("utf-8"))


def _context(action: str, resource_type: str, resource_id: str | int) -> bytes:
    return f"audit.payload|{action}|{resource_type}|{resource_id}".encode()
