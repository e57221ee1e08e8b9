from inference.demo import synthetic
from inference.engine.bench import run_engine_benchmarks


def test_benchmark_reports_every_figure_from_one_run(demo_models):
    stages = set()
    figures = run_engine_benchmarks(
        demo_models["target_dir"],
        demo_models["draft_dir"],
        progress=lambda stage, step, total: stages.add(stage),
        prompts=synthetic.chat_prompts(3, seed=77, summaries=True),
        held_out_texts=synthetic.texts(5, seed=78),
        max_tokens=24,
        turns=3,
        repeats=1,
    )
    assert {"warm-up", "decode", "kv-reuse", "int8"} <= stages
    assert figures["decode_tokens_per_s"] > 0 and figures["ttft_ms_p50"] > 0
    for name in ("speculative", "prompt_lookup"):
        assert figures[f"{name}_speedup"] > 0
        assert 0 <= figures[f"{name}_acceptance"] <= 1
        assert figures[f"{name}_tokens_per_target_pass"] >= 1
    assert figures["speculative_acceptance"] > 0
    assert figures["kv_reuse_10turn_latency_ratio"] > 0
    assert 0 < figures["kv_reuse_cached_prompt_fraction"] < 1
    # int8 stores the linear layers and the embedding table in a quarter (the norms stay fp32, and a
    # tied output projection gets its own int8 copy): about 3.2x on this tiny model.
    assert figures["int8_weight_memory_ratio"] > 2.8
    assert figures["int8_speed_ratio"] > 0
    assert abs(figures["int8_perplexity_change"]) < 0.5
    assert figures["int8_outputs_compared"] == 3
