"""Tokenizer and causal-LM training for the demo models (imported lazily: it needs torch)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


def train_tokenizer(
    documents: Sequence[str],
    conversations: Sequence[list[dict]],
    *,
    vocab_size: int,
    special_tokens: Sequence[str],
    bos: str,
    eos: str,
    pad: str,
    chat_template: str,
    context_length: int,
):
    """Train a byte-level BPE tokenizer and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def training_texts():
        yield from documents
        for conversation in conversations:
            for message in conversation:
                yield message["content"]

    tokenizer.train_from_iterator(training_texts(), trainer=trainer)
    bos_id = tokenizer.token_to_id(bos)
    # Plain (non-chat) prompts start with the begin token, as chat prompts do through the template.
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        additional_special_tokens=[t for t in special_tokens if t not in (bos, eos, pad)],
        chat_template=chat_template,
        model_max_length=context_length,
        clean_up_tokenization_spaces=False,
    )


def render_corpus(
    tokenizer, documents: Sequence[str], conversations: Sequence[list[dict]]
) -> list[list[int]]:
    """Token ids per training document: plain texts framed by begin/end, chats through the template."""
    rendered = []
    for document in documents:
        rendered.append([*tokenizer(document)["input_ids"], tokenizer.eos_token_id])
    for conversation in conversations:
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        rendered.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return rendered


def train_causal_lm(
    tokenizer,
    token_documents: list[list[int]],
    *,
    shape: dict,
    context_length: int,
    sequence_length: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    save_to: Path,
    progress: Callable[[int, int, float | None], None],
) -> dict:
    """Train a Llama causal LM on windows that start at document boundaries, then save it."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=context_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shape,
    )
    model = LlamaForCausalLM(config)
    stream, starts = _pack(token_documents, sequence_length)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.1, eps=1e-8
    )
    warmup = max(1, steps // 20)

    def learning_rate_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_fraction = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_fraction))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor)
    offsets = torch.arange(sequence_length + 1)
    recent_losses: list[float] = []
    started = time.perf_counter()
    model.train()
    for step in range(steps):
        picks = starts[torch.randint(len(starts), (batch_size,), generator=generator)]
        batch = stream[picks[:, None] + offsets]
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        loss_value = float(loss.detach())
        recent_losses = [*recent_losses[-max(1, steps // 10) + 1 :], loss_value]
        if step % 10 == 0 or step == steps - 1:
            progress(step + 1, steps, loss_value)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(save_to)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": round(sum(recent_losses) / len(recent_losses), 4),
        "steps": steps,
        "tokens_trained": steps * batch_size * sequence_length,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _pack(token_documents: list[list[int]], sequence_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate documents (wrapping around) and return the stream and each document's start."""
    flat: list[int] = []
    starts: list[int] = []
    for ids in token_documents:
        starts.append(len(flat))
        flat.extend(ids)
    # Wrap around so a window that starts near the end still has sequence_length + 1 tokens.
    while len(flat) < starts[-1] + sequence_length + 1 or len(flat) < 2 * (sequence_length + 1):
        flat.extend(flat[: sequence_length + 1])
    usable = [s for s in starts if s + sequence_length + 1 <= len(flat)]
    return torch.tensor(flat, dtype=torch.long), torch.tensor(usable, dtype=torch.long)
