import pytest

from inference.demo import synthetic
from inference.engine.local import LocalEngine
from inference.engine.sessions import SessionStore
from inference.engine.types import GenerationParams

GREEDY = GenerationParams(max_tokens=24)


def _converse(engine, user_messages, session_id=None, params=GREEDY):
    history = [{"role": "system", "content": synthetic.SYSTEM_PROMPT}]
    results = []
    for message in user_messages:
        history.append({"role": "user", "content": message})
        result = engine.generate(history, params, session_id=session_id)
        history.append({"role": "assistant", "content": result.text})
        results.append(result)
    return results


@pytest.fixture
def session_engine(demo_models, model_cache):
    def make(budget_bytes=64 * 1024**2):
        store = SessionStore(budget_bytes=budget_bytes)
        engine = LocalEngine(
            demo_models["target_dir"],
            draft_model_dir=demo_models["draft_dir"],
            model_cache=model_cache,
            session_store=store,
        )
        return engine, store

    return make


def test_turns_reuse_the_cache_and_keep_greedy_output_identical(session_engine):
    engine, store = session_engine()
    turns = synthetic.conversation(4, seed=11)
    without = _converse(engine, turns)
    with_reuse = _converse(engine, turns, session_id="conversation-1")
    assert [r.text for r in with_reuse] == [r.text for r in without]
    assert with_reuse[0].cached_prompt_tokens == 0
    for previous, result in zip(with_reuse, with_reuse[1:], strict=False):
        # At least the previous prompt is cached (the previous answer too, up to where re-tokenizing
        # its text differs from the generated tokens); only the rest is prefilled.
        assert previous.prompt_tokens <= result.cached_prompt_tokens < result.prompt_tokens
    assert all(r.cached_prompt_tokens == 0 for r in without)
    assert store.hits == 3 and len(store) == 1 and store.used_bytes > 0


def test_speculative_turns_leave_their_cache_to_the_next_turn(session_engine):
    engine, store = session_engine()
    turns = synthetic.conversation(3, seed=12)
    plain = _converse(engine, turns)
    for mode in ("draft", "prompt_lookup"):
        session_id = f"spec-{mode}"
        params = GenerationParams(max_tokens=24, speculative=mode)
        speculative = _converse(engine, turns[:2], session_id=session_id, params=params)
        assert [r.text for r in speculative] == [r.text for r in plain[:2]]
        # transformers' assisted decoding starts from an empty cache; the cache it leaves serves the next turn.
        assert all(r.cached_prompt_tokens == 0 for r in speculative)
        history = [{"role": "system", "content": synthetic.SYSTEM_PROMPT}]
        for message, result in zip(turns[:2], plain[:2], strict=True):
            history += [{"role": "user", "content": message}, {"role": "assistant", "content": result.text}]
        history.append({"role": "user", "content": turns[2]})
        last = engine.generate(history, GREEDY, session_id=session_id)
        assert last.text == plain[2].text
        assert speculative[-1].prompt_tokens <= last.cached_prompt_tokens < last.prompt_tokens


def test_evicted_session_recomputes_transparently(session_engine):
    engine, store = session_engine()
    turns = synthetic.conversation(3, seed=13)
    baseline = _converse(engine, turns)
    first = _converse(engine, turns[:1], session_id="a")
    session_bytes = store.used_bytes
    # Room for one conversation only: starting "b" evicts "a".
    store.budget_bytes = int(session_bytes * 1.5)
    _converse(engine, turns[:1], session_id="b")
    assert store.evictions >= 1 and len(store) == 1
    history = [{"role": "system", "content": synthetic.SYSTEM_PROMPT}, {"role": "user", "content": turns[0]}]
    history += [{"role": "assistant", "content": first[0].text}, {"role": "user", "content": turns[1]}]
    resumed = engine.generate(history, GREEDY, session_id="a")
    assert resumed.cached_prompt_tokens == 0
    assert resumed.text == baseline[1].text


def test_a_budget_too_small_for_any_session_still_answers(session_engine):
    engine, store = session_engine(budget_bytes=1)
    turns = synthetic.conversation(2, seed=14)
    results = _converse(engine, turns, session_id="tiny-budget")
    assert [r.text for r in results] == [r.text for r in _converse(engine, turns)]
    assert all(r.cached_prompt_tokens == 0 for r in results) and len(store) == 0


def test_ending_a_session_forgets_its_cache(session_engine):
    engine, store = session_engine()
    _converse(engine, synthetic.conversation(1, seed=15), session_id="gone")
    assert len(store) == 1
    engine.end_session("gone")
    assert len(store) == 0


def test_a_closed_stream_keeps_the_session_usable(session_engine):
    engine, store = session_engine()
    turns = synthetic.conversation(2, seed=16)
    history = [{"role": "system", "content": synthetic.SYSTEM_PROMPT}, {"role": "user", "content": turns[0]}]
    stream = engine.stream(history, GenerationParams(max_tokens=40), session_id="dropped")
    next(stream)
    stream.close()
    assert len(store) == 1
    again = engine.generate(history, GenerationParams(max_tokens=40), session_id="dropped")
    assert again.text == engine.generate(history, GenerationParams(max_tokens=40)).text
    assert again.cached_prompt_tokens == again.prompt_tokens - 1
