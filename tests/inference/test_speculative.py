import pytest
import torch

from inference.engine.decoding import PromptLookupProposer
from inference.engine.draftrunner import LeanDraftRunner, lean_runtime_supported
from inference.engine.sessions import SequenceRunner
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


def test_prompt_lookup_proposes_the_continuation_of_the_latest_match():
    proposer = PromptLookupProposer(num_tokens=3, max_ngram=2, min_ngram=1)
    sequence = [5, 6, 7, 8, 1, 5, 6, 9, 2, 5, 6]
    assert proposer.propose(sequence, limit=10).tokens == [9, 2, 5]
    assert proposer.propose(sequence, limit=1).tokens == [9]
    assert proposer.propose([1, 2, 3], limit=10).tokens == []


def test_lean_draft_runtime_matches_the_transformers_forward(engine, demo_models, model_cache):
    draft = model_cache.get(demo_models["draft_dir"])
    assert lean_runtime_supported(draft)
    reference, lean = SequenceRunner(draft, None), LeanDraftRunner(draft)
    sequence = engine.loaded().tokenizer("Work order summary. The equipment is Chiller 3.")["input_ids"]
    for extra in ([], [40], [41, 42, 43], [44]):
        sequence = sequence + extra
        width = max(1, len(extra))
        torch.testing.assert_close(
            lean.logits(sequence, width), reference.logits(sequence, width), atol=1e-4, rtol=1e-4
        )
    rolled_back = sequence[:-3] + [45, 46]  # a rejected draft: the common prefix is kept
    torch.testing.assert_close(
        lean.logits(rolled_back, 2), reference.logits(rolled_back, 2), atol=1e-4, rtol=1e-4
    )


def test_draft_without_a_draft_model_is_refused(demo_models, model_cache):
    from inference.engine.local import LocalEngine
    from inference.engine.types import InvalidRequest

    alone = LocalEngine(demo_models["target_dir"], model_cache=model_cache)
    with pytest.raises(InvalidRequest, match="draft_model_dir"):
        alone.generate("hello", GenerationParams(speculative="draft"))
