"""Side-by-side benchmark of a GGUF model: the suite's llama.cpp engine, the suite's /v1 endpoint,
raw `llama_cpp.Llama` on the same file and `transformers` `generate()` on the same weights, plus
the memory read bandwidth measured in the same run, time to first token, API overhead, KV reuse
over ten turns, prompt-lookup speculation and the quantizations the import wrote.

Contenders that are compared run interleaved prompt by prompt (background load hits them alike)
and each keeps its best of `repeats` runs. Greedy texts that must agree are compared; a mismatch
raises OutputMismatch instead of reporting the speed of something else.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from inference.demo import synthetic
from inference.engine.importer import gguf_metadata
from inference.engine.llamacpp import LlamaCppEngine
from inference.engine.types import GenerationParams

Progress = Callable[[str, int, int], None]
DECODE_TOKENS = 64
SETTLE_SECONDS = 1.0  # before each decode round: torch's OpenMP threads stop spinning
DRAFT_TOKENS = 4  # a draft model costs a decode per proposed token: short rounds
DRAFT_BLOCK_FRACTION = 0.25
PERPLEXITY_CONTEXT = 512  # tokens per held-out window (each starts with BOS)
PERPLEXITY_TOKENS = 10_240  # held-out tokens scored per quantization (twice as many read)


class OutputMismatch(AssertionError):
    pass


def memory_read_bandwidth(threads: int, gib: float = 0.5, repeats: int = 3) -> float:
    """Bytes per second that `threads` threads read from RAM (numpy sums release the GIL)."""
    array = np.ones(int(gib * 2**30) // 8, dtype=np.float64)
    parts = np.array_split(array, threads)
    best = 0.0
    for _ in range(repeats):
        workers = [threading.Thread(target=np.sum, args=(part,)) for part in parts]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, array.nbytes / (time.perf_counter() - started))
    return best


def copy_heavy_prompts(count: int) -> list[list[dict]]:
    """Record summaries and restatements of facts: answers that copy the prompt (SAR-style restatement,
    QA phrasing, record summaries)."""
    prompts = synthetic.chat_prompts(count, seed=4242, summaries=True)
    restated = []
    for messages in prompts:
        record = messages[-1]["content"]
        restated.append(
            [{"role": "user", "content": record + "\nRestate every fact of the record above, one per line."}]
        )
    return restated


def load_average() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages (figures from a busy machine say so)."""
    return [round(value, 2) for value in os.getloadavg()]


def _decode_rate(results) -> float:
    tokens = sum(r.completion_tokens - 1 for r in results)
    seconds = sum(r.total_s - r.ttft_s for r in results)
    return round(tokens / seconds, 1) if seconds > 0 else 0.0


def _require_same(expected: str, got: str, what: str) -> None:
    if expected != got:
        raise OutputMismatch(f"{what} changed the greedy output:\n  plain: {expected!r}\n  other: {got!r}")


def _forced(params: GenerationParams) -> GenerationParams:
    return replace(params, stop=[])


class RawLlama:
    """llama-cpp-python's own API on the same file: what an Ollama/llama.cpp user gets.

    `flash_attn` None keeps llama-cpp-python's default (off); the contest gives raw llama.cpp the
    engine's setting too, so the ratio measures what the platform adds, not a different kernel."""

    def __init__(self, path: str, threads: int, n_ctx: int, flash_attn: bool | None = None):
        import llama_cpp

        options = {} if flash_attn is None else {"flash_attn": flash_attn}
        self.llama = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                                     verbose=False, **options)  # fmt: skip

    def decode(self, prompt_ids: list[int], tokens: int) -> tuple[float, float, list[int]]:
        """(seconds to first token, seconds for the rest, token ids), greedy, no prefix reuse."""
        self.llama.reset()
        self.llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        started = time.perf_counter()
        out, first = [], None
        for token in self.llama.generate(prompt_ids, temp=0.0, top_k=1, reset=True):
            out.append(token)
            if first is None:
                first = time.perf_counter()
            if len(out) == tokens:
                break
        return first - started, time.perf_counter() - first, out


