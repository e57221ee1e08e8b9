"""Serve a local Hugging Face-format model with transformers' own `generate()`: chat templates,
seeded sampling, stop sequences, streaming, multi-turn KV reuse, speculative decoding (a draft
model or prompt lookup) and LoRA adapters chosen per request.

`generate()` runs on a worker thread. Its streamer (`engine.generation.TokenStreamer`) turns each
token into text on that thread and decides there when a stop sequence has appeared, so decoding
ends at the token that completes it; the caller's generator reads the text deltas from a queue.
A conversation's KV cache (`session_id`) is handed to `generate()` with the whole history, which
prefills only what the cache does not hold yet.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import torch

from inference.engine.generation import END_OF_STREAM, TargetPassCounter, TokenStreamer, logits_processors
from inference.engine.loader import LoadedModel, ModelCache, shared_model_cache
from inference.engine.modeldir import inspect_model_dir
from inference.engine.sessions import CachedSequence, SessionStore, common_prefix_length
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

        Closing the generator early (a client that disconnects) stops decoding after the current
        forward pass; the conversation's cache is still kept for its next turn.
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
        # transformers' assisted decoding feeds its whole input on its first pass, so it cannot start
        # from a filled cache: a speculative turn prefills afresh and leaves its cache to the next turn.
        cached = _reusable(state if params.speculative == "none" else None, prompt_ids, target)
        streamer = TokenStreamer(
            TextAssembler(target.tokenizer, [*params.stop, *implied_stops]), self._stop_token_ids(target)
        )
        budget = min(params.max_tokens, context_length - len(prompt_ids))
        run = _GenerateRun(target, draft, params, prompt_ids, cached, streamer, budget)
        worker = threading.Thread(target=run, name="generate", daemon=True)
        worker.start()
        try:
            while (delta := streamer.deltas.get()) is not END_OF_STREAM:
                yield delta
        finally:
            streamer.cancelled = True  # the reader left: generate() stops after its current pass
            worker.join()
            if session_key and run.error is None:
                self.sessions.put(session_key, run.kept_sequence())
        if run.error is not None:
            raise run.error
        # Text held back as a possible stop-sequence prefix belongs to the answer after all.
        if tail := streamer.assembler.finish():
            yield tail
        total = time.perf_counter() - started
        ttft = streamer.first_token_at - started if streamer.first_token_at else total
        yield GenerationResult(
            text=streamer.assembler.text,
            prompt_tokens=len(prompt_ids),
            completion_tokens=streamer.tokens,
            finish_reason=streamer.finish_reason,
            cached_prompt_tokens=len(cached.token_ids),
            ttft_s=ttft,
            total_s=total,
            draft_tokens_proposed=run.passes.proposed(len(prompt_ids) - len(cached.token_ids)),
            draft_tokens_accepted=streamer.accepted,
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


def _reusable(state: CachedSequence | None, prompt_ids: list[int], target: LoadedModel) -> CachedSequence:
    """The conversation's cache cut back to what it shares with this prompt (at least one prompt
    token is always left to prefill, since generate() needs logits for it), or a fresh cache."""
    from transformers import DynamicCache

    if state is not None and state.cache is not None:
        keep = min(common_prefix_length(state.token_ids, prompt_ids), len(prompt_ids) - 1)
        held = state.cache.get_seq_length()
        if 0 < keep <= held:
            state.cache.crop(keep - held)
            return CachedSequence(prompt_ids[:keep], state.cache)
    return CachedSequence([], DynamicCache(config=target.model.config))


class _GenerateRun:
    """One `generate()` call on the worker thread, with what the caller needs afterwards."""

    def __init__(self, target, draft, params, prompt_ids, cached, streamer, budget):
        self.target = target
        self.draft = draft
        self.params = params
        self.prompt_ids = prompt_ids
        self.cached = cached
        self.streamer = streamer
        self.budget = budget
        self.passes = TargetPassCounter(cached.cache)
        self.sequence: list[int] | None = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        from transformers import GenerationConfig, StoppingCriteriaList

        params = self.params
        stop_ids = sorted(self.streamer.stop_token_ids)
        config = GenerationConfig(
            max_new_tokens=self.budget,
            # Sampling is done by our seeded processor; generate() then keeps the best-scoring token.
            do_sample=False,
            eos_token_id=stop_ids or None,
            pad_token_id=stop_ids[0] if stop_ids else None,
            return_dict_in_generate=True,
        )
        extra: dict = {}
        if params.speculative == "prompt_lookup":
            config.prompt_lookup_num_tokens = params.num_speculative_tokens
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        try:
            with ExitStack() as held:
                # Adapters switch in inference mode too: perplexity() may have loaded their weights
                # as inference tensors, which peft may not touch outside it.
                held.enter_context(torch.inference_mode())
                # peft keeps the active adapter as model state: hold the model for the whole call.
                model = held.enter_context(self.target.using(params.adapter))
                model = self.target.generation_model(model)
                if self.draft is not None:
                    assistant = self.draft.generation_model(held.enter_context(self.draft.using(None)))
                    assistant.generation_config.num_assistant_tokens = params.num_speculative_tokens
                    assistant.generation_config.num_assistant_tokens_schedule = "constant"
                    extra["assistant_model"] = assistant
                held.enter_context(self.passes.counting(model))
                output = model.generate(
                    torch.tensor([self.prompt_ids], dtype=torch.long, device=self.target.device),
                    generation_config=config,
                    logits_processor=logits_processors(params, seed),
                    stopping_criteria=StoppingCriteriaList([self.streamer.stopping_criterion()]),
                    streamer=self.streamer,
                    cache=self.cached.cache,
                    **extra,
                )
            self.sequence = output.sequences[0].tolist()
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            self.error = exc
        finally:
            self.streamer.deltas.put(END_OF_STREAM)

    def kept_sequence(self) -> CachedSequence:
        """The cache after this call with the exact token ids it holds (its last token, never fed
        back, is not among them)."""
        cache = self.cached.cache
        return CachedSequence(self.sequence[: cache.get_seq_length()], cache)
