"""Reads of the tuning app, always scoped by the acting user.

Who may see and act on a job: a user the policy lets `fine_tune` both the job's base model and
its DataAdapter's resource (the data it was trained on). LoRA adapters are listed to whoever may
fine-tune or promote their base model; promoting is decided by `promote` (inference.services).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from access.decisions import decide
from access.enforcement import check
from access.querysets import restrict
from inference import datasets
from inference.datasets import DataAdapter
from inference.models import LanguageModel, LoraAdapter
from inference.tuning import conf
from inference.tuning.lora_config import model_linear_module_names
from inference.tuning.models import FineTuneJob


def tunable_models(user) -> QuerySet[LanguageModel]:
    """Active local models (fine-tuning needs the weights on disk) the user may fine-tune."""
    local = LanguageModel.objects.filter(is_active=True, backend=LanguageModel.Backend.LOCAL)
    return restrict(local, user, "fine_tune")


def data_adapters_for(user) -> list[DataAdapter]:
    """Registered DataAdapters whose resource the user may fine-tune on."""
    return [adapter for adapter in datasets.adapters() if decide(user, "fine_tune", adapter.resource).allowed]


def jobs_for(user) -> QuerySet[FineTuneJob]:
    models = restrict(LanguageModel.objects.all(), user, "fine_tune")
    jobs = FineTuneJob.objects.filter(base_model__in=models)
    resources = set(jobs.exclude(data_adapter_resource="").values_list("data_adapter_resource", flat=True))
    denied = [resource for resource in resources if not decide(user, "fine_tune", resource).allowed]
    return jobs.exclude(data_adapter_resource__in=denied).select_related(
        "base_model", "created_by", "adapter"
    )


def job_for(user, pk: int, *, actor=None) -> FineTuneJob:
    """The job, after the policy allowed `user` to fine-tune its model and data (a denial is trailed)."""
    job = get_object_or_404(FineTuneJob.objects.select_related("base_model", "created_by", "adapter"), pk=pk)
    for resource in job.policy_resources():
        check(user, "fine_tune", resource, actor=actor)
    return job


def adapters_for(user) -> QuerySet[LoraAdapter]:
    models = restrict(LanguageModel.objects.all(), user, "fine_tune") | restrict(
        LanguageModel.objects.all(), user, "promote"
    )
    return (
        LoraAdapter.objects.filter(base_model__in=models)
        .select_related("base_model", "job")
        .order_by("base_model__name", "-created_at")
    )


def adapter_get(pk: int) -> LoraAdapter:
    """Promotion and demotion decide `promote` themselves, so this only finds the adapter."""
    return get_object_or_404(LoraAdapter.objects.select_related("base_model"), pk=pk)


def may_promote(user, model: LanguageModel) -> bool:
    return decide(user, "promote", f"model:{model.name}").allowed


def model_module_names(model: LanguageModel) -> list[str]:
    """The linear modules LoRA may target in `model` (e.g. q_proj, v_proj).

    Finding them builds the model from its config, which imports transformers' model classes
    (seconds, and memory a web process otherwise need not spend); the answer depends on
    config.json alone, so it is cached per config in this process and on disk for the others.
    """
    config = Path(model.path) / "config.json"
    digest = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else "missing"
    return list(_module_names(model.path, digest))


@functools.lru_cache(maxsize=32)
def _module_names(path: str, config_digest: str) -> tuple[str, ...]:
    cached = conf.data_root() / "module-names" / f"{config_digest}.json"
    if cached.is_file():
        return tuple(json.loads(cached.read_text()))
    names = model_linear_module_names(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    scratch = cached.with_name(f".{cached.name}.{os.getpid()}")
    scratch.write_text(json.dumps(names))
    scratch.replace(cached)
    return tuple(names)
