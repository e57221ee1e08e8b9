"""The partner's side of encrypted scoring. Depends on tenseal and numpy only, so it can be copied
to the partner's machines as it is.

    keys = PartnerKeys.generate()
    key_id = upload(keys.public_context())            # once: POST /api/finance/he/keys/
    ciphertext = keys.encrypt(features)               # features in the model's order
    encrypted_score = post(key_id, ciphertext)        # POST /api/finance/he/score/
    score = keys.decrypt(encrypted_score)

The secret key never leaves PartnerKeys; the public context carries the relinearisation and Galois
(rotation) keys Suite needs to compute a dot product, and nothing that decrypts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from finance.he import params


def _tenseal():
    import tenseal

    return tenseal


@dataclass
class PartnerKeys:
    context: object  # tenseal.Context holding the secret key

    @classmethod
    def generate(cls) -> PartnerKeys:
        ts = _tenseal()
        context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=params.POLY_MODULUS_DEGREE,
            coeff_mod_bit_sizes=list(params.COEFF_MOD_BIT_SIZES),
        )
        context.global_scale = 2**params.GLOBAL_SCALE_BITS
        context.generate_galois_keys()
        return cls(context)

    @classmethod
    def load(cls, secret_context: bytes) -> PartnerKeys:
        return cls(_tenseal().context_from(secret_context))

    def save(self) -> bytes:
        """The full context, secret key included: keep it on the partner's side only."""
        return self.context.serialize(save_secret_key=True)

    def public_context(self) -> bytes:
        return self.context.serialize(save_secret_key=False, save_galois_keys=True, save_relin_keys=True)

    def encrypt(self, features: Sequence[float]) -> bytes:
        values = [float(value) for value in features]
        if not 0 < len(values) <= params.MAX_FEATURES:
            raise ValueError(f"between 1 and {params.MAX_FEATURES} features, got {len(values)}")
        return _tenseal().ckks_vector(self.context, values).serialize()

    def decrypt(self, encrypted_score: bytes) -> float:
        return float(_tenseal().ckks_vector_from(self.context, encrypted_score).decrypt()[0])
