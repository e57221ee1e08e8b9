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


@pytest.mark.parametrize(
    ("question", "keyword"),
    [
        ("Which physician performed the exam?", "PerformingPhysicianName"),  # word order
        ("who was the performing doc?", "PerformingPhysicianName"),  # shorthand
        ("Which physician read this study?", "NameOfPhysiciansReadingStudy"),
        ("id number of the pt", "PatientID"),  # an identifier by its words
        ("who verified the report?", "VerifyingObserverName"),  # "who" asks for a person
        ("name of pt?", "PatientName"),
        ("pt female?", "PatientSex"),  # "is the patient female" with "is the" left out
    ],
)
def test_people_and_identifiers_are_found_by_their_name_words_in_any_order(question, keyword):
    from medical.dicom import removed_phi_requested

    requested = removed_phi_requested(question)
    assert requested and requested[0] == keyword, requested
    assert "PhysiciansOfRecord" not in requested  # "physician" alone does not outweigh the named one


@pytest.mark.parametrize(
    ("word", "read_as"),
    [
        ("repitition", "repetition"),
        ("strenght", "strength"),
        ("thicknes", "thickness"),
        ("organisation", "organization"),
        ("digitised", "digitized"),
        ("reader", "reader"),  # English: not "render"
        ("sent", "sent"),  # not "set"
    ],
)
def test_typing_slips_are_read_as_the_vocabulary_word_and_english_words_stay(word, read_as):
    from medical.dicom.question_words import question_words

    assert question_words(word) == [read_as]


@pytest.mark.parametrize(
    ("relative", "question", "keyword"),
    [
        ("dicomdirtests/98892003/MR1/5641", "what MHz was the scanner tuned to?", "ImagingFrequency"),  # unit
        ("dicomdirtests/77654033/CR3/6278", "was it shot AP or PA?", "ViewPosition"),  # codes offered
        ("rtdose.dcm", "Gy or relative units?", "DoseUnits"),
        ("dicomdirtests/98892003/MR1/15820", "when were the carotids scanned?", "StudyDate"),  # when: a date
    ],
)
def test_answer_types_units_and_offered_codes_find_the_attribute_without_embeddings(
    relative, question, keyword
):
    from medical.dicom import deidentify, retrieve
    from tests.medical.dicom_files import UID_KEY, read_test_file

    dataset = deidentify(read_test_file(relative), uid_key=UID_KEY).dataset
    hits = retrieve(question, dataset, top_k=3, include_removed=True)
    assert hits[0].keyword == keyword, [(hit.keyword, hit.score) for hit in hits]
