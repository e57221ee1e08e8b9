"""KV caches kept between the turns of a conversation, under a byte budget.

A `CachedSequence` pairs a model's KV cache with the exact token ids it holds. The next turn keeps
the longest prefix it shares with the new prompt (the cache is cropped to it) and `generate()`
prefills only the rest.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

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


class SessionStore:
    """LRU store of conversation KV caches bounded in bytes.

    `take` removes a session while a turn runs, so two concurrent turns of one conversation never
    share a cache (the second simply recomputes); `put` returns it afterwards. An evicted session
    costs only a full prefill on its next turn.
    """

    def __init__(self, budget_bytes: int = DEFAULT_SESSION_BUDGET_BYTES):
        self.budget_bytes = budget_bytes
        self._sessions: OrderedDict[tuple, tuple[CachedSequence, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def take(self, key: tuple) -> CachedSequence | None:
        with self._lock:
            entry = self._sessions.pop(key, None)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            return entry[0]

    def put(self, key: tuple, state: CachedSequence) -> None:
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
