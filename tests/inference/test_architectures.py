"""Other architectures through the same engine: tiny random-weight GPT-2 and Qwen2 models."""

import pytest
import torch

from inference.engine.local import LocalEngine
from inference.engine.modeldir import inspect_model_dir
from inference.engine.sessions import SessionStore
from inference.engine.types import GenerationParams


def _save_random_model(kind: str, out_dir, tokenizer_dir) -> str:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    # A wide initialisation gives peaked logits, so greedy choices are far from ties.
    if kind == "gpt2":
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2,
                            initializer_range=0.5, eos_token_id=tokenizer.eos_token_id,
                            bos_token_id=tokenizer.bos_token_id)  # fmt: skip
        model = GPT2LMHeadModel(config)
        tokenizer.chat_template = None  # a base model: the engine falls back to "Role: text" prompts
    else:
        config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                             initializer_range=0.5, eos_token_id=tokenizer.eos_token_id,
                             bos_token_id=tokenizer.bos_token_id)  # fmt: skip
        model = Qwen2ForCausalLM(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir, save_jinja_files=False)
    return str(out_dir)


@pytest.fixture(scope="module", params=["gpt2", "qwen2"])
def other_model(request, demo_models, tmp_path_factory):
    path = _save_random_model(
        request.param, tmp_path_factory.mktemp(request.param), demo_models["target_dir"]
    )
    return request.param, path


def test_directory_is_inspected(other_model):
    kind, path = other_model
    info = inspect_model_dir(path)
    assert info.model_type == kind and info.context_length == 256 and info.parameter_count > 0
    assert info.has_chat_template == (kind == "qwen2")


def test_generation_streaming_and_plain_prompt_fallback(other_model, model_cache):
    kind, path = other_model
    engine = LocalEngine(path, model_cache=model_cache)
    chat = [{"role": "user", "content": "What is the modality?"}]
    result = engine.generate(chat, GenerationParams(max_tokens=12))
    assert result.completion_tokens >= 1
    items = list(engine.stream(chat, GenerationParams(max_tokens=12)))
    assert "".join(items[:-1]) == items[-1].text == result.text
    if kind == "gpt2":
        tokenizer = engine.loaded().tokenizer
        expected = tokenizer("User: What is the modality?\nAssistant:")["input_ids"]
        assert result.prompt_tokens == len(expected)


def test_kv_reuse_and_speculative_decoding_keep_greedy_output(other_model, model_cache):
    kind, path = other_model
    # The model drafts for itself: every greedy proposal should be accepted.
    engine = LocalEngine(path, draft_model_dir=path, model_cache=model_cache, session_store=SessionStore())
    history = [
        {"role": "user", "content": "Rows = 512\nColumns = 512\nQuestion: What is the number of rows?"}
    ]
    params = GenerationParams(max_tokens=16)
    first = engine.generate(history, params)
    reused_first = engine.generate(history, params, session_id=kind)
    history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "And the columns?"}]
    second = engine.generate(history, params)
    reused_second = engine.generate(history, params, session_id=kind)
    assert (reused_first.text, reused_second.text) == (first.text, second.text)
    assert reused_second.cached_prompt_tokens > 0
    for mode in ("draft", "prompt_lookup"):
        fast = engine.generate(history, GenerationParams(max_tokens=16, speculative=mode))
        assert fast.text == second.text
    self_drafted = engine.generate(history, GenerationParams(max_tokens=16, speculative="draft"))
    assert self_drafted.draft_tokens_accepted >= 0.9 * self_drafted.draft_tokens_proposed > 0
