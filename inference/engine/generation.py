"""The pieces the transformers engine hands to `generate()`: a streamer that turns tokens into text
and stops at stop sequences, seeded sampling, and a count of the target's forward passes (for the
speculative-decoding figures).

Sampling with a seed: generate()'s own sampling draws from torch's process-wide generator, which
concurrent requests share, so one request's seed would not fix its output. `GumbelSampler` adds
Gumbel noise drawn from (seed, position) to the warped scores and generate() keeps the best token:
argmax(log p + Gumbel) is an exact sample from p (the Gumbel-max trick). The draw at a position
depends only on the seed, the position and the scores, so a seeded answer is the same with or
without speculative decoding, and a draft model proposes with the same noise (coupled drafts).
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager

import numpy as np
import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.generation.streamers import BaseStreamer

from inference.engine.text import TextAssembler
from inference.engine.types import GenerationParams

END_OF_STREAM = object()
SEED_MASK = 2**64 - 1


class GumbelSampler(LogitsProcessor):
    def __init__(self, seed: int):
        self.seed = seed & SEED_MASK

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # The position of the token being chosen: the length of the sequence before it.
        rng = np.random.default_rng([self.seed, input_ids.shape[-1]])
        noise = torch.from_numpy(rng.gumbel(size=scores.shape)).to(scores.dtype).to(scores.device)
        return scores + noise  # -inf (filtered by top-k/top-p) stays -inf


def logits_processors(params: GenerationParams, seed: int) -> LogitsProcessorList:
    """Empty for greedy decoding; else temperature, top-k, top-p (transformers' order) and the sampler."""
    if params.greedy:
        return LogitsProcessorList()
    processors = [TemperatureLogitsWarper(params.temperature)]
    if params.top_k:
        processors.append(TopKLogitsWarper(params.top_k))
    if params.top_p < 1.0:
        processors.append(TopPLogitsWarper(params.top_p))
    return LogitsProcessorList([*processors, GumbelSampler(seed)])


class TokenStreamer(BaseStreamer):
    """Receives generate()'s tokens on its thread, assembles text and queues the deltas.

    Each `put` after the prompt is one target forward pass: one token when decoding plainly, the
    accepted drafts plus the target's own token when decoding speculatively.
    """

    def __init__(self, assembler: TextAssembler, stop_token_ids: set[int]):
        self.assembler = assembler
        self.stop_token_ids = stop_token_ids
        self.deltas: queue.SimpleQueue = queue.SimpleQueue()
        self.tokens = 0
        self.accepted = 0
        self.first_token_at: float | None = None
        self.finish_reason = "length"
        self.done = False  # a stop token or stop sequence arrived
        self.cancelled = False  # the reader went away
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() hands the prompt over first
            self._prompt_seen = True
            return
        if self.done:
            return
        self.first_token_at = self.first_token_at or time.perf_counter()
        used = 0
        for token in value.reshape(-1).tolist():
            used += 1
            self.tokens += 1
            if token in self.stop_token_ids:
                self._stop()
                break
            if delta := self.assembler.add(token):
                self.deltas.put(delta)
            if self.assembler.stopped:
                self._stop()
                break
        self.accepted += used - 1

    def end(self) -> None:
        pass  # the engine marks the end itself, also when generate() raises

    def _stop(self) -> None:
        self.done = True
        self.finish_reason = "stop"

    def stopping_criterion(self) -> StoppingCriteria:
        return _StopWhen(self)


class _StopWhen(StoppingCriteria):
    def __init__(self, streamer: TokenStreamer):
        self.streamer = streamer

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        stop = self.streamer.done or self.streamer.cancelled
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class TargetPassCounter:
    """How many tokens each forward pass of the target fed, recognised by the KV cache it carries
    (a draft model, even the same module drafting for itself, runs with a cache of its own)."""

    def __init__(self, cache):
        self.cache = cache
        self.fed: list[int] = []
        self._lock = threading.Lock()

    @contextmanager
    def counting(self, model: torch.nn.Module):
        def record(module, args, kwargs):
            if kwargs.get("cache") is self.cache:
                input_ids = kwargs.get("input_ids")
                if input_ids is not None:
                    with self._lock:
                        self.fed.append(int(input_ids.shape[-1]))

        handle = model.register_forward_pre_hook(record, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def proposed(self, prefilled: int) -> int:
        """Draft tokens the target verified: what each pass fed beyond what was already decided
        (the uncached prompt on the first pass, the previous pass's own token on later ones)."""
        if not self.fed:
            return 0
        return max(0, self.fed[0] - prefilled) + sum(n - 1 for n in self.fed[1:])
