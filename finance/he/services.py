"""Encrypted scoring as a service: partner public keys kept by content digest, each score trailed.

A public context holds no secret key (refused otherwise), so storing it under VAR_DIR is safe; it is
large (about 35 MB with the Galois keys), so a partner registers it once and then sends only
ciphertexts (about 330 kB each).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from access.enforcement import check
from audit.services import record
from finance.he.scoring import HeInputError, LinearScorer, load_public_context, score_encrypted

MODEL_RESOURCE = "model:finance_he_screening"
MAX_CONTEXT_BYTES = 64 * 1024 * 1024
MAX_CIPHERTEXT_BYTES = 4 * 1024 * 1024


class HeNotConfigured(RuntimeError):
    """No encrypted-scoring model has been trained on this installation."""


@dataclass(frozen=True)
class EncryptedScore:
    ciphertext: bytes
    model_version: str
    feature_names: tuple[str, ...]


def key_dir() -> Path:
    return Path(settings.VAR_DIR) / "finance" / "he-keys"


def scorer_path() -> Path:
    return Path(getattr(settings, "FINANCE_HE_SCORER", Path(settings.MODEL_ROOT) / "finance_he_scorer.json"))


def current_scorer() -> LinearScorer:
    path = scorer_path()
    if not path.is_file():
        raise HeNotConfigured(
            "no encrypted-scoring model on this installation: run `python manage.py train_he_scorer`"
        )
    return LinearScorer.load(path)


def he_key_register(*, user, actor=None, context_bytes: bytes) -> str:
    """Store a partner's public context; returns its key id (the SHA-256 of its bytes)."""
    decision = check(user, "predict", MODEL_RESOURCE, actor=actor)
    actor = user if actor is None else actor
    if not context_bytes:
        raise HeInputError("the public context is empty")
    if len(context_bytes) > MAX_CONTEXT_BYTES:
        raise HeInputError(f"the public context is larger than {MAX_CONTEXT_BYTES // 2**20} MiB")
    load_public_context(context_bytes)  # refuses secret keys and contexts without Galois keys
    key_id = hashlib.sha256(context_bytes).hexdigest()
    folder = key_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{key_id}.ctx"
    if not target.exists():
        # Written to a temporary file and renamed, so a failure never leaves a truncated key.
        fd, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(context_bytes)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    with transaction.atomic():
        record(
            actor=actor,
            action="he.key_register",
            resource_type="model",
            resource_id="finance_he_screening",
            outcome="succeeded",
            policy=decision.policy or "",
            payload={"key_id": key_id, "bytes": len(context_bytes)},
        )
    return key_id


def he_score(*, user, actor=None, key_id: str, ciphertext: bytes) -> EncryptedScore:
    """The encrypted linear screening score for one encrypted feature vector."""
    decision = check(user, "predict", MODEL_RESOURCE, actor=actor)
    actor = user if actor is None else actor
    if not (len(key_id) == 64 and all(c in "0123456789abcdef" for c in key_id)):
        raise HeInputError("key_id is the 64-hex-digit id returned when the public context was registered")
    path = key_dir() / f"{key_id}.ctx"
    if not path.is_file():
        raise HeInputError(
            f"no public context registered under key_id {key_id}: POST it to /api/finance/he/keys/"
        )
    if not ciphertext or len(ciphertext) > MAX_CIPHERTEXT_BYTES:
        raise HeInputError(f"the ciphertext must hold between 1 byte and {MAX_CIPHERTEXT_BYTES // 2**20} MiB")
    scorer = current_scorer()
    context = _context(key_id, path)
    encrypted = score_encrypted(context, ciphertext, scorer)
    with transaction.atomic():
        record(
            actor=actor,
            action="he.score",
            resource_type="model",
            resource_id="finance_he_screening",
            outcome="succeeded",
            policy=decision.policy or "",
            # Suite cannot read the features or the score: the trail keeps what it can prove.
            payload={
                "key_id": key_id,
                "model_version": scorer.version,
                "ciphertext_sha256": hashlib.sha256(ciphertext).hexdigest(),
                "score_ciphertext_sha256": hashlib.sha256(encrypted).hexdigest(),
            },
        )
    return EncryptedScore(encrypted, scorer.version, scorer.feature_names)


_contexts: dict[str, object] = {}


def _context(key_id: str, path: Path):
    context = _contexts.get(key_id)
    if context is None:
        context = load_public_context(path.read_bytes())
        if len(_contexts) >= 8:
            _contexts.pop(next(iter(_contexts)))
        _contexts[key_id] = context
    return context
