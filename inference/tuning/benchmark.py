"""LoRA against full fine-tuning of the same model, measured side by side on the same batch."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from inference.tuning.errors import InvalidSettingsError
from inference.tuning.evaluation import load_model, resolve_device
from inference.tuning.examples import (
    check_examples,
    collate,
    encode_examples,
    load_tokenizer,
    pad_token_id,
    training_loss,
)
from inference.tuning.lora_config import LoraSettings, model_linear_module_names, peft_lora_config


def lora_vs_full(
    model_dir: str | Path,
    examples: Sequence[Mapping[str, Any]],
    *,
    batch_size: int = 8,
    steps: int = 5,
    lora: LoraSettings | None = None,
    max_seq_len: int = 256,
    learning_rate: float = 1e-4,
) -> dict[str, Any]:
    """Train `steps` AdamW steps (after one warm-up step) both ways on one fixed batch and compare.

    Returns lora_trainable_fraction, lora_step_time_ratio (median LoRA step time / median full
    step time) and lora_peak_memory_ratio (LoRA / full training-state bytes), plus the figures
    behind them under "lora" and "full".

    Step times: both models are built up front and stepped alternately, so that load from other
    processes slows both alike (measuring one after the other skewed the ratio by 2x or more on
    a shared 2-core machine). They are wall-clock: compare them only within one call.

    Memory: training-state bytes, counted from the real tensors of each variant: parameters +
    gradients (after a backward pass) + optimizer state (after a step) + the activations autograd
    keeps for the backward pass (caught with saved_tensors_hooks; distinct storages, parameters
    excluded). Their sum bounds the peak from above. It leaves out allocator overhead and the
    Python runtime, the same both ways, and unlike a process RSS delta it is exact and is not
    blurred by memory the allocator keeps cached. It is the same count on CPU and GPU.
    """
    lora = lora or LoraSettings()
    if not isinstance(steps, int) or steps < 1:
        raise InvalidSettingsError({"steps": "Measure at least one step."})
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidSettingsError({"batch_size": "The batch size must be a whole number above 0."})
    errors = lora.validate(model_linear_module_names(model_dir))
    if errors:
        raise InvalidSettingsError(errors)
    check_examples(examples, field="examples")
    tokenizer = load_tokenizer(model_dir, field="model_dir")
    encoded = encode_examples(tokenizer, examples, max_seq_len=max_seq_len, field="examples")
    chosen = [encoded[i % len(encoded)] for i in range(batch_size)]
    device = resolve_device()
    batch = collate(chosen, pad_id=pad_token_id(tokenizer), device=device)

    variants = {
        "full": _Variant(model_dir, lora=None, learning_rate=learning_rate, device=device),
        "lora": _Variant(model_dir, lora=lora, learning_rate=learning_rate, device=device),
    }
    for variant in variants.values():
        variant.first_step(batch)
    # Alternate the two step by step, so that a busy machine slows both alike.
    for _ in range(steps):
        for variant in variants.values():
            variant.timed_step(batch)
    full, adapted = variants["full"].figures(), variants["lora"].figures()
    return {
        "lora_trainable_fraction": adapted["trainable_parameters"] / adapted["total_parameters"],
        "lora_step_time_ratio": adapted["median_step_seconds"] / full["median_step_seconds"],
        "lora_peak_memory_ratio": adapted["training_state_bytes"] / full["training_state_bytes"],
        "batch_size": batch_size,
        "tokens_per_batch": int(batch["attention_mask"].sum()),
        "steps": steps,
        "device": str(device),
        "lora": adapted,
        "full": full,
    }


class _Variant:
    """One way of training (full, or LoRA) with its own model and optimizer, stepped on demand."""

    def __init__(self, model_dir, *, lora: LoraSettings | None, learning_rate: float, device):
        import torch

        torch.manual_seed(0)
        model = load_model(model_dir, device=device)
        if lora is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_lora_config(lora))
        model.train()
        self.model, self.device = model, device
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=learning_rate)
        self.step_seconds: list[float] = []
        self.gradient_bytes = self.activation_bytes = 0

    def first_step(self, batch: dict) -> None:
        """Warm-up step that also counts the activations kept for backward and the gradients."""
        import torch

        parameter_storages = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
        saved_storages: dict[int, int] = {}

        def remember(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in parameter_storages:
                saved_storages[storage.data_ptr()] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(remember, lambda tensor: tensor):
            loss = training_loss(self.model, batch)
        loss.backward()
        self.gradient_bytes = sum(p.grad.nbytes for p in self.trainable if p.grad is not None)
        self.activation_bytes = sum(saved_storages.values())
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def timed_step(self, batch: dict) -> None:
        import torch

        started = time.perf_counter()
        training_loss(self.model, batch).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.step_seconds.append(time.perf_counter() - started)

    def figures(self) -> dict[str, Any]:
        import torch

        parameter_bytes = sum(p.nbytes for p in self.model.parameters())
        optimizer_state_bytes = sum(
            value.nbytes
            for state in self.optimizer.state.values()
            for value in state.values()
            if torch.is_tensor(value)
        )
        return {
            "trainable_parameters": sum(p.numel() for p in self.trainable),
            "total_parameters": sum(p.numel() for p in self.model.parameters()),
            "median_step_seconds": statistics.median(self.step_seconds),
            "parameter_bytes": parameter_bytes,
            "gradient_bytes": self.gradient_bytes,
            "optimizer_state_bytes": optimizer_state_bytes,
            "activation_bytes": self.activation_bytes,
            "training_state_bytes": parameter_bytes
            + self.gradient_bytes
            + optimizer_state_bytes
            + self.activation_bytes,
        }
