"""A tiny local chat model and small example sets built from real maintenance work orders.

The work orders are IBM AssetOpsBench sample data (Apache-2.0, see ../shared/data/work_orders/
LICENSE). The model is a randomly initialised 2-layer Llama with a byte-level BPE tokenizer
trained on the same text; it is built once per test session in a few seconds.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

WORK_ORDERS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "work_orders"

SPECIAL_TOKENS = ("<|pad|>", "<|begin|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(WORK_ORDERS / name, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def work_order_examples() -> dict[str, list[dict]]:
    """Prompt/completion pairs: a work order's description -> its failure codes. 48 train, 16 eval."""
    seen, examples = set(), []
    for row in _read_csv("all_wo_with_code_component_events.csv"):
        key = (row["wo_description"], row["secondary_code"])
        if key in seen:
            continue
        seen.add(key)
        examples.append(
            {
                "prompt": f"Work order: {row['wo_description']}. Which failure code applies?",
                "completion": (
                    f"{row['primary_code']} {row['primary_code_description']}, "
                    f"{row['secondary_code']} {row['secondary_code_description']}."
                ),
            }
        )
    random.Random(7).shuffle(examples)
    return {"train": examples[:48], "eval": examples[48:64]}


@pytest.fixture(scope="session")
def failure_mode_examples() -> list[dict]:
    """A second domain, as chat messages: failure mode -> degradation mechanism."""
    return [
        {
            "messages": [
                {"role": "system", "content": "You are a reliability engineer."},
                {
                    "role": "user",
                    "content": f"What degrades a {row['Equipment']} into {row['Failure Mode']}?",
                },
                {"role": "assistant", "content": row["Degradation Mechanism"]},
            ]
        }
        for row in _read_csv("failure_mode.csv")[:16]
        if row["Degradation Mechanism"].strip()
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    lines = [row["wo_description"] for row in _read_csv("all_wo_with_code_component_events.csv")[::10]]
    lines += [" ".join(row.values()) for row in _read_csv("failure_codes.csv")]
    lines += [" ".join(row.values()) for row in _read_csv("failure_mode.csv")]
    lines += [" ".join(row.values()) for row in _read_csv("component.csv")]
    lines += ["Work order: Which failure code applies? What degrades a into? You are a reliability engineer."]

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        lines,
        trainers.BpeTrainer(
            vocab_size=512,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    bpe.post_processor = processors.TemplateProcessing(
        single="<|begin|> $A", special_tokens=[("<|begin|>", bpe.token_to_id("<|begin|>"))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|begin|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    _pretrain(model, tokenizer, lines)
    model_dir = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(model_dir)
    # save_jinja_files=False keeps the chat template inside tokenizer_config.json.
    tokenizer.save_pretrained(model_dir, save_jinja_files=False)
    return model_dir


def _pretrain(
    model, tokenizer, lines: list[str], *, steps: int = 60, batch_size: int = 16, length: int = 48
) -> None:
    """A few dozen full-model steps on plain text, so the base is a (tiny) language model.

    A randomly initialised model has an output layer too weak for LoRA on attention alone to move
    its predictions much; a briefly pretrained one behaves like the real bases LoRA is used on.
    """
    import torch

    stream = torch.tensor([t for line in lines for t in tokenizer(line + "\n")["input_ids"]])
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        starts = torch.randint(len(stream) - length, (batch_size,), generator=generator)
        batch = stream[starts[:, None] + torch.arange(length)]
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


# --- the product layer: jobs, API, portal ---------------------------------------------------
@pytest.fixture
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def work_orders(fast_password_hashing):
    """The work-order DataAdapter, registered for this test as an industry app registers its own."""
    from inference import datasets
    from tests.tuning.work_order_adapter import WorkOrderDataAdapter

    adapter = datasets.register(WorkOrderDataAdapter())
    yield adapter
    datasets._ADAPTERS.pop(adapter.name, None)  # the registry has no unregister: apps never leave


@pytest.fixture
def private_tuning_dirs(settings, tmp_path):
    """Job outputs and sealed snapshots under this test's tmp_path (in-process jobs only: a worker
    subprocess reads its own settings, so tests that use one keep the VAR_DIR defaults)."""
    settings.TUNING_OUTPUT_ROOT = tmp_path / "adapters"
    settings.TUNING_DATA_ROOT = tmp_path / "tuning"
    return tmp_path


@pytest.fixture(scope="session")
def trained_adapter_dir(tiny_model_dirs, tmp_path_factory) -> Path:
    """A real LoRA adapter of the tiny demo model (a few steps on work orders), for tests that
    promote, demote and serve adapters without running a whole job."""
    from inference.tuning.lora_config import LoraSettings, TrainSettings
    from inference.tuning.training import run_training

    examples = [
        {"prompt": f"Work order: {description}. Which failure code applies?", "completion": code}
        for description, code in [
            ("Routine Oil Analysis related to compressor", "MT010b Routine Oil Analysis."),
            ("Cleaning of condenser tubes", "MT003a Cleaning."),
            ("Leak repair on evaporator", "RE001 Leak repair."),
            ("Replace refrigerant sensor", "RP004 Replace sensor."),
        ]
    ]
    outcome = run_training(
        base_model_dir=tiny_model_dirs[0],
        train_examples=examples,
        eval_examples=examples[:1],
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(epochs=2, batch_size=2, learning_rate=1e-2),
        output_dir=tmp_path_factory.mktemp("trained-adapter"),
    )
    return Path(outcome.adapter_dir)


UNCONSUMED_QUEUE = "tuning-tests-in-process"


@pytest.fixture
def in_process_jobs(settings):
    """Jobs run in this process by the service the task calls. Their messages (sent when a
    transactional test commits) go to a queue no worker reads, so a worker started by another test
    cannot race this one for the job; the queue is emptied afterwards."""
    settings.TUNING_QUEUE = UNCONSUMED_QUEUE
    yield
    from kombu import Queue

    from suite.celery import app

    with app.connection_for_write() as connection:
        Queue(UNCONSUMED_QUEUE, channel=connection.default_channel).purge()
