"""The LLM layer's public facade. Industry apps and the API call these; nothing else reaches the engines.

Every generation is authorized by the access policy (`predict` on `model:<name>`) and written to
the decision trail together with its Generation row, in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from audit.services import record
from inference import embeddings, metrics, runtime

# Importing a bundled GGUF (the apps' commands and benchmarks): through this facade, not the engine.
from inference.engine.importer import bundled_smollm2 as bundled_smollm2
from inference.engine.importer import import_gguf as import_gguf
from inference.engine.types import ChatMessage, GenerationParams, GenerationResult, InvalidRequest
from inference.models import Generation, LanguageModel, LoraAdapter

# The registry lives in inference.registry; this module is the layer's public facade.
from inference.registry import RegistrationRefused as RegistrationRefused
from inference.registry import default_model as default_model
from inference.registry import default_row
from inference.registry import model_default_set as model_default_set
from inference.registry import model_import_register as model_import_register
from inference.registry import model_register as model_register
from inference.registry import model_register_checked as model_register_checked
from inference.registry import model_register_remote as model_register_remote
from vault.envelope import seal


class ModelNotFound(InvalidRequest):
    def __init__(self, name: str, what: str = "model"):
        self.name = name
        self.what = what
        super().__init__(f"The {what} '{name}' does not exist or is not served.")


@dataclass(frozen=True)
class Target:
    model: LanguageModel
    adapter: LoraAdapter | None

    @property
    def public_name(self) -> str:
        return f"{self.model.name}:{self.adapter.name}" if self.adapter else self.model.name


# --- resolving what a request names ----------------------------------------------------------
def resolve_target(name: str, adapter: str | None = None) -> Target:
    """`medical_qa`, `medical_qa:adapter` or (name, adapter). Only active models and promoted adapters."""
    base_name, _, suffix = name.partition(":")
    adapter_name = adapter or suffix or None
    model = LanguageModel.objects.select_related("draft").filter(name=base_name, is_active=True).first()
    if model is None:
        raise ModelNotFound(base_name)
    lora = None
    if adapter_name:
        lora = LoraAdapter.objects.filter(
            base_model=model, name=adapter_name, status=LoraAdapter.Status.PROMOTED
        ).first()
        if lora is None:
            raise ModelNotFound(f"{base_name}:{adapter_name}", "adapter")
    return Target(model=model, adapter=lora)


def default_target(purpose: str) -> Target | None:
    """What serves `purpose` (chat, qa, lora_base) unless a request names a model: the default model
    with its default adapter while that adapter stays promoted (a demoted one falls back to the base).
    None when no active model is set for the purpose."""
    row = default_row(purpose)
    if row is None:
        return None
    adapter = row.adapter if row.adapter_id and row.adapter.status == LoraAdapter.Status.PROMOTED else None
    return Target(model=row.model, adapter=adapter)


# --- generation ------------------------------------------------------------------------------
@dataclass
class Completion:
    result: GenerationResult
    generation: Generation
    target: Target


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _authorize(user, target: Target, actor) -> str:
    """The name of the rule that lets `user` predict with the model; PolicyDenied (trailed) otherwise.
    The model itself is the resource, so rules may use its attributes (e.g. `qa_default`)."""
    return check(user, "predict", target.model, actor=actor).policy or ""


def completion_create(
    *,
    user,
    target: Target,
    prompt: str | Sequence[ChatMessage | dict],
    params: GenerationParams,
    endpoint: str,
    session_id: str | None = None,
    actor=None,
) -> Completion:
    """Authorize, queue for a slot, generate, then trail. Raises Overloaded, PolicyDenied, EngineError."""
    stream = completion_stream(
        user=user,
        target=target,
        prompt=prompt,
        params=params,
        endpoint=endpoint,
        session_id=session_id,
        actor=actor,
    )
    try:
        for item in stream:
            if isinstance(item, Completion):
                return item
    finally:
        stream.close()  # frees the model slot
    raise AssertionError("completion_stream ended without a result")  # pragma: no cover


class CompletionStream:
    """Text deltas, then a Completion. Holds an admission slot from creation until closed or exhausted,
    so a client that disconnects (the server closes the response) frees it even before the first token."""

    def __init__(self, *, user, target, prompt, params, endpoint, session_id, actor):
        self._policy = _authorize(user, target, actor)
        self._served = runtime.served(target.model)
        self._slot = self._served.admission.acquire()  # raises Overloaded (429 + Retry-After)
        self._closed = False
        if target.adapter:
            params = _with_adapter(params, target.adapter.name)
        session_key = f"{getattr(user, 'pk', 'anon')}:{session_id}" if session_id else None
        try:
            # Engines that check the request when the stream is created (llama.cpp: prompt length,
            # adapter) fail here, before a streamed response has sent its headers.
            engine_stream = self._served.engine.stream(prompt, params, session_key)
        except BaseException:
            self._slot.release()
            raise
        self._engine_stream = engine_stream
        self._iterator = self._run(user, target, prompt, engine_stream, endpoint, actor)

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        try:
            return next(self._iterator)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._iterator.close()
            if hasattr(self._engine_stream, "close"):
                self._engine_stream.close()  # stops decoding and releases the engine at once
            self._slot.release()

    def _run(self, user, target, prompt, engine_stream, endpoint, actor) -> Iterator:
        model_label = {"model_name": target.model.name}
        started = time.perf_counter()
        pieces: list[str] = []
        result = None
        last_token_at = None
        status = "failed"
        try:
            for item in engine_stream:
                if isinstance(item, GenerationResult):
                    result = item
                    break
                now = time.perf_counter()
                if last_token_at is None:
                    metrics.observe(
                        "suite:time_to_first_token_seconds",
                        now - started,
                        metrics.TTFT_BUCKETS,
                        **model_label,
                    )
                else:
                    metrics.observe(
                        "suite:inter_token_latency_seconds",
                        now - last_token_at,
                        metrics.ITL_BUCKETS,
                        **model_label,
                    )
                last_token_at = now
                pieces.append(item)
                yield item
            status = "succeeded"
        finally:
            if result is None:
                # Client disconnected or the engine failed part-way: trail what was produced.
                text = "".join(pieces)
                result = GenerationResult(
                    text=text, prompt_tokens=0, completion_tokens=len(pieces),
                    finish_reason="length", total_s=time.perf_counter() - started,
                )  # fmt: skip
            generation = _trail_generation(
                user=user, actor=actor, target=target, prompt=prompt, result=result, endpoint=endpoint,
                outcome=status, policy=self._policy,
            )  # fmt: skip
            _count(result, target, status)
        yield Completion(result=result, generation=generation, target=target)


def completion_stream(
    *, user, target, prompt, params, endpoint, session_id=None, actor=None
) -> CompletionStream:
    return CompletionStream(
        user=user,
        target=target,
        prompt=prompt,
        params=params,
        endpoint=endpoint,
        session_id=session_id,
        actor=actor,
    )


def _with_adapter(params: GenerationParams, adapter: str) -> GenerationParams:
    return replace(params, adapter=adapter)


def _count(result: GenerationResult, target: Target, status: str) -> None:
    label = {"model_name": target.model.name}
    metrics.inc("suite:requests_total", outcome=status, **label)
    metrics.inc("suite:generation_tokens_total", result.completion_tokens, **label)
    metrics.inc("suite:prompt_tokens_total", result.prompt_tokens, **label)
    metrics.inc("suite:prefix_cache_queries_total", result.prompt_tokens, **label)
    metrics.inc("suite:prefix_cache_hits_total", result.cached_prompt_tokens, **label)
    metrics.inc("suite:spec_decode_num_draft_tokens_total", result.draft_tokens_proposed, **label)
    metrics.inc("suite:spec_decode_num_accepted_tokens_total", result.draft_tokens_accepted, **label)
    metrics.observe("suite:e2e_request_latency_seconds", result.total_s, metrics.E2E_BUCKETS, **label)


def _prompt_as_json(prompt) -> object:
    if isinstance(prompt, str):
        return prompt
    return [ChatMessage.coerce(m).as_dict() for m in prompt]


@transaction.atomic
def _trail_generation(
    *, user, actor, target: Target, prompt, result: GenerationResult, endpoint: str, outcome: str, policy: str
):
    prompt_json = _prompt_as_json(prompt)
    sealed = None
    if settings.INFERENCE_STORE_TEXT == "encrypted":
        sealed = seal(
            json.dumps({"prompt": prompt_json, "output": result.text}, ensure_ascii=False).encode(),
            context=b"inference.generation",
        )
    generation = Generation.objects.create(
        model=target.model,
        adapter=target.adapter,
        user=user if getattr(user, "pk", None) else None,
        endpoint=endpoint,
        prompt_sha256=_digest(prompt_json),
        output_sha256=hashlib.sha256(result.text.encode()).hexdigest(),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cached_prompt_tokens=result.cached_prompt_tokens,
        finish_reason=result.finish_reason,
        latency_ms=round(result.total_s * 1000, 3),
        ttft_ms=round(result.ttft_s * 1000, 3) if result.ttft_s else None,
        sealed_text=sealed,
    )
    record(
        actor=actor if actor is not None else user,
        action="model.predict",
        resource_type="model",
        resource_id=target.model.name,
        outcome=outcome,
        policy=policy,
        payload={
            "generation_id": generation.pk,
            "endpoint": endpoint,
            "adapter": target.adapter.name if target.adapter else None,
            "adapter_id": target.adapter.pk if target.adapter else None,
            "prompt_sha256": generation.prompt_sha256,
            "output_sha256": generation.output_sha256,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cached_prompt_tokens": result.cached_prompt_tokens,
            "finish_reason": result.finish_reason,
            "latency_ms": generation.latency_ms,
            "text_stored": "sealed" if sealed else "digest-only",
        },
    )
    return generation


# --- LoRA adapters ---------------------------------------------------------------------------
def adapter_register(
    *, base_model: LanguageModel, name: str, path: str, source: str, evaluation: dict
) -> LoraAdapter:
    adapter = LoraAdapter(base_model=base_model, name=name, path=path, source=source, evaluation=evaluation)
    adapter.full_clean()
    adapter.save()
    return adapter


def adapter_set_status(*, actor, adapter: LoraAdapter, status: str, reason: str = "") -> LoraAdapter:
    """Promote (servable) or demote an adapter. Requires `promote` on its base model; trailed with the
    evaluation the decision was based on."""
    decision = check(actor, "promote", f"model:{adapter.base_model.name}")
    if status not in (LoraAdapter.Status.PROMOTED, LoraAdapter.Status.DEMOTED):
        raise InvalidRequest(f"Unknown adapter status {status!r}.")
    with transaction.atomic():
        locked = LoraAdapter.objects.select_for_update().get(pk=adapter.pk)
        previous = locked.status
        locked.status = status
        locked.status_changed_at = timezone.now()
        locked.save(update_fields=["status", "status_changed_at"])
        record(
            actor=actor,
            action="adapter.promote" if status == LoraAdapter.Status.PROMOTED else "adapter.demote",
            resource_type="model",
            resource_id=adapter.base_model.name,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={"adapter": locked.name, "adapter_id": locked.pk, "previous_status": previous,
                     "evaluation": locked.evaluation, "reason": reason},
        )  # fmt: skip
    return locked


# --- embeddings ------------------------------------------------------------------------------
def embed(texts: list[str]) -> list[list[float]]:
    """L2-normalised 384-d all-MiniLM-L6-v2 vectors, one per text (offline, loaded once per process)."""
    return embeddings.embed(list(texts))
