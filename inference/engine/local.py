"""Serve a local Hugging Face-format model: chat templates, sampling, stop sequences, streaming,
multi-turn KV reuse and speculative decoding, all in one decode loop.

The loop is our own rather than `generate()`: it lets one KV cache outlive a request (sessions),
lets speculative decoding reuse that cache and count accepted draft tokens, and makes streaming
a plain generator with no helper thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from inference.engine.decoding import Decoder, DraftModelProposer, PromptLookupProposer, TokenSampler
from inference.engine.draftrunner import LeanDraftRunner, lean_runtime_supported
from inference.engine.loader import LoadedModel, ModelCache, shared_model_cache
from inference.engine.modeldir import inspect_model_dir
from inference.engine.sessions import SequenceRunner, SessionState, SessionStore
from inference.engine.text import TextAssembler, render_prompt
from inference.engine.types import (
    ChatMessage,
    ContextLengthExceeded,
    GenerationParams,
    GenerationResult,
    InvalidRequest,
    ModelLoadError,
)

FALLBACK_CONTEXT_LENGTH = 2048
Prompt = str | Sequence[ChatMessage | dict]


class LocalEngine:
    """One served model (optionally with a draft model and LoRA adapters) on this machine."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        quantization: str = "none",
        draft_model_dir: str | Path | None = None,
        adapters: dict[str, str | Path] | None = None,
        model_cache: ModelCache | None = None,
        session_store: SessionStore | None = None,
    ):
        # Validate both directories now: a broken model should fail at configuration, not per request.
        self.info = inspect_model_dir(model_dir)
        self.model_dir = self.info.path
        self.quantization = quantization
        self.draft_model_dir = inspect_model_dir(draft_model_dir).path if draft_model_dir else None
        self.adapters = {name: str(path) for name, path in (adapters or {}).items()}
        self.model_cache = model_cache if model_cache is not None else shared_model_cache()
        self.sessions = session_store if session_store is not None else SessionStore()
        self._draft_tokenizer_checked = False

    # -- public API -------------------------------------------------------------------------

    def generate(
        self,
        messages_or_prompt: Prompt,
        params: GenerationParams | None = None,
        session_id: str | None = None,
    ) -> GenerationResult:
        for item in self.stream(messages_or_prompt, params, session_id):
            if isinstance(item, GenerationResult):
                return item
        raise AssertionError("stream() ended without a result")  # pragma: no cover

    def stream(
        self,
        messages_or_prompt: Prompt,
        params: GenerationParams | None = None,
        session_id: str | None = None,
    ) -> Iterator[str | GenerationResult]:
        """Yield text deltas as they are decoded, then the final GenerationResult.

        Closing the generator early (a client that disconnects) stops decoding; the conversation's
        cache is still kept for its next turn.
        """
        params = params or GenerationParams()
        started = time.perf_counter()
        target = self.loaded()
        prompt_ids, implied_stops = render_prompt(target.tokenizer, messages_or_prompt)
        context_length = self.context_length(target)
        if len(prompt_ids) >= context_length:
            raise ContextLengthExceeded(limit=context_length, got=len(prompt_ids))
        if params.adapter is not None and params.adapter not in target.adapters:
            raise InvalidRequest(f"Unknown adapter {params.adapter!r}.")
        draft = self._draft_model(target) if params.speculative == "draft" else None
        session_key = self._session_key(session_id, params.adapter)
        state = self.sessions.take(session_key) if session_key else None
        runner = SequenceRunner(target, params.adapter, state.target if state else None)
        draft_runner = None
        if draft is not None:
            previous = state.draft if state else None
            lean = lean_runtime_supported(draft)
            draft_runner = LeanDraftRunner(draft, previous) if lean else SequenceRunner(draft, None, previous)
        try:
            cached_prompt_tokens = runner.reusable_prefix(prompt_ids)
            sampler = TokenSampler(params)
            proposer = None
            if params.speculative == "prompt_lookup":
                proposer = PromptLookupProposer(num_tokens=params.num_speculative_tokens)
            elif draft_runner is not None:
                proposer = DraftModelProposer(draft_runner, sampler, max_tokens=params.num_speculative_tokens)
            decoder = Decoder(runner, sampler, proposer=proposer, context_length=context_length)
            assembler = TextAssembler(target.tokenizer, [*params.stop, *implied_stops])
            budget = min(params.max_tokens, context_length - len(prompt_ids))
            generated, finish_reason, ttft = yield from self._decode(
                decoder, list(prompt_ids), budget, assembler, self._stop_token_ids(target), started
            )
        finally:
            # A cache interrupted mid-forward is not reusable; one closed between tokens is.
            if session_key and runner.consistent and (draft_runner is None or draft_runner.consistent):
                kept_draft = draft_runner.cached if draft_runner else (state.draft if state else None)
                self.sessions.put(session_key, SessionState(runner.cached, kept_draft))
        total = time.perf_counter() - started
        yield GenerationResult(
            text=assembler.text,
            prompt_tokens=len(prompt_ids),
            completion_tokens=generated,
            finish_reason=finish_reason,
            cached_prompt_tokens=cached_prompt_tokens,
            ttft_s=ttft if ttft is not None else total,
            total_s=total,
            draft_tokens_proposed=decoder.stats.proposed,
            draft_tokens_accepted=decoder.stats.accepted,
        )

    def count_prompt_tokens(self, messages_or_prompt: Prompt) -> int:
        return len(render_prompt(self.loaded().tokenizer, messages_or_prompt)[0])

    def end_session(self, session_id: str) -> None:
        self.sessions.drop(session_id)

    def add_adapter(self, name: str, adapter_dir: str | Path) -> None:
        """Register a LoRA adapter (peft format); requests choose it with GenerationParams.adapter."""
        self.loaded().ensure_adapter(name, adapter_dir)
        self.adapters[name] = str(adapter_dir)

    def loaded(self) -> LoadedModel:
        """The loaded target model, with this engine's adapters (re)attached after any eviction."""
        target = self.model_cache.get(self.model_dir, self.quantization)
        for name, adapter_dir in self.adapters.items():
            target.ensure_adapter(name, adapter_dir)
        return target

    def context_length(self, target: LoadedModel | None = None) -> int:
        if self.info.context_length:
            return self.info.context_length
        tokenizer_limit = getattr((target or self.loaded()).tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
            return tokenizer_limit
        return FALLBACK_CONTEXT_LENGTH

    @torch.inference_mode()
    def perplexity(self, texts: Sequence[str], *, adapter: str | None = None) -> float:
        """Token-level perplexity of the model on `texts` (each truncated to the context length)."""
        target = self.loaded()
        total_loss, total_tokens = 0.0, 0
        for text in texts:
            ids = target.tokenizer(text)["input_ids"][: self.context_length(target)]
            if len(ids) < 2:
                continue
            batch = torch.tensor([ids], device=target.device)
            with target.using(adapter) as model:
                loss = model(input_ids=batch, labels=batch).loss
            total_loss += float(loss) * (len(ids) - 1)
            total_tokens += len(ids) - 1
        if not total_tokens:
            raise InvalidRequest("Perplexity needs at least one text of two or more tokens.")
        return math.exp(total_loss / total_tokens)

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _decode(decoder: Decoder, sequence: list[int], budget: int, assembler: TextAssembler,
                stop_token_ids: set[int], started: float):  # fmt: skip
        """Yield text deltas; return (tokens generated, finish reason, time to first token)."""
        generated = 0
        ttft = None
        finish_reason = "length"
        while generated < budget and finish_reason == "length":
            for token in decoder.step(sequence, budget - generated):
                generated += 1
                ttft = ttft if ttft is not None else time.perf_counter() - started
                if token in stop_token_ids:
                    finish_reason = "stop"
                    break
                sequence.append(token)
                if delta := assembler.add(token):
                    yield delta
                if assembler.stopped:
                    finish_reason = "stop"
                    break
        # Text held back as a possible stop-sequence prefix belongs to the answer after all.
        if tail := assembler.finish():
            yield tail
        return generated, finish_reason, ttft

    def _session_key(self, session_id: str | None, adapter: str | None) -> tuple | None:
        if session_id is None:
            return None
        return (session_id, self.model_dir, self.quantization, adapter)

    def _draft_model(self, target: LoadedModel) -> LoadedModel:
        if not self.draft_model_dir:
            raise InvalidRequest("Speculative decoding with a draft model needs a draft_model_dir.")
        draft = self.model_cache.get(self.draft_model_dir, "none")
        if not self._draft_tokenizer_checked:
            if draft.tokenizer.get_vocab() != target.tokenizer.get_vocab():
                raise ModelLoadError(
                    f"The draft model {self.draft_model_dir} does not share the target model's tokenizer."
                )
            self._draft_tokenizer_checked = True
        return draft

    @staticmethod
    def _stop_token_ids(target: LoadedModel) -> set[int]:
        ids: set[int] = set()
        for source in (
            getattr(target.model, "generation_config", None),
            target.model.config,
            target.tokenizer,
        ):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(v for v in value if isinstance(v, int))
        return ids
