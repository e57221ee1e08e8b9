"""What a finished job is judged by: held-out perplexity of base vs adapter on the job's eval split,
and the DataAdapter's own task metric when it defines one (`task_metric`, an inference.datasets.TaskMetric).

Both numbers come from the same loaded model with the adapter switched on and off, on the
examples the DataAdapter set aside for evaluation (never trained on). The task metric asks the
model to answer each held-out conversation without its final assistant turn; answers are greedy
and capped, so the scores are deterministic.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inference.datasets import Messages, TaskMetric, TrainingExample
from inference.tuning.evaluation import compare, load_model
from inference.tuning.examples import load_tokenizer, pad_token_id

TASK_METRIC_MAX_EXAMPLES = 64  # answering is slow on CPU; the perplexity still covers the whole split
TASK_METRIC_MAX_NEW_TOKENS = 48
ANSWER_BATCH_SIZE = 16


def evaluate_adapter(
    *,
    base_model_dir: str | Path,
    adapter_dir: str | Path,
    eval_examples: Sequence[TrainingExample],
    max_seq_len: int,
    task_metric: TaskMetric | None = None,
) -> dict[str, Any]:
    scores = compare(
        base_model_dir, adapter_dir, {"eval": [e.as_dict() for e in eval_examples]}, max_seq_len=max_seq_len
    )["eval"]
    result: dict[str, Any] = {
        "eval_split": {
            "examples": scores["examples"],
            "target_tokens": scores["target_tokens"],
            "base_perplexity": round(scores["base_perplexity"], 4),
            "adapter_perplexity": round(scores["adapter_perplexity"], 4),
            "relative_change": round(scores["relative_change"], 4),
        }
    }
    if task_metric is not None:
        chosen = list(eval_examples)[:TASK_METRIC_MAX_EXAMPLES]
        base, adapted = _task_metric_scores(base_model_dir, adapter_dir, task_metric, chosen)
        result["task_metric"] = {
            "name": task_metric.name,
            "examples": len(chosen),
            "base": round(base, 4),
            "adapter": round(adapted, 4),
        }
    return result


def _task_metric_scores(base_model_dir, adapter_dir, metric: TaskMetric, examples) -> tuple[float, float]:
    """The metric with the adapter on and off. The prompts it asks are answered in batches first
    (one decode loop per batch instead of one per example, ~10x faster on CPU); `metric.evaluate`
    then reads the answers, and any prompt it did not ask in the first pass is answered alone."""
    tokenizer = load_tokenizer(base_model_dir)
    model = load_model(base_model_dir, adapter_dir=adapter_dir)
    prompts = _prompts_asked(metric, examples)
    adapted = float(metric.evaluate(_prefetched(model, tokenizer, prompts), examples))
    with model.disable_adapter():
        base = float(metric.evaluate(_prefetched(model, tokenizer, prompts), examples))
    return base, adapted


def _prompts_asked(metric: TaskMetric, examples) -> list[Messages]:
    asked: list[Messages] = []

    def record(messages: Messages) -> str:
        asked.append(messages)
        return ""

    metric.evaluate(record, examples)
    return asked


def _prefetched(model, tokenizer, prompts: list[Messages]) -> Callable[[Messages], str]:
    answers = {}
    for start in range(0, len(prompts), ANSWER_BATCH_SIZE):
        batch = prompts[start : start + ANSWER_BATCH_SIZE]
        answers.update(zip(map(_key, batch), greedy_answers(model, tokenizer, batch), strict=True))
    alone = greedy_answerer(model, tokenizer)

    def answer(messages: Messages) -> str:
        key = _key(messages)
        return answers[key] if key in answers else alone(messages)

    return answer


def _key(messages: Messages) -> str:
    return json.dumps(messages, sort_keys=True)


def greedy_answers(
    model, tokenizer, batch: list[Messages], *, max_new_tokens: int = TASK_METRIC_MAX_NEW_TOKENS
):
    """Greedy replies to a batch of conversations, left-padded so every reply starts at the same column."""
    import torch

    tokenizer = copy.copy(tokenizer)  # padding side and pad token are per-call settings here
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
    inputs = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True)
    inputs = inputs.to(next(model.parameters()).device)
    with torch.no_grad():
        output = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_token_id(tokenizer)
        )
    return tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def greedy_answerer(
    model, tokenizer, *, max_new_tokens: int = TASK_METRIC_MAX_NEW_TOKENS
) -> Callable[[Messages], str]:
    """messages -> the model's greedy reply, rendered through the model's own chat template."""
    return lambda messages: greedy_answers(model, tokenizer, [messages], max_new_tokens=max_new_tokens)[0]
