import pytest

from inference.engine.capacity import ACCELERATORS, GB, plan, rule_of_thumb_comment, tensor_parallel_degree

LLAMA_70B = {"params": 70e9, "layers": 80, "hidden": 8192, "kv_heads": 8, "head_dim": 128}


def test_weight_bytes_follow_the_precision():
    sizes = {
        q: plan(**LLAMA_70B, context=4096, quant=q).weight_bytes for q in ("fp32", "fp16", "int8", "int4")
    }
    assert sizes == {"fp32": 280 * GB, "fp16": 140 * GB, "int8": 70 * GB, "int4": 35 * GB}


def test_kv_cache_is_two_layers_heads_dim_context_batch_bytes():
    sized = plan(
        params=1e9, layers=10, hidden=1024, kv_heads=4, head_dim=64, context=2048, batch=3, quant="fp16"
    )
    assert sized.kv_bytes_per_token == 2 * 10 * 4 * 64 * 2
    assert sized.kv_cache_bytes == 2 * 10 * 4 * 64 * 2048 * 3 * 2
    fp32 = plan(
        params=1e9, layers=10, hidden=1024, kv_heads=4, head_dim=64, context=2048, batch=3, quant="fp32"
    )
    assert fp32.kv_cache_bytes == 2 * sized.kv_cache_bytes


def test_head_dim_defaults_and_records_the_assumption():
    with_heads = plan(params=1e9, layers=2, hidden=1024, kv_heads=2, attention_heads=16, context=8)
    assert with_heads.kv_bytes_per_token == 2 * 2 * 2 * 64 * 2
    assert with_heads.assumptions == []
    guessed = plan(params=1e9, layers=2, hidden=1024, kv_heads=16, context=8)
    assert guessed.kv_bytes_per_token == 2 * 2 * 16 * 64 * 2
    assert any("no grouped-query attention" in a for a in guessed.assumptions)


def test_tensor_parallel_degree_is_the_smallest_power_of_two_with_room():
    assert tensor_parallel_degree(79 * GB, 80 * GB) == 1
    assert tensor_parallel_degree(81 * GB, 80 * GB) == 2
    assert tensor_parallel_degree(161 * GB, 80 * GB) == 4
    assert tensor_parallel_degree(10 * GB, 1 * GB, limit=8) is None


def test_every_accelerator_gets_a_degree_and_a_bandwidth_bound():
    sized = plan(**LLAMA_70B, context=4096, batch=1, quant="fp16", headroom=0.15)
    assert [fit.accelerator for fit in sized.fits][: len(ACCELERATORS)] == [a.name for a in ACCELERATORS]
    h100 = sized.fit("H100 80GB")
    assert h100.devices == 4  # 140 GB + KV, with 15 % headroom, exceeds 2 x 80 GB
    bytes_per_step = sized.weight_bytes + sized.kv_cache_bytes
    assert h100.decode_tokens_per_s_per_sequence == pytest.approx(4 * 3.35e12 / bytes_per_step)
    assert sized.fit("RTX 4090 24GB").devices == 8
    cpu = sized.fits[-1]
    assert cpu.accelerator.startswith("CPU-only") and cpu.devices is None and "does not fit" in cpu.note


def test_cpu_row_uses_the_given_ram_and_bandwidth():
    small = plan(params=3.4e6, layers=4, hidden=256, kv_heads=2, head_dim=64, context=1024, quant="fp32",
                 cpu_ram_gb=16, cpu_bandwidth_gbps=30)  # fmt: skip
    cpu = small.fits[-1]
    assert cpu.accelerator == "CPU-only 16 GB RAM" and cpu.devices == 1
    assert cpu.decode_tokens_per_s_per_sequence == pytest.approx(
        30e9 / (small.weight_bytes + small.kv_cache_bytes)
    )


def test_batch_multiplies_the_total_decode_bound():
    fit = plan(**LLAMA_70B, context=1024, batch=8, quant="int4").fit("H200 141GB")
    assert fit.decode_tokens_per_s_total == pytest.approx(8 * fit.decode_tokens_per_s_per_sequence)


def test_rule_of_thumb_is_reproduced_and_explained():
    review = rule_of_thumb_comment(context=4096, batch=8, headroom=0.15)
    rows = {row.model: row for row in review.rows}
    # 7B and 13B: the rule's GPU counts match full fine-tuning; fp16 inference needs one GPU.
    assert rows["7B"].training_devices == 2 and rows["7B"].inference_devices["fp16"] == 1
    assert rows["13B"].training_devices == 4 and rows["13B"].inference_devices["fp16"] == 1
    # 70B: ~280 GB of fp32 weights -> 8x H100; 70 GB is the int8 size, 4-bit is half that.
    assert rows["70B"].weights_gb["fp32"] == 280 and rows["70B"].inference_devices["fp32"] == 8
    assert rows["70B"].weights_gb["int8"] == 70 and rows["70B"].weights_gb["int4"] == 35
    assert "training" in review.text and "8-bit" in review.text and str(review) == review.text


def test_invalid_input_is_rejected():
    with pytest.raises(ValueError, match="quantization"):
        plan(**LLAMA_70B, context=4096, quant="fp8")
    with pytest.raises(ValueError):
        plan(**LLAMA_70B, context=0)
