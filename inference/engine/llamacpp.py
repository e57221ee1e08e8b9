"""Serve a GGUF model with llama.cpp (llama-cpp-python): the default engine on CPU.

llama.cpp does the arithmetic (quantized kernels, KV cache); the platform keeps what is ours:
chat templates, stop sequences, seeded sampling, streaming, multi-turn KV reuse per session under
a byte budget, speculative decoding (prompt lookup, or a draft GGUF model sharing the vocabulary:
inference.engine.llamacpp_draft) verified in one batch, and LoRA adapters chosen per request (several per base, switched on one context).

One llama.cpp context serves one request at a time (admission control queues the rest). The KV
cache of the context is kept between requests, so any request that shares a prefix with the
previous one (the next turn of a conversation, the same system prompt) skips that part of the
prefill; a conversation named by `session_id` is also saved (llama.cpp's per-sequence state) into
a byte-bounded LRU store and restored on its next turn when other requests ran in between.
"""

from __future__ import annotations

import atexit
import ctypes
import math
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.engine.text import PLAIN_ROLE_LABELS, PLAIN_TEMPLATE_STOPS, TextAssembler
from inference.engine.types import (
    AdapterError,
    ChatMessage,
    ContextLengthExceeded,
    EngineError,
    GenerationParams,
    GenerationResult,
    InvalidRequest,
    ModelLoadError,
)

DEFAULT_CONTEXT = 4096
DEFAULT_SESSION_BUDGET_BYTES = 512 * 1024**2
# With flash attention, ggml's CPU kernel takes a tiled path (f32 accumulation) for a micro-batch of
# 64 query rows or more (GGML_FA_TILE_Q) and a row-by-row one (f16 accumulation of V) below it. Kept
# below that, every token is attended to by the same kernel however the prompt is split, so a
# prefix-cache hit, a full prefill and one-token decoding give the same numbers (measured: with
# micro-batches of 512, 8 of 10 KV-reuse turns kept the text; with 63, 10 of 10, and the prefill of a
# 500-token prompt as fast as the unfused path's).
FLASH_ATTN_UBATCH = 63
Prompt = str | Sequence[ChatMessage | dict]


def _close_at_exit(engine_ref: weakref.ref) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.close()


