"""A completion's Generation row, written by one prepared INSERT, holds what the ORM would have
written for the same values; the per-model metric series are bound once and still count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.forms.models import model_to_dict

from inference import metrics
from inference.models import Generation
from inference.services import _insert_generation

pytestmark = pytest.mark.django_db


def _values(model, user, **changes) -> dict:
    values = {
        "model_id": model.pk, "adapter_id": None, "user_id": user.pk, "endpoint": "chat.completions",
        "prompt_sha256": "a" * 64, "output_sha256": "b" * 64, "prompt_tokens": 11, "completion_tokens": 8,
        "cached_prompt_tokens": 3, "finish_reason": "length", "latency_ms": 41.257, "ttft_ms": 7.5,
        "sealed_text": b"SVLT\x02\x00sealed bytes", "created_at": dt.datetime(2026, 12, 3, 22, 5, 7, 123456, dt.UTC),
    }  # fmt: skip
    return {**values, **changes}


def _row(pk) -> dict:
    row = Generation.objects.get(pk=pk)
    data = model_to_dict(row, exclude=["id"])
    data["sealed_text"] = bytes(row.sealed_text) if row.sealed_text is not None else None
    data["created_at"] = row.created_at
    return data


@pytest.mark.parametrize(
    "changes", [{}, {"user_id": None, "ttft_ms": None, "sealed_text": None, "finish_reason": "stop"}]
)
def test_the_row_is_the_one_the_orm_writes(served_model, make_user, changes):
    values = _values(served_model, make_user(), **changes)
    ours = _insert_generation(**values)
    orm = Generation.objects.create(**values)
    Generation.objects.filter(pk=orm.pk).update(created_at=values["created_at"])  # auto_now_add set its own
    assert ours != orm.pk
    assert _row(ours) == _row(orm.pk)
    assert _row(ours)["created_at"] == values["created_at"]
    assert _row(ours)["sealed_text"] == values["sealed_text"]


def test_every_field_or_none(served_model, make_user):
    values = _values(served_model, make_user())
    with pytest.raises(TypeError, match="needs exactly"):
        _insert_generation(**{k: v for k, v in values.items() if k != "ttft_ms"})
    with pytest.raises(TypeError, match="needs exactly"):
        _insert_generation(**values, id=5)
    assert not Generation.objects.exists()


def _sample(name: str, model_name: str, suffix: str = "") -> float:
    text = metrics.render().decode()
    prefix = f'{name}{suffix}{{model_name="{model_name}"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_bound_series_still_count():
    model_name = "series-once"
    series = metrics.histogram("suite:inter_token_latency_seconds", model_name=model_name)
    assert series is metrics.HISTOGRAMS["suite:inter_token_latency_seconds"].labels(model_name=model_name)
    assert series is metrics.histogram("suite:inter_token_latency_seconds", model_name=model_name)
    before = _sample("suite:inter_token_latency_seconds", model_name, "_count")
    tokens_before = _sample("suite:generation_tokens_total", model_name)
    for _ in range(3):
        series.observe(0.004)
        metrics.inc("suite:generation_tokens_total", 2, model_name=model_name)
    metrics.observe("suite:inter_token_latency_seconds", 0.2, model_name=model_name)
    assert _sample("suite:inter_token_latency_seconds", model_name, "_count") == before + 4
    assert _sample("suite:generation_tokens_total", model_name) == tokens_before + 6
