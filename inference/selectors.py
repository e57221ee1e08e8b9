"""Reads for the LLM layer, always scoped by the acting user."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from access.querysets import restrict
from inference.models import Generation, LanguageModel, LoraAdapter, ModelDefault


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


@dataclass(frozen=True)
class ServingStats:
    """How fast a model served over a recent window (from the Generation rows; /metrics has the live view)."""

    model: LanguageModel
    requests: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    ttft_ms_p50: float | None
    tokens_per_s: float | None
    cached_prompt_fraction: float | None


def current_default_name(purpose: str, models) -> str:
    """The target ("model" or "model:adapter") that serves `purpose` now among `models`, or ""."""
    chosen = (
        ModelDefault.objects.filter(purpose=purpose, model__in=models)
        .select_related("model", "adapter")
        .first()
    )
    if chosen is None:
        return ""
    return f"{chosen.model.name}:{chosen.adapter.name}" if chosen.adapter_id else chosen.model.name


def serving_stats(models, *, hours: int = 24, sample: int = 1000) -> list[ServingStats]:
    """Per model: requests in the last `hours`, and latency, time to first token, decode speed and
    prompt-cache share over its most recent `sample` of them."""
    since = timezone.now() - timedelta(hours=hours)
    stats = []
    for model in models:
        recent = Generation.objects.filter(model=model, created_at__gte=since)
        rows = list(
            recent.order_by("-created_at").values_list(
                "latency_ms", "ttft_ms", "completion_tokens", "prompt_tokens", "cached_prompt_tokens"
            )[:sample]
        )
        latencies = sorted(row[0] for row in rows)
        ttfts = sorted(row[1] for row in rows if row[1] is not None)
        # Decode speed: the tokens after the first over the time after the first token (the first
        # token's wait is prefill, queueing and model loading, reported separately).
        streamed = [row for row in rows if row[1] is not None and row[2] > 1 and row[0] > row[1]]
        decode_seconds = sum(row[0] - row[1] for row in streamed) / 1000
        decode_tokens = sum(row[2] - 1 for row in streamed)
        prompt_tokens = sum(row[3] for row in rows)
        stats.append(
            ServingStats(
                model=model,
                requests=recent.count(),
                latency_ms_p50=_percentile(latencies, 0.5),
                latency_ms_p95=_percentile(latencies, 0.95),
                ttft_ms_p50=_percentile(ttfts, 0.5),
                tokens_per_s=decode_tokens / decode_seconds if decode_seconds > 0 else None,
                cached_prompt_fraction=sum(row[4] for row in rows) / prompt_tokens if prompt_tokens else None,
            )
        )
    return stats


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]
