"""Load local Hugging Face-format models and keep them in a per-process LRU cache.

Nothing here touches the network: the hub's offline switches are set by the package (engine/__init__.py)
before transformers is imported, and every load passes local_files_only=True with a directory path.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inference.engine.modeldir import ModelInfo, inspect_model_dir
from inference.engine.types import QUANTIZATIONS, AdapterError, ModelLoadError, QuantizationUnavailable

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_BYTES = 4 * 1024**3


@dataclass(eq=False)
class LoadedModel:
    """A model and its tokenizer, plus the lock that serializes its use and adapter switches.

    peft keeps the active adapter as state on the model, so choosing an adapter and running with it
    happen under one lock (a whole `generate()` call, or one forward pass for perplexity):
    concurrent requests with different adapters take turns instead of corrupting each other.
    """

    path: str
    quantization: str
    model: torch.nn.Module
    tokenizer: object
    info: ModelInfo
    memory_bytes: int
    device: torch.device
    adapters: dict[str, str] = field(default_factory=dict)
    _active_adapter: str | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def ensure_adapter(self, name: str, adapter_dir: str | Path) -> None:
        """Load the LoRA adapter in `adapter_dir` under `name` unless it is already there."""
        adapter_dir = str(Path(adapter_dir).resolve())
        with self._lock:
            if self.adapters.get(name) == adapter_dir:
                return
            if name in self.adapters:
                raise AdapterError(f"Adapter name {name!r} is already used for {self.adapters[name]}.")
            if self.quantization != "none":
                raise AdapterError(
                    f"LoRA adapters need an unquantized base model; {self.path} is loaded as {self.quantization}."
                )
            if not (Path(adapter_dir) / "adapter_config.json").is_file():
                raise AdapterError(f"{adapter_dir} is not a LoRA adapter: adapter_config.json is missing.")
            try:
                self._attach_adapter(name, adapter_dir)
            except (ValueError, OSError, RuntimeError, KeyError) as exc:
                raise AdapterError(f"Cannot load adapter {name!r} from {adapter_dir}: {exc}") from exc
            self.adapters[name] = adapter_dir
            self.memory_bytes = module_memory_bytes(self.model)
            self._select(self._active_adapter)

    @contextmanager
    def using(self, adapter: str | None) -> Iterator[torch.nn.Module]:
        """Hold the model with `adapter` active (None: the base model) for one forward pass."""
        if adapter is not None and adapter not in self.adapters:
            raise AdapterError(
                f"Unknown adapter {adapter!r}; loaded: {', '.join(sorted(self.adapters)) or 'none'}."
            )
        with self._lock:
            if adapter != self._active_adapter:
                self._select(adapter)
            yield self.model

    def generation_model(self, held: torch.nn.Module) -> torch.nn.Module:
        """The transformers model to call `generate()` on, given what `using` yielded: under peft
        the wrapped model itself, whose LoRA layers follow the adapter `using` chose (peft's own
        generate wrapper is not needed for that)."""
        return held.get_base_model() if self.adapters else held

    def _attach_adapter(self, name: str, adapter_dir: str) -> None:
        # peft directly: transformers 5.24's adapter integration demands peft >= 0.22, we pin 0.21.
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(adapter_dir, adapter_name=name, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(
                self.model, adapter_dir, adapter_name=name, is_trainable=False
            )
            self.model.eval()

    def _select(self, adapter: str | None) -> None:
        if not self.adapters:
            return
        if adapter is None:
            self.model.base_model.disable_adapter_layers()
        else:
            self.model.base_model.enable_adapter_layers()
            self.model.set_adapter(adapter)
        self._active_adapter = adapter


def load_model(path: str | Path, quantization: str = "none", *, device: str | None = None) -> LoadedModel:
    """Load a model directory (validated first) with the requested weight quantization."""
    if quantization not in QUANTIZATIONS:
        raise ModelLoadError(
            f"Unknown quantization {quantization!r}; expected one of {', '.join(QUANTIZATIONS)}."
        )
    info = inspect_model_dir(path)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if quantization == "int4":
        _require_int4_support()
    target_device = torch.device(device or ("cuda" if quantization == "int4" else "cpu"))
    common = {"local_files_only": True, "trust_remote_code": False}
    try:
        tokenizer = AutoTokenizer.from_pretrained(info.path, **common)
        if quantization == "int4":
            from transformers import BitsAndBytesConfig

            model = AutoModelForCausalLM.from_pretrained(
                info.path,
                quantization_config=BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
                ),
                device_map={"": target_device.index or 0},
                **common,
            )
        else:
            # CPU kernels are fastest and most complete in float32; GPUs keep the checkpoint's dtype.
            dtype = torch.float32 if target_device.type == "cpu" else "auto"
            model = AutoModelForCausalLM.from_pretrained(info.path, dtype=dtype, **common).to(target_device)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"Cannot load the model in {info.path}: {exc}") from exc
    model.eval()
    model.requires_grad_(False)
    if quantization == "int8":
        model = quantize_int8(model)
    return LoadedModel(
        path=info.path,
        quantization=quantization,
        model=model,
        tokenizer=tokenizer,
        info=info,
        memory_bytes=module_memory_bytes(model),
        device=target_device,
    )


class Int8Embedding(torch.nn.Module):
    """An embedding table stored as int8 with one fp32 scale per row (symmetric, per token).

    A lookup dequantizes only the rows it reads, so the table costs a quarter of its fp32 size;
    the rounding error is at most half a step of its row's scale (|w| max / 127).
    """

    def __init__(self, embedding: torch.nn.Embedding):
        super().__init__()
        weight = embedding.weight.detach().float()
        scale = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
        self.register_buffer("qweight", torch.round(weight / scale).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.num_embeddings, self.embedding_dim = weight.shape
        self.padding_idx = embedding.padding_idx
        self.out_dtype = embedding.weight.dtype

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized table (a temporary copy), for callers that inspect embedding weights."""
        return (self.qweight.float() * self.scale).to(self.out_dtype)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = torch.nn.functional.embedding(input_ids, self.qweight)
        return (rows.float() * torch.nn.functional.embedding(input_ids, self.scale)).to(self.out_dtype)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Weight-only int8 for CPU: the linear layers (torchao when installed, else torch's dynamic
    quantization of nn.Linear) and the input embedding table (Int8Embedding).

    With tied embeddings the output projection gets its own int8 copy and the input table its own,
    both int8: the demo model is 3.5x smaller than in fp32, against 2.5x with the table left fp32
    (norms stay fp32; bench_inference reports the ratio).
    """
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError:
        quantize_ = None
    if quantize_ is not None:
        quantize_(model, Int8WeightOnlyConfig())
    else:
        with warnings.catch_warnings():
            # torch 2.13 marks quantize_dynamic deprecated in favour of torchao, which is optional here.
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if isinstance(embeddings, torch.nn.Embedding):
        model.set_input_embeddings(Int8Embedding(embeddings))
    return model


def _require_int4_support() -> None:
    if not torch.cuda.is_available():
        raise QuantizationUnavailable(
            "int4 weights need a CUDA GPU with bitsandbytes and this machine has no CUDA device; "
            "use int8 (CPU) or none."
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise QuantizationUnavailable(
            "int4 weights need the bitsandbytes package, which is not installed."
        ) from exc


def module_memory_bytes(model: torch.nn.Module) -> int:
    """Bytes held by a model's tensors, counting tied and packed (quantized) weights once."""
    seen: set[tuple[int, int]] = set()
    total = 0

    def add(value) -> None:
        nonlocal total
        if isinstance(value, torch.Tensor):
            if value.is_quantized:
                nbytes = value.numel() * value.element_size()
                key = (id(value), nbytes)
            else:
                storage = value.untyped_storage()
                nbytes = storage.nbytes()
                key = (storage.data_ptr(), nbytes)
            if key not in seen:
                seen.add(key)
                total += nbytes
        elif isinstance(value, (tuple, list)):
            for item in value:
                add(item)

    for value in model.state_dict(keep_vars=True).values():
        add(value)
    return total


