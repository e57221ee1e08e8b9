"""Encrypted scoring, measured: |encrypted - plaintext| score error and the time per score.

    python manage.py bench_he --json

Keys are generated on the partner's side (finance.he.client), the scorer is the installation's
(train_he_scorer) or, without one, fitted here on the shared AMLSim sample. The scores are computed
by Suite's service code on ciphertexts it cannot read; ms_per_score is Suite's side (deserialise,
dot product, serialise); client_encrypt_ms and client_decrypt_ms are the partner's.
"""

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand

from finance.he import params, services, training
from finance.he.client import PartnerKeys
from finance.he.scoring import load_public_context, score_encrypted


class Command(BaseCommand):
    help = "Benchmark CKKS encrypted scoring: max_abs_error vs plaintext, ms_per_score."

    def add_arguments(self, parser):
        parser.add_argument("--scores", type=int, default=50)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        features, labels = training.amlsim_features(Path(settings.SHARED_DATA_DIR) / "amlsim")
        try:
            scorer = services.current_scorer()
        except services.HeNotConfigured:
            scorer = training.fit_linear_scorer(features, labels, training.FEATURE_NAMES, description="bench")
        print("generating partner keys ...", file=sys.stderr)
        started = time.perf_counter()
        keys = PartnerKeys.generate()
        public = keys.public_context()
        keygen_s = time.perf_counter() - started
        context = load_public_context(public)
        rng = np.random.default_rng(0)
        rows = features[rng.choice(len(features), size=options["scores"], replace=False)]
        errors, server_ms, encrypt_ms, decrypt_ms, sizes = [], [], [], [], []
        for row in rows:
            t0 = time.perf_counter()
            ciphertext = keys.encrypt(row.tolist())
            t1 = time.perf_counter()
            encrypted = score_encrypted(context, ciphertext, scorer)
            t2 = time.perf_counter()
            score = keys.decrypt(encrypted)
            t3 = time.perf_counter()
            errors.append(abs(score - scorer.plaintext_score(row)))
            encrypt_ms.append((t1 - t0) * 1000)
            server_ms.append((t2 - t1) * 1000)
            decrypt_ms.append((t3 - t2) * 1000)
            sizes.append(len(ciphertext))
        result = {
            "scores": len(rows),
            "features": len(scorer.feature_names),
            "max_abs_error": max(errors),
            "ms_per_score": statistics.median(server_ms),
            "ms_per_score_p95": sorted(server_ms)[int(0.95 * (len(server_ms) - 1))],
            "client_encrypt_ms": statistics.median(encrypt_ms),
            "client_decrypt_ms": statistics.median(decrypt_ms),
            "keygen_s": round(keygen_s, 2),
            "public_context_bytes": len(public),
            "ciphertext_bytes": statistics.median(sizes),
            "poly_modulus_degree": params.POLY_MODULUS_DEGREE,
            "coeff_mod_bit_sizes": list(params.COEFF_MOD_BIT_SIZES),
            "security_bits": params.SECURITY_BITS,
            "model_version": scorer.version,
        }
        self.stdout.write(json.dumps(result, indent=None if options["json"] else 2))
