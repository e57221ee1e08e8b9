"""Fixtures for the engine tests: tiny demo models built once per session, engines around them."""

from __future__ import annotations

import pytest

from inference.demo import synthetic
from tests.support import cached_demo_models


@pytest.fixture(scope="session")
def demo_models() -> dict:
    """The tiny-profile target and draft models, trained from a synthetic corpus (a few seconds).
    Built once for all test processes and kept between runs (tests.support.cached_demo_models)."""
    import torch

    # Models this small gain nothing from a second intra-op thread, and on a busy machine two
    # spinning threads per process can slow training tenfold; restore the setting afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return cached_demo_models(
            "synthetic-tiny",
            texts=synthetic.texts(300, seed=0),
            chat_examples=synthetic.chat_examples(600, seed=0),
            profile="tiny",
            seed=0,
        )
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def model_cache():
    from inference.engine.loader import ModelCache

    return ModelCache(budget_bytes=2 * 1024**3)


@pytest.fixture(scope="session")
def engine(demo_models, model_cache):
    """Target + draft engine with a session store of its own (tests that count hits make their own)."""
    from inference.engine.local import LocalEngine

    return LocalEngine(
        demo_models["target_dir"], draft_model_dir=demo_models["draft_dir"], model_cache=model_cache
    )


@pytest.fixture(scope="session")
def record_prompts() -> list[list[dict]]:
    """Chat prompts unseen in training: record questions and summaries."""
    return synthetic.chat_prompts(4, seed=101) + synthetic.chat_prompts(4, seed=102, summaries=True)
