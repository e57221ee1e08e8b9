"""`manage.py bench_tuning --json` on the tiny demo model: every figure the README quotes is printed."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

FIGURES = (
    "lora_trainable_fraction",
    "lora_step_time_ratio",
    "lora_peak_memory_ratio",
    "lora_eval_perplexity_drop",
    "dp_eps3_eval_perplexity_drop",
    "dp_spent_epsilon",
    "dp_step_time_ratio",
    "kept",
)


def test_bench_tuning_prints_its_figures_as_json_and_progress_on_stderr(tiny_model_dirs):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "bench_tuning", "--model-dir", str(tiny_model_dirs[0]), "--steps", "3", "--max-examples", "40", "--json",
        stdout=out, stderr=err,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    assert set(FIGURES) <= set(result)
    assert 0 < result["lora_trainable_fraction"] < 0.5 and 0 < result["lora_peak_memory_ratio"] < 1
    assert result["dp_spent_epsilon"] == pytest.approx(3.0, rel=0.05)
    target = result["target_domain"]
    assert target in result["domains"] and result["kept"] and target not in result["kept"]
    for kept in result["kept"].values():
        assert kept["base_perplexity"] > 1 and kept["lora_perplexity"] > 1
    assert "[bench_tuning] target domain:" in err.getvalue()
