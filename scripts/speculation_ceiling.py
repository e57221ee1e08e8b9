"""How fast can prompt-lookup speculation be on this host, for each GGUF of a model?

For each file: the greedy outputs of bench_inference's copy-heavy prompts (96 tokens), and what a
verification batch of k tokens costs in single decoding steps (k = 1..17, after a 200-token context).
Then each drafter is replayed over those outputs (greedy speculation yields the same tokens whatever
is drafted, so the rounds and their batch sizes follow from the outputs alone): the estimated speedup is
tokens / sum of the rounds' costs, without the drafter's own time. Drafters: `fixed` (the former
3-then-2-gram lookup, drafts of the cap's length) and `longest` (PromptLookup, the engine's: longest
match, drafts of its length + 1 up to the cap), and the bound where every draft of the cap is accepted.
docs/inference.md (session 13) has the figures.

usage: SUITE_VAR_DIR=<after import_model> .venv/bin/python scripts/speculation_ceiling.py \
           --model smollm2 [--quantizations q4_1,q8_0,f16] [--caps 2,3,4,6,8,10,16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")


def fixed_lookup(sequence: list[int], limit: int, max_ngram: int = 3, min_ngram: int = 2) -> list[int]:
    ids = np.asarray(sequence)
    for n in range(min(max_ngram, len(ids) - 1), min_ngram - 1, -1):
        windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], n)
        matches = np.flatnonzero((windows == ids[-n:]).all(axis=1))
        if len(matches):
            start = int(matches[-1]) + n
            return list(sequence[start : start + limit])
    return []


def replay(runs: list[dict], cost: dict[int, float], propose) -> dict:
    tokens = spent = proposed = accepted = 0
    for run in runs:
        sequence, output, done = list(run["prompt"]), run["output"], 0
        while done < len(output):
            draft = propose(sequence, len(output) - done)
            hits = 0
            while hits < len(draft) and draft[hits] == output[done + hits]:
                hits += 1
            gained = min(hits + 1, len(output) - done)
            spent += cost[len(draft) + 1]
            proposed, accepted = proposed + len(draft), accepted + hits
            sequence += output[done : done + gained]
            done += gained
            tokens += gained
    return {"speedup": round(tokens / spent, 3), "acceptance": round(accepted / max(proposed, 1), 3)}


def measure(path: str, threads: int) -> tuple[list[dict], dict[int, float], float]:
    from inference.engine import bench_llamacpp as bench
    from inference.engine.llamacpp import LlamaCppEngine
    from inference.engine.types import GenerationParams

    engine = LlamaCppEngine(path, n_threads=threads, n_ctx=2048)
    runs = []
    for prompt in bench.copy_heavy_prompts(6):
        engine.forget_cache()
        ids, _ = engine.render(prompt)
        result = engine.generate(prompt, GenerationParams(max_tokens=96))
        output = engine.loaded().tokenize(result.text.encode(), add_bos=False, special=False)
        runs.append({"prompt": ids, "output": output})
    context = (runs[0]["prompt"] * 8)[:200]
    times: dict[int, list[float]] = {k: [] for k in range(1, 18)}
    with engine._lock:
        engine._truncate(0)
        engine._eval(context, logits_for=1)
        for _ in range(7):
            for k in times:
                started = time.perf_counter()
                engine._eval(context[:k], logits_for=k)
                times[k].append(time.perf_counter() - started)
                engine._truncate(len(context))
    one = statistics.median(times[1])
    engine.close()
    return runs, {k: statistics.median(v) / one for k, v in times.items()}, 1 / one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--quantizations", default="q4_1,q8_0,q4_k_m,f16")
    parser.add_argument("--caps", default="2,3,4,6,8,10,16")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import django

    django.setup()
    from inference.engine.llamacpp import PromptLookup
    from inference.models import LanguageModel

    model = LanguageModel.objects.filter(name=args.model).first()
    if model is None:
        sys.exit(f"No model named {args.model!r}: run `manage.py import_model` first.")
    files = model.info.get("gguf_files") or {}
    caps = [int(c) for c in args.caps.split(",")]
    report = {}
    for quantization in args.quantizations.split(","):
        if quantization not in files:
            print(f"{quantization}: not among {', '.join(files)}", file=sys.stderr)
            continue
        runs, cost, rate = measure(files[quantization], args.threads)
        report[quantization] = {
            "single_step_tokens_per_s": round(rate, 1),
            "verify_cost": {k: round(c, 2) for k, c in cost.items()},
            "bound_all_accepted": round(max(k / c for k, c in cost.items()), 2),
            "by_cap": {
                cap: {
                    "fixed": replay(runs, cost, lambda s, left, cap=cap: fixed_lookup(s, min(left, cap))),
                    "longest": replay(
                        runs, cost, lambda s, left, cap=cap: PromptLookup(cap).propose(s, left)
                    ),
                }
                for cap in caps
            },
        }
        print(quantization, "done", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
