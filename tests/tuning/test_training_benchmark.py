"""LoRA vs full fine-tuning, measured side by side on the tiny model."""

from __future__ import annotations

import pytest

from inference.tuning.benchmark import lora_vs_full
from inference.tuning.errors import InvalidSettingsError
from inference.tuning.lora_config import LoraSettings


def test_lora_trains_a_small_fraction_with_less_training_state(tiny_model_dir, work_order_examples):
    report = lora_vs_full(tiny_model_dir, work_order_examples["train"], batch_size=4, steps=2)
    full, lora = report["full"], report["lora"]

    assert full["trainable_parameters"] == full["total_parameters"]
    assert report["lora_trainable_fraction"] == lora["trainable_parameters"] / lora["total_parameters"]
    assert 0 < report["lora_trainable_fraction"] < 0.1
    # AdamW keeps two moments per trainable parameter; gradients exist only for trainable ones.
    assert full["optimizer_state_bytes"] >= 2 * full["parameter_bytes"]
    assert lora["optimizer_state_bytes"] >= 2 * 4 * lora["trainable_parameters"]
    assert lora["gradient_bytes"] == 4 * lora["trainable_parameters"]
    assert full["gradient_bytes"] == full["parameter_bytes"]
    assert full["activation_bytes"] > 0 and lora["activation_bytes"] > 0
    assert 0 < report["lora_peak_memory_ratio"] < 1
    assert report["lora_step_time_ratio"] > 0


def test_benchmark_rejects_unknown_target_modules(tiny_model_dir, work_order_examples):
    with pytest.raises(InvalidSettingsError) as raised:
        lora_vs_full(
            tiny_model_dir,
            work_order_examples["train"],
            batch_size=2,
            steps=1,
            lora=LoraSettings(target_modules=("c_attn",)),
        )
    assert set(raised.value.errors) == {"target_modules"}
