import pytest

from inference.engine.types import (
    ContextLengthExceeded,
    GenerationParams,
    GenerationResult,
    InvalidRequest,
)


def test_greedy_decoding_is_deterministic_and_reports_usage(engine, record_prompts):
    first = engine.generate(record_prompts[0], GenerationParams(max_tokens=24))
    second = engine.generate(record_prompts[0], GenerationParams(max_tokens=24))
    assert first.text == second.text and first.text
    assert first.prompt_tokens == engine.count_prompt_tokens(record_prompts[0])
    assert 1 <= first.completion_tokens <= 24
    assert first.finish_reason in ("stop", "length")
    assert 0 < first.ttft_s <= first.total_s


def test_chat_prompt_goes_through_the_chat_template(engine, record_prompts):
    tokenizer = engine.loaded().tokenizer
    rendered = tokenizer.apply_chat_template(record_prompts[0], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|assistant|>\n")
    assert engine.count_prompt_tokens(record_prompts[0]) == len(
        tokenizer(rendered, add_special_tokens=False)["input_ids"]
    )


def test_plain_prompt_is_a_completion(engine):
    result = engine.generate("Work order summary. The equipment is", GenerationParams(max_tokens=8))
    assert result.prompt_tokens == engine.count_prompt_tokens("Work order summary. The equipment is")
    assert result.completion_tokens >= 1


def test_sampling_is_reproducible_with_a_seed_and_varies_without_one(engine, record_prompts):
    params = GenerationParams(max_tokens=32, temperature=1.3, seed=7)
    assert engine.generate(record_prompts[5], params).text == engine.generate(record_prompts[5], params).text
    texts = {
        engine.generate(record_prompts[5], GenerationParams(max_tokens=32, temperature=1.3, seed=seed)).text
        for seed in range(6)
    }
    assert len(texts) > 1


def test_top_k_one_is_greedy(engine, record_prompts):
    greedy = engine.generate(record_prompts[4], GenerationParams(max_tokens=24))
    sampled = engine.generate(
        record_prompts[4], GenerationParams(max_tokens=24, temperature=1.0, top_k=1, seed=3)
    )
    assert sampled.text == greedy.text


def test_tiny_top_p_is_greedy(engine, record_prompts):
    greedy = engine.generate(record_prompts[6], GenerationParams(max_tokens=24))
    nucleus = engine.generate(
        record_prompts[6], GenerationParams(max_tokens=24, temperature=1.0, top_p=1e-6, seed=3)
    )
    assert nucleus.text == greedy.text


def _long_greedy(engine, prompts, at_least=20):
    for prompt in prompts:
        result = engine.generate(prompt, GenerationParams(max_tokens=60))
        if result.completion_tokens >= at_least and len(result.text) >= 30:
            return prompt, result
    raise AssertionError("no prompt gave a long enough greedy answer")


def test_stop_sequence_ends_the_text_before_it(engine, record_prompts):
    prompt, full = _long_greedy(engine, record_prompts[4:] + record_prompts[:4])
    stop = full.text[12:16]
    stopped = engine.generate(prompt, GenerationParams(max_tokens=60, stop=[stop]))
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[: full.text.index(stop)]
    assert stop not in stopped.text
    assert stopped.completion_tokens < full.completion_tokens


def test_streaming_holds_back_a_partial_stop_sequence(engine, record_prompts):
    prompt, full = _long_greedy(engine, record_prompts[4:] + record_prompts[:4])
    stop = full.text[12:16]
    items = list(engine.stream(prompt, GenerationParams(max_tokens=60, stop=[stop])))
    deltas, result = items[:-1], items[-1]
    assert "".join(deltas) == result.text == full.text[: full.text.index(stop)]
    assert all(stop not in delta for delta in deltas)


def test_max_tokens_cuts_the_answer(engine, record_prompts):
    prompt, full = _long_greedy(engine, record_prompts[4:] + record_prompts[:4])
    cut = engine.generate(prompt, GenerationParams(max_tokens=7))
    assert cut.finish_reason == "length"
    assert cut.completion_tokens == 7
    assert full.text.startswith(cut.text)


def test_stream_yields_deltas_then_the_result(engine, record_prompts):
    prompt, full = _long_greedy(engine, record_prompts[4:] + record_prompts[:4])
    items = list(engine.stream(prompt, GenerationParams(max_tokens=60)))
    assert isinstance(items[-1], GenerationResult)
    deltas = items[:-1]
    assert len(deltas) > 1 and all(isinstance(d, str) and d for d in deltas)
    assert "".join(deltas) == items[-1].text == full.text


def test_closing_a_stream_early_stops_decoding(engine, record_prompts):
    prompt, _ = _long_greedy(engine, record_prompts[4:] + record_prompts[:4])
    stream = engine.stream(prompt, GenerationParams(max_tokens=60))
    assert isinstance(next(stream), str)
    stream.close()
    with pytest.raises(StopIteration):
        next(stream)


def test_prompt_longer_than_the_context_is_refused(engine):
    limit = engine.context_length()
    too_long = [{"role": "user", "content": "Rows = 512 " * limit}]
    with pytest.raises(ContextLengthExceeded, match=f"context length is {limit} tokens") as refused:
        engine.generate(too_long, GenerationParams(max_tokens=4))
    assert refused.value.limit == limit and refused.value.got > limit


def test_answer_is_cut_at_the_end_of_the_context(engine):
    limit = engine.context_length()
    words = "Rows = 512 " * (limit // 5)
    prompt_tokens = engine.count_prompt_tokens(words)
    words = "Rows = 512 " * ((limit - 3) * (limit // 5) // prompt_tokens)
    room = limit - engine.count_prompt_tokens(words)
    assert 0 < room < 20
    result = engine.generate(words, GenerationParams(max_tokens=200))
    assert result.completion_tokens <= room


def test_bad_requests_are_refused(engine):
    with pytest.raises(InvalidRequest, match="role"):
        engine.generate([{"role": "tool", "content": "x"}])
    with pytest.raises(InvalidRequest, match="Unknown adapter"):
        engine.generate("hello", GenerationParams(adapter="missing"))
    with pytest.raises(InvalidRequest):
        GenerationParams(temperature=-1)
    with pytest.raises(InvalidRequest):
        GenerationParams(speculative="medusa")
