"""The LLM layer's public facade. Industry apps and the API call these; nothing else reaches the engines.

Every generation is authorized by the access policy (`predict` on `model:<name>`) and written to
the decision trail together with its Generation row, in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inference import metrics
from inference.engine.types import ChatMessage, GenerationParams, GenerationResult, InvalidRequest
from inference.models import Generation, LanguageModel, LoraAdapter


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


# --- registry -------------------------------------------------------------------------------
def model_register(
    *,
    actor,
    path: str | Path,
    name: str,
    quantization: str = "none",
    draft_name: str | None = None,
    description: str = "",
    max_concurrency: int = 1,
    policy: str = "",
) -> LanguageModel:
    """Register (or refresh) a local Hugging Face-format model directory. Reads its config; loads nothing.

    The caller has decided that `actor` may (the command line is an administrator's tool; people in
    the portal and the API go through model_register_checked); `policy` names the rule that allowed it.
    """
    from audit.services import record
    from inference.engine.modeldir import inspect_model_dir

    info = inspect_model_dir(path)  # raises ModelDirError naming the missing or corrupt file
    draft = LanguageModel.objects.get(name=draft_name) if draft_name else None
    fields = {
        "backend": LanguageModel.Backend.LOCAL,
        "path": str(Path(info.path).resolve()),
        "quantization": quantization,
        "draft": draft,
        "description": description,
        "architecture": info.architecture,
        "parameter_count": info.parameter_count,
        "dtype": info.dtype,
        "context_length": info.context_length or 0,
        "vocab_size": info.vocab_size or 0,
        "info": _jsonable(info),
        "max_concurrency": max_concurrency,
        "registered_by": actor if getattr(actor, "pk", None) else None,
        "is_active": True,
    }
    with transaction.atomic():
        model, created = LanguageModel.objects.update_or_create(name=name, defaults=fields)
        model.full_clean()
        record(
            actor=actor,
            action="model.register",
            resource_type="model",
            resource_id=name,
            outcome="succeeded",
            policy=policy,
            payload={"path": fields["path"], "created": created, "parameters": info.parameter_count,
                     "architecture": info.architecture, "quantization": quantization},
        )  # fmt: skip
    return model


class RegistrationRefused(ValueError):
    """Input a person must fix: {field: message}, fields named as in the request."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


def model_register_checked(
    *,
    user,
    path: str,
    name: str,
    quantization: str = "none",
    draft_name: str = "",
    description: str = "",
    replace: bool = False,
    actor=None,
) -> LanguageModel:
    """Register a model directory for a person (portal, API): the policy's `register` on
    `model:<name>` (PolicyDenied, trailed), a directory inside MODEL_ROOT (people do not get to point
    the server at arbitrary paths; administrators use `manage.py register_model` for that), no silent
    replacement of a registered model, and a readable reason for a bad directory."""
    from django.core.exceptions import ValidationError

    from access.enforcement import check
    from inference.engine.modeldir import ModelDirError
    from inference.models import model_name_validator

    errors: dict[str, str] = {}
    try:
        model_name_validator(name)
    except ValidationError as exc:
        errors["name"] = " ".join(exc.messages)
    if errors:
        raise RegistrationRefused(errors)
    decision = check(user, "register", f"model:{name}", actor=actor)
    root = Path(settings.MODEL_ROOT).resolve()
    directory = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if not directory.is_relative_to(root):
        errors["path"] = f"Put the model directory under {root} (MODEL_ROOT) and give its path there."
    elif not directory.is_dir():
        errors["path"] = f"There is no directory {directory}."
    if LanguageModel.objects.filter(name=name).exists() and not replace:
        errors["name"] = f"A model named {name!r} is registered already; choose another name or replace it."
    if draft_name and not LanguageModel.objects.filter(name=draft_name, is_active=True).exists():
        errors["draft"] = f"No active model is named {draft_name!r}."
    if quantization not in LanguageModel.Quantization.values:
        errors["quantization"] = f"Choose one of {', '.join(LanguageModel.Quantization.values)}."
    if errors:
        raise RegistrationRefused(errors)
    try:
        return model_register(
            actor=actor if actor is not None else user,
            path=directory,
            name=name,
            quantization=quantization,
            draft_name=draft_name or None,
            description=description,
            policy=decision.policy or "",
        )
    except ModelDirError as exc:
        raise RegistrationRefused({"path": str(exc)}) from exc


def model_register_remote(
    *, actor, name: str, base_url: str, remote_model: str, api_key_env: str = "", description: str = ""
) -> LanguageModel:
    """Register a model served by an OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama, another Suite)."""
    from audit.services import record

    with transaction.atomic():
        model, created = LanguageModel.objects.update_or_create(
            name=name,
            defaults={
                "backend": LanguageModel.Backend.REMOTE,
                "path": "",
                "remote_url": base_url.rstrip("/"),
                "remote_model": remote_model,
                "remote_api_key_env": api_key_env,
                "description": description,
                "registered_by": actor if getattr(actor, "pk", None) else None,
                "is_active": True,
            },
        )
        model.full_clean()
        record(
            actor=actor, action="model.register", resource_type="model", resource_id=name, outcome="succeeded",
            payload={"remote_url": model.remote_url, "remote_model": remote_model, "created": created},
        )  # fmt: skip
    return model


def _jsonable(info) -> dict:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(info), default=str))


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


# --- generation ------------------------------------------------------------------------------
@dataclass
class Completion:
    result: GenerationResult
    generation: Generation
    target: Target


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _authorize(user, target: Target, actor) -> str:
    """The name of the rule that lets `user` predict with the model; PolicyDenied (trailed) otherwise."""
    from access.enforcement import check

    return check(user, "predict", f"model:{target.model.name}", actor=actor).policy or ""


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
        from inference import runtime

        self._policy = _authorize(user, target, actor)
        self._served = runtime.served(target.model)
        self._slot = self._served.admission.acquire()  # raises Overloaded (429 + Retry-After)
        self._closed = False
        self._iterator = self._run(user, target, prompt, params, endpoint, session_id, actor)

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
            self._slot.release()

    def _run(self, user, target, prompt, params, endpoint, session_id, actor) -> Iterator:
        model_label = {"model_name": target.model.name}
        if target.adapter:
            params = _with_adapter(params, target.adapter.name)
        session_key = f"{getattr(user, 'pk', 'anon')}:{session_id}" if session_id else None
        started = time.perf_counter()
        pieces: list[str] = []
        result = None
        last_token_at = None
        status = "failed"
        try:
            for item in self._served.engine.stream(prompt, params, session_key):
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
    from dataclasses import replace

    return replace(params, adapter=adapter)


def _count(result: GenerationResult, target: Target, status: str) -> None:
    label = {"model_name": target.model.name}
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
    from audit.services import record

    prompt_json = _prompt_as_json(prompt)
    sealed = None
    if settings.INFERENCE_STORE_TEXT == "encrypted":
        from vault.envelope import seal

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
    from access.enforcement import check
    from audit.services import record

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
