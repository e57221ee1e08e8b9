"""Training examples: checking them, rendering them through the chat template, batching, loss.

An example is a dict, either {"messages": [{"role": ..., "content": ...}, ...]} (the loss covers
the assistant turns only) or {"prompt": str, "completion": str}, which is rendered as one user
turn and one assistant turn (the loss covers the completion only). Rendering goes through the
model's own chat template so a tuned model sees exactly the framing it is served with.

The checks are torch-free; tokenizing, batching and the loss import transformers/torch lazily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.tuning.errors import ExamplesError, InvalidSettingsError

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100  # label of a token the loss skips (the value torch's cross_entropy ignores)


@dataclass(frozen=True)
class EncodedExample:
    """Token ids and labels of one example; labels are IGNORE_INDEX where no loss is taken."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def target_tokens(self) -> int:
        # The first token is never predicted, so it never counts.
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def example_problem(example: Any) -> str | None:
    """What is wrong with one example, or None when it is usable."""
    if not isinstance(example, Mapping):
        return "must be an object with 'messages', or with 'prompt' and 'completion'"
    if "messages" in example:
        messages = example["messages"]
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty list"
        for position, message in enumerate(messages):
            if not isinstance(message, Mapping) or message.get("role") not in ROLES:
                return f"message {position} needs a role, one of {', '.join(ROLES)}"
            if not isinstance(message.get("content"), str):
                return f"message {position} needs a text 'content'"
        if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
            return "has no non-empty assistant message to learn from"
        return None
    if "prompt" in example or "completion" in example:
        if not isinstance(example.get("prompt"), str):
            return "'prompt' must be text"
        if not isinstance(example.get("completion"), str) or not example["completion"].strip():
            return "'completion' must be non-empty text"
        return None
    return "must have 'messages', or 'prompt' and 'completion'"


def check_examples(examples: Sequence[Any], *, field: str, allow_empty: bool = False) -> None:
    """Raise InvalidSettingsError (naming `field`) unless every example is usable."""
    if not allow_empty and len(examples) == 0:
        raise InvalidSettingsError({field: "The data set is empty: add at least one example."})
    problems = {
        index: problem for index, example in enumerate(examples) if (problem := example_problem(example))
    }
    if problems:
        raise ExamplesError(field, problems)


def as_messages(example: Mapping[str, Any]) -> list[dict[str, str]]:
    if "messages" in example:
        return [{"role": m["role"], "content": m["content"]} for m in example["messages"]]
    return [
        {"role": "user", "content": example["prompt"]},
        {"role": "assistant", "content": example["completion"]},
    ]


def load_tokenizer(model_dir: str | Path, *, field: str = "base_model_dir"):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if not tokenizer.chat_template:
        raise InvalidSettingsError(
            {field: f"The model in {model_dir} has no chat template in its tokenizer."}
        )
    return tokenizer


def pad_token_id(tokenizer) -> int:
    # Padded positions are masked out of attention and loss, so any valid id would do.
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def encode_examples(
    tokenizer, examples: Sequence[Mapping[str, Any]], *, max_seq_len: int, field: str
) -> list[EncodedExample]:
    """Render and tokenize every example; raise ExamplesError listing every unusable one.

    Assistant spans are found by rendering growing prefixes of the conversation: the tokens
    between "history + assistant header" and "history + assistant turn" are the turn (its
    end-of-turn marker included, so the model learns to stop). Examples are cut at max_seq_len
    tokens; one with no assistant token left inside that window is an error, not silently dropped.
    """
    check_examples(examples, field=field, allow_empty=True)
    encoded: list[EncodedExample] = []
    problems: dict[int, str] = {}
    for index, example in enumerate(examples):
        try:
            item = _encode_one(tokenizer, as_messages(example))
        except ValueError as exc:
            problems[index] = str(exc)
            continue
        item = EncodedExample(item.input_ids[:max_seq_len], item.labels[:max_seq_len])
        if item.target_tokens == 0:
            problems[index] = f"no assistant token falls within the first {max_seq_len} tokens"
            continue
        encoded.append(item)
    if problems:
        raise ExamplesError(field, problems)
    return encoded


def _encode_one(tokenizer, messages: list[dict[str, str]]) -> EncodedExample:
    def render(part: list[dict[str, str]], *, generation_prompt: bool = False) -> list[int]:
        try:
            text = tokenizer.apply_chat_template(
                part, tokenize=False, add_generation_prompt=generation_prompt
            )
        except Exception as exc:  # jinja's TemplateError and the template's own raise_exception
            raise ValueError(f"the chat template rejects this conversation: {exc}") from exc
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    input_ids = render(messages)
    labels = [IGNORE_INDEX] * len(input_ids)
    for position, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        header = render(messages[:position], generation_prompt=True)
        through = render(messages[: position + 1])
        if through != input_ids[: len(through)] or header != through[: len(header)]:
            raise ValueError(
                "the chat template does not render earlier turns the same way in longer conversations"
            )
        labels[len(header) : len(through)] = through[len(header) :]
    return EncodedExample(tuple(input_ids), tuple(labels))


def collate(batch: Sequence[EncodedExample], *, pad_id: int, device=None) -> dict:
    """Right-pad a batch to its longest example: input_ids, attention_mask and labels tensors."""
    import torch

    width = max(len(item.input_ids) for item in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, item in enumerate(batch):
        length = len(item.input_ids)
        input_ids[row, :length] = torch.tensor(item.input_ids)
        labels[row, :length] = torch.tensor(item.labels)
        attention_mask[row, :length] = 1
    tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    return {name: tensor.to(device) for name, tensor in tensors.items()} if device else tensors


def per_example_token_loss(logits, labels):
    """(summed next-token loss, number of target tokens) of each example, as two (batch,) tensors."""
    import torch

    predicted = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        predicted.reshape(-1, predicted.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(targets.shape)
    counted = targets != IGNORE_INDEX
    return (losses * counted).sum(dim=1), counted.sum(dim=1)


def training_loss(model, batch: dict):
    """Mean over the batch of each example's mean token loss.

    Each example's loss depends on that example alone (a token-weighted mean over the batch
    would mix examples), which DP-SGD's per-example gradients need; plain training uses the
    same objective so the two are comparable.
    """
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    loss_sums, counts = per_example_token_loss(logits, batch["labels"])
    return (loss_sums / counts.clamp(min=1)).mean()
