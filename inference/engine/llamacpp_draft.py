"""Draft-model speculative decoding on llama.cpp: a second, smaller GGUF model that shares the
target's vocabulary proposes tokens; the target (inference.engine.llamacpp) verifies them in one
batch and keeps the longest agreeing run, so greedy output is the target's own.

`GgufDraftModel` is a `llama_cpp.llama_speculative.LlamaDraftModel` (llama-cpp-python's interface:
called with the token ids so far, it returns the proposed continuation), so it also plugs into
`llama_cpp.Llama(draft_model=...)`. Its own context follows the target's sequence by prefix:
only the tokens it has not seen are evaluated on each call, and rejected drafts are dropped.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from llama_cpp.llama_speculative import LlamaDraftModel

from inference.engine.llamacpp import FLASH_ATTN_UBATCH
from inference.engine.types import EngineError, ModelLoadError


def _common_prefix(a, b) -> int:
    n = min(len(a), len(b))
    for index in range(n):
        if a[index] != b[index]:
            return index
    return n


class GgufDraftModel(LlamaDraftModel):
    """Greedy drafts from a small GGUF model (same vocabulary as the target it drafts for)."""

    def __init__(
        self,
        gguf_path: str | Path,
        *,
        num_pred_tokens: int = 4,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        flash_attn: bool = True,
    ):
        self.path = str(Path(gguf_path).resolve())
        if not Path(self.path).is_file():
            raise ModelLoadError(f"Draft GGUF {self.path} does not exist.")
        self.num_pred_tokens = num_pred_tokens
        self.n_ctx, self.n_batch = n_ctx, n_batch
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.flash_attn = flash_attn
        self._llama = None
        self._live: list[int] = []  # the tokens this context's KV cache holds
        self._lock = threading.Lock()

    def loaded(self):
        if self._llama is None:
            import llama_cpp

            try:
                self._llama = llama_cpp.Llama(
                    model_path=self.path, n_ctx=self.n_ctx, n_batch=self.n_batch, n_threads=self.n_threads,
                    n_threads_batch=self.n_threads, flash_attn=self.flash_attn,
                    n_ubatch=min(self.n_batch, FLASH_ATTN_UBATCH) if self.flash_attn else self.n_batch, verbose=False,
                )  # fmt: skip
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelLoadError(f"llama.cpp cannot load the draft model {self.path}: {exc}") from exc
        return self._llama

    def check_vocabulary(self, target) -> None:
        """Refuse a draft whose vocabulary differs from the target's (its tokens would mean other text)."""
        draft = self.loaded()
        if draft.n_vocab() != target.n_vocab():
            raise ModelLoadError(
                f"The draft model {Path(self.path).name} has {draft.n_vocab()} tokens, the target "
                f"{target.n_vocab()}: a draft model must share the target's vocabulary."
            )
        probe = b"Slice thickness: 5.0 mm. Restate it."
        if draft.tokenize(probe, add_bos=False) != target.tokenize(probe, add_bos=False):
            raise ModelLoadError(f"The draft model {Path(self.path).name} tokenizes text differently.")

    def __call__(self, input_ids: np.ndarray, /, **kwargs: Any) -> np.ndarray:
        limit = int(kwargs.get("limit", self.num_pred_tokens))
        return np.asarray(self.propose([int(t) for t in input_ids], limit), dtype=np.intc)

    def propose(self, sequence: list[int], limit: int) -> list[int]:
        """Up to `limit` (at most num_pred_tokens) greedy tokens continuing `sequence`."""
        limit = min(limit, self.num_pred_tokens)
        if limit <= 0 or not sequence:
            return []
        from llama_cpp import _internals

        llama = self.loaded()
        if len(sequence) + limit >= llama.n_ctx():
            return []
        with self._lock:
            keep = min(_common_prefix(self._live, sequence), len(sequence) - 1)
            llama._ctx.kv_cache_seq_rm(-1, keep, -1)
            del self._live[keep:]
            self._eval(sequence[keep:])
            sampler = _internals.LlamaSampler()
            sampler.add_greedy()
            try:
                drafts: list[int] = []
                while True:
                    token = sampler.sample(llama._ctx, -1)
                    if llama_cpp_is_end(llama, token):
                        break
                    drafts.append(token)
                    if len(drafts) >= limit:
                        break
                    self._eval([token])
            finally:
                sampler.close()
            return drafts

    def _eval(self, tokens: list[int]) -> None:
        llama = self._llama
        batch = llama._batch
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            last_chunk = start + self.n_batch >= len(tokens)
            batch.set_batch(batch=chunk, n_past=len(self._live), logits_all=False)
            for index in range(len(chunk)):
                batch.batch.logits[index] = last_chunk and index == len(chunk) - 1
            try:
                llama._ctx.decode(batch)
            except RuntimeError as exc:
                raise EngineError(f"llama.cpp failed to decode with the draft model: {exc}") from exc
            self._live.extend(chunk)

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
                self._live = []


def llama_cpp_is_end(llama, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llama._model.vocab, token))
