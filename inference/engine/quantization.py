"""llama.cpp's quantizer and the importance matrix that weights its k-quants, for the importer.

quantize() drives llama_model_quantize through llama-cpp-python's ctypes bindings (tensor-type
overrides, GGUF metadata, an importance matrix); importance_matrix() computes that matrix with
transformers on the model's Hugging Face directory, over calibration_windows() of text that
bench_inference never scores (docs/inference.md, "4-bit by default").
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inference.engine.llamacpp import is_gguf
from inference.engine.types import ModelLoadError

# llama.cpp's LLAMA_FTYPE_* values of the formats the importer writes or recognizes.
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}
FILE_TYPE_NAMES = {value: name for name, value in FILE_TYPES.items()}
# The importance matrix that weights the k-quants' rounding by default (import_model --imatrix):
# 512-token windows from the end of CALIBRATION_TEXT. Chosen by import time against perplexity on
# calibration-side text, never on bench_inference's held-out windows (docs/inference.md).
IMATRIX_WINDOWS = 8
CALIBRATION_CONTEXT = 512
CALIBRATION_TEXT = "pydoc_data.topics, end"


class ImportFailed(ModelLoadError):
    """A step of a model import failed (copy, check, quantization): the message says which and why."""


def quantize(
    source: Path,
    target: Path,
    quantization: str,
    *,
    threads: int = 0,
    imatrix: dict[str, np.ndarray] | None = None,
    tensor_types: dict[str, str] | None = None,
    metadata: dict[str, int | str] | None = None,
) -> Path:
    """llama.cpp's quantizer (llama_model_quantize), writing `target` atomically. `imatrix`: an
    importance matrix ({GGUF weight name: mean square of each input column's activation}, what
    llama.cpp's imatrix tool computes), which its k-quant and legacy quantizers weight rounding by.
    `tensor_types`: {regular expression on tensor names: tensor type} (llama-quantize's
    --tensor-type; "token_embd" and "output" set --token-embedding-type / --output-tensor-type).
    `metadata`: GGUF keys written into the file (e.g. llama.cpp's quantize.imatrix.* provenance)."""
    import llama_cpp

    if quantization not in FILE_TYPES:
        raise ImportFailed(f"Unknown quantization {quantization!r}; choose from {', '.join(FILE_TYPES)}.")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FILE_TYPES[quantization]
    params.nthread = threads
    params.allow_requantize = True
    keep_alive: list = []  # what the C arrays point into, alive until the quantizer returns
    patterns = dict(tensor_types or {})
    if "token_embd" in patterns:
        params.token_embedding_type = _tensor_type(patterns.pop("token_embd"))
    if "output" in patterns:
        params.output_tensor_type = _tensor_type(patterns.pop("output"))
    if patterns:
        overrides = (llama_cpp.llama_model_tensor_override * (len(patterns) + 1))()  # NULL-pattern terminated
        for entry, (pattern, type_name) in zip(overrides, patterns.items(), strict=False):
            keep_alive.append(pattern.encode())
            entry.pattern, entry.type = keep_alive[-1], _tensor_type(type_name)
        params.tt_overrides = ctypes.cast(overrides, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
        keep_alive.append(overrides)
    if metadata:
        values = (llama_cpp.llama_model_kv_override * (len(metadata) + 1))()  # empty-key terminated
        for entry, (key, value) in zip(values, metadata.items(), strict=False):
            entry.key = key.encode()
            if isinstance(value, int):
                entry.tag, entry.value.val_i64 = llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT, value
            else:
                entry.tag, entry.value.val_str = (
                    llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR,
                    str(value).encode()[:127],
                )
        params.kv_overrides = ctypes.cast(values, ctypes.POINTER(llama_cpp.llama_model_kv_override))
        keep_alive.append(values)
    if imatrix:
        entries = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()  # NULL-name terminated
        for entry, (name, values) in zip(entries, imatrix.items(), strict=False):
            values = np.ascontiguousarray(values, dtype=np.float32)
            keep_alive += [values, name.encode()]
            entry.name, entry.size = keep_alive[-1], values.size
            entry.data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        params.imatrix = ctypes.cast(entries, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        keep_alive.append(entries)
    temporary = target.with_suffix(".part")
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(temporary).encode(), ctypes.byref(params))
    if code != 0 or not is_gguf(temporary):
        temporary.unlink(missing_ok=True)
        raise ImportFailed(f"llama.cpp could not quantize {source.name} to {quantization} (code {code}).")
    temporary.replace(target)
    return target


TENSOR_TYPES = ("f16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k")


def _tensor_type(name: str) -> int:
    import llama_cpp

    if name not in TENSOR_TYPES:
        raise ImportFailed(f"Unknown tensor type {name!r}; choose from {', '.join(TENSOR_TYPES)}.")
    return getattr(llama_cpp, f"GGML_TYPE_{name.upper()}")


_HF_TO_GGUF = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
               "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}  # fmt: skip
_HF_LAYER = re.compile(r"^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)$")


def importance_matrix(
    hf_dir: str | Path,
    windows: list[list[int]],
    *,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """llama.cpp's importance matrix for a Llama-architecture model, computed with transformers on
    its Hugging Face directory: for each weight of a linear layer (by its GGUF name), the mean over
    the calibration tokens `windows` of each input column's squared activation (what llama.cpp's
    imatrix tool accumulates for the same matrix products). `progress(done, total)` per window."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(
        str(hf_dir), local_files_only=True, dtype=torch.float32
    ).eval()
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def accumulate(name: str, activations: torch.Tensor) -> None:
        rows = activations.detach().reshape(-1, activations.shape[-1]).double()
        sums[name] = sums.get(name, 0) + (rows * rows).sum(dim=0)
        counts[name] = counts.get(name, 0) + rows.shape[0]

    for module_name, module in model.named_modules():
        match = _HF_LAYER.match(module_name)
        if isinstance(module, torch.nn.Linear) and match and match.group(2) in _HF_TO_GGUF:
            name = f"blk.{match.group(1)}.{_HF_TO_GGUF[match.group(2)]}.weight"
            module.register_forward_pre_hook(lambda _module, args, name=name: accumulate(name, args[0]))
    # The output product's input is the base model's last hidden state: read it there rather than
    # pay for the logits (49,152 x 576 multiply-adds a token on SmolLM2, a fifth of the forward pass).
    # Tied embeddings: that product multiplies the token embedding table.
    output_name = "token_embd.weight" if tied else "output.weight"
    with torch.inference_mode():
        for index, window in enumerate(windows):
            hidden = model.model(torch.tensor([window])).last_hidden_state
            accumulate(output_name, hidden)
            if progress:
                progress(index + 1, len(windows))
    return {name: (sums[name] / counts[name]).float().numpy() for name in sums}


def calibration_windows(gguf: str | Path, count: int, context: int = CALIBRATION_CONTEXT) -> list[list[int]]:
    """`count` windows of `context` tokens (BOS first) of real English prose for an importance
    matrix: the END of Python's own reference documentation (pydoc_data.topics, PSF licence),
    never its first half, where bench_inference's held-out windows start."""
    from pydoc_data.topics import topics

    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        text = "\n\n".join(topics[key] for key in sorted(topics))
        ids = vocab.tokenize(text.encode(), add_bos=False, special=False)
        step = context - 1
        if count * step > len(ids) // 2:
            raise ImportFailed(
                f"{count} calibration windows of {context} tokens reach into the first half of the "
                f"calibration text ({len(ids)} tokens), which is kept for evaluation."
            )
        tail = ids[-count * step :]
        return [[vocab.token_bos(), *tail[i * step : (i + 1) * step]] for i in range(count)]
    finally:
        vocab.close()
