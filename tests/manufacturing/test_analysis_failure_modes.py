"""FailureModeClassifier on small slices of the shared technician text (real embedding model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from inference.services import embed
from manufacturing.analysis.failure_modes import (
    FailureModeClassifier,
    cross_validate,
    evaluate,
    read_labelled,
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
    assert 0.3 < run["top1"] <= run["top3"] <= 1  # a majority-class guess gets about 0.3 of top-1
    assert "linear SVM" in FailureModeClassifier(None).method()
    with pytest.raises(CommandError, match="at least 2 folds"):
        call_command("eval_failure_codes", "--no-embeddings", "--cv", "1")