def is_gguf(path: str | Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    limit = min(len(a), len(b))
    for index in range(limit):
        if a[index] != b[index]:
            return index
    return limit


class _Detokenizer:
    """The `decode` TextAssembler needs, on llama.cpp's vocabulary, for one request.

    TextAssembler decodes the whole growing answer after every token, and llama-cpp-python's
    detokenize walks its token list in Python: quadratic in the answer's length. The bytes of the
    tokens decoded before are kept, so each call converts only the new ones (llama.cpp's
    detokenization is the concatenation of each token's piece, except that a leading BOS drops
    the space after it: a BOS past the start is decoded afresh)."""

    def __init__(self, llama):
        self.llama = llama
        self._tokens: list[int] = []
        self._data = bytearray()
        self._special = False
        self._bos = llama.token_bos()

    def decode(self, token_ids, skip_special_tokens: bool = True) -> str:
        ids, special = list(token_ids), not skip_special_tokens
        known = len(self._tokens)
        if special != self._special or ids[:known] != self._tokens or (known and self._bos in ids[known:]):
            self._tokens, self._data, self._special, known = [], bytearray(), special, 0
        if len(ids) > known:
            self._data += self.llama.detokenize(ids[known:], special=special)
            self._tokens = ids
        return self._data.decode("utf-8", errors="replace")


@dataclass
class SavedSequence:
    token_ids: list[int]
    adapter: str | None
    state: bytes

    def nbytes(self) -> int:
        return len(self.state) + 8 * len(self.token_ids)


class SequenceStore:
    """LRU store of saved conversation KV states, bounded in bytes (an evicted one is recomputed)."""

    def __init__(self, budget_bytes: int = DEFAULT_SESSION_BUDGET_BYTES):
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[str, SavedSequence] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def get(self, key: str) -> SavedSequence | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: str, item: SavedSequence) -> None:
        with self._lock:
            self._items.pop(key, None)
            if item.nbytes() > self.budget_bytes:
                self.evictions += 1
                return
            self._items[key] = item
            while self.used_bytes_unlocked() > self.budget_bytes:
                self._items.popitem(last=False)
                self.evictions += 1

    def drop(self, key: str) -> bool:
        with self._lock:
            return self._items.pop(key, None) is not None

    def used_bytes_unlocked(self) -> int:
        return sum(item.nbytes() for item in self._items.values())

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self.used_bytes_unlocked()

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class PromptLookup:
    """Proposes the continuation of the latest earlier occurrence of the longest suffix of the sequence
    that occurred before (at least `min_ngram`, at most `max_ngram` tokens), as many tokens as that
    match is long plus one, at most `num_tokens`: a long match is a copy in progress and a short one a
    guess, and on a CPU every rejected draft token costs most of a decoding step (on the copy-heavy
    workload of bench_inference this beat fixed-length drafts at every cap: docs/benchmarks.md)."""

    def __init__(self, num_tokens: int = 10, max_ngram: int = 12, min_ngram: int = 2):
        self.num_tokens, self.max_ngram, self.min_ngram = num_tokens, max_ngram, min_ngram

    def propose(self, sequence: list[int], limit: int) -> list[int]:
        limit = min(limit, self.num_tokens)
        n = self.min_ngram
        if limit <= 0 or len(sequence) < n + 1:
            return []
        ids = np.asarray(sequence, dtype=np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], n)
        ends = np.flatnonzero((windows == ids[-n:]).all(axis=1)) + n  # the token after each match
        if not len(ends):
            return []
        while n < min(self.max_ngram, len(ids) - 1):  # extend the matches backwards while they hold
            before = ends - n - 1
            longer = ends[(before >= 0) & (ids[np.maximum(before, 0)] == ids[-n - 1])]
            if not len(longer):
                break
            ends, n = longer, n + 1
        start = int(ends[-1])
        return sequence[start : start + min(limit, n + 1)]