def run(
    model,
    *,
    threads: int,
    repeats: int = 3,
    api_requests: int = 20,
    progress: Progress | None = None,
    with_transformers: bool = True,
    perplexity_tokens: int = PERPLEXITY_TOKENS,
    flash_attn: bool = True,
) -> dict:
    report = progress or (lambda stage, step, total: None)
    started = time.perf_counter()
    gguf = model.gguf_path
    engine = LlamaCppEngine(gguf, n_threads=threads, n_ctx=2048, flash_attn=flash_attn)
    engine.loaded()
    figures: dict = {"model": model.name, "gguf": Path(gguf).name, "threads": threads, "repeats": repeats,
                     "cpu_count": os.cpu_count(), "load_average_start": load_average()}  # fmt: skip

    # Decode rate: same prompt, greedy, 64 new tokens, each contender in turn.
    prompt = [{"role": "user", "content": "Write a short maintenance note about a chiller bearing."}]
    params = _forced(GenerationParams(max_tokens=DECODE_TOKENS))
    prompt_ids, _ = engine.render(prompt)
    raw = RawLlama(gguf, threads, 2048, flash_attn=engine.flash_attn)
    raw_defaults = RawLlama(gguf, threads, 2048)  # llama-cpp-python's defaults (no flash attention)
    hf = _TransformersDecoder(model.path, threads) if with_transformers else None
    suite_hf = _transformers_engine(model.path) if with_transformers else None
    engine_runs, raw_rates, hf_rates, api_rates, suite_hf_runs = [], [], [], [], []
    raw_default_rates = []
    api = _Endpoint(model.name)
    decode_loads = []

    def run_engine():
        engine.forget_cache()
        return engine.generate(prompt, params)

    def run_raw(contender):
        _, rest, tokens = contender.decode(prompt_ids, DECODE_TOKENS)
        return (len(tokens) - 1) / rest

    llama_cpp_contenders = [
        ("engine", run_engine),
        ("llama_cpp", lambda contender=raw: run_raw(contender)),
        ("llama_cpp (library defaults)", lambda contender=raw_defaults: run_raw(contender)),
        ("/v1", lambda: api.decode_rate(prompt, DECODE_TOKENS)),
    ]
    for index in range(repeats + 1):
        decode_loads.append(os.getloadavg()[0])
        # Each round starts with another llama.cpp contender, so none always runs first (or always
        # right after another); torch's OpenMP threads keep spinning a moment after its last run, so
        # the round waits for them before the llama.cpp contenders, which they would slow.
        time.sleep(SETTLE_SECONDS)
        shift = index % len(llama_cpp_contenders)
        measured = {}
        for name, contender in llama_cpp_contenders[shift:] + llama_cpp_contenders[:shift]:
            measured[name] = contender()
            report(f"decode: {name}", index, repeats)
        hf_rate = hf.decode_rate(prompt_ids, DECODE_TOKENS) if hf else None
        report("decode: transformers", index, repeats)
        suite_hf_result = suite_hf.generate(prompt, params) if suite_hf else None
        report("decode: transformers engine", index, repeats)
        if index == 0:
            continue  # warm-up
        if suite_hf_result:
            suite_hf_runs.append(suite_hf_result)
        engine_runs.append(measured["engine"])
        raw_rates.append(measured["llama_cpp"])
        raw_default_rates.append(measured["llama_cpp (library defaults)"])
        api_rates.append(measured["/v1"])
        if hf_rate:
            hf_rates.append(hf_rate)
        report("decode", index, repeats)
    engine_rate = max(r.decode_tokens_per_s for r in engine_runs)
    raw_rate, api_rate = max(raw_rates), max(api_rates)
    figures["decode_tokens_per_s"] = {
        "engine": round(engine_rate, 1), "api": round(api_rate, 1), "llama_cpp": round(raw_rate, 1),
        "llama_cpp_library_defaults": round(max(raw_default_rates), 1),
        "transformers": round(max(hf_rates), 1) if hf_rates else None,
        "transformers_engine": (
            round(max(r.decode_tokens_per_s for r in suite_hf_runs), 1) if suite_hf_runs else None
        ),
    }  # fmt: skip
    figures["flash_attn"] = engine.flash_attn  # the engine's, and the `llama_cpp` contender's
    figures["load_average_1min_during_decode"] = [round(min(decode_loads), 2), round(max(decode_loads), 2)]
    figures["engine_vs_llamacpp_decode_ratio"] = round(engine_rate / raw_rate, 3)
    figures["api_vs_llamacpp_decode_ratio"] = round(api_rate / raw_rate, 3)
    if hf_rates:
        figures["engine_vs_transformers_decode_ratio"] = round(engine_rate / max(hf_rates), 2)
    if suite_hf_runs and hf_rates:
        # The suite's transformers engine is generate() plus streaming, stops and sessions around it.
        figures["transformers_engine_vs_generate_decode_ratio"] = round(
            figures["decode_tokens_per_s"]["transformers_engine"] / max(hf_rates), 3
        )
    del raw, raw_defaults, hf, suite_hf, llama_cpp_contenders

    bandwidth = memory_read_bandwidth(threads)
    weight_bytes = Path(gguf).stat().st_size
    bound = bandwidth / weight_bytes
    figures["memory_read_bandwidth_gb_s"] = round(bandwidth / 1e9, 2)
    figures["weight_bytes"] = weight_bytes
    figures["bandwidth_bound_tokens_per_s"] = round(bound, 1)
    figures["bandwidth_bound_fraction"] = round(engine_rate / bound, 3)
    figures["bandwidth_bound_fraction_by_contender"] = {
        name: (round(rate / bound, 3) if rate else None)
        for name, rate in figures["decode_tokens_per_s"].items()
    }
    report("bandwidth", 1, 1)

    figures["ttft_ms_p50"], figures["ttft_prompt_tokens"] = _ttft(engine, repeats * 3)
    report("ttft", 1, 1)
    figures.update(api.overhead_ms(api_requests))
    report("api overhead", 1, 1)
    figures.update(_kv_reuse(engine, report, RawLlama(gguf, threads, 2048, flash_attn=engine.flash_attn)))
    figures.update(_speculative(engine, repeats, report))
    figures.update(_draft_speculation(model, threads, repeats, report, flash_attn=flash_attn))
    figures.update(_quantizations(model, threads, repeats, report, perplexity_tokens, flash_attn=flash_attn))
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["load_average_end"] = load_average()
    engine.close()
    return figures


