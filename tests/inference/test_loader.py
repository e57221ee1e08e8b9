import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from inference.engine.loader import ModelCache, load_model
from inference.engine.local import LocalEngine
from inference.engine.types import AdapterError, GenerationParams, ModelLoadError, QuantizationUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cache_loads_once_and_evicts_the_least_recently_used(demo_models):
    target, draft = demo_models["target_dir"], demo_models["draft_dir"]
    probe = ModelCache(budget_bytes=10 * 1024**3)
    target_bytes = probe.get(target).memory_bytes
    int8_bytes = probe.get(target, "int8").memory_bytes
    assert probe.get(draft).memory_bytes < int8_bytes
    # Room for the target and its int8 twin, but not for the draft as well.
    cache = ModelCache(budget_bytes=target_bytes + int8_bytes + 1024)
    first = cache.get(target)
    assert cache.get(target) is first and cache.loads == 1
    cache.get(draft)
    cache.get(target)  # the target is now the most recently used
    cache.get(target, "int8")
    kept = {(Path(path).name, quant) for path, quant, _ in cache.entries()}
    assert kept == {(Path(target).name, "none"), (Path(target).name, "int8")}
    assert cache.evictions == 1
    assert cache.used_bytes <= cache.budget_bytes


def test_concurrent_requests_load_a_model_once(demo_models):
    cache = ModelCache(budget_bytes=10 * 1024**3)
    loaded = []
    threads = [
        threading.Thread(target=lambda: loaded.append(cache.get(demo_models["draft_dir"]))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.loads == 1 and len({id(m) for m in loaded}) == 1


def test_int8_weights_are_smaller_and_still_generate(demo_models, model_cache, record_prompts):
    full = model_cache.get(demo_models["target_dir"])
    quantized = model_cache.get(demo_models["target_dir"], "int8")
    assert quantized.memory_bytes < 0.35 * full.memory_bytes  # linear layers and embeddings in int8
    engine = LocalEngine(demo_models["target_dir"], quantization="int8", model_cache=model_cache)
    result = engine.generate(record_prompts[0], GenerationParams(max_tokens=16))
    assert result.completion_tokens >= 1
    assert engine.perplexity(["Work order summary. The priority is 2."]) < 1000


def test_int8_embedding_rows_are_a_quarter_of_the_size_and_within_half_a_step():
    import torch

    from inference.engine.loader import Int8Embedding, module_memory_bytes

    torch.manual_seed(0)
    table = torch.nn.Embedding(500, 64, padding_idx=0)
    table.weight.data[7] *= 40  # one row far larger than the rest keeps its own scale
    quantized = Int8Embedding(table)
    ids = torch.tensor([[0, 7, 499, 3], [12, 12, 250, 7]])
    exact, approx = table(ids).detach(), quantized(ids)
    assert approx.shape == exact.shape and approx.dtype == exact.dtype
    half_step = (table.weight.detach().abs().amax(dim=1) / 127 / 2)[ids].unsqueeze(-1)
    assert bool(((approx - exact).abs() <= half_step + 1e-7).all())
    assert module_memory_bytes(quantized) < 0.3 * module_memory_bytes(table)
    assert torch.allclose(quantized.weight, table.weight.detach(), atol=float(half_step.max()) + 1e-7)


def test_int4_needs_a_gpu(demo_models):
    if not __import__("torch").cuda.is_available():
        with pytest.raises(QuantizationUnavailable, match="CUDA"):
            load_model(demo_models["target_dir"], "int4")
    else:  # pragma: no cover - only on GPU machines
        assert load_model(demo_models["target_dir"], "int4").quantization == "int4"


def test_unknown_quantization_is_refused(demo_models):
    with pytest.raises(ModelLoadError, match="Unknown quantization"):
        load_model(demo_models["target_dir"], "int2")


@pytest.fixture(scope="module")
def lora_adapters(demo_models, tmp_path_factory):
    """Two LoRA adapters with non-zero weights (so they change the output), saved in peft format."""
    import torch
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("adapters")
    paths = {}
    for seed, name in ((1, "alpha"), (2, "beta")):
        torch.manual_seed(seed)
        base = load_model(demo_models["target_dir"]).model
        config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        peft_model = get_peft_model(base, config)
        peft_model.save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths


def test_adapters_are_chosen_per_request(demo_models, lora_adapters):
    cache = ModelCache(budget_bytes=1024**3)
    engine = LocalEngine(demo_models["target_dir"], adapters=lora_adapters, model_cache=cache)
    texts = ["Work order summary. The priority is 2. The site is Building 7."]
    base = engine.perplexity(texts)
    alpha = engine.perplexity(texts, adapter="alpha")
    beta = engine.perplexity(texts, adapter="beta")
    assert len({round(base, 6), round(alpha, 6), round(beta, 6)}) == 3
    # Switching back and forth gives the same numbers: the adapter really follows the request.
    assert engine.perplexity(texts, adapter="alpha") == pytest.approx(alpha)
    assert engine.perplexity(texts) == pytest.approx(base)
    with_adapter = engine.generate("The priority is", GenerationParams(max_tokens=12, adapter="beta"))
    again = engine.generate("The priority is", GenerationParams(max_tokens=12, adapter="beta"))
    assert with_adapter.text == again.text
    # generate() runs with the chosen adapter's LoRA layers, and without them for the base.
    base_text = engine.generate("The priority is", GenerationParams(max_tokens=12)).text
    alpha_text = engine.generate("The priority is", GenerationParams(max_tokens=12, adapter="alpha")).text
    assert len({base_text, alpha_text, with_adapter.text}) == 3


def test_adapters_come_back_after_the_model_is_evicted(demo_models, lora_adapters):
    cache = ModelCache(budget_bytes=1024**3)
    engine = LocalEngine(demo_models["target_dir"], adapters=lora_adapters, model_cache=cache)
    texts = ["The study date is 20190304."]
    before = engine.perplexity(texts, adapter="alpha")
    cache.evict(demo_models["target_dir"])
    assert engine.perplexity(texts, adapter="alpha") == pytest.approx(before)


def test_bad_adapters_are_refused(demo_models, tmp_path, lora_adapters, model_cache):
    cache = ModelCache(budget_bytes=1024**3)
    engine = LocalEngine(demo_models["target_dir"], model_cache=cache)
    with pytest.raises(AdapterError, match="adapter_config.json"):
        engine.add_adapter("empty", tmp_path)
    quantized = LocalEngine(demo_models["target_dir"], quantization="int8", model_cache=model_cache)
    with pytest.raises(AdapterError, match="unquantized"):
        quantized.add_adapter("alpha", lora_adapters["alpha"])


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(name, None)

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from inference.engine.local import LocalEngine
    from inference.engine.types import GenerationParams

    engine = LocalEngine(sys.argv[1], draft_model_dir=sys.argv[2])
    result = engine.generate([{"role": "user", "content": "Rows = 512"}], GenerationParams(max_tokens=4, speculative="draft"))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    print("OK", result.completion_tokens)
    """
)


def test_models_load_and_answer_with_the_network_disabled(demo_models):
    completed = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, demo_models["target_dir"], demo_models["draft_dir"]],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.startswith("OK ")