def _chat_formatter(llama):
    """The GGUF's own chat template, compiled once per loaded model (Jinja2 compiles a template in
    milliseconds: per request, that was most of a short request's time before its first token)."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def token_text(token_id: int) -> str:
        return (
            llama.detokenize([token_id], special=True).decode("utf-8", errors="ignore")
            if token_id >= 0
            else ""
        )

    return Jinja2ChatFormatter(
        template, eos_token=token_text(llama.token_eos()), bos_token=token_text(llama.token_bos())
    )


class LlamaCppEngine:
    """One served GGUF model (with optional GGUF LoRA adapters) on this machine."""

    kind = "llamacpp"

    def __init__(
        self,
        gguf_path: str | Path,
        *,
        adapters: dict[str, str | Path] | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_batch: int = 512,
        session_store: SequenceStore | None = None,
        draft_gguf_path: str | Path | None = None,
        flash_attn: bool = True,
    ):
        path = Path(gguf_path)
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist.")
        if not is_gguf(path):
            raise ModelLoadError(f"{path} is not a GGUF file (it does not start with 'GGUF').")
        self.path = str(path.resolve())
        self.adapters = {name: str(Path(p).resolve()) for name, p in (adapters or {}).items()}
        for name, adapter_path in self.adapters.items():
            if not is_gguf(adapter_path):
                raise AdapterError(f"Adapter {name!r}: {adapter_path} is not a GGUF LoRA file.")
        self.requested_ctx = n_ctx
        self.draft_path = str(Path(draft_gguf_path).resolve()) if draft_gguf_path else None
        self._draft = None  # GgufDraftModel, loaded with the target
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.n_batch = n_batch
        # llama.cpp's fused attention kernel, which its own tools turn on by default on CPU
        # (flash_attn "auto"); llama-cpp-python's `Llama` leaves it off. Same perplexity, fewer graph
        # nodes per layer: docs/inference.md, "Flash attention".
        self.flash_attn = flash_attn
        self.n_ubatch = min(n_batch, FLASH_ATTN_UBATCH) if flash_attn else n_batch
        self.sessions = session_store if session_store is not None else SequenceStore()
        self._llama = None
        self._formatter = None  # the GGUF's chat template, compiled at load
        self._adapter_handles: dict[str, object] = {}
        self._active_adapter: str | None = None
        self._live: list[int] = []  # the tokens the context's KV cache holds (sequence 0)
        self._load_lock = threading.Lock()
        # A plain Lock, not an RLock: a stream closed from another thread must be able to release it.
        self._lock = threading.Lock()

    # -- loading ----------------------------------------------------------------------------

    def loaded(self):
        if self._llama is None:
            with self._load_lock:
                if self._llama is None:
                    self._llama = self._load()
                    # Freed before the interpreter tears its modules down: llama_cpp's own __del__
                    # then finds its C functions gone and prints a TypeError traceback at every
                    # stop of a process that served a GGUF (web workers, Celery workers).
                    atexit.register(_close_at_exit, weakref.ref(self))
        return self._llama

    def _load(self):
        import llama_cpp

        try:
            probe_ctx = self.requested_ctx or DEFAULT_CONTEXT
            llama = llama_cpp.Llama(
                model_path=self.path,
                n_ctx=probe_ctx,
                n_batch=self.n_batch,
                n_ubatch=self.n_ubatch,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                flash_attn=self.flash_attn,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp cannot load {self.path}: {exc}") from exc
        trained = llama._model.n_ctx_train()
        if trained and trained < llama.n_ctx():
            llama.close()
            llama = llama_cpp.Llama(
                model_path=self.path, n_ctx=trained, n_batch=min(self.n_batch, trained),
                n_ubatch=min(self.n_ubatch, trained), n_threads=self.n_threads, n_threads_batch=self.n_threads,
                flash_attn=self.flash_attn, verbose=False,
            )  # fmt: skip
        for name, adapter_path in self.adapters.items():
            handle = llama_cpp.llama_adapter_lora_init(llama._model.model, adapter_path.encode())
            if not handle:
                raise AdapterError(f"llama.cpp cannot load the LoRA adapter {name!r} from {adapter_path}.")
            self._adapter_handles[name] = handle
        if self.draft_path:
            from inference.engine.llamacpp_draft import GgufDraftModel

            draft = GgufDraftModel(
                self.draft_path, n_ctx=llama.n_ctx(), n_threads=self.n_threads, flash_attn=self.flash_attn
            )
            draft.check_vocabulary(llama)
            self._draft = draft
        self._formatter = _chat_formatter(llama)
        return llama

    @property
    def n_ctx(self) -> int:
        return self.loaded().n_ctx()

    def context_length(self) -> int:
        return self.n_ctx

    def metadata(self) -> dict[str, str]:
        return dict(self.loaded().metadata)

    # -- prompts ----------------------------------------------------------------------------

    def render(self, messages_or_prompt: Prompt) -> tuple[list[int], list[str]]:
        """Token ids of the prompt plus stop sequences its format implies (as text.render_prompt)."""
        llama = self.loaded()
        if isinstance(messages_or_prompt, str):
            return llama.tokenize(messages_or_prompt.encode(), add_bos=True, special=False), []
        messages = [ChatMessage.coerce(m).as_dict() for m in messages_or_prompt]
        if self._formatter is not None:
            text = self._formatter(messages=messages).prompt
            return llama.tokenize(text.encode(), add_bos=False, special=True), []
        text = "".join(f"{PLAIN_ROLE_LABELS[m['role']]}: {m['content']}\n" for m in messages) + "Assistant:"
        return llama.tokenize(text.encode(), add_bos=True, special=False), list(PLAIN_TEMPLATE_STOPS)

    def count_prompt_tokens(self, messages_or_prompt: Prompt) -> int:
        return len(self.render(messages_or_prompt)[0])

    # -- generation -------------------------------------------------------------------------

    def generate(self, messages_or_prompt: Prompt, params: GenerationParams | None = None,
                 session_id: str | None = None) -> GenerationResult:  # fmt: skip
        for item in self.stream(messages_or_prompt, params, session_id):
            if isinstance(item, GenerationResult):
                return item
        raise AssertionError("stream() ended without a result")  # pragma: no cover

    def stream(self, messages_or_prompt: Prompt, params: GenerationParams | None = None,
               session_id: str | None = None) -> Iterator[str | GenerationResult]:  # fmt: skip
        """Yield text deltas as they are decoded, then the final GenerationResult.

        Validation errors (unknown adapter, prompt longer than the context) are raised before the
        first item; closing the generator early stops decoding and keeps the conversation's cache.
        """
        params = params or GenerationParams()
        started = time.perf_counter()
        llama = self.loaded()
        if params.adapter is not None and params.adapter not in self.adapters:
            raise InvalidRequest(
                f"Unknown adapter {params.adapter!r}; served: {', '.join(sorted(self.adapters)) or 'none'}."
            )
        if params.speculative == "draft" and self._draft is None:
            raise InvalidRequest(
                "This model has no draft model on the llama.cpp engine; use speculative 'prompt_lookup'."
            )
        prompt_ids, implied_stops = self.render(messages_or_prompt)
        n_ctx = llama.n_ctx()
        if len(prompt_ids) >= n_ctx:
            raise ContextLengthExceeded(limit=n_ctx, got=len(prompt_ids))
        if not prompt_ids:
            raise InvalidRequest("The prompt is empty.")
        return self._stream(llama, prompt_ids, implied_stops, params, session_id, started)

    def _stream(self, llama, prompt_ids, implied_stops, params, session_id, started):
        with self._lock:
            cached, consistent = 0, False
            generated, finish_reason, ttft = 0, "length", None
            proposed = accepted = 0
            assembler = TextAssembler(_Detokenizer(llama), [*params.stop, *implied_stops])
            sampler = self._sampler(params)
            try:
                self._select_adapter(params.adapter)
                session_key = f"{session_id}\x00{params.adapter or ''}" if session_id else None
                if session_key:
                    self._restore(session_key, prompt_ids)
                cached = self._truncate_to_prefix(prompt_ids)
                self._eval(prompt_ids[cached:], logits_for=1)
                consistent = True
                sequence = list(prompt_ids)
                budget = min(params.max_tokens, llama.n_ctx() - len(prompt_ids))
                lookup = self._proposer(params)
                pending = [sampler.sample(llama._ctx, -1)]
                while pending:
                    emitted_stop = False
                    for token in pending:
                        generated += 1
                        ttft = ttft if ttft is not None else time.perf_counter() - started
                        if self._is_end(token):
                            finish_reason, emitted_stop = "stop", True
                            break
                        sequence.append(token)
                        if delta := assembler.add(token):
                            yield delta
                        if assembler.stopped:
                            finish_reason, emitted_stop = "stop", True
                            break
                        if generated >= budget:
                            break
                    if emitted_stop or generated >= budget:
                        break
                    # The last sampled token is not in the KV cache yet: feed it with any drafts.
                    room = min(budget - generated, llama.n_ctx() - len(sequence) - 1)
                    drafts = lookup.propose(sequence, room) if lookup and room > 0 else []
                    consistent = False
                    self._eval([sequence[-1], *drafts], logits_for=len(drafts) + 1)
                    pending = []
                    for index in range(len(drafts) + 1):
                        token = sampler.sample(llama._ctx, index - len(drafts) - 1)
                        pending.append(token)
                        if index < len(drafts) and token != drafts[index]:
                            break
                    accepted += len(pending) - 1
                    proposed += len(drafts)
                    # Forget the KV entries of rejected drafts.
                    keep = len(sequence) + len(pending) - 1
                    if keep < len(self._live):
                        self._truncate(keep)
                    consistent = True
                if tail := assembler.finish():
                    yield tail
            finally:
                sampler.close()
                if not consistent:
                    self._truncate(0)
                elif session_id:
                    self._save(f"{session_id}\x00{params.adapter or ''}", params.adapter)
        total = time.perf_counter() - started
        yield GenerationResult(
            text=assembler.text, prompt_tokens=len(prompt_ids), completion_tokens=generated,
            finish_reason=finish_reason, cached_prompt_tokens=cached,
            ttft_s=ttft if ttft is not None else total, total_s=total,
            draft_tokens_proposed=proposed, draft_tokens_accepted=accepted,
        )  # fmt: skip

    # -- perplexity (quantization checks) ----------------------------------------------------

    def perplexity(self, texts: Sequence[str], *, adapter: str | None = None) -> float:
        """Token-level perplexity on `texts` (each truncated to the context)."""
        llama = self.loaded()
        losses = []
        for text in texts:
            ids = llama.tokenize(text.encode(), add_bos=True, special=False)[: llama.n_ctx()]
            if len(ids) >= 2:
                losses.append(self.token_nll(ids, adapter=adapter))
        if not losses:
            raise InvalidRequest("Perplexity needs at least one text of two or more tokens.")
        return math.exp(float(np.concatenate(losses).mean()))

    def token_nll(self, ids: Sequence[int], *, score_from: int = 1, adapter: str | None = None) -> np.ndarray:
        """The negative log-likelihood (nats) of each of `ids[score_from:]` given the tokens before it,
        in one context from an empty cache (evaluated n_batch tokens at a time, the logits of each
        batch read as it is decoded)."""
        llama = self.loaded()
        if not 1 <= score_from < len(ids) <= llama.n_ctx():
            raise InvalidRequest(f"token_nll needs 1 <= score_from < len(ids) <= {llama.n_ctx()}.")
        vocab = llama.n_vocab()
        losses = []
        with self._lock:
            self._select_adapter(adapter)
            self._truncate(0)
            try:
                for start in range(0, len(ids) - 1, self.n_batch):
                    # Rows start..end-1 predict tokens start+1..end; only rows from score_from-1 matter.
                    end = min(start + self.n_batch, len(ids) - 1)
                    skipped = max(0, score_from - 1 - start)  # rows of this batch before the first scored
                    self._eval(list(ids[start:end]), logits_for=max(0, end - start - skipped))
                    if skipped >= end - start:
                        continue
                    rows = np.ctypeslib.as_array(
                        llama._ctx.get_logits(), shape=(end - start - skipped, vocab)
                    )
                    targets = np.asarray(ids[start + skipped + 1 : end + 1])
                    for offset in range(0, len(targets), 64):  # float64 in slices: bounded memory
                        logits = rows[offset : offset + 64].astype(np.float64)
                        peak = logits.max(axis=1)
                        log_norm = peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1))
                        picked = logits[np.arange(len(logits)), targets[offset : offset + 64]]
                        losses.append(log_norm - picked)
            finally:
                self._truncate(0)
        return np.concatenate(losses)

    def forget_cache(self) -> None:
        """Empty the context's KV cache (the next request prefills its whole prompt; benchmarks)."""
        self.loaded()
        with self._lock:
            self._truncate(0)

    def end_session(self, session_id: str) -> None:
        for adapter in [None, *self.adapters]:
            self.sessions.drop(f"{session_id}\x00{adapter or ''}")

    def close(self) -> None:
        import llama_cpp

        with self._load_lock:
            if self._llama is not None:
                for handle in self._adapter_handles.values():
                    llama_cpp.llama_adapter_lora_free(handle)
                self._adapter_handles.clear()
                self._llama.close()
                self._llama = None
                self._live = []
            if self._draft is not None:
                self._draft.close()
                self._draft = None

    # -- internals (called with self._lock held) --------------------------------------------

    def _sampler(self, params: GenerationParams):
        from llama_cpp import _internals

        sampler = _internals.LlamaSampler()
        if params.greedy:
            sampler.add_greedy()
            return sampler
        if params.top_k:
            sampler.add_top_k(params.top_k)
        if params.top_p < 1.0:
            sampler.add_top_p(params.top_p, 1)
        sampler.add_temp(params.temperature)
        seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(4), "little")
        sampler.add_dist(seed & 0xFFFFFFFF)
        return sampler

    def _proposer(self, params: GenerationParams):
        """What proposes drafts for this request: prompt lookup, the draft model, or nothing."""
        if params.speculative == "prompt_lookup":
            return PromptLookup(params.num_speculative_tokens)
        if params.speculative == "draft":
            self._draft.num_pred_tokens = params.num_speculative_tokens
            return self._draft
        return None

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._llama._model.vocab, token))

    def _select_adapter(self, adapter: str | None) -> None:
        import llama_cpp

        if adapter == self._active_adapter:
            return
        ctx = self._llama._ctx.ctx
        if adapter is None:
            result = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapter_handles[adapter])
            scales = (ctypes.c_float * 1)(1.0)
            result = llama_cpp.llama_set_adapters_lora(ctx, handles, 1, scales)
        if result:
            raise AdapterError(f"llama.cpp refused to switch to adapter {adapter!r} (code {result}).")
        self._active_adapter = adapter
        self._truncate(0)  # the cached keys and values were computed with the other weights

    def _truncate(self, keep: int) -> None:
        self._llama._ctx.kv_cache_seq_rm(-1, keep, -1)
        del self._live[keep:]

    def _truncate_to_prefix(self, prompt_ids: list[int]) -> int:
        """Keep the longest cached prefix of the prompt (at least one prompt token is always fed)."""
        keep = min(common_prefix_length(self._live, prompt_ids), len(prompt_ids) - 1)
        self._truncate(keep)
        return keep

    def _eval(self, tokens: list[int], *, logits_for: int) -> None:
        """Append `tokens` to the KV cache; logits for the last `logits_for` of them."""
        llama = self._llama
        batch = llama._batch
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            first_logit = len(tokens) - logits_for - start  # index in this chunk
            batch.set_batch(batch=chunk, n_past=len(self._live), logits_all=False)
            for index in range(len(chunk)):
                batch.batch.logits[index] = index >= first_logit
            try:
                llama._ctx.decode(batch)
            except RuntimeError as exc:
                raise EngineError(f"llama.cpp failed to decode: {exc}") from exc
            self._live.extend(chunk)

    def _restore(self, key: str, prompt_ids: list[int]) -> None:
        """Load the conversation's saved KV state when it beats what the context holds now."""
        import llama_cpp

        saved = self.sessions.get(key)
        if saved is None or saved.adapter != self._active_adapter:
            return
        if common_prefix_length(saved.token_ids, prompt_ids) <= common_prefix_length(self._live, prompt_ids):
            return
        self._truncate(0)
        buffer = (ctypes.c_uint8 * len(saved.state)).from_buffer_copy(saved.state)
        if llama_cpp.llama_state_seq_set_data(self._llama._ctx.ctx, buffer, len(saved.state), 0):
            self._live = list(saved.token_ids)
        else:
            self._truncate(0)

    def _save(self, key: str, adapter: str | None) -> None:
        import llama_cpp

        ctx = self._llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        self.sessions.put(key, SavedSequence(list(self._live), adapter, bytes(buffer[:written])))