def _ttft(engine: LlamaCppEngine, samples: int) -> tuple[float, int]:
    """Time to first token of a ~500-token prompt, nothing cached (each prompt starts differently)."""
    base = " ".join(synthetic.texts(40, seed=4245))
    words = base.split()
    times, lengths = [], []
    for index in range(samples):
        text = f"Note {index}. " + " ".join(words[index * 3 :])
        ids = engine.loaded().tokenize(text.encode(), add_bos=True)
        trimmed = engine.loaded().detokenize(ids[1:500]).decode("utf-8", errors="ignore")
        engine.forget_cache()
        result = engine.generate(trimmed, GenerationParams(max_tokens=1))
        times.append(result.ttft_s * 1000)
        lengths.append(result.prompt_tokens)
    return round(statistics.median(times), 1), int(statistics.median(lengths))


def _kv_reuse(engine: LlamaCppEngine, report: Progress, raw: RawLlama | None = None) -> dict:
    """Ten turns of one conversation answered with and without the session cache, interleaved; with
    `raw`, the first generated token's logits in raw llama_cpp.Llama after a prefill of the whole
    prompt and after its prefix plus the last token alone (what any prefix cache does)."""
    params = GenerationParams(max_tokens=40)
    history: list[dict] = [{"role": "system", "content": synthetic.SYSTEM_PROMPT}]
    session = f"bench-{time.monotonic_ns()}"
    with_reuse = without = 0.0
    identical = 0
    raw_diffs = []
    for turn, message in enumerate(synthetic.conversation(10, seed=4244)):
        history.append({"role": "user", "content": message})
        if raw is not None:
            ids = engine.render(history)[0]
            raw.llama.reset()
            raw.llama.eval(ids)
            whole = np.array(raw.llama.scores[len(ids) - 1])
            raw.llama.reset()
            raw.llama.eval(ids[:-1])
            raw.llama.eval(ids[-1:])
            raw_diffs.append(round(float(np.abs(whole - np.array(raw.llama.scores[len(ids) - 1])).max()), 3))
        engine.forget_cache()
        fresh = engine.generate(history, params)
        reused = engine.generate(history, params, session_id=session)
        # Prefilling only the new tokens runs other batch shapes than a full prefill: the engine's
        # settings make that bit-identical (docs/inference.md); counted, so a regression shows.
        identical += fresh.text == reused.text
        without += fresh.total_s
        with_reuse += reused.total_s
        history.append({"role": "assistant", "content": fresh.text})
        report("kv-reuse", turn + 1, 10)
    engine.end_session(session)
    return {
        "kv_reuse_10turn_latency_ratio": round(with_reuse / without, 3),
        "kv_reuse_outputs_identical": f"{identical} of 10",
        **({"kv_reuse_raw_llamacpp_first_logit_max_diff_by_turn": raw_diffs} if raw is not None else {}),
    }


