"""The failure-mode classifier's fine-tuned copy of the embedding model (`encoder_tuning.TunedEncoder`):
tuning gathers a mode's examples, the tuned layers travel with the stored classifier and embed the same
after loading, a different base model is refused, and the product path (train, store, load, suggest)
works with it. Real all-MiniLM-L6-v2 from the installed wheel; small slices keep each fit to seconds."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from inference.services import embed, embedding_model_dir
from manufacturing.analysis.encoder_tuning import EncoderMismatch, TunedEncoder
from manufacturing.analysis.failure_modes import FailureModeClassifier, read_labelled

DATA = Path(settings.SHARED_DATA_DIR) / "failure_modes"


def per_mode(count: int) -> tuple[list[str], list[str]]:
    texts, labels, seen = [], [], {}
    for text, label in zip(*read_labelled(DATA / "fmc_mwo2kg_train.csv"), strict=True):
        if seen.setdefault(label, 0) < count:
            seen[label] += 1
            texts.append(text)
            labels.append(label)
    return texts, labels


def cohesion(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine to the examples of the same mode minus mean cosine to the others."""
    labels = np.array(labels)
    similarity = vectors @ vectors.T
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    other = labels[:, None] != labels[None, :]
    return float(similarity[same].mean() - similarity[other].mean())


@pytest.fixture(scope="module")
def tuned():
    texts, labels = per_mode(4)
    prompts = [f"the equipment is {t.lower()}" for t in texts]
    encoder = TunedEncoder(epochs=3, layers=2, learning_rate=1e-4).fit(embedding_model_dir(), prompts, labels)
    return encoder, prompts, labels


def test_tuning_gathers_each_modes_examples(tuned):
    encoder, prompts, labels = tuned
    base = np.asarray(embed(prompts))
    vectors = encoder.embed(prompts)
    assert vectors.shape == base.shape and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert cohesion(vectors, labels) > cohesion(base, labels) + 0.05
    head = encoder.predict_proba(vectors)
    assert np.allclose(head.sum(axis=1), 1) and encoder.classes == sorted(set(labels))
    # the cosine head gets most of its own training examples right
    assert np.mean(np.array(encoder.classes)[head.argmax(axis=1)] == np.array(labels)) > 0.6


def test_stored_copy_embeds_the_same_and_refuses_another_base(tuned):
    encoder, prompts, _ = tuned
    stored = pickle.dumps(encoder)
    assert len(stored) < 8_000_000  # two float16 layers and the head, not the whole model
    loaded = pickle.loads(stored)  # noqa: S301 - bytes made here
    with pytest.raises(ValueError, match="not attached"):
        loaded.embed(prompts[:2])
    assert np.array_equal(loaded.attach(embedding_model_dir()).embed(prompts), encoder.embed(prompts))

    other = pickle.loads(stored)  # noqa: S301
    other._fingerprint = "0" * 64  # as if tuned from another version of the base model
    with pytest.raises(EncoderMismatch, match="differs"):
        other.attach(embedding_model_dir())


@pytest.mark.django_db
def test_product_path_stores_and_loads_a_tuned_classifier(settings, tmp_path):
    """train_failure_classifier with a tuning recipe: the stored version carries the tuned layers and
    the loaded classifier suggests exactly what the fitted one did."""
    from manufacturing.services import failure_classifier

    texts, labels = per_mode(3)
    train = tmp_path / "train.csv"
    train.write_text(
        "text,label\n" + "".join(f'"{t}","{label}"\n' for t, label in zip(texts, labels, strict=True))
    )
    settings.MANUFACTURING_FAILURE_MODES_TRAIN = train
    settings.MODEL_ROOT = tmp_path / "models"
    settings.MANUFACTURING_FAILURE_TUNING = {"epochs": 1, "layers": 1}
    row = failure_classifier.failure_classifier_train(actor="test:tuning")
    assert row.description["tuned_encoder_bytes"] > 0 and "fine-tuned" in row.description["method"]

    problems = ["oil leaking from the seal", "motor will not start", "bearing noisy"]
    classifier, loaded_row = failure_classifier.current_classifier()
    assert loaded_row == row and classifier.encoder is not None
    fresh = FailureModeClassifier(
        embed, encoder_dir=embedding_model_dir(), tuning={"epochs": 1, "layers": 1}
    ).fit(texts, labels)
    # the same seed tunes the same weights (up to the order of float sums across threads)
    assert np.allclose(classifier.predict_proba(problems), fresh.predict_proba(problems), atol=1e-4)
    for problem in problems:
        assert [m for m, _ in classifier.suggest(problem, 3)] == [m for m, _ in fresh.suggest(problem, 3)]

    state = classifier.__getstate__()
    assert state["encoder_dir"] is None and state["embed"] is None  # no path or function is stored
    with pytest.raises(ValueError, match="base model's directory"):
        pickle.loads(pickle.dumps(classifier)).attach(embed)  # noqa: S301


def test_eval_command_refuses_bad_tuning_options():
    with pytest.raises(CommandError, match="--tuning-epochs"):
        call_command("eval_failure_codes", "--tuning-epochs", "-1")
    with pytest.raises(CommandError, match="--head-weight"):
        call_command("eval_failure_codes", "--head-weight", "1.5")


def test_layer_decay_and_contrastive_term():
    """`layer_decay` scales each lower layer's learning rate (0: the lower tuned layer stays as it was);
    the supervised contrastive term is lower when a mode's examples sit together."""
    import torch

    texts, labels = per_mode(2)
    prompts = [f"the equipment is {t.lower()}" for t in texts]
    encoder = TunedEncoder(epochs=1, layers=2, learning_rate=1e-2, layer_decay=0.0, contrastive=0.5)
    encoder.fit(embedding_model_dir(), prompts, labels)
    base = dict(encoder._load(embedding_model_dir())[2].named_parameters())
    lower = [n for n in encoder._tuned if n.startswith("encoder.layer.4.") and n.endswith("weight")]
    upper = [n for n in encoder._tuned if n.startswith("encoder.layer.5.") and n.endswith("weight")]
    assert lower and upper
    for name in lower:  # learning rate 0: only float16 rounding
        assert np.allclose(encoder._tuned[name], base[name].detach().numpy(), atol=2e-3)
    assert any(not np.allclose(encoder._tuned[n], base[n].detach().numpy(), atol=2e-3) for n in upper)
    targets = torch.tensor([0, 0, 1, 1])
    together = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]]))
    apart = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [0.0, 1.0], [1.0, 0.0], [0.1, 1.0]]))
    assert encoder._contrastive(torch, together, targets) < encoder._contrastive(torch, apart, targets)
    # a stored encoder from before the options loads with them off
    state = encoder.__getstate__()
    for name in ("layer_decay", "contrastive", "temperature"):
        state.pop(name)
    old = TunedEncoder.__new__(TunedEncoder)
    old.__setstate__(pickle.loads(pickle.dumps(state)))  # noqa: S301 - bytes made here
    assert (old.layer_decay, old.contrastive) == (1.0, 0.0)
