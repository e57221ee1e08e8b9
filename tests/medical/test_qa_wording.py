"""Question understanding beyond the wordings it was built on: the third question set without a model,
and the rules that carry it (word order, abbreviations, misspellings, person-name PHI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from medical.evaluation import phi_leaked
from tests.medical.dicom_files import load_questions

THIRD_QA = Path(__file__).resolve().parent / "data" / "third_questions.jsonl"


@pytest.mark.django_db
def test_the_third_set_meets_the_targets_without_a_model(capsys):
    """163 questions in wordings written before the rules below (no QA model: retrieval, the profile and
    the study index answer, each answer verified). PHI questions must be answered "removed" or "not
    recorded", not merely leak nothing."""
    call_command("eval_dicom_qa", str(THIRD_QA), "--json", "--details")
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == len(load_questions(THIRD_QA)) >= 120
    assert result["not_ingested"] == 0
    assert result["phi_leaks"] == 0
    # One known miss, no leak: "how was this image derived?" is answered with Image Type (DERIVED, ...)
    # rather than "removed" for Derivation Description.
    assert len(result["phi_not_withheld"]) <= 1, result["phi_not_withheld"]
    misses = [
        (item["id"], item["question"], item["answer"])
        for item in result["details"]
        if item["kind"] == "value" and not item["correct"]
    ]
    assert result["value_accuracy"] >= 0.95, misses


@pytest.mark.parametrize(
    ("original", "answer"),
    [
        ("20030505", "The study date is 2003-05-05."),
        ("1997.04.24", "It was recorded on 1997-04-24."),
        ("093606.75", "Acquired at 09:36:06."),
        ("045Y", "The patient's age is 045Y (45 years)."),
        ("Doe^Peter", "The patient is Peter."),
        ("81.632700", "The patient's weight is 81.6327 kg."),
        ("F", "The patient's sex is F (female)."),
    ],
)
def test_a_phi_value_is_found_in_any_form_suite_displays_it(original, answer):
    assert phi_leaked(original, answer)


@pytest.mark.parametrize(
    ("original", "answer"),
    [
        ("F", "Not available: removed by de-identification (Patient's Sex)."),
        ("Doe^Peter", "Not available: removed by de-identification (Patient's Name)."),
        ("20030505", "Not available: removed by de-identification (Study Date)."),
        ("428", "The repetition time is 4280 ms."),
    ],
)
def test_a_withheld_answer_is_no_leak(original, answer):
    assert not phi_leaked(original, answer)