SPECULATIVE_DRAFT_LENGTHS = (2, 3, 4, 10)  # llama-cpp-python: 10 suits GPUs, 2 "performs better" on CPUs


def _speculative(engine: LlamaCppEngine, repeats: int, report: Progress) -> dict:
    """Prompt lookup against plain decoding on copy-heavy prompts, for several draft lengths, plus
    what one verification batch costs against one token: the bound that decides whether it can win."""
    prompts = copy_heavy_prompts(6)
    plain_params = GenerationParams(max_tokens=96)
    by_length: dict[int, dict] = {}
    for length in SPECULATIVE_DRAFT_LENGTHS:
        spec_params = replace(plain_params, speculative="prompt_lookup", num_speculative_tokens=length)
        plain_total = spec_total = 0.0
        proposed = accepted = identical = spec_tokens = 0
        for index, prompt in enumerate(prompts):
            best_plain = best_spec = None
            for _ in range(repeats):
                engine.forget_cache()
                plain = engine.generate(prompt, plain_params)
                engine.forget_cache()
                spec = engine.generate(prompt, spec_params)
                # A batch of drafts scores as one-token decoding with the engine's settings (flash
                # attention, micro-batches under 64); counted, so a regression shows.
                identical += plain.text == spec.text
                best_plain = plain if best_plain is None or plain.total_s < best_plain.total_s else best_plain
                best_spec = spec if best_spec is None or spec.total_s < best_spec.total_s else best_spec
            plain_total += best_plain.total_s
            spec_total += best_spec.total_s
            proposed += best_spec.draft_tokens_proposed
            accepted += best_spec.draft_tokens_accepted
            spec_tokens += best_spec.completion_tokens
            report(f"speculative (drafts of {length})", index + 1, len(prompts))
        by_length[length] = {
            "speedup": round(plain_total / spec_total, 3),
            "acceptance": round(accepted / proposed, 3) if proposed else 0.0,
            "outputs_identical": f"{identical} of {len(prompts) * repeats}",
        }
    best = max(by_length, key=lambda length: by_length[length]["speedup"])
    cost = _verification_cost(engine, max(SPECULATIVE_DRAFT_LENGTHS) + 1)
    return {
        **_batch_invariance(engine, prompts),
        "speculative_speedup": by_length[best]["speedup"],
        "speculative_draft_tokens": best,
        "speculative_acceptance": by_length[best]["acceptance"],
        "speculative_outputs_identical": by_length[best]["outputs_identical"],
        "speculative_by_draft_tokens": by_length,
        "speculative_workload": "restate every fact of a key=value record (imaging, work order, payment), "
        "6 prompts, 96 new tokens, greedy, prompt lookup (the longest earlier match of 2-12 tokens, drafts of its length + 1 up to the cap), best of the draft caps",
        # Verifying k tokens in one batch costs cost[k] single-token steps; with every draft accepted a
        # round of d drafts yields d + 1 tokens, so no acceptance can beat max((d + 1) / cost[d + 1]).
        "speculative_verify_cost_by_batch": cost,
        "speculative_speedup_bound_all_accepted": round(max(k / c for k, c in cost.items()), 2),
    }


