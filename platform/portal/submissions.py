"""Submission keys: a form or an API call sent twice files once.

A connection that drops after the server took a form (shop-floor Wi-Fi, a double click, a draft
restored and sent again) sends the same thing twice. The portal's forms carry a hidden `submission`
key made when the form is shown (`portal.drafts.new_submission_key`), and API clients send an
`Idempotency-Key` header. A service that files something stores the key on what it filed, unique per
person (a partial unique constraint), and answers the same key from the same person with what the key
filed the first time (marked `replayed`, so the API says `Idempotent-Replayed: true` and the page says
it was already sent). The same key with other content is refused: the client changed the form after it
was sent, and needs a new key for a new record.
"""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

SUBMISSION_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEY_RULE = "the submission key must be 1 to 64 letters, digits, '-' or '_' (e.g. a UUID)"
REPLAYED_HEADER = "Idempotent-Replayed"


def checked_submission_key(key: str, actor, *, refused: type[Exception]) -> str:
    """`key` if it is a valid submission key, "" when absent or when there is no person to scope it to;
    anything else raises `refused` (the caller's 400) with the rule."""
    if key and not SUBMISSION_KEY.fullmatch(key):
        raise refused(KEY_RULE)
    return key if actor is not None and actor.pk else ""


def created_once(create, earlier):
    """`create()` in a savepoint, marked `replayed` False; when the same submission key sent twice at
    once lost the race to the unique constraint, what the other request made (`earlier()`), marked
    `replayed` True."""
    try:
        with transaction.atomic():
            made = create()
    except IntegrityError:
        made = earlier()
        if made is None:
            raise
        made.replayed = True
        return made
    made.replayed = False
    return made
