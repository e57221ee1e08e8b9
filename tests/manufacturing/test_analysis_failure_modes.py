"""FailureModeClassifier on small slices of the shared technician text (real embedding model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from inference.services import embed
from manufacturing.analysis.failure_modes import (
    EXCAVATOR_MODES,
    FailureModeClassifier,
    cross_validate,
    evaluate,
    read_labelled,
    weak_examples,
)

DATA = Path(settings.SHARED_DATA_DIR) / "failure_modes"


@pytest.fixture(scope="module")
def train():
    return read_labelled(DATA / "fmc_mwo2kg_train.csv")


def test_suggestions_are_ranked_probabilities(train):
    texts, labels = train
    classifier = FailureModeClassifier(embed).fit(texts[:150], labels[:150])
    suggestions = classifier.suggest("oil leaking from the seal", k=3)
    assert len(suggestions) == 3 and suggestions[0][0] == "Leaking"
    probabilities = [p for _, p in suggestions]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    # a misspelt breakdown still lands on its mode through the character n-grams and the neighbours
    assert classifier.suggest("compleatly broken down", k=3)[0][0] == "Breakdown"


def test_character_only_fallback_and_evaluation(train):
    texts, labels = train
    classifier = FailureModeClassifier(None).fit(texts[:300], labels[:300])
    report = evaluate(classifier, texts[300:360], labels[300:360])
    assert report["examples"] == 60 and report["top1"] <= report["top3"]
    assert report["top3"] > 0.5  # a majority-class guess gets about 0.3


def test_bad_files_are_refused(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("id,words\n1,leak\n")
    with pytest.raises(ValueError, match="'text' and 'label'"):
        read_labelled(bad)
    with pytest.raises(CommandError, match="'text' and 'label'"):
        call_command("eval_failure_codes", "--train", str(bad), "--no-embeddings")


def test_eval_failure_codes_command_char_only(tmp_path, capsys):
    call_command("eval_failure_codes", "--no-embeddings", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 62 and report["train_examples"] == 502
    assert report["top1"] >= 0.6 and report["top3"] >= report["top1"]


def test_cross_validation_on_the_training_file(train):
    """`cross_validate` (eval_failure_codes --cv K): K-fold top-1/top-3 on one labelled file, how the blend
    weights were chosen. An SVM-only classifier keeps it cheap; the command refuses a single fold."""
    texts, labels = train
    run = cross_validate(
        texts[:120], labels[:120], lambda: FailureModeClassifier(None, svm_weight=1.0), folds=3
    )
    assert (run["folds"], run["seed"], run["examples"]) == (3, 0, 120)
    # a majority-class guess gets about 0.3 of top-1
    assert 0.3 < run["top1"] <= run["top3"] <= 1 and 0 < run["macro_f1"] <= 1
    assert "linear SVM" in FailureModeClassifier(None).method()
    with pytest.raises(CommandError, match="at least 2 folds"):
        call_command("eval_failure_codes", "--no-embeddings", "--cv", "1")
    with pytest.raises(CommandError, match="needs '{}' where the text goes"):
        call_command("eval_failure_codes", "--no-embeddings", "--template", "the machine is")
    with pytest.raises(CommandError, match="--weak-weight"):
        call_command("eval_failure_codes", "--no-embeddings", "--weak-weight", "-1")


def test_weakly_labelled_work_orders_join_at_their_weight(train):
    """The excavator work orders whose rule-assigned FM names an ISO mode join the fit; those whose mode
    the fit does not know are left out; a classifier stored before the options existed still loads."""
    import pickle

    weak_texts, weak_labels = weak_examples(DATA / "excavator_work_orders.csv")
    assert len(weak_texts) > 1000 and set(weak_labels) <= set(EXCAVATOR_MODES.values())
    texts, labels = train
    classifier = FailureModeClassifier(None).fit(
        texts[:200], labels[:200], weak_texts=weak_texts, weak_labels=weak_labels, weak_weight=0.2
    )
    known = sum(label in set(labels[:200]) for label in weak_labels)
    assert classifier.weak_examples == known and "excavator" in classifier.method()
    assert classifier.suggest("hydraulic oil leak at the pump", k=1)[0][0] == "Leaking"

    state = classifier.__getstate__()
    for name in ("normalise", "template", "class_weight", "normaliser", "weak_examples"):
        state.pop(name)
    old = FailureModeClassifier.__new__(FailureModeClassifier)
    old.__setstate__(pickle.loads(pickle.dumps(state)))  # noqa: S301 - bytes made here
    assert old.attach(None).suggest("hydraulic oil leak at the pump", k=1) == classifier.suggest(
        "hydraulic oil leak at the pump", k=1
    )


def test_weak_file_without_its_columns_is_refused(tmp_path):
    bad = tmp_path / "wo.csv"
    bad.write_text("text,label\nleak,Leaking\n")
    with pytest.raises(ValueError, match="'OriginalShorttext' and 'FM'"):
        weak_examples(bad)


def test_mode_descriptions_join_the_examples(train):
    """With `descriptions` each mode's ISO 14224 phrases are examples of it (after its name); without
    embeddings the neighbour vote's share goes to the regression and SVM in proportion."""
    import pickle

    from manufacturing.analysis.failure_modes import MODE_DESCRIPTIONS, anchor_examples

    anchors, anchor_labels = anchor_examples(["Noise", "Plugged / choked", "Site code X"], True)
    assert anchors == ["noise", "abnormal noise", "plugged / choked", "flow restriction", "site code x"]
    assert anchor_labels == ["Noise", "Noise", "Plugged / choked", "Plugged / choked", "Site code X"]
    assert anchor_examples(["Noise"], False) == (["noise"], ["Noise"])
    texts, labels = train
    assert set(MODE_DESCRIPTIONS) == set(labels)  # every mode of the data has its description
    with_them = FailureModeClassifier(None, descriptions=True).fit(texts[:150], labels[:150])
    without = FailureModeClassifier(None, descriptions=False).fit(texts[:150], labels[:150])
    assert len(with_them._labels) > len(without._labels) == 150 + len(without.classes)
    assert "ISO 14224 descriptions" in with_them.method()
    assert "ISO 14224 descriptions" not in without.method()
    assert (with_them.regression_weight, with_them.svm_weight) == pytest.approx((0.5, 0.5))
    svm_only = FailureModeClassifier(None, svm_weight=1.0)
    assert (svm_only.regression_weight, svm_only.svm_weight) == (0.0, 1.0)
    # a classifier stored before the option existed loads with it off
    state = with_them.__getstate__()
    state.pop("descriptions")
    old = FailureModeClassifier.__new__(FailureModeClassifier)
    old.__setstate__(pickle.loads(pickle.dumps(state)))  # noqa: S301 - bytes made here
    assert old.descriptions is False and "ISO 14224 descriptions" not in old.method()
    assert old.attach(None).suggest("oil leaking from the seal") == with_them.suggest(
        "oil leaking from the seal"
    )


def test_descriptions_and_neighbour_weight_options_of_the_command():
    with pytest.raises(CommandError, match="--neighbour-weight"):
        call_command("eval_failure_codes", "--no-embeddings", "--neighbour-weight", "1")
