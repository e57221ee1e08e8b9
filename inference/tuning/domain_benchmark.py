"""`bench_tuning`: what a short LoRA job buys and costs on a real model, measured on this machine.

Figures (all measured here, in one run):
- lora_trainable_fraction, lora_step_time_ratio, lora_peak_memory_ratio: LoRA against a full
  fine-tune of the same model on the same batch, side by side (inference.tuning.benchmark);
- lora_eval_perplexity_drop: 1 - adapter/base perplexity on the target domain's held-out split
  after a short LoRA job on its training split; dp_eps3_eval_perplexity_drop: the same job with
  DP-SGD at epsilon 3 (and its spent epsilon and step-time cost);
- kept: base vs adapter perplexity on every other domain's held-out split, i.e. what the adapter
  leaves intact of the base model's existing performance.

Domains come from the registered DataAdapters that yield examples for the given user, and
otherwise from the registered corpus contributions (their documents and conversations). The
demo models are pre-trained on that corpus, so "held out" means held out from the LoRA job; a
DataAdapter over the site's own records is the truer test of a new domain.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference import datasets
from inference.datasets import TrainingExample, split_examples
from inference.tuning.benchmark import lora_vs_full
from inference.tuning.evaluation import compare, perplexity
from inference.tuning.lora_config import DPSettings, LoraSettings, TrainSettings
from inference.tuning.training import run_training

MIN_EXAMPLES = 20  # a domain with fewer examples has no meaningful held-out split
MIN_TARGET_TRAIN = 100  # a short job on fewer examples measures memorisation, not adaptation


@dataclass(frozen=True)
class Domain:
    name: str
    source: str  # "data_adapter" or "corpus"
    train: list[dict]
    eval: list[dict]

    @property
    def app(self) -> str:
        return self.name.split(".", 1)[0]


def corpus_domains(*, max_examples: int) -> list[Domain]:
    """One domain per corpus contribution: its conversations and its documents."""
    found = []
    for contribution in datasets.corpus_contributions():
        examples = [
            TrainingExample(source_id=f"{contribution.name}:conversation:{i}", messages=list(messages))
            for i, messages in enumerate(contribution.conversations())
        ]
        # A document is plain domain text: an empty user turn, the text as the reply (the loss covers it).
        examples += [
            TrainingExample(source_id=f"{contribution.name}:document:{i}", prompt="", completion=text)
            for i, text in enumerate(contribution.documents())
        ]
        domain = _domain(contribution.name, "corpus", examples, max_examples)
        if domain is not None:
            found.append(domain)
    return found


def data_adapter_domains(user, *, max_examples: int) -> list[Domain]:
    """One domain per registered DataAdapter that yields enough examples from what `user` may see."""
    found = []
    for adapter in datasets.adapters():
        domain = _domain(
            adapter.name, "data_adapter", list(adapter.examples(user=user, filters={})), max_examples
        )
        if domain is not None:
            found.append(domain)
    return found


def _domain(name: str, source: str, examples: list[TrainingExample], max_examples: int) -> Domain | None:
    if len(examples) < MIN_EXAMPLES:
        return None
    stride = max(1, math.ceil(len(examples) / max_examples))  # an even spread, not the first N
    split = split_examples(examples[::stride][:max_examples])
    if not split.train or not split.eval:
        return None
    return Domain(name, source, [e.as_dict() for e in split.train], [e.as_dict() for e in split.eval])


def run_benchmark(
    *,
    model_dir: str | Path,
    domains: list[Domain],
    target: str | None = None,
    steps: int = 60,
    batch_size: int = 8,
    learning_rate: float = 2e-3,
    max_seq_len: int = 256,
    epsilon: float = 3.0,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    started = time.perf_counter()
    if not domains:
        raise ValueError("No domain has enough examples: register a DataAdapter or a corpus contribution.")
    progress(f"domains: {', '.join(f'{d.name} ({len(d.train)} train, {len(d.eval)} eval)' for d in domains)}")
    by_name = {domain.name: domain for domain in domains}
    if target is None:
        target = _default_target(model_dir, domains, max_seq_len, progress)
    if target not in by_name:
        raise ValueError(f"No domain named {target!r}; found: {', '.join(by_name)}.")
    chosen = by_name[target]
    progress(f"target domain: {target}")

    lora = LoraSettings()
    progress(f"LoRA vs full fine-tune, side by side, batch {batch_size}")
    side_by_side = lora_vs_full(
        model_dir, chosen.train, batch_size=batch_size, lora=lora, max_seq_len=max_seq_len
    )

    eval_sets = {d.name: d.eval for d in domains if d.name == target or d.app != chosen.app}
    train = TrainSettings(
        epochs=math.ceil(steps * batch_size / len(chosen.train)), max_steps=steps, learning_rate=learning_rate,
        batch_size=batch_size, max_seq_len=max_seq_len, checkpoint_every=steps,
    )  # fmt: skip
    jobs = {}
    for label, dp in (("lora", None), ("dp", DPSettings(target_epsilon=epsilon))):
        progress(f"{label} job: {steps} steps on {len(chosen.train)} {target} examples")
        jobs[label] = _job(model_dir, chosen, lora, train, dp, eval_sets, progress, compare)

    plain, private = jobs["lora"], jobs["dp"]
    kept = {
        name: {
            "base_perplexity": round(scores["base_perplexity"], 4),
            "lora_perplexity": round(scores["adapter_perplexity"], 4),
            "dp_perplexity": round(private["scores"][name]["adapter_perplexity"], 4),
            "lora_relative_change": round(scores["relative_change"], 4),
            "examples": scores["examples"],
        }
        for name, scores in plain["scores"].items()
        if name != target
    }
    return {
        "model_dir": str(model_dir),
        "device": side_by_side["device"],
        "target_domain": target,
        "domains": {
            d.name: {"source": d.source, "train": len(d.train), "eval": len(d.eval)} for d in domains
        },
        "lora_trainable_fraction": round(side_by_side["lora_trainable_fraction"], 5),
        "lora_step_time_ratio": round(side_by_side["lora_step_time_ratio"], 4),
        "lora_peak_memory_ratio": round(side_by_side["lora_peak_memory_ratio"], 4),
        "lora_eval_perplexity_drop": _drop(plain["scores"][target]),
        "dp_eps3_eval_perplexity_drop": _drop(private["scores"][target]),
        "target_base_perplexity": round(plain["scores"][target]["base_perplexity"], 4),
        "target_lora_perplexity": round(plain["scores"][target]["adapter_perplexity"], 4),
        "target_dp_perplexity": round(private["scores"][target]["adapter_perplexity"], 4),
        "dp_target_epsilon": epsilon,
        "dp_spent_epsilon": round(private["outcome"].spent_epsilon, 4),
        "dp_noise_multiplier": round(private["outcome"].noise_multiplier, 4),
        # Sequential runs, not side by side: on a shared machine this ratio moves with the load.
        "dp_step_time_ratio": round(private["seconds_per_step"] / plain["seconds_per_step"], 4),
        "dp_seconds_per_step": round(private["seconds_per_step"], 4),
        "kept": kept,
        "kept_worst_perplexity_change": max((k["lora_relative_change"] for k in kept.values()), default=None),
        "job": {
            "steps": steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "lora": lora.to_dict(),
            "seconds_per_step": round(plain["seconds_per_step"], 4),
            "tokens_per_s": round(plain["outcome"].tokens_seen / plain["outcome"].seconds, 1),
        },  # fmt: skip
        "lora_vs_full": {
            key: side_by_side[key] for key in ("lora", "full", "batch_size", "tokens_per_batch", "steps")
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def _default_target(model_dir, domains: list[Domain], max_seq_len: int, progress) -> str:
    """A DataAdapter's domain (the site's own records) if there is one, else the corpus domain the base
    model knows least (highest held-out perplexity) among those with enough data for a real job."""
    own = [d for d in domains if d.source == "data_adapter" and len(d.train) >= MIN_TARGET_TRAIN]
    if own:
        return max(own, key=lambda d: len(d.train)).name
    candidates = [d for d in domains if len(d.train) >= MIN_TARGET_TRAIN] or domains
    progress("base perplexity per domain, to adapt to the one the model knows least")
    base = {d.name: perplexity(model_dir, d.eval, max_seq_len=max_seq_len) for d in candidates}
    progress("  " + ", ".join(f"{name} {value:.2f}" for name, value in base.items()))
    return max(base, key=base.get)


def _job(model_dir, domain: Domain, lora, train, dp, eval_sets, progress, compare) -> dict:
    last = {"at": 0.0}

    def report(p) -> None:
        if p.step == p.total_steps or time.monotonic() - last["at"] > 10:
            last["at"] = time.monotonic()
            epsilon = f", epsilon {p.spent_epsilon:.2f}" if p.spent_epsilon is not None else ""
            progress(
                f"  step {p.step}/{p.total_steps}, loss {p.train_loss:.3f}, {p.tokens_per_s:.0f} tokens/s{epsilon}"
            )

    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as output:
        outcome = run_training(
            base_model_dir=model_dir, train_examples=domain.train, eval_examples=[], lora=lora, train=train,
            dp=dp, output_dir=output, on_progress=report,
        )  # fmt: skip
        progress("  evaluating base vs adapter on every domain's held-out split")
        scores = compare(model_dir, outcome.adapter_dir, eval_sets, max_seq_len=train.max_seq_len)
    return {"outcome": outcome, "scores": scores, "seconds_per_step": outcome.seconds / outcome.steps}


def _drop(scores: dict) -> float:
    return round(1 - scores["adapter_perplexity"] / scores["base_perplexity"], 4)
