"""KV caches kept between the turns of a conversation, under a byte budget.

A `CachedSequence` pairs a model's KV cache with the exact token ids it holds. `SequenceRunner`
brings that cache up to any new token sequence by keeping the longest common prefix and
prefilling only the rest: the same primitive serves multi-turn reuse, plain decoding and the
roll-back that speculative decoding needs after rejected draft tokens.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from inference.engine.loader import LoadedModel

DEFAULT_SESSION_BUDGET_BYTES = 512 * 1024**2


@dataclass
class CachedSequence:
    token_ids: list[int] = field(default_factory=list)
    cache: object | None = None  # a transformers DynamicCache

    def nbytes(self) -> int:
        if self.cache is None:
            return 0
        if hasattr(self.cache, "nbytes"):
            return self.cache.nbytes()
        total = 0
        for layer in getattr(self.cache, "layers", []):
            for name in ("keys", "values"):
                tensor = getattr(layer, name, None)
                if isinstance(tensor, torch.Tensor):
                    total += tensor.numel() * tensor.element_size()
        return total


def common_prefix_length(cached: list[int], wanted: list[int]) -> int:
    # The usual case (the cache is a prefix of the request) is one C-level slice comparison.
    if len(cached) <= len(wanted) and wanted[: len(cached)] == cached:
        return len(cached)
    limit = min(len(cached), len(wanted))
    for index in range(limit):
        if cached[index] != wanted[index]:
            return index
    return limit


class SequenceRunner:
    """Runs one model over a growing token sequence, reusing its KV cache where the prefix matches."""

    def __init__(self, loaded: LoadedModel, adapter: str | None, cached: CachedSequence | None = None):
        from transformers import Cache

        self.loaded = loaded
        self.adapter = adapter
        # A cache of another kind (the lean draft runtime's) cannot be continued here: start over.
        if cached is None or not isinstance(cached.cache, Cache | None):
            cached = CachedSequence()
        self.cached = cached
        # False while a forward pass is in flight: a cache interrupted by an error is not reusable.
        self.consistent = True

    def reusable_prefix(self, token_ids: list[int]) -> int:
        """How many leading tokens of `token_ids` the cache already holds (at least one is always fed)."""
        return min(common_prefix_length(self.cached.token_ids, token_ids), len(token_ids) - 1)

    @torch.inference_mode()
    def logits(self, token_ids: list[int], num_logits: int = 1) -> torch.Tensor:
        """Logits predicting the token after each of the last `num_logits` positions of `token_ids`.

        Returns a float32 tensor of shape (num_logits, vocab). Afterwards the cache holds exactly
        `token_ids`.
        """
        keep = min(common_prefix_length(self.cached.token_ids, token_ids), len(token_ids) - num_logits)
        from transformers import DynamicCache

        self.consistent = False
        with self.loaded.using(self.adapter) as model:
            if self.cached.cache is None or keep == 0:
                self.cached.cache = DynamicCache(config=model.config)
                keep = 0
            elif keep < len(self.cached.token_ids):
                self.cached.cache.crop(keep - len(self.cached.token_ids))
            new_tokens = torch.tensor([token_ids[keep:]], dtype=torch.long, device=self.loaded.device)
            output = model(
                input_ids=new_tokens, cache=self.cached.cache, use_cache=True, logits_to_keep=num_logits
            )
        self.cached.cache = output.cache if getattr(output, "cache", None) is not None else self.cached.cache
        self.cached.token_ids = list(token_ids)
        self.consistent = True
        return output.logits[0, -num_logits:].float()


@dataclass
class SessionState:
    target: CachedSequence
    draft: CachedSequence | None = None

    def nbytes(self) -> int:
        return self.target.nbytes() + (self.draft.nbytes() if self.draft else 0)


class SessionStore:
    """LRU store of conversation KV caches bounded in bytes.

    `take` removes a session while a turn runs, so two concurrent turns of one conversation never
    share a cache (the second simply recomputes); `put` returns it afterwards. An evicted session
    costs only a full prefill on its next turn.
    """

    def __init__(self, budget_bytes: int = DEFAULT_SESSION_BUDGET_BYTES):
        self.budget_bytes = budget_bytes
        self._sessions: OrderedDict[tuple, tuple[SessionState, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def take(self, key: tuple) -> SessionState | None:
        with self._lock:
            entry = self._sessions.pop(key, None)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            return entry[0]

    def put(self, key: tuple, state: SessionState) -> None:
        size = state.nbytes()
        with self._lock:
            self._sessions.pop(key, None)
            if size > self.budget_bytes:
                self.evictions += 1
                return
            self._sessions[key] = (state, size)
            used = sum(s for _, s in self._sessions.values())
            while used > self.budget_bytes:
                _, (_, evicted_size) = self._sessions.popitem(last=False)
                used -= evicted_size
                self.evictions += 1

    def drop(self, session_id: str) -> int:
        """Forget every cache of one conversation (all models and adapters); returns how many."""
        with self._lock:
            doomed = [key for key in self._sessions if key[0] == session_id]
            for key in doomed:
                del self._sessions[key]
            return len(doomed)

    def __contains__(self, key: tuple) -> bool:
        with self._lock:
            return key in self._sessions

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._sessions.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
