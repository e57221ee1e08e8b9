"""Reads for the LLM layer, always scoped by the acting user."""

from __future__ import annotations

from access.querysets import restrict
from inference.models import LanguageModel, LoraAdapter


def models_for(user, action: str = "predict"):
    return restrict(LanguageModel.objects.filter(is_active=True), user, action).select_related("draft")


def servable_targets(user) -> list[tuple[LanguageModel, LoraAdapter | None]]:
    """(model, None) for every model the user may use, then (model, adapter) for its promoted adapters."""
    models = list(models_for(user))
    adapters = LoraAdapter.objects.filter(base_model__in=models, status=LoraAdapter.Status.PROMOTED)
    by_model: dict[int, list[LoraAdapter]] = {}
    for adapter in adapters:
        by_model.setdefault(adapter.base_model_id, []).append(adapter)
    targets: list[tuple[LanguageModel, LoraAdapter | None]] = []
    for model in models:
        targets.append((model, None))
        targets.extend((model, adapter) for adapter in by_model.get(model.pk, []))
    return targets
