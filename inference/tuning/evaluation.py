"""Perplexity of a base model, with or without a LoRA adapter, on the training loss masking.

Perplexity here is exp(mean next-token loss over the assistant tokens of the examples), the same
tokens the training loss covers, so a lower number on a held-out set means the adapter learned
what it was trained for. Examples are scored in the given order and batch size: deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from inference.tuning.errors import InvalidSettingsError
from inference.tuning.examples import (
    EncodedExample,
    check_examples,
    collate,
    encode_examples,
    load_tokenizer,
    pad_token_id,
    per_example_token_loss,
)


def resolve_device(device: str | None = None):
    import torch

    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(model_dir: str | Path, *, adapter_dir: str | Path | None = None, device=None):
    """The base causal LM in float32 on `device`, with the adapter in `adapter_dir` on top if given."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)
    # Place the base model before peft wraps it: wrapping first has left LoRA layers on the
    # wrong device and silently untrained under opacus (opacus issue #820).
    model.to(resolve_device(device))
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    model.eval()
    return model


def mean_token_loss(model, encoded: Sequence[EncodedExample], *, batch_size: int, pad_id: int) -> float:
    """Mean next-token loss over all target tokens of `encoded` (log perplexity)."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_total, token_total = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, len(encoded), batch_size):
                batch = collate(encoded[start : start + batch_size], pad_id=pad_id, device=device)
                logits = model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
                ).logits
                loss_sums, counts = per_example_token_loss(logits, batch["labels"])
                loss_total += float(loss_sums.double().sum())
                token_total += int(counts.sum())
    finally:
        model.train(was_training)
    return loss_total / max(token_total, 1)


def perplexity(
    model_dir: str | Path,
    examples: Sequence[Mapping[str, Any]],
    *,
    adapter_dir: str | Path | None = None,
    batch_size: int = 8,
    max_seq_len: int = 256,
) -> float:
    """Perplexity of the model (with the adapter if given) on `examples`."""
    check_examples(examples, field="examples")
    tokenizer = load_tokenizer(model_dir, field="model_dir")
    encoded = encode_examples(tokenizer, examples, max_seq_len=max_seq_len, field="examples")
    model = load_model(model_dir, adapter_dir=adapter_dir)
    return math.exp(mean_token_loss(model, encoded, batch_size=batch_size, pad_id=pad_token_id(tokenizer)))


def compare(
    base_model_dir: str | Path,
    adapter_dir: str | Path,
    eval_sets: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    batch_size: int = 8,
    max_seq_len: int = 256,
) -> dict[str, dict[str, float | int]]:
    """Base vs adapter perplexity on each named set: the adapter's own domain and what it keeps elsewhere.

    Returns {set name: {"base_perplexity", "adapter_perplexity", "relative_change" (adapter / base
    - 1: negative is better), "examples", "target_tokens"}}. The model is loaded once; the base
    numbers come from the same model with the adapter switched off.
    """
    if not eval_sets:
        raise InvalidSettingsError({"eval_sets": "Name at least one evaluation set."})
    for name, examples in eval_sets.items():
        check_examples(examples, field=f"eval_sets.{name}")
    tokenizer = load_tokenizer(base_model_dir)
    pad_id = pad_token_id(tokenizer)
    encoded_sets = {
        name: encode_examples(tokenizer, examples, max_seq_len=max_seq_len, field=f"eval_sets.{name}")
        for name, examples in eval_sets.items()
    }
    model = load_model(base_model_dir, adapter_dir=adapter_dir)
    results: dict[str, dict[str, float | int]] = {}
    for name, encoded in encoded_sets.items():
        adapter_loss = mean_token_loss(model, encoded, batch_size=batch_size, pad_id=pad_id)
        with model.disable_adapter():
            base_loss = mean_token_loss(model, encoded, batch_size=batch_size, pad_id=pad_id)
        results[name] = {
            "base_perplexity": math.exp(base_loss),
            "adapter_perplexity": math.exp(adapter_loss),
            "relative_change": math.exp(adapter_loss - base_loss) - 1,
            "examples": len(encoded),
            "target_tokens": sum(item.target_tokens for item in encoded),
        }
    return results
