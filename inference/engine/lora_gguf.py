"""Convert a peft LoRA adapter (from the tuning app) into a GGUF LoRA that llama.cpp serves.

What llama.cpp's convert_lora_to_gguf.py writes, for the Llama family: general.type=adapter,
adapter.type=lora, adapter.lora.alpha, and per adapted linear layer the tensors
`blk.N.<name>.weight.lora_a` (r x in) and `.lora_b` (out x r). Hugging Face and GGUF order the
rotary halves of the query and key projections differently; the GGUF converter permutes those
weights' rows, so the rows of their lora_b are permuted the same way here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from inference.engine.types import AdapterError

# Hugging Face Llama module -> GGUF tensor name (per block).
LLAMA_MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
LLAMA_MODEL_TYPES = ("llama", "mistral")
_TENSOR = re.compile(r"layers\.(\d+)\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$")


def _permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute, on the output rows."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def convert_peft_lora(adapter_dir: str | Path, base_config: dict, output: str | Path) -> Path:
    """Write `output` (GGUF LoRA) from the peft adapter in `adapter_dir` for a base with `base_config`."""
    import gguf
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / "adapter_config.json"
    weights_path = adapter_dir / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise AdapterError(f"{adapter_dir} is not a peft LoRA adapter (adapter_config.json and "
                           "adapter_model.safetensors are needed).")  # fmt: skip
    adapter_config = json.loads(config_path.read_text())
    model_type = base_config.get("model_type")
    if model_type not in LLAMA_MODEL_TYPES:
        raise AdapterError(
            f"Converting LoRA adapters to GGUF supports Llama-family bases, not {model_type!r}."
        )
    rank = int(adapter_config.get("r") or 0)
    alpha = float(adapter_config.get("lora_alpha") or rank)
    if adapter_config.get("use_rslora") or adapter_config.get("use_dora"):
        raise AdapterError("rsLoRA and DoRA adapters cannot be served by llama.cpp; train plain LoRA.")
    n_head = int(base_config["num_attention_heads"])
    n_kv_head = int(base_config.get("num_key_value_heads") or n_head)

    pairs: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for name, tensor in load_file(str(weights_path)).items():
        match = _TENSOR.search(name)
        if not match:
            raise AdapterError(
                f"Unexpected tensor {name!r} in {weights_path.name}: only linear LoRA layers convert."
            )
        block, module, which = int(match[1]), match[2], match[3]
        if module not in LLAMA_MODULES:
            raise AdapterError(
                f"LoRA on {module!r} cannot be served by llama.cpp (supported: {', '.join(LLAMA_MODULES)})."
            )
        pairs.setdefault((block, module), {})[which] = tensor.astype(np.float32)

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(temporary), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for (block, module), tensors in sorted(pairs.items()):
        if set(tensors) != {"A", "B"}:
            raise AdapterError(f"Layer {block} {module} lacks its lora_A or lora_B tensor.")
        lora_a, lora_b = tensors["A"], tensors["B"]
        if module == "self_attn.q_proj":
            lora_b = _permute_rows(lora_b, n_head)
        elif module == "self_attn.k_proj":
            lora_b = _permute_rows(lora_b, n_kv_head)
        base = f"blk.{block}.{LLAMA_MODULES[module]}.weight"
        writer.add_tensor(base + ".lora_a", np.ascontiguousarray(lora_a))
        writer.add_tensor(base + ".lora_b", np.ascontiguousarray(lora_b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    temporary.replace(output)
    return output


def gguf_lora_for(adapter_dir: str | Path, base_config: dict) -> Path:
    """The GGUF LoRA next to a peft adapter, converted once (again when the adapter is newer)."""
    adapter_dir = Path(adapter_dir)
    target = adapter_dir / "adapter.gguf"
    source = adapter_dir / "adapter_model.safetensors"
    if target.is_file() and source.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    return convert_peft_lora(adapter_dir, base_config, target)
