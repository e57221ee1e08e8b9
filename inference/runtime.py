"""Process-wide serving state: one engine and one admission queue per registered model.

Imported lazily (the engines import torch). An engine is rebuilt when its registry entry or its
set of promoted LoRA adapters changes; loaded weights stay in the shared, memory-bounded cache.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from inference import metrics
from inference.engine.admission import AdmissionController
from inference.engine.llamacpp import LlamaCppEngine, SequenceStore
from inference.engine.lora_gguf import gguf_lora_for
from inference.engine.remote import RemoteEngine
from inference.models import LanguageModel, LoraAdapter


@dataclass
class ServedModel:
    stamp: tuple
    engine: object  # LocalEngine or RemoteEngine: same generate/stream interface
    admission: AdmissionController
    adapters: dict[str, str]


_lock = threading.Lock()
_served: dict[int, ServedModel] = {}
_names: dict[int, str] = {}  # model pk -> name, for the metrics' labels (read without the database)


def _stamp(model: LanguageModel, adapters: dict[str, str]) -> tuple:
    draft_path = (model.draft.path, model.draft.gguf_path) if model.draft_id else None
    return (
        model.backend, model.path, model.gguf_path, model.remote_url, model.remote_model, model.quantization,
        draft_path, model.max_concurrency, model.max_queue, tuple(sorted(adapters.items())),
    )  # fmt: skip


def promoted_adapters(model: LanguageModel) -> dict[str, str]:
    rows = LoraAdapter.objects.filter(base_model=model, status=LoraAdapter.Status.PROMOTED)
    return dict(rows.values_list("name", "path"))


def served(model: LanguageModel, adapters: dict[str, str] | None = None) -> ServedModel:
    """The model's engine and admission queue, rebuilt when its entry or its promoted adapters
    changed. `adapters`: its promoted adapters ({name: path}) when the caller has just read them."""
    if model.backend != LanguageModel.Backend.LOCAL:
        adapters = {}
    elif adapters is None:
        adapters = promoted_adapters(model)
    stamp = _stamp(model, adapters)
    metrics.start_gauge_refresher()  # this process now serves: keep its queue gauges current
    with _lock:
        _names[model.pk] = model.name
        current = _served.get(model.pk)
        if current is not None and current.stamp == stamp:
            return current
        engine = _build_engine(model, adapters)
        admission = (
            current.admission
            if current is not None and current.stamp[7:9] == stamp[7:9]
            else AdmissionController(max_concurrent=model.max_concurrency, max_queue=model.max_queue)
        )
        _served[model.pk] = ServedModel(stamp=stamp, engine=engine, admission=admission, adapters=adapters)
        return _served[model.pk]


def _build_engine(model: LanguageModel, adapters: dict[str, str]):
    if model.backend == LanguageModel.Backend.REMOTE:
        api_key = os.environ.get(model.remote_api_key_env) if model.remote_api_key_env else None
        return RemoteEngine(model.remote_url, model.remote_model, api_key=api_key)
    if model.gguf_path:
        return _build_llamacpp_engine(model, adapters)
    from inference.engine.local import LocalEngine  # torch: loaded only when a model needs it
    from inference.engine.sessions import SessionStore

    return LocalEngine(
        model.path,
        quantization=model.quantization,
        draft_model_dir=model.draft.path if model.draft_id else None,
        adapters=adapters,
        model_cache=model_cache(),
        session_store=SessionStore(settings.INFERENCE_KV_CACHE_BUDGET),
    )


def _build_llamacpp_engine(model: LanguageModel, adapters: dict[str, str]):
    """llama.cpp for a GGUF; promoted peft adapters are converted to GGUF LoRA once, next to them."""
    converted = {}
    if adapters:
        base_config = json.loads((Path(model.path) / "config.json").read_text())
        converted = {name: str(gguf_lora_for(path, base_config)) for name, path in adapters.items()}
    return LlamaCppEngine(
        model.gguf_path,
        adapters=converted,
        n_ctx=getattr(settings, "INFERENCE_LLAMACPP_CONTEXT", 4096) or None,
        n_threads=getattr(settings, "INFERENCE_LLAMACPP_THREADS", 0) or None,
        flash_attn=getattr(settings, "INFERENCE_LLAMACPP_FLASH_ATTN", True),
        session_store=SequenceStore(settings.INFERENCE_KV_CACHE_BUDGET),
        # A registered draft with a GGUF of the same vocabulary serves speculative "draft" requests.
        draft_gguf_path=model.draft.gguf_path if model.draft_id and model.draft.gguf_path else None,
    )


_cache = None


def model_cache():
    global _cache
    if _cache is None:
        from inference.engine.loader import ModelCache

        if settings.INFERENCE_TORCH_THREADS:  # 0: torch's default, one thread per core
            import torch

            torch.set_num_threads(settings.INFERENCE_TORCH_THREADS)

        _cache = ModelCache(settings.INFERENCE_MODEL_MEMORY_BUDGET)
    return _cache


def forget(model_pk: int) -> None:
    with _lock:
        _served.pop(model_pk, None)


def _queue_gauges(kind: str):
    def read() -> dict[tuple, float]:
        with _lock:
            items = list(_served.items())
            names = dict(_names)
        values = {}
        for pk, entry in items:
            value = entry.admission.running if kind == "running" else entry.admission.waiting
            values[(("model_name", names.get(pk, str(pk))),)] = value
        return values

    return read


metrics.register_gauge("suite:num_requests_running", _queue_gauges("running"))
metrics.register_gauge("suite:num_requests_waiting", _queue_gauges("waiting"))
