"""The assistant's failure-mode classifier is fitted once, stored as a versioned joblib file (sha256 on
its row, trailed), loaded by suggestions, refused when altered, and refitted with the engineers'
accepted or corrected choices once enough have come in."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.models import Event
from manufacturing.models import FailureClassifierVersion, FailureSuggestion, WorkOrder
from manufacturing.services.assistant import suggestion_review
from manufacturing.services.failure_classifier import (
    ClassifierUnavailable,
    current_classifier,
    failure_classifier_train,
    refit_due,
)

pytestmark = pytest.mark.django_db

ODD_PROBLEM = "qzx flange wobbly zzv on tail rotor"  # nothing in the training text looks like it


@pytest.fixture(autouse=True)
def small_training_file(settings, tmp_path):
    """Up to 4 examples of each mode from the shared training file (a fit then takes a fraction of a
    second; the full file is what `train_failure_classifier` uses by default)."""
    source = Path(settings.SHARED_DATA_DIR) / "failure_modes" / "fmc_mwo2kg_train.csv"
    kept, seen = [], {}
    with open(source, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if seen.setdefault(row["label"], 0) < 4:
                seen[row["label"]] += 1
                kept.append(row)
    target = tmp_path / "train.csv"
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    settings.MANUFACTURING_FAILURE_MODES_TRAIN = target
    return len(kept)


def test_fit_once_store_versioned_and_load(settings, tmp_path, small_training_file):
    settings.MODEL_ROOT = tmp_path
    with pytest.raises(ClassifierUnavailable, match="train_failure_classifier"):
        current_classifier()
    call_command("train_failure_classifier", "--no-embeddings")
    row = FailureClassifierVersion.objects.get()
    path = Path(tmp_path) / row.path
    assert row.version == 1 and row.examples == small_training_file and row.reviews_used == 0
    assert (
        row.path.endswith("failure_modes_v1.joblib")
        and hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
    )
    event = Event.objects.get(action="failure_classifier.train")
    assert event.payload["sha256"] == row.sha256 and event.payload["version"] == 1

    classifier, loaded = current_classifier()
    assert loaded == row and classifier.suggest("pump leaking oil from seal", 3)[0][0] == "Leaking"
    assert current_classifier()[0] is classifier  # loaded once per process and version

    second = failure_classifier_train(actor="test:store", use_embeddings=False)
    path = Path(tmp_path) / second.path
    path.write_bytes(path.read_bytes() + b"tampered")  # altered before any process loaded it
    with pytest.raises(ClassifierUnavailable, match="does not match its recorded sha256"):
        current_classifier()
    path.unlink()
    with pytest.raises(ClassifierUnavailable, match="v2 is missing"):
        current_classifier()


def test_reviews_accumulate_into_a_refit(
    settings,
    tmp_path,
    engineer_a,
    machine_a,
    failure_codes,
    django_capture_on_commit_callbacks,
    small_training_file,
):
    settings.MODEL_ROOT = tmp_path
    settings.MANUFACTURING_CLASSIFIER_REFIT_REVIEWS = 2
    failure_classifier_train(actor="test:store", use_embeddings=False)
    assert not refit_due()
    queued = []
    for n in range(2):
        work_order = WorkOrder.objects.create(site="site-a", machine=machine_a, title=f"tail rotor {n}")
        suggestion = FailureSuggestion.objects.create(
            work_order=work_order, problem=ODD_PROBLEM, suggested_code="VIB", requested_by=engineer_a
        )
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            suggestion_review(actor=engineer_a, suggestion=suggestion, code="FTR")  # corrected
        queued.append(len(callbacks))
    assert queued == [0, 1] and refit_due()  # the second verdict queues the refit task after commit

    call_command("train_failure_classifier", "--no-embeddings", "--if-due")
    row = current_classifier()[1]
    assert (row.version, row.reviews_used, row.examples) == (2, 2, small_training_file + 2)
    assert current_classifier()[0].suggest(ODD_PROBLEM, 1)[0][0] == "Failure to rotate"
    assert not refit_due()
    call_command("train_failure_classifier", "--no-embeddings", "--if-due")  # nothing new: no version
    assert FailureClassifierVersion.objects.count() == 2