def _batch_invariance(engine: LlamaCppEngine, prompts: list, steps: int = 12) -> dict:
    """The same positions' logits computed one token at a time (plain decoding, a KV-cache hit) and in
    one batch (a prefill, a speculative verification): how far llama.cpp's two paths differ."""
    llama = engine.loaded()
    vocab = llama.n_vocab()

    def rows(count: int):
        return np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(count, vocab)).copy()

    largest, flips, flip_gaps, positions = 0.0, 0, [], 0
    with engine._lock:
        for prompt in prompts:
            ids, _ = engine.render(prompt)
            engine._truncate(0)
            engine._eval(ids, logits_for=1)
            single, tokens = [rows(1)[0]], []
            for _ in range(steps):
                tokens.append(int(np.argmax(single[-1])))
                engine._eval(tokens[-1:], logits_for=1)
                single.append(rows(1)[0])
            engine._truncate(len(ids) - 1)
            engine._eval([ids[-1], *tokens], logits_for=len(tokens) + 1)
            batched = rows(len(tokens) + 1)
            for one, many in zip(single, batched, strict=True):
                positions += 1
                largest = max(largest, float(np.abs(one - many).max()))
                if int(np.argmax(one)) != int(np.argmax(many)):
                    flips += 1
                    runner_up, best = np.partition(one, -2)[-2:]
                    flip_gaps.append(round(float(best - runner_up), 3))
        engine._truncate(0)
    return {
        "batched_vs_one_token_max_abs_logit_diff": round(largest, 3),
        "batched_vs_one_token_argmax_flips": f"{flips} of {positions} positions",
        "batched_vs_one_token_flip_top2_gaps": flip_gaps,
    }


def _verification_cost(engine: LlamaCppEngine, largest: int, samples: int = 9) -> dict[int, float]:
    """Median time to decode a batch of k tokens with logits for each (as a verification does), after
    a 200-token context, relative to one token."""
    engine.loaded()
    context = (engine.render(copy_heavy_prompts(1)[0])[0] * 8)[:200]
    sizes = sorted({1, 2, 3, 4, 6, 8, largest})
    times: dict[int, list[float]] = {k: [] for k in sizes}
    with engine._lock:  # the bench drives the context directly; nothing else runs
        engine._truncate(0)
        engine._eval(context, logits_for=1)
        for _ in range(samples):
            for k in sizes:
                started = time.perf_counter()
                engine._eval(context[:k], logits_for=k)
                times[k].append(time.perf_counter() - started)
                engine._truncate(len(context))
        engine._truncate(0)
    one = statistics.median(times[1])
    return {k: round(statistics.median(v) / one, 2) for k, v in times.items()}


def _draft_pair(model, workdir: Path) -> tuple[str, str]:
    """(target GGUF, draft GGUF): the served file with its registered draft's GGUF, else with an
    early-exit draft cut from the served file itself (its first DRAFT_BLOCK_FRACTION of blocks:
    same vocabulary, no training; inference.engine.gguf_layers)."""
    if model.draft_id and model.draft.gguf_path:
        return model.gguf_path, model.draft.gguf_path
    from inference.engine.gguf_layers import block_count, keep_first_layers

    layers = max(1, round(block_count(model.gguf_path) * DRAFT_BLOCK_FRACTION))
    return model.gguf_path, str(
        keep_first_layers(model.gguf_path, workdir / f"draft-{layers}-blocks.gguf", layers)
    )


