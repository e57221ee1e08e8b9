from dataclasses import replace

import pytest

from inference.engine.types import GenerationParams


@pytest.mark.parametrize("mode", ["draft", "prompt_lookup"])
def test_greedy_speculative_output_equals_plain_decoding(engine, record_prompts, mode):
    proposed = accepted = 0
    for prompt in record_prompts:
        plain = engine.generate(prompt, GenerationParams(max_tokens=48))
        fast = engine.generate(prompt, GenerationParams(max_tokens=48, speculative=mode))
        assert fast.text == plain.text
        assert fast.completion_tokens == plain.completion_tokens
        assert fast.finish_reason == plain.finish_reason
        assert 0 <= fast.draft_tokens_accepted <= fast.draft_tokens_proposed
        proposed += fast.draft_tokens_proposed
        accepted += fast.draft_tokens_accepted
        assert plain.draft_tokens_proposed == 0
    assert proposed > 0 and accepted > 0


def test_speculative_decoding_respects_max_tokens_and_stops(engine, record_prompts):
    for mode in ("draft", "prompt_lookup"):
        for prompt in record_prompts:
            plain = engine.generate(prompt, GenerationParams(max_tokens=5))
            fast = engine.generate(prompt, GenerationParams(max_tokens=5, speculative=mode))
            assert (fast.text, fast.completion_tokens) == (plain.text, plain.completion_tokens)


@pytest.mark.parametrize("mode", ["draft", "prompt_lookup"])
def test_speculative_sampling_is_reproducible_with_a_seed(engine, record_prompts, mode):
    params = GenerationParams(max_tokens=32, temperature=0.8, seed=5, speculative=mode)
    first = engine.generate(record_prompts[5], params)
    assert first.text == engine.generate(record_prompts[5], params).text
    assert first.draft_tokens_proposed > 0


@pytest.mark.parametrize("mode", ["draft", "prompt_lookup"])
def test_seeded_sampling_gives_the_same_text_with_and_without_speculation(engine, record_prompts, mode):
    # Each position's draw depends on the seed and the position only (engine.generation.GumbelSampler),
    # so verifying drafts picks exactly what plain sampling picks.
    for seed in (1, 2):
        params = GenerationParams(max_tokens=32, temperature=0.9, top_p=0.95, seed=seed)
        plain = engine.generate(record_prompts[6], params)
        fast = engine.generate(record_prompts[6], replace(params, speculative=mode))
        assert fast.text == plain.text


def test_draft_without_a_draft_model_is_refused(demo_models, model_cache):
    from inference.engine.local import LocalEngine
    from inference.engine.types import InvalidRequest

    alone = LocalEngine(demo_models["target_dir"], model_cache=model_cache)
    with pytest.raises(InvalidRequest, match="draft_model_dir"):
        alone.generate("hello", GenerationParams(speculative="draft"))


def test_prompt_lookup_drafts_the_longest_earlier_match_as_far_as_it_matched():
    from inference.engine.llamacpp import PromptLookup

    lookup = PromptLookup(num_tokens=10)
    # "7 8 9" occurred twice; the later occurrence is followed by 40, but the earlier one continues the
    # longer suffix "6 7 8 9": the longest match wins, and it proposes match length + 1 tokens.
    sequence = [1, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 2, 7, 8, 9, 40, 41, 3, 6, 7, 8, 9]
    assert lookup.propose(sequence, limit=16) == [10, 11, 12, 13, 14]
    assert lookup.propose(sequence, limit=2) == [10, 11]  # the caller's limit (tokens left) holds
    # A two-token match is a guess: three tokens; the latest occurrence among equally long matches.
    assert lookup.propose([5, 1, 2, 30, 31, 32, 33, 1, 2, 50, 51, 52, 53, 9, 1, 2], limit=16) == [50, 51, 52]
    assert PromptLookup(num_tokens=4).propose(sequence, limit=16) == [10, 11, 12, 13]
    assert lookup.propose([1, 2, 3, 4], limit=16) == []  # nothing repeats
    assert lookup.propose([1, 2], limit=16) == []
