"""Settings and example validation: every error names the field a person has to fix."""

from __future__ import annotations

import pytest

from inference.tuning.errors import ExamplesError, InvalidSettingsError
from inference.tuning.examples import IGNORE_INDEX, encode_examples, load_tokenizer
from inference.tuning.lora_config import (
    DPSettings,
    LoraSettings,
    TrainSettings,
    model_linear_module_names,
    validate_job,
)
from inference.tuning.training import run_training

LLAMA_LINEAR_MODULES = {
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "lm_head",
}


def test_linear_module_names_come_from_the_model_config(tiny_model_dir):
    assert set(model_linear_module_names(tiny_model_dir)) == LLAMA_LINEAR_MODULES


def test_default_settings_are_valid(tiny_model_dir):
    names = model_linear_module_names(tiny_model_dir)
    assert (
        validate_job(
            lora=LoraSettings(),
            train=TrainSettings(),
            dp=DPSettings(),
            model_module_names=names,
            train_size=48,
        )
        == {}
    )


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (LoraSettings(r=0), "r"),
        (LoraSettings(r=-4), "r"),
        (LoraSettings(alpha=0), "alpha"),
        (LoraSettings(dropout=1.0), "dropout"),
        (LoraSettings(dropout=-0.1), "dropout"),
        (LoraSettings(target_modules=()), "target_modules"),
        (DPSettings(target_epsilon=0), "target_epsilon"),
        (DPSettings(target_epsilon=-1.0), "target_epsilon"),
        (DPSettings(delta=0), "delta"),
        (DPSettings(delta=1.0), "delta"),
        (DPSettings(max_grad_norm=0), "max_grad_norm"),
        (TrainSettings(learning_rate=0), "learning_rate"),
        (TrainSettings(epochs=0), "epochs"),
        (TrainSettings(max_steps=0), "max_steps"),
        (TrainSettings(batch_size=0), "batch_size"),
        (TrainSettings(checkpoint_every=0), "checkpoint_every"),
    ],
)
def test_each_invalid_value_is_reported_against_its_field(settings, field):
    assert set(settings.validate()) == {field}


def test_unknown_target_module_lists_the_models_linear_modules(tiny_model_dir):
    errors = LoraSettings(target_modules=("q_proj", "qkv")).validate(
        model_linear_module_names(tiny_model_dir)
    )
    assert set(errors) == {"target_modules"}
    assert "'qkv'" in errors["target_modules"]
    assert all(name in errors["target_modules"] for name in LLAMA_LINEAR_MODULES)


def test_delta_must_be_below_one_over_the_number_of_examples():
    assert set(DPSettings(delta=0.01).validate(train_size=200)) == {"delta"}
    assert DPSettings(delta=0.001).validate(train_size=200) == {}


def test_settings_round_trip_through_json_dicts():
    lora = LoraSettings(r=4, target_modules=("q_proj", "o_proj"))
    assert LoraSettings.from_dict(lora.to_dict()) == lora
    assert lora.to_dict()["target_modules"] == ["q_proj", "o_proj"]
    with pytest.raises(InvalidSettingsError) as raised:
        TrainSettings.from_dict({"epochs": 2, "warmup": 5})
    assert set(raised.value.errors) == {"warmup"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lora": LoraSettings(target_modules=("attention",))}, "target_modules"),
        ({"lora": LoraSettings(r=0)}, "r"),
        ({"dp": DPSettings(target_epsilon=0)}, "target_epsilon"),
        ({"train_examples": []}, "train_examples"),
    ],
)
def test_run_training_rejects_bad_jobs_before_writing_anything(
    tiny_model_dir, work_order_examples, tmp_path, change, field
):
    job = {
        "base_model_dir": tiny_model_dir,
        "train_examples": work_order_examples["train"],
        "eval_examples": work_order_examples["eval"],
        "lora": LoraSettings(),
        "train": TrainSettings(),
        "dp": None,
        "output_dir": tmp_path / "job",
    }
    with pytest.raises(InvalidSettingsError) as raised:
        run_training(**{**job, **change})
    assert field in raised.value.errors
    assert not (tmp_path / "job").exists()


def test_unusable_examples_are_all_listed_by_index(tiny_model_dir, work_order_examples, tmp_path):
    good = work_order_examples["train"][0]
    examples = [
        good,
        {"prompt": "Which code?"},
        good,
        {"messages": [{"role": "user", "content": "no answer"}]},
        {"text": "plain"},
    ]
    with pytest.raises(ExamplesError) as raised:
        run_training(
            base_model_dir=tiny_model_dir,
            train_examples=examples,
            eval_examples=[],
            lora=LoraSettings(),
            train=TrainSettings(),
            output_dir=tmp_path / "job",
        )
    assert set(raised.value.rows) == {1, 3, 4}
    assert set(raised.value.errors) == {"train_examples"}


def _supervised_text(tokenizer, encoded) -> str:
    return tokenizer.decode([label for label in encoded.labels if label != IGNORE_INDEX])


def test_loss_covers_only_the_completion(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    [encoded] = encode_examples(
        tokenizer,
        [{"prompt": "Work order: Oil Analysis.", "completion": "MT010 Oil Analysis."}],
        max_seq_len=256,
        field="train_examples",
    )
    assert _supervised_text(tokenizer, encoded) == "MT010 Oil Analysis.<|end|>\n"
    assert len(encoded.labels) == len(encoded.input_ids)


def test_loss_covers_every_assistant_turn_and_nothing_else(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    conversation = {
        "messages": [
            {"role": "system", "content": "You are a reliability engineer."},
            {"role": "user", "content": "Chiller 7 vibrates."},
            {"role": "assistant", "content": "Run a vibration analysis."},
            {"role": "user", "content": "Which code?"},
            {"role": "assistant", "content": "MT013."},
        ]
    }
    [encoded] = encode_examples(tokenizer, [conversation], max_seq_len=256, field="train_examples")
    assert _supervised_text(tokenizer, encoded) == "Run a vibration analysis.<|end|>\nMT013.<|end|>\n"


def test_an_example_cut_before_its_answer_is_an_error_naming_the_limit(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    long_prompt = {"prompt": "Routine Maintenance " * 40, "completion": "MT001."}
    with pytest.raises(ExamplesError) as raised:
        encode_examples(tokenizer, [long_prompt], max_seq_len=32, field="train_examples")
    assert "32 tokens" in raised.value.rows[0]
