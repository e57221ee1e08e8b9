"""Side-by-side engine benchmark: plain decoding, KV reuse, speculative decoding, int8 weights.

Figures: decode_tokens_per_s, ttft_ms_p50, kv_reuse_10turn_latency_ratio (with / without reuse),
speculative_speedup and speculative_acceptance (draft model), prompt_lookup_speedup and
prompt_lookup_acceptance, int8_weight_memory_ratio (fp32 bytes / int8 bytes), int8_speed_ratio
(int8 decode rate / fp32), int8_perplexity_change (relative, on held-out text), plus details.

Modes that must agree run interleaved prompt by prompt, so background load hits them alike, and
each measurement is the best of `repeats` runs (the run least disturbed by other processes).
Greedy outputs are compared: a mismatch raises OutputMismatch rather than reporting the speedup
of something else.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from inference.demo import synthetic
from inference.engine.loader import ModelCache
from inference.engine.local import LocalEngine
from inference.engine.sessions import SessionStore
from inference.engine.types import GenerationParams, GenerationResult

Progress = Callable[[str, int, int], None]
MODES = ("none", "draft", "prompt_lookup")


class OutputMismatch(AssertionError):
    """Two decoding paths that must produce identical greedy text did not."""


def run_engine_benchmarks(
    target_dir: str | Path,
    draft_dir: str | Path,
    *,
    progress: Progress | None = None,
    prompts: Sequence[list[dict]] | None = None,
    held_out_texts: Sequence[str] | None = None,
    max_tokens: int = 96,
    turns: int = 10,
    repeats: int = 3,
) -> dict:
    """Measure the engine on the given models (about a minute for the demo models on 2 cores).

    `prompts` default to synthetic record summaries (long, copy-heavy answers) and
    `held_out_texts` to synthetic report text, drawn with seeds the demo build does not use.
    """
    report = progress or (lambda stage, step, total: None)
    prompts = list(prompts) if prompts is not None else synthetic.chat_prompts(12, seed=4242, summaries=True)
    held_out = list(held_out_texts) if held_out_texts is not None else synthetic.texts(40, seed=4243)
    started = time.perf_counter()
    load_start = [round(value, 2) for value in os.getloadavg()]
    cache = ModelCache(budget_bytes=8 * 1024**3)
    engine = LocalEngine(
        target_dir, draft_model_dir=draft_dir, model_cache=cache, session_store=SessionStore()
    )
    greedy = GenerationParams(max_tokens=max_tokens)

    report("warm-up", 0, 1)
    for mode in MODES:
        for prompt in prompts[:2]:
            engine.generate(prompt, replace(greedy, speculative=mode))
    report("warm-up", 1, 1)

    runs: dict[str, list[GenerationResult]] = {mode: [] for mode in MODES}
    for index, prompt in enumerate(prompts):
        best = _best_interleaved(
            repeats, prompt, {mode: (engine, replace(greedy, speculative=mode)) for mode in MODES}
        )
        for mode in MODES:
            _require_same(best["none"].text, best[mode].text, f"{mode} decoding, prompt {index}")
            runs[mode].append(best[mode])
        report("decode", index + 1, len(prompts))
    plain = runs["none"]
    figures: dict = {
        "decode_tokens_per_s": _decode_rate(plain),
        "ttft_ms_p50": round(statistics.median(r.ttft_s for r in plain) * 1000, 2),
        "completion_tokens": sum(r.completion_tokens for r in plain),
    }
    for mode, name in (("draft", "speculative"), ("prompt_lookup", "prompt_lookup")):
        figures.update(_speculative_figures(name, plain, runs[mode]))
    figures.update(_kv_reuse(engine, turns, repeats, report))
    figures.update(_int8(engine, cache, prompts, held_out, greedy, repeats, report))
    figures["repeats"] = repeats
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["cpu_count"] = os.cpu_count()
    figures["load_average_start"] = load_start
    figures["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    return figures


def _speculative_figures(name: str, plain: list[GenerationResult], runs: list[GenerationResult]) -> dict:
    proposed = sum(r.draft_tokens_proposed for r in runs)
    accepted = sum(r.draft_tokens_accepted for r in runs)
    tokens = sum(r.completion_tokens for r in runs)
    return {
        f"{name}_speedup": round(_total(plain) / _total(runs), 3),
        f"{name}_decode_speedup": round(_decode_rate(runs) / _decode_rate(plain), 3),
        f"{name}_acceptance": round(accepted / proposed, 3) if proposed else 0.0,
        # Each target forward pass yields the accepted drafts plus one token of its own.
        f"{name}_tokens_per_target_pass": round(tokens / max(1, tokens - accepted), 2),
    }


def _kv_reuse(engine: LocalEngine, turns: int, repeats: int, report: Progress) -> dict:
    """One conversation, turn by turn, answered with and without the session cache."""
    params = GenerationParams(max_tokens=48)
    history: list[dict] = [{"role": "system", "content": synthetic.SYSTEM_PROMPT}]
    # One session per repeat, so every repeat of a turn finds the previous turn cached.
    sessions = [f"bench-{time.monotonic_ns()}-{r}" for r in range(repeats)]
    with_reuse = without_reuse = 0.0
    cached_tokens = prompt_tokens = 0
    for turn, user_message in enumerate(synthetic.conversation(turns, seed=4244)):
        history.append({"role": "user", "content": user_message})
        fresh, reused = [], []
        for session_id in sessions:
            fresh.append(engine.generate(history, params))
            reused.append(engine.generate(history, params, session_id=session_id))
        fresh_best = min(fresh, key=lambda r: r.total_s)
        reused_best = min(reused, key=lambda r: r.total_s)
        for result in reused:
            _require_same(fresh_best.text, result.text, f"KV reuse, turn {turn + 1}")
        without_reuse += fresh_best.total_s
        with_reuse += reused_best.total_s
        cached_tokens += reused_best.cached_prompt_tokens
        prompt_tokens += reused_best.prompt_tokens
        history.append({"role": "assistant", "content": fresh_best.text})
        report("kv-reuse", turn + 1, turns)
    for session_id in sessions:
        engine.end_session(session_id)
    return {
        "kv_reuse_10turn_latency_ratio": round(with_reuse / without_reuse, 3),
        "kv_reuse_cached_prompt_fraction": round(cached_tokens / max(1, prompt_tokens), 3),
        "kv_reuse_turns": turns,
    }


def _int8(engine, cache, prompts, held_out, greedy, repeats: int, report: Progress) -> dict:
    quantized = LocalEngine(
        engine.model_dir, quantization="int8", model_cache=cache, session_store=SessionStore()
    )
    fp32_bytes = engine.loaded().memory_bytes
    int8_bytes = quantized.loaded().memory_bytes
    for prompt in prompts[:2]:
        quantized.generate(prompt, greedy)
    fp32_runs, int8_runs = [], []
    for index, prompt in enumerate(prompts):
        best = _best_interleaved(repeats, prompt, {"fp32": (engine, greedy), "int8": (quantized, greedy)})
        fp32_runs.append(best["fp32"])
        int8_runs.append(best["int8"])
        report("int8", index + 1, len(prompts) + 1)
    fp32_perplexity = engine.perplexity(held_out)
    int8_perplexity = quantized.perplexity(held_out)
    report("int8", len(prompts) + 1, len(prompts) + 1)
    return {
        "int8_weight_memory_ratio": round(fp32_bytes / int8_bytes, 3),
        "int8_speed_ratio": round(_decode_rate(int8_runs) / _decode_rate(fp32_runs), 3),
        "int8_perplexity_change": round((int8_perplexity - fp32_perplexity) / fp32_perplexity, 4),
        "fp32_perplexity": round(fp32_perplexity, 4),
        "int8_identical_outputs": sum(a.text == b.text for a, b in zip(fp32_runs, int8_runs, strict=True)),
        "int8_outputs_compared": len(prompts),
    }


def _best_interleaved(repeats: int, prompt, runners: dict[str, tuple[LocalEngine, GenerationParams]]) -> dict:
    """Answer `prompt` with each (engine, params) `repeats` times, alternating between them; keep
    each one's fastest result."""
    best: dict[str, GenerationResult] = {}
    for _ in range(repeats):
        for name, (engine, params) in runners.items():
            result = engine.generate(prompt, params)
            if name not in best or result.total_s < best[name].total_s:
                best[name] = result
    return best


def _require_same(expected: str, got: str, what: str) -> None:
    if expected != got:
        raise OutputMismatch(f"{what} changed the greedy output:\n  plain: {expected!r}\n  other: {got!r}")


def _total(runs: list[GenerationResult]) -> float:
    return sum(r.total_s for r in runs)


def _decode_rate(runs: list[GenerationResult]) -> float:
    tokens = sum(r.completion_tokens - 1 for r in runs)
    seconds = sum(r.total_s - r.ttft_s for r in runs)
    return round(tokens / seconds, 1) if seconds > 0 else 0.0
