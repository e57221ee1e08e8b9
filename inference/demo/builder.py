"""Build the suite's demo models from a corpus the caller supplies.

Produces, in Hugging Face format (safetensors), a byte-level BPE tokenizer with a chat template,
a small Llama-architecture causal LM and a much smaller draft Llama sharing that tokenizer (for
speculative decoding). Everything is deterministic for a given corpus, profile and seed, and a
build whose outputs are already complete for the same inputs is skipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from inference.engine.modeldir import ModelDirError, inspect_model_dir

TARGET_NAME = "suite-demo-llm"
DRAFT_NAME = "suite-demo-draft"
MANIFEST_NAME = "suite-build.json"
BUILD_FORMAT = 1

PAD, BEGIN, END = "<|pad|>", "<|begin|>", "<|end|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BEGIN, END, *ROLE_TOKENS)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Roles must be system, user or assistant.') }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

Progress = Callable[[str, int, int, float | None], None]


@dataclass(frozen=True)
class LlamaShape:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int


@dataclass(frozen=True)
class TrainingPlan:
    steps: int
    batch_size: int
    learning_rate: float


@dataclass(frozen=True)
class BuildProfile:
    vocab_size: int
    context_length: int
    sequence_length: int
    target: LlamaShape
    target_training: TrainingPlan
    draft: LlamaShape
    draft_training: TrainingPlan
    # torch intra-op threads while training (0: leave torch's setting). Not part of the build's
    # identity: a build made with another thread count is reused.
    threads: int = 0


PROFILES: dict[str, BuildProfile] = {
    # Trains in about 3-4 minutes on 2 CPU cores.
    "demo": BuildProfile(
        vocab_size=2048,
        context_length=1024,
        sequence_length=256,
        target=LlamaShape(256, 688, 4, 4, 2),
        target_training=TrainingPlan(steps=400, batch_size=8, learning_rate=2e-3),
        # Two layers so the draft can learn to copy from the context (induction needs two), four
        # heads so it copies well; ~15 s of training. Measured: ~75 % of its tokens are accepted.
        draft=LlamaShape(64, 176, 2, 4, 1),
        draft_training=TrainingPlan(steps=400, batch_size=8, learning_rate=3e-3),
    ),
    # Trains in seconds: for tests.
    "tiny": BuildProfile(
        vocab_size=384,
        context_length=1024,
        sequence_length=192,
        target=LlamaShape(64, 176, 2, 2, 1),
        target_training=TrainingPlan(steps=120, batch_size=8, learning_rate=4e-3),
        draft=LlamaShape(32, 88, 2, 2, 1),
        draft_training=TrainingPlan(steps=120, batch_size=8, learning_rate=5e-3),
        # Models this small gain nothing from a second thread, and on a busy machine two spinning
        # threads per process slowed the build from under a minute to over ten (test set-up).
        threads=1,
    ),
}


def build_demo_models(
    out_dir: str | Path,
    *,
    texts: Iterable[str],
    chat_examples: Iterable[list[dict]],
    profile: str | BuildProfile = "demo",
    seed: int = 0,
    progress: Progress | None = None,
    force: bool = False,
) -> dict:
    """Train (or reuse) the demo tokenizer, target model and draft model under `out_dir`.

    `profile` names one of PROFILES ("demo": about 4 minutes on 2 cores; "tiny": seconds, for
    tests) or is a BuildProfile. Returns {"target_dir", "draft_dir", "skipped", "seconds",
    "target", "draft"}, where target and draft hold each model's parameter count and final
    training loss. An existing build is reused when its manifests match this corpus, profile and
    seed (pass force=True to rebuild anyway). `progress(stage, step, total, loss)` hears about
    the stages "tokenizer", "target", "draft" and "done".
    """
    if isinstance(profile, BuildProfile):
        plan = profile
    elif profile in PROFILES:
        plan = PROFILES[profile]
    else:
        raise ValueError(f"Unknown profile {profile!r}; expected one of {', '.join(PROFILES)}.")
    # The full definition, not just the name: a retuned profile must not reuse an old build.
    identity = {key: value for key, value in asdict(plan).items() if key != "threads"}
    profile_key = {"name": profile if isinstance(profile, str) else "custom", **identity}
    report = progress or (lambda stage, step, total, loss: None)
    documents = [t for t in texts if t and t.strip()]
    conversations = [list(c) for c in chat_examples]
    if not documents and not conversations:
        raise ValueError("The corpus is empty: pass some texts or chat examples.")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target_dir, draft_dir = out / TARGET_NAME, out / DRAFT_NAME
    fingerprint = _corpus_fingerprint(documents, conversations)
    wanted = {"format": BUILD_FORMAT, "profile": profile_key, "seed": seed, "corpus_sha256": fingerprint}
    started = time.perf_counter()
    if not force and all(_is_complete(d, wanted) for d in (target_dir, draft_dir)):
        report("done", 1, 1, None)
        return {
            "target_dir": str(target_dir),
            "draft_dir": str(draft_dir),
            "skipped": True,
            "seconds": 0.0,
            **{
                role: _read_manifest(d)["model"] for role, d in (("target", target_dir), ("draft", draft_dir))
            },
        }

    # Heavy imports stay in functions so importing this module is cheap.
    import torch

    threads = torch.get_num_threads()
    if plan.threads:
        torch.set_num_threads(plan.threads)
    try:
        return _build(
            plan, wanted, documents, conversations, out, target_dir, draft_dir, seed, report, started
        )
    finally:
        torch.set_num_threads(threads)


def _build(plan, wanted, documents, conversations, out, target_dir, draft_dir, seed, report, started) -> dict:
    # Heavy imports stay here so importing this module is cheap.
    from inference.demo.training import render_corpus, train_causal_lm, train_tokenizer

    with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as scratch:
        report("tokenizer", 0, 1, None)
        tokenizer = train_tokenizer(
            documents, conversations, vocab_size=plan.vocab_size, special_tokens=SPECIAL_TOKENS,
            bos=BEGIN, eos=END, pad=PAD, chat_template=CHAT_TEMPLATE,
            context_length=plan.context_length,
        )  # fmt: skip
        report("tokenizer", 1, 1, None)
        token_documents = render_corpus(tokenizer, documents, conversations)
        results = {}
        for role, name, shape, training in (
            ("target", TARGET_NAME, plan.target, plan.target_training),
            ("draft", DRAFT_NAME, plan.draft, plan.draft_training),
        ):
            staging = Path(scratch) / name
            model_summary = train_causal_lm(
                tokenizer, token_documents, shape=asdict(shape), context_length=plan.context_length,
                sequence_length=plan.sequence_length, steps=training.steps, batch_size=training.batch_size,
                learning_rate=training.learning_rate, seed=seed, save_to=staging,
                progress=lambda step, total, loss, role=role: report(role, step, total, loss),
            )  # fmt: skip
            tokenizer.save_pretrained(staging, save_jinja_files=False)
            # The manifest is written last: its presence marks the directory complete.
            (staging / MANIFEST_NAME).write_text(json.dumps({**wanted, "model": model_summary}, indent=2))
            results[role] = model_summary
        for name, final in ((TARGET_NAME, target_dir), (DRAFT_NAME, draft_dir)):
            if final.exists():
                shutil.rmtree(final)
            (Path(scratch) / name).replace(final)
    report("done", 1, 1, None)
    return {
        "target_dir": str(target_dir),
        "draft_dir": str(draft_dir),
        "skipped": False,
        "seconds": round(time.perf_counter() - started, 1),
        **results,
    }


def _corpus_fingerprint(documents: list[str], conversations: list[list[dict]]) -> str:
    digest = hashlib.sha256()
    for document in documents:
        digest.update(b"T" + document.encode("utf-8") + b"\0")
    for conversation in conversations:
        digest.update(
            b"C" + json.dumps(conversation, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\0"
        )
    return digest.hexdigest()


def _read_manifest(model_dir: Path) -> dict:
    return json.loads((model_dir / MANIFEST_NAME).read_text(encoding="utf-8"))


def _is_complete(model_dir: Path, wanted: dict) -> bool:
    try:
        manifest = _read_manifest(model_dir)
        inspect_model_dir(model_dir)
    except (OSError, ValueError, ModelDirError):
        return False
    return all(manifest.get(key) == value for key, value in wanted.items()) and math.isfinite(
        manifest.get("model", {}).get("final_loss", math.nan)
    )
