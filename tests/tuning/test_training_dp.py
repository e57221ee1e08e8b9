"""DP-SGD LoRA training: the privacy budget, per-example gradients, resuming, empty Poisson batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.tuning.lora_config import DPSettings, LoraSettings, TrainSettings
from inference.tuning.training import run_training

DP = DPSettings(target_epsilon=3.0, delta=1e-5, max_grad_norm=1.0)


def test_dp_job_spends_its_budget_and_resumes_with_its_accountant(
    tiny_model_dir, work_order_examples, tmp_path
):
    import torch
    from safetensors.torch import load_file

    job = {
        "base_model_dir": tiny_model_dir,
        "train_examples": work_order_examples["train"],
        "eval_examples": work_order_examples["eval"],
        "lora": LoraSettings(r=8, alpha=16),
        "train": TrainSettings(epochs=2, learning_rate=1e-2, batch_size=8, checkpoint_every=5),
        "dp": DP,
        "output_dir": tmp_path,
    }
    polls = iter(range(100))
    first_progress, progress = [], []
    first = run_training(**job, on_progress=first_progress.append, should_stop=lambda: next(polls) >= 7)
    outcome = run_training(**job, on_progress=progress.append)

    assert (first.status, first.steps, outcome.status, outcome.resumed_from_step) == (
        "cancelled",
        7,
        "completed",
        5,
    )
    assert outcome.steps == outcome.total_steps == 12
    assert outcome.spent_epsilon == pytest.approx(DP.target_epsilon, rel=0.05)
    assert outcome.spent_epsilon <= DP.target_epsilon
    assert outcome.noise_multiplier > 0
    # The accountant restored from the step-5 checkpoint continues where the lost run was.
    assert progress[0].spent_epsilon == pytest.approx(first_progress[5].spent_epsilon)
    epsilons = [p.spent_epsilon for p in first_progress[:5] + progress]
    assert epsilons == sorted(epsilons) and epsilons[0] > 0
    assert progress[-1].spent_epsilon == outcome.spent_epsilon

    weights = load_file(Path(outcome.adapter_dir) / "adapter_model.safetensors")
    assert all(bool(torch.isfinite(tensor).all()) for tensor in weights.values())
    assert all(tensor.abs().sum() > 0 for name, tensor in weights.items() if "lora_B" in name)
    # The job asked for the default dropout (0.1); under DP it runs, and is saved, without.
    config = json.loads((Path(outcome.adapter_dir) / "adapter_config.json").read_text())
    assert config["lora_dropout"] == 0.0
    # Checkpoints hold the job's secret sampling and noise seed: gone once the adapter is final.
    assert not (tmp_path / "checkpoints").exists()


def test_empty_poisson_batches_still_add_noise_and_are_accounted(
    tiny_model_dir, work_order_examples, tmp_path
):
    # 3 examples, batch 1: each example joins a step with q = 1/3, so about 30% of the 30 steps
    # draw no example at all. They must still be noised and counted, or the budget is misreported.
    outcome = run_training(
        base_model_dir=tiny_model_dir,
        train_examples=work_order_examples["train"][:3],
        eval_examples=[],
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(epochs=10, learning_rate=1e-3, batch_size=1, checkpoint_every=100),
        dp=DP,
        output_dir=tmp_path,
    )
    assert (outcome.status, outcome.steps) == ("completed", 30)
    assert outcome.spent_epsilon == pytest.approx(DP.target_epsilon, rel=0.05)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_per_example_gradients_match_one_example_at_a_time(tiny_model_dir, work_order_examples):
    """opacus' per-sample gradients of the LoRA weights, through our batching and loss, are exact."""
    import torch
    from peft import get_peft_model

    from inference.tuning.evaluation import load_model
    from inference.tuning.examples import (
        collate,
        encode_examples,
        load_tokenizer,
        pad_token_id,
        training_loss,
    )
    from inference.tuning.lora_config import peft_lora_config
    from inference.tuning.privacy import make_private

    tokenizer = load_tokenizer(tiny_model_dir)
    pad_id = pad_token_id(tokenizer)
    encoded = encode_examples(tokenizer, work_order_examples["eval"][:3], max_seq_len=256, field="examples")
    torch.manual_seed(0)
    model = get_peft_model(
        load_model(tiny_model_dir), peft_lora_config(LoraSettings(r=4, alpha=8, dropout=0.0))
    )
    model.train()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():  # LoRA B starts at zero; make both factors non-trivial
        for parameter in trainable.values():
            parameter.normal_(0, 0.1)

    expected = {}
    for index, item in enumerate(encoded):
        model.zero_grad()
        training_loss(model, collate([item], pad_id=pad_id)).backward()
        expected[index] = {name: p.grad.clone() for name, p in trainable.items()}

    optimizer = torch.optim.SGD(list(trainable.values()), lr=0.0)
    private = make_private(model, optimizer, dp=DP, train_size=48, batch_size=8, total_steps=10)
    model.zero_grad()
    training_loss(model, collate(encoded, pad_id=pad_id)).backward()
    try:
        for name, parameter in trainable.items():
            assert parameter.grad_sample.shape[0] == len(encoded)
            for index in expected:
                assert torch.allclose(
                    parameter.grad_sample[index], expected[index][name], rtol=1e-4, atol=1e-6
                ), name
    finally:
        private.hooks.cleanup()
