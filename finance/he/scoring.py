"""Suite's side of encrypted scoring: a linear screening score w.x + b computed on a CKKS ciphertext.

Suite holds the partner's public context (no secret key, so it cannot read the features or the
score) and a linear model stored as JSON. Errors are HeInputError with a message the partner can act
on; the API turns them into 400s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from finance.he import params


class HeInputError(ValueError):
    pass


@dataclass(frozen=True)
class LinearScorer:
    """score = sum(weights[i] * features[i]) + bias; features in `feature_names` order."""

    feature_names: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    description: str = ""

    def __post_init__(self):
        if len(self.feature_names) != len(self.weights) or not self.weights:
            raise HeInputError("a linear scorer needs one weight per feature name, at least one")
        if len(self.weights) > params.MAX_FEATURES:
            raise HeInputError(f"at most {params.MAX_FEATURES} features fit one ciphertext")

    @property
    def version(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def plaintext_score(self, features) -> float:
        return float(sum(w * float(x) for w, x in zip(self.weights, features, strict=True)) + self.bias)

    def to_json(self) -> str:
        return json.dumps(
            {
                "feature_names": list(self.feature_names),
                "weights": list(self.weights),
                "bias": self.bias,
                "description": self.description,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LinearScorer:
        try:
            data = json.loads(text)
            return cls(
                feature_names=tuple(str(name) for name in data["feature_names"]),
                weights=tuple(float(w) for w in data["weights"]),
                bias=float(data["bias"]),
                description=str(data.get("description", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise HeInputError(f"not a linear scorer file: {error}") from error

    @classmethod
    def load(cls, path: Path) -> LinearScorer:
        return cls.from_json(Path(path).read_text())


def load_public_context(data: bytes):
    """The partner's context, refused if it holds a secret key or the wrong scheme parameters."""
    import tenseal as ts

    try:
        context = ts.context_from(bytes(data))
    except Exception as error:  # TenSEAL raises plain exceptions for malformed protobufs
        raise HeInputError(f"not a serialized TenSEAL context: {error}") from error
    if context.has_secret_key():
        raise HeInputError(
            "the context holds a secret key: send the public context only (save_secret_key=False)"
        )
    if not context.has_galois_keys():
        raise HeInputError(
            "the context needs Galois keys (context.generate_galois_keys()) for the dot product"
        )
    return context


def score_encrypted(context, ciphertext: bytes, scorer: LinearScorer) -> bytes:
    """Encrypted w.x + b under the partner's key; only the partner can decrypt it."""
    import tenseal as ts

    try:
        vector = ts.ckks_vector_from(context, bytes(ciphertext))
    except Exception as error:
        raise HeInputError(f"not a CKKS vector under this key: {error}") from error
    if vector.size() != len(scorer.weights):
        raise HeInputError(
            f"the encrypted vector has {vector.size()} values; the model takes {len(scorer.weights)} "
            f"({', '.join(scorer.feature_names)})"
        )
    return (vector.dot(list(scorer.weights)) + scorer.bias).serialize()
