"""Settings of a LoRA fine-tuning job and their validation.

The dataclasses are torch-free so the Django layer can validate a job (and store its settings as
JSON) before anything heavy is imported. Each `validate` returns {field name: message}; an empty
dict means the settings are usable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Self

from inference.tuning.errors import InvalidSettingsError


class _Settings:
    """JSON round-trip shared by the settings dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidSettingsError({name: "Unknown setting." for name in unknown})
        return cls(**data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


@dataclass(frozen=True)
class LoraSettings(_Settings):
    r: int = 16
    alpha: float = 32
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")

    def __post_init__(self) -> None:
        # JSON gives lists; a frozen dataclass should hold an immutable, hashable tuple.
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def validate(self, model_module_names: Iterable[str] | None = None) -> dict[str, str]:
        """Check the values; with `model_module_names` also check the targets exist in the model."""
        errors: dict[str, str] = {}
        if not _is_int(self.r) or self.r <= 0:
            errors["r"] = "The LoRA rank r must be a whole number above 0 (typical: 4 to 64)."
        if not _is_number(self.alpha) or self.alpha <= 0:
            errors["alpha"] = "The LoRA alpha must be a number above 0 (typical: 2 x r)."
        if not _is_number(self.dropout) or not 0 <= self.dropout < 1:
            errors["dropout"] = "The LoRA dropout must be at least 0 and below 1."
        targets = self.target_modules
        if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
            errors["target_modules"] = "Name at least one module to adapt, e.g. q_proj and v_proj."
        elif model_module_names is not None:
            available = sorted(set(model_module_names))
            unknown = [name for name in targets if name not in available]
            if unknown:
                errors["target_modules"] = (
                    f"The model has no linear module named {', '.join(map(repr, unknown))}; "
                    f"its linear modules are: {', '.join(available)}."
                )
        return errors


@dataclass(frozen=True)
class DPSettings(_Settings):
    """Differential privacy (DP-SGD): the (epsilon, delta) budget and the per-example clipping norm."""

    target_epsilon: float = 3.0
    delta: float = 1e-5
    max_grad_norm: float = 1.0

    def validate(self, train_size: int | None = None) -> dict[str, str]:
        """Check the values; with `train_size`, also that delta is below 1 / (number of examples)."""
        errors: dict[str, str] = {}
        if not _is_number(self.target_epsilon) or self.target_epsilon <= 0:
            errors["target_epsilon"] = "The privacy budget epsilon must be above 0 (typical: 1 to 8)."
        if not _is_number(self.delta) or not 0 < self.delta < 1:
            errors["delta"] = "Delta must be above 0 and below 1 (typical: 1e-5)."
        elif train_size and self.delta >= 1 / train_size:
            # A delta of 1/n or more allows a mechanism that publishes one whole example outright.
            errors["delta"] = (
                f"Delta must be below 1 / (number of training examples) = {1 / train_size:.2g}; "
                "use a smaller delta or more examples."
            )
        if not _is_number(self.max_grad_norm) or self.max_grad_norm <= 0:
            errors["max_grad_norm"] = "The per-example gradient clipping norm must be above 0 (typical: 1.0)."
        return errors


@dataclass(frozen=True)
class TrainSettings(_Settings):
    epochs: int = 1
    max_steps: int | None = None
    learning_rate: float = 2e-4
    batch_size: int = 8
    seed: int = 0
    max_seq_len: int = 256
    checkpoint_every: int = 20
    eval_batch_size: int = 8

    def validate(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not _is_int(self.epochs) or self.epochs <= 0:
            errors["epochs"] = "Epochs must be a whole number above 0."
        if self.max_steps is not None and (not _is_int(self.max_steps) or self.max_steps <= 0):
            errors["max_steps"] = "The step limit must be a whole number above 0, or empty for no limit."
        if not _is_number(self.learning_rate) or self.learning_rate <= 0:
            errors["learning_rate"] = "The learning rate must be above 0 (typical for LoRA: 1e-4 to 1e-3)."
        if not _is_int(self.batch_size) or self.batch_size <= 0:
            errors["batch_size"] = "The batch size must be a whole number above 0."
        if not _is_int(self.seed) or self.seed < 0:
            errors["seed"] = "The seed must be a whole number, 0 or above."
        if not _is_int(self.max_seq_len) or self.max_seq_len < 8:
            errors["max_seq_len"] = "The maximum sequence length must be a whole number of at least 8 tokens."
        if not _is_int(self.checkpoint_every) or self.checkpoint_every <= 0:
            errors["checkpoint_every"] = "Checkpoint every N steps: N must be a whole number above 0."
        if not _is_int(self.eval_batch_size) or self.eval_batch_size <= 0:
            errors["eval_batch_size"] = "The evaluation batch size must be a whole number above 0."
        return errors


def validate_job(
    *,
    lora: LoraSettings,
    train: TrainSettings,
    dp: DPSettings | None,
    model_module_names: Iterable[str] | None = None,
    train_size: int | None = None,
) -> dict[str, str]:
    """All field errors of one job in one dict (the three settings share no field names)."""
    errors = {**lora.validate(model_module_names), **train.validate()}
    if dp is not None:
        errors.update(dp.validate(train_size))
    if train_size is not None and train_size == 0:
        errors["train_examples"] = "The training set is empty: add at least one example."
    return errors


def model_linear_module_names(model_dir: str | Path) -> list[str]:
    """Short names of the model's linear layers (what LoRA can target), e.g. ["down_proj", ..., "v_proj"].

    The model is built on the meta device from its config.json, so no weights are read or allocated.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if name and isinstance(module, torch.nn.Linear | Conv1D)
        }
    )


def lora_for_privacy(lora: LoraSettings, dp: DPSettings | None) -> LoraSettings:
    """The LoRA settings a run actually uses: with DP-SGD, LoRA dropout is forced to 0.

    DP-SGD clips each example's gradient and adds noise calibrated to that bound; dropout adds a
    second, unaccounted source of randomness to every per-example gradient, and some opacus
    grad-sampler modes (functorch, ghost clipping) need the forward pass to be a pure function
    of the inputs. Zero dropout keeps every mode correct and the privacy accounting about the
    only noise there is. The job records the value it ran with.
    """
    if dp is None or lora.dropout == 0:
        return lora
    return LoraSettings(**{**lora.to_dict(), "dropout": 0.0})


def peft_lora_config(lora: LoraSettings):
    """The peft LoraConfig for these settings (a causal LM)."""
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