def _draft_speculation(
    model, threads: int, repeats: int, report: Progress, *, flash_attn: bool = True
) -> dict:
    """Plain, prompt lookup and a draft model side by side on one target, same prompts, greedy."""
    import tempfile

    workdir = tempfile.TemporaryDirectory(prefix="bench-draft-")
    target, draft = _draft_pair(model, Path(workdir.name))
    engine = LlamaCppEngine(
        target, n_threads=threads, n_ctx=1024, draft_gguf_path=draft, flash_attn=flash_attn
    )
    engine.loaded()
    prompts = copy_heavy_prompts(6)
    plain_params = GenerationParams(max_tokens=96)
    modes = {
        "plain": plain_params,
        "prompt_lookup": replace(plain_params, speculative="prompt_lookup", num_speculative_tokens=10),
        "draft": replace(plain_params, speculative="draft", num_speculative_tokens=DRAFT_TOKENS),
    }
    totals = dict.fromkeys(modes, 0.0)
    proposed = dict.fromkeys(modes, 0)
    accepted = dict.fromkeys(modes, 0)
    identical = dict.fromkeys(modes, 0)
    for index, prompt in enumerate(prompts):
        best: dict = {}
        for _ in range(repeats):
            results = {}
            for mode, params in modes.items():  # interleaved: load drifts hit every mode alike
                engine.forget_cache()
                results[mode] = engine.generate(prompt, params)
                if mode not in best or results[mode].total_s < best[mode].total_s:
                    best[mode] = results[mode]
            for mode in modes:
                identical[mode] += results[mode].text == results["plain"].text
        for mode in modes:
            totals[mode] += best[mode].total_s
            proposed[mode] += best[mode].draft_tokens_proposed
            accepted[mode] += best[mode].draft_tokens_accepted
        report("draft speculation", index + 1, len(prompts))
    engine.close()
    workdir.cleanup()
    runs = len(prompts) * repeats
    return {
        "draft_speculation": {
            "target": Path(target).name,
            "draft": Path(draft).name,
            "workload": "the speculative_workload prompts, 96 new tokens, greedy, on the target above",
            "seconds": {mode: round(total, 3) for mode, total in totals.items()},
            "speedup": {mode: round(totals["plain"] / totals[mode], 3) for mode in modes if mode != "plain"},
            "acceptance": {
                mode: round(accepted[mode] / proposed[mode], 3) if proposed[mode] else 0.0
                for mode in modes
                if mode != "plain"
            },
            "outputs_identical": {mode: f"{identical[mode]} of {runs}" for mode in modes if mode != "plain"},
            "draft_tokens_per_round": DRAFT_TOKENS,
        }
    }


