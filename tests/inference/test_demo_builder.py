import hashlib
import json

import pytest

from inference.demo import DRAFT_NAME, TARGET_NAME, build_demo_models, synthetic
from inference.demo.builder import BuildProfile, LlamaShape, TrainingPlan
from inference.engine.modeldir import inspect_model_dir

# Small enough to train twice in a couple of seconds.
MICRO = BuildProfile(
    vocab_size=320,
    context_length=256,
    sequence_length=64,
    target=LlamaShape(32, 64, 1, 2, 1),
    target_training=TrainingPlan(steps=6, batch_size=4, learning_rate=3e-3),
    draft=LlamaShape(16, 32, 1, 2, 1),
    draft_training=TrainingPlan(steps=4, batch_size=4, learning_rate=3e-3),
)


def _corpus(seed=0):
    return {"texts": synthetic.texts(40, seed=seed), "chat_examples": synthetic.chat_examples(60, seed=seed)}


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_is_deterministic_and_complete(tmp_path):
    stages = []
    first = build_demo_models(tmp_path / "a", **_corpus(), profile=MICRO, seed=3,
                              progress=lambda stage, step, total, loss: stages.append(stage))  # fmt: skip
    second = build_demo_models(tmp_path / "b", **_corpus(), profile=MICRO, seed=3)
    for name in (TARGET_NAME, DRAFT_NAME):
        for file in ("model.safetensors", "tokenizer.json"):
            assert _digest(tmp_path / "a" / name / file) == _digest(tmp_path / "b" / name / file)
    assert {"tokenizer", "target", "draft", "done"} <= set(stages)
    target = inspect_model_dir(first["target_dir"])
    draft = inspect_model_dir(first["draft_dir"])
    assert target.architecture == draft.architecture == "LlamaForCausalLM"
    assert target.has_chat_template and draft.parameter_count < target.parameter_count
    assert first["target"]["parameters"] == target.parameter_count
    config = json.loads((tmp_path / "a" / TARGET_NAME / "tokenizer_config.json").read_text())
    assert "<|assistant|>" in config["chat_template"] and config["eos_token"] == "<|end|>"
    assert not first["skipped"] and not second["skipped"]


def test_a_different_seed_gives_different_weights(tmp_path):
    build_demo_models(tmp_path / "a", **_corpus(), profile=MICRO, seed=1)
    build_demo_models(tmp_path / "b", **_corpus(), profile=MICRO, seed=2)
    weights = "model.safetensors"
    assert _digest(tmp_path / "a" / TARGET_NAME / weights) != _digest(tmp_path / "b" / TARGET_NAME / weights)


def test_a_complete_build_is_skipped_and_an_incomplete_one_redone(tmp_path):
    build_demo_models(tmp_path, **_corpus(), profile=MICRO)
    weights = tmp_path / TARGET_NAME / "model.safetensors"
    built_at = weights.stat().st_mtime_ns
    again = build_demo_models(tmp_path, **_corpus(), profile=MICRO)
    assert again["skipped"] and weights.stat().st_mtime_ns == built_at
    assert again["target"]["parameters"] > 0
    (tmp_path / DRAFT_NAME / "model.safetensors").unlink()  # an interrupted copy, say
    redone = build_demo_models(tmp_path, **_corpus(), profile=MICRO)
    assert not redone["skipped"] and (tmp_path / DRAFT_NAME / "model.safetensors").is_file()


def test_a_changed_corpus_is_rebuilt(tmp_path):
    build_demo_models(tmp_path, **_corpus(seed=0), profile=MICRO)
    assert not build_demo_models(tmp_path, **_corpus(seed=1), profile=MICRO)["skipped"]


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        build_demo_models(tmp_path, texts=[], chat_examples=[], profile=MICRO)
    with pytest.raises(ValueError, match="Unknown profile"):
        build_demo_models(tmp_path, **_corpus(), profile="huge")