def estimated_memory_bytes(info: ModelInfo, quantization: str) -> int:
    """A lower bound of a model's size once loaded (room is made for it before loading; the cache
    evicts again with the measured size after)."""
    bytes_per_parameter = {"none": 4, "int8": 1.0, "int4": 0.5}[quantization]
    return int(info.parameter_count * bytes_per_parameter)


class ModelCache:
    """Per-process cache of loaded models keyed by (directory, quantization), bounded in bytes.

    Loading happens once per key even under concurrent requests; when a new model would exceed the
    budget, the least recently used models are dropped (requests still holding one keep it alive
    until they finish). A single model larger than the budget is still served, alone.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES):
        if budget_bytes <= 0:
            raise ValueError("budget_bytes must be positive.")
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self.loads = 0
        self.evictions = 0

    @staticmethod
    def key(path: str | Path, quantization: str = "none") -> tuple[str, str]:
        return (str(Path(path).resolve()), quantization)

    def get(self, path: str | Path, quantization: str = "none") -> LoadedModel:
        key = self.key(path, quantization)
        with self._lock:
            if (entry := self._entries.get(key)) is not None:
                self._entries.move_to_end(key)
                return entry
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if (entry := self._entries.get(key)) is not None:  # loaded by a concurrent request
                    self._entries.move_to_end(key)
                    return entry
                # Make room before loading, so two big models never sit in memory at once needlessly.
                self._evict_until_fits(estimated_memory_bytes(inspect_model_dir(key[0]), quantization))
            loaded = load_model(key[0], quantization)
            with self._lock:
                self._evict_until_fits(loaded.memory_bytes)
                self._entries[key] = loaded
                self.loads += 1
            logger.info("Loaded %s (%s): %.1f MB", key[0], quantization, loaded.memory_bytes / 1e6)
            return loaded

    def evict(self, path: str | Path, quantization: str | None = None) -> int:
        """Drop a model (every quantization of it unless one is named); returns how many were dropped."""
        resolved = str(Path(path).resolve())
        with self._lock:
            doomed = [k for k in self._entries if k[0] == resolved and quantization in (None, k[1])]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(entry.memory_bytes for entry in self._entries.values())

    def entries(self) -> list[tuple[str, str, int]]:
        """(path, quantization, bytes) per loaded model, least recently used first."""
        with self._lock:
            return [(path, quant, entry.memory_bytes) for (path, quant), entry in self._entries.items()]

    def _evict_until_fits(self, incoming_bytes: int) -> None:
        used = sum(entry.memory_bytes for entry in self._entries.values())
        while self._entries and used + incoming_bytes > self.budget_bytes:
            key, entry = self._entries.popitem(last=False)
            used -= entry.memory_bytes
            self.evictions += 1
            logger.info("Evicted %s (%s) from the model cache", *key)


_shared_cache: ModelCache | None = None
_shared_cache_lock = threading.Lock()


def shared_model_cache(budget_bytes: int | None = None) -> ModelCache:
    """The process-wide cache; the first caller's budget wins (later ones may only read it)."""
    global _shared_cache
    with _shared_cache_lock:
        if _shared_cache is None:
            _shared_cache = ModelCache(budget_bytes or DEFAULT_BUDGET_BYTES)
        return _shared_cache
