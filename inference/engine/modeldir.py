"""Read what a Hugging Face-format model directory holds without loading any weights.

Torch-free: it reads config.json, the tokenizer file names and the safetensors headers (an
8-byte little-endian length followed by a JSON table of tensors), so the Django layer can list and
validate model directories cheaply.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from inference.engine.types import ModelLoadError

# A header larger than this is not a real safetensors header (real ones are a few MB at most).
MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024

SAFETENSORS_DTYPES = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "F8_E4M3": ("float8_e4m3fn", 1),
    "F8_E5M2": ("float8_e5m2", 1),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}

# Any one of these sets is a complete tokenizer.
TOKENIZER_FILE_SETS: tuple[tuple[str, ...], ...] = (
    ("tokenizer.json",),
    ("tokenizer.model",),
    ("vocab.json", "merges.txt"),
)


class ModelDirError(ModelLoadError):
    """The directory is not a usable model; `file` names the missing or broken file."""

    def __init__(self, message: str, *, file: str | Path | None = None):
        self.file = str(file) if file is not None else None
        super().__init__(message)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    architecture: str
    model_type: str
    parameter_count: int
    dtype: str
    context_length: int | None
    vocab_size: int | None
    num_layers: int | None
    hidden_size: int | None
    num_attention_heads: int | None
    num_kv_heads: int | None
    head_dim: int | None
    weight_bytes: int
    files: list[str] = field(default_factory=list)
    has_chat_template: bool = False

    def kv_cache_bytes_per_token(self, bytes_per_value: int = 4) -> int | None:
        if not (self.num_layers and self.num_kv_heads and self.head_dim):
            return None
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * bytes_per_value


def inspect_model_dir(path: str | Path) -> ModelInfo:
    root = Path(path)
    if not root.is_dir():
        raise ModelDirError(f"Model directory {root} does not exist.", file=root)
    config = _read_config(root / "config.json")
    weight_files = sorted(root.glob("*.safetensors"))
    if not weight_files:
        raise ModelDirError(
            f"No *.safetensors weight file in {root}; only safetensors checkpoints are served.",
            file=root / "model.safetensors",
        )
    tensors: dict[str, dict] = {}
    for weight_file in weight_files:
        tensors.update(read_safetensors_header(weight_file))
    _require_tokenizer(root)

    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}

    def setting(*names: str) -> int | None:
        for source in (config, text_config):
            for name in names:
                value = source.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
        return None

    hidden = setting("hidden_size", "n_embd", "d_model")
    heads = setting("num_attention_heads", "n_head")
    kv_heads = setting("num_key_value_heads", "num_kv_heads", "n_head_kv") or heads
    head_dim = setting("head_dim") or (hidden // heads if hidden and heads else None)
    architectures = config.get("architectures") or [""]
    return ModelInfo(
        path=str(root),
        architecture=str(architectures[0]),
        model_type=str(config.get("model_type", "")),
        parameter_count=sum(math.prod(t["shape"]) for t in tensors.values()),
        dtype=_dominant_dtype(tensors),
        context_length=setting(
            "max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length"
        ),
        vocab_size=setting("vocab_size"),
        num_layers=setting("num_hidden_layers", "n_layer", "num_layers"),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        weight_bytes=sum(t["data_offsets"][1] - t["data_offsets"][0] for t in tensors.values()),
        files=sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
        has_chat_template=_has_chat_template(root),
    )


def read_safetensors_header(path: Path) -> dict[str, dict]:
    """Return the tensor table of one safetensors file, checking it against the file size."""
    try:
        file_size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ModelDirError(
                    f"{path.name} is truncated: it is shorter than a safetensors header.", file=path
                )
            (header_size,) = struct.unpack("<Q", prefix)
            if header_size > MAX_SAFETENSORS_HEADER_BYTES or 8 + header_size > file_size:
                raise ModelDirError(
                    f"{path.name} is corrupt or truncated: its header claims {header_size} bytes "
                    f"but the file holds {file_size} bytes.",
                    file=path,
                )
            raw_header = handle.read(header_size)
    except OSError as exc:
        raise ModelDirError(f"Cannot read {path.name}: {exc}", file=path) from exc
    try:
        header = json.loads(raw_header)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path.name} has a corrupt safetensors header ({exc}).", file=path) from exc
    if not isinstance(header, dict):
        raise ModelDirError(f"{path.name} has a corrupt safetensors header (not a JSON object).", file=path)
    header.pop("__metadata__", None)
    data_size = file_size - 8 - header_size
    for name, entry in header.items():
        try:
            start, end = entry["data_offsets"]
            shape = [int(d) for d in entry["shape"]]
            dtype = entry["dtype"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(
                f"{path.name}: tensor {name!r} has a malformed header entry.", file=path
            ) from exc
        if end > data_size or start > end:
            raise ModelDirError(
                f"{path.name} is truncated: tensor {name!r} ends at byte {end} of a {data_size}-byte data section.",
                file=path,
            )
        element_size = SAFETENSORS_DTYPES.get(dtype, (None, None))[1]
        if element_size is not None and math.prod(shape) * element_size != end - start:
            raise ModelDirError(f"{path.name}: tensor {name!r} size does not match its shape.", file=path)
    return header


def _read_config(config_path: Path) -> dict:
    if not config_path.is_file():
        raise ModelDirError(f"config.json is missing from {config_path.parent}.", file=config_path)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"config.json cannot be parsed: {exc}", file=config_path) from exc
    if not isinstance(config, dict):
        raise ModelDirError("config.json must hold a JSON object.", file=config_path)
    return config


def _require_tokenizer(root: Path) -> None:
    for file_set in TOKENIZER_FILE_SETS:
        if all((root / name).is_file() for name in file_set):
            return
    raise ModelDirError(
        f"No tokenizer in {root}: expected tokenizer.json (or tokenizer.model, or vocab.json + merges.txt).",
        file=root / "tokenizer.json",
    )


def _has_chat_template(root: Path) -> bool:
    if (root / "chat_template.jinja").is_file() or (root / "chat_template.json").is_file():
        return True
    tokenizer_config = root / "tokenizer_config.json"
    if not tokenizer_config.is_file():
        return False
    try:
        return bool(json.loads(tokenizer_config.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"tokenizer_config.json cannot be parsed: {exc}", file=tokenizer_config) from exc


def _dominant_dtype(tensors: dict[str, dict]) -> str:
    elements: Counter[str] = Counter()
    for entry in tensors.values():
        elements[entry["dtype"]] += math.prod(entry["shape"])
    if not elements:
        return "unknown"
    code = elements.most_common(1)[0][0]
    return SAFETENSORS_DTYPES.get(code, (code.lower(), None))[0]
