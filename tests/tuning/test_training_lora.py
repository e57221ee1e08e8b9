"""LoRA training on a tiny local Llama: learning, the saved adapter, cancel, resume, idempotent retries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from inference.tuning.errors import BrokenWeightsError, CheckpointMismatchError
from inference.tuning.evaluation import compare, perplexity
from inference.tuning.lora_config import LoraSettings, TrainSettings
from inference.tuning.training import run_training

LORA = LoraSettings(r=8, alpha=16)
# 48 examples / batch 8 = 6 steps per epoch.
TRAIN = TrainSettings(epochs=3, learning_rate=1e-2, batch_size=8, checkpoint_every=5, seed=3)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, work_order_examples, tmp_path_factory):
    """One completed plain LoRA job, shared by the tests that inspect its results."""
    progress = []
    output_dir = tmp_path_factory.mktemp("lora-job")
    outcome = run_training(
        base_model_dir=tiny_model_dir,
        train_examples=work_order_examples["train"],
        eval_examples=work_order_examples["eval"],
        lora=LORA,
        train=TRAIN,
        output_dir=output_dir,
        on_progress=progress.append,
    )
    return {"outcome": outcome, "progress": progress, "output_dir": output_dir}


def test_lora_training_lowers_held_out_perplexity(trained, tiny_model_dir, work_order_examples):
    outcome = trained["outcome"]
    before = perplexity(tiny_model_dir, work_order_examples["eval"])
    after = perplexity(tiny_model_dir, work_order_examples["eval"], adapter_dir=outcome.adapter_dir)
    assert outcome.status == "completed"
    assert after < before
    # The evaluation module and the training loop's own eval use the same masking and loss.
    assert math.exp(outcome.eval_loss) == pytest.approx(after, rel=1e-4)


def test_progress_is_reported_every_step(trained):
    progress, outcome = trained["progress"], trained["outcome"]
    assert [p.step for p in progress] == list(range(1, 19))
    assert {p.total_steps for p in progress} == {18} and outcome.steps == 18
    assert [p.step for p in progress if p.eval_loss is not None] == [5, 10, 15, 18]
    assert progress[-1].epoch == 3.0 and progress[-1].eta_s == 0
    assert all(p.tokens_per_s > 0 and p.spent_epsilon is None for p in progress)
    assert outcome.tokens_seen > 0 and outcome.spent_epsilon is None and outcome.resumed_from_step is None


def test_adapter_is_saved_in_peft_format_and_changes_the_logits(trained, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    outcome = trained["outcome"]
    adapter_dir = Path(outcome.adapter_dir)
    assert adapter_dir == trained["output_dir"] / "adapter"
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], set(config["target_modules"])) == (8, 16, {"q_proj", "v_proj"})
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert not (trained["output_dir"] / "checkpoints").exists()  # superseded by the adapter

    input_ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        base_logits = base(input_ids=input_ids).logits
        adapted = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
        adapted_logits = adapted(input_ids=input_ids).logits
    assert not torch.allclose(base_logits, adapted_logits, atol=1e-4)
    trainable, total = adapted.get_nb_trainable_parameters()
    assert outcome.total_parameters == total
    assert 0 < outcome.trainable_parameters < 0.1 * outcome.total_parameters


def test_compare_shows_the_adapters_domain_and_another(
    trained, tiny_model_dir, work_order_examples, failure_mode_examples
):
    report = compare(
        tiny_model_dir,
        trained["outcome"].adapter_dir,
        {"work_orders": work_order_examples["eval"], "failure_modes": failure_mode_examples},
    )
    assert set(report) == {"work_orders", "failure_modes"}
    work_orders = report["work_orders"]
    assert work_orders["adapter_perplexity"] < work_orders["base_perplexity"]
    assert work_orders["relative_change"] < 0
    assert work_orders["base_perplexity"] == pytest.approx(
        perplexity(tiny_model_dir, work_order_examples["eval"])
    )
    assert report["failure_modes"]["examples"] == len(failure_mode_examples)
    assert all(math.isfinite(v) for numbers in report.values() for v in numbers.values())


def test_a_completed_job_is_not_trained_again(trained, tiny_model_dir, work_order_examples):
    weights = Path(trained["outcome"].adapter_dir) / "adapter_model.safetensors"
    written_at = weights.stat().st_mtime_ns
    progress = []
    again = run_training(
        base_model_dir=tiny_model_dir,
        train_examples=work_order_examples["train"],
        eval_examples=work_order_examples["eval"],
        lora=LORA,
        train=TRAIN,
        output_dir=trained["output_dir"],
        on_progress=progress.append,
    )
    assert again == trained["outcome"]
    assert progress == [] and weights.stat().st_mtime_ns == written_at


def test_output_dir_of_another_job_is_refused(trained, tiny_model_dir, work_order_examples):
    with pytest.raises(CheckpointMismatchError):
        run_training(
            base_model_dir=tiny_model_dir,
            train_examples=work_order_examples["train"][:40],
            eval_examples=work_order_examples["eval"],
            lora=LORA,
            train=TRAIN,
            output_dir=trained["output_dir"],
        )


def _stop_after(steps: int):
    polls = {"count": 0}

    def should_stop() -> bool:
        polls["count"] += 1
        return polls["count"] > steps

    return should_stop


def test_should_stop_cancels_within_a_step(tiny_model_dir, work_order_examples, tmp_path):
    progress = []
    outcome = run_training(
        base_model_dir=tiny_model_dir,
        train_examples=work_order_examples["train"],
        eval_examples=work_order_examples["eval"],
        lora=LORA,
        train=TRAIN,
        output_dir=tmp_path,
        on_progress=progress.append,
        should_stop=_stop_after(3),
    )
    assert outcome.status == "cancelled"
    assert outcome.steps == 3 and [p.step for p in progress] == [1, 2, 3]
    assert outcome.adapter_dir is None and not (tmp_path / "adapter").exists()


def test_a_killed_job_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(
    tiny_model_dir, work_order_examples, tmp_path
):
    from safetensors.torch import load_file

    job = {
        "base_model_dir": tiny_model_dir,
        "train_examples": work_order_examples["train"],
        "eval_examples": work_order_examples["eval"],
        "lora": LORA,  # dropout 0.1: the resumed steps must redraw the same dropout masks
        "train": TrainSettings(epochs=3, max_steps=8, learning_rate=1e-2, checkpoint_every=3, seed=11),
    }
    uninterrupted = run_training(**job, output_dir=tmp_path / "uninterrupted")

    checkpoints = []
    first = run_training(
        **job,
        output_dir=tmp_path / "killed",
        should_stop=_stop_after(5),  # two steps past the checkpoint at step 3 are lost
        on_checkpoint=lambda step, path: checkpoints.append((step, path.name)),
    )
    assert (first.status, first.steps, checkpoints) == ("cancelled", 5, [(3, "step-3")])
    progress = []
    resumed = run_training(**job, output_dir=tmp_path / "killed", on_progress=progress.append)

    assert resumed.resumed_from_step == 3
    assert [p.step for p in progress] == list(range(4, 9))
    assert (resumed.status, resumed.steps) == ("completed", 8)
    assert resumed.tokens_seen == uninterrupted.tokens_seen
    assert resumed.train_loss == pytest.approx(uninterrupted.train_loss, rel=1e-6)
    assert resumed.eval_loss == pytest.approx(uninterrupted.eval_loss, rel=1e-6)
    expected = load_file(Path(uninterrupted.adapter_dir) / "adapter_model.safetensors")
    actual = load_file(Path(resumed.adapter_dir) / "adapter_model.safetensors")
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert actual[name].allclose(tensor, rtol=1e-5, atol=1e-7), name


@pytest.mark.parametrize(
    ("learning_rate", "problem"),
    [(1e37, "non-finite"), (1e-60, "did not change any LoRA weight")],
)
def test_broken_weight_updates_stop_the_job(
    tiny_model_dir, work_order_examples, tmp_path, learning_rate, problem
):
    # 1e37 makes step 1 push LoRA weights to ~1e37, so step 2's forward pass overflows and its
    # update is NaN; 1e-60 underflows every float32 update to exactly zero.
    with pytest.raises(BrokenWeightsError, match=problem):
        run_training(
            base_model_dir=tiny_model_dir,
            train_examples=work_order_examples["train"],
            eval_examples=[],
            lora=LORA,
            train=TrainSettings(max_steps=2, learning_rate=learning_rate),
            output_dir=tmp_path,
        )