def held_out_text() -> str:
    """Real English prose that ships with the interpreter itself: the documentation topics of
    `pydoc_data.topics` (the Python reference manual's sections that `help()` shows; PSF licence),
    in a fixed order. Nothing the suite fine-tunes on."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def held_out_windows(engine: LlamaCppEngine, tokens: int, context: int) -> list[list[int]]:
    """Consecutive windows of `context` tokens of held_out_text(), each BOS plus the next context - 1
    tokens, enough for `tokens` scored tokens (the second half of each window: every scored token
    sees at least context / 2 tokens before it, as llama.cpp's perplexity tool scores). Only the
    text's first half: the import's importance matrix calibrates on its end (quantization.calibration_windows)."""
    llama = engine.loaded()
    ids = llama.tokenize(held_out_text().encode(), add_bos=False, special=False)
    step = context - 1
    count = -(-tokens // (context - context // 2))
    if count * step > len(ids) // 2:
        raise ValueError(
            f"The held-out half of the text has {len(ids) // 2} tokens: too few for {tokens} scored tokens."
        )
    return [[llama.token_bos(), *ids[i * step : (i + 1) * step]] for i in range(count)]


def paired_perplexity_change(losses: np.ndarray, reference: np.ndarray) -> dict:
    """Relative perplexity change of `losses` against `reference` (per-token NLL, one row per window,
    same tokens) with a 95% interval from the spread of the per-window mean differences (tokens of
    one window are not independent; windows nearly are)."""
    diff = losses.mean(axis=1) - reference.mean(axis=1)
    mean = float(diff.mean())
    half = 1.96 * float(diff.std(ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return {
        "change": round(float(np.expm1(mean)), 4),
        "ci95": [round(float(np.expm1(mean - half)), 4), round(float(np.expm1(mean + half)), 4)],
    }


def quantizations(model, *, threads: int, repeats: int = 3, progress: Progress | None = None,
                  tokens: int = PERPLEXITY_TOKENS, flash_attn: bool = True) -> dict:  # fmt: skip
    """The quantization figures alone (`bench_inference --quantizations-only`)."""
    started, load_start = time.perf_counter(), load_average()
    figures = _quantizations(
        model, threads, repeats, progress or (lambda stage, step, total: None), tokens, flash_attn=flash_attn
    )
    return {"model": model.name, "threads": threads, "load_average_start": load_start, **figures,
            "seconds": round(time.perf_counter() - started, 1), "load_average_end": load_average()}  # fmt: skip


def _quantizations(model, threads: int, repeats: int, report: Progress,
                   tokens: int = PERPLEXITY_TOKENS, context: int = PERPLEXITY_CONTEXT,
                   flash_attn: bool = True) -> dict:  # fmt: skip
    """Each GGUF the import wrote: bytes, decode rate, and perplexity on the same held-out tokens
    against the largest file (f16: the reference), paired window by window."""
    files = dict(model.info.get("gguf_files") or {})
    if not files:
        return {}
    fp32_bytes = model.parameter_count * 4
    figures: dict = {}
    reference = None
    prompt = [{"role": "user", "content": "Write a short maintenance note about a chiller bearing."}]
    order = sorted(files, key=lambda q: -Path(files[q]).stat().st_size)  # f16 first: the reference
    windows = None
    for index, quantization in enumerate(order):
        engine = LlamaCppEngine(files[quantization], n_threads=threads, n_ctx=context, flash_attn=flash_attn)
        windows = windows or held_out_windows(engine, tokens, context)
        losses = np.stack([engine.token_nll(window, score_from=context // 2) for window in windows])
        rates = []
        for _ in range(repeats):
            engine.forget_cache()
            rates.append(
                engine.generate(
                    prompt, _forced(GenerationParams(max_tokens=DECODE_TOKENS))
                ).decode_tokens_per_s
            )
        engine.close()
        reference = losses if reference is None else reference
        change = paired_perplexity_change(losses, reference)
        figures[f"{quantization}_weight_bytes_ratio"] = round(
            Path(files[quantization]).stat().st_size / fp32_bytes, 4
        )
        figures[f"{quantization}_bits_per_weight"] = round(
            Path(files[quantization]).stat().st_size * 8 / model.parameter_count, 2
        )
        # How the import made it (llama.cpp's quantize.imatrix.* keys): 0 is a plain quantization.
        made = gguf_metadata(files[quantization])
        figures[f"{quantization}_imatrix_windows"] = int(made.get("quantize.imatrix.chunks_count", 0) or 0)
        figures[f"{quantization}_decode_tokens_per_s"] = round(max(rates), 1)
        figures[f"{quantization}_perplexity"] = round(float(np.exp(losses.mean())), 3)
        figures[f"{quantization}_perplexity_change"] = change["change"]
        figures[f"{quantization}_perplexity_change_ci95"] = change["ci95"]
        report("quantizations", index + 1, len(order))
    figures["perplexity_reference"] = order[0]
    figures["perplexity_text"] = (
        f"pydoc_data.topics (Python's reference documentation, PSF licence): {len(windows)} windows of "
        f"{context} tokens, the second half of each scored ({reference.size} tokens)"
    )
    return figures


def _transformers_engine(directory: str):
    """The suite's own transformers engine (LocalEngine: generate() behind the engine interface) on
    the Hugging Face directory the import wrote, with a model cache of its own."""
    from inference.engine.loader import ModelCache
    from inference.engine.local import LocalEngine

    return LocalEngine(directory, model_cache=ModelCache(budget_bytes=4 * 1024**3))


class _TransformersDecoder:
    """`generate()` on the Hugging Face directory the import wrote (the same weights, fp32)."""

    def __init__(self, directory: str, threads: int):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True).eval()

    def decode_rate(self, prompt_ids: list[int], tokens: int) -> float:
        ids = self.torch.tensor([prompt_ids])
        with self.torch.inference_mode():
            started = time.perf_counter()
            self.model.generate(ids, max_new_tokens=1, min_new_tokens=1, do_sample=False)
            first = time.perf_counter() - started
            started = time.perf_counter()
            self.model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            total = time.perf_counter() - started
        return (tokens - 1) / max(total - first, 1e-9)


class _Endpoint:
    """The suite's /v1/chat/completions through Django's full stack (API-token authentication as
    OpenAI clients send it, throttling, policy, admission, trail), on a scratch transaction that is
    rolled back at the end."""

    def __init__(self, model_name: str):
        self.model_name = model_name

    def _client(self):
        from django.contrib.auth.models import Group
        from django.test import Client
        from knox.models import AuthToken

        from accounts.models import User
        from accounts.roles import Role

        user = User.objects.create(username=f"bench-{time.time_ns()}")
        user.groups.add(Group.objects.get_or_create(name=Role.ML_ENGINEER.value)[0])
        return Client(
            HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {AuthToken.objects.create(user=user)[1]}"
        )

    def _post(self, client, body: dict):
        import json

        return client.post("/v1/chat/completions", data=json.dumps(body), content_type="application/json")

    def decode_rate(self, prompt, tokens: int) -> float:
        from django.db import transaction

        body = {"model": self.model_name, "messages": prompt, "max_tokens": tokens, "temperature": 0,
                "stream": True}  # fmt: skip
        from inference import runtime
        from inference.models import LanguageModel

        runtime.served(LanguageModel.objects.get(name=self.model_name)).engine.forget_cache()
        with transaction.atomic():
            client = self._client()
            response = self._post(client, body)
            if response.status_code != 200:
                raise RuntimeError(f"/v1 answered {response.status_code}: {response.content[:300]!r}")
            times, chunks = [], 0
            for chunk in response.streaming_content:
                if b'"content": "' in chunk and b'"content": ""' not in chunk:
                    times.append(time.perf_counter())
                    chunks += 1
            transaction.set_rollback(True)
        return (chunks - 1) / (times[-1] - times[0]) if chunks > 1 else 0.0

    def overhead_ms(self, requests: int) -> dict:
        """What the platform adds around the engine, paired within each request: the request's wall
        time minus the engine's own time for it (its Generation's `latency_ms`, stream start to
        result). Pairing inside one request keeps the engine's run-to-run spread (tens of ms on a
        shared machine) out of a figure of a few ms; CPU time of the whole request is reported too."""
        from django.db import transaction

        from inference import runtime
        from inference.models import Generation, LanguageModel

        body = {"model": self.model_name, "messages": [{"role": "user", "content": "Which failure code?"}],
                "max_tokens": 8, "temperature": 0}  # fmt: skip
        clock = _EngineClock(runtime.served(LanguageModel.objects.get(name=self.model_name)).engine)
        walls, cpus = [], []
        with transaction.atomic(), clock:
            client = self._client()
            for index in range(requests + 2):
                clock.cpu_s = 0.0
                wall, cpu = time.perf_counter(), time.process_time()
                response = self._post(client, body)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if response.status_code != 200:
                    raise RuntimeError(f"/v1 answered {response.status_code}: {response.content[:300]!r}")
                engine_ms = Generation.objects.get(pk=int(response.json()["id"].split("-")[-1])).latency_ms
                if index >= 2:
                    walls.append(wall * 1000 - engine_ms)
                    cpus.append((cpu - clock.cpu_s) * 1000)
            transaction.set_rollback(True)
        return {
            "api_overhead_ms_p50": round(statistics.median(walls), 2),
            "api_overhead_ms_p90": round(statistics.quantiles(walls, n=10)[-1], 2),
            "api_overhead_cpu_ms_p50": round(statistics.median(cpus), 2),
            "api_overhead_method": "per request, paired: wall time minus the engine's latency_ms for it; "
            "cpu: the request's process CPU time minus the CPU time spent inside the engine's stream "
            f"({requests} requests of 8 tokens, Bearer token, not streamed)",
        }


class _EngineClock:
    """Counts the process CPU time spent inside an engine's stream() and its generator (the bench
    wraps the served engine object for a while; the product's code is unchanged)."""

    def __init__(self, engine):
        self.engine, self.cpu_s = engine, 0.0

    def __enter__(self):
        original = self.engine.stream

        def timed_stream(*args, **kwargs):
            started = time.process_time()
            inner = original(*args, **kwargs)
            self.cpu_s += time.process_time() - started
            return self._timed(inner)

        self.engine.stream = timed_stream
        return self

    def _timed(self, inner):
        while True:
            started = time.process_time()
            try:
                item = next(inner)
            except StopIteration:
                self.cpu_s += time.process_time() - started
                return
            self.cpu_s += time.process_time() - started
            yield item

    def __exit__(self, *exc):
        del self.engine.stream  # the class's method again


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)
