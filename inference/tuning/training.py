"""Run one LoRA fine-tuning job, optionally with differential privacy (DP-SGD through opacus).

`run_training` is what a Celery task calls. It is safe to call again after the worker died: it
resumes from the newest checkpoint in `output_dir` and, once a job has completed, returns the
recorded outcome instead of training again. torch, transformers, peft and opacus are imported
inside the functions, so importing this module stays cheap.

Reproducibility: all randomness of step N (batch order, LoRA dropout, DP batches and noise) is
drawn from seeds derived from (base seed, N), never from a running generator. A resumed run
therefore redoes the steps after its checkpoint exactly as the lost run did: without DP the
outcome equals an uninterrupted run with the same seed. With DP the base seed is a per-job
secret (see privacy.py), so two DP jobs differ, but a resumed DP job still continues its own run.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from inference.tuning import checkpoints, outputs, privacy
from inference.tuning.errors import BrokenWeightsError, CheckpointMismatchError, InvalidSettingsError
from inference.tuning.evaluation import load_model, mean_token_loss
from inference.tuning.examples import (
    check_examples,
    collate,
    encode_examples,
    load_tokenizer,
    pad_token_id,
    training_loss,
)
from inference.tuning.lora_config import (
    DPSettings,
    LoraSettings,
    TrainSettings,
    lora_for_privacy,
    model_linear_module_names,
    peft_lora_config,
    validate_job,
)

CHECKPOINT_FOLDER = "checkpoints"
# Without DP, gradients are still clipped for stability; with DP, clipping is per example instead.
PLAIN_MAX_GRAD_NORM = 1.0
RECENT_LOSS_WINDOW = 20  # train_loss reports the mean over this many recent steps

Status = Literal["completed", "cancelled"]


@dataclass(frozen=True)
class TrainingProgress:
    step: int
    total_steps: int
    epoch: float  # epochs completed, fractional
    train_loss: float | None  # mean over the recent steps
    eval_loss: float | None  # set on the steps where the eval set was scored
    tokens_per_s: float
    eta_s: float | None
    spent_epsilon: float | None  # None without DP


@dataclass(frozen=True)
class TrainingOutcome:
    status: Status
    steps: int
    total_steps: int
    train_loss: float | None
    eval_loss: float | None
    spent_epsilon: float | None
    noise_multiplier: float | None
    adapter_dir: str | None  # None unless completed
    trainable_parameters: int
    total_parameters: int
    tokens_seen: int
    seconds: float
    resumed_from_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_training(
    *,
    base_model_dir: str | Path,
    train_examples: Sequence[Mapping[str, Any]],
    eval_examples: Sequence[Mapping[str, Any]],
    lora: LoraSettings,
    train: TrainSettings,
    dp: DPSettings | None = None,
    output_dir: str | Path,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[int, Path], None] | None = None,
) -> TrainingOutcome:
    """Train a LoRA adapter on `base_model_dir`; the adapter lands in output_dir/adapter in peft format.

    Raises InvalidSettingsError (with per-field messages) for unusable settings or examples,
    CheckpointMismatchError when output_dir belongs to another job, and BrokenWeightsError when a
    step leaves the LoRA weights unchanged or non-finite. `should_stop` is polled before every
    step; when it returns True the run stops and returns status "cancelled" (its newest
    checkpoint stays, so calling again resumes).
    """
    base_model_dir = Path(base_model_dir).resolve()
    output = Path(output_dir)
    errors = validate_job(
        lora=lora,
        train=train,
        dp=dp,
        model_module_names=model_linear_module_names(base_model_dir),
        train_size=len(train_examples),
    )
    if errors:
        raise InvalidSettingsError(errors)
    lora = lora_for_privacy(lora, dp)
    check_examples(train_examples, field="train_examples")
    check_examples(eval_examples, field="eval_examples", allow_empty=True)
    settings = {"lora": lora.to_dict(), "train": train.to_dict(), "dp": dp.to_dict() if dp else None}
    fingerprint = outputs.job_fingerprint(
        base_model_dir=base_model_dir,
        train_examples=train_examples,
        eval_examples=eval_examples,
        settings=settings,
    )
    finished = outputs.recorded_outcome(output, fingerprint)
    if finished is not None:
        return TrainingOutcome(**finished)

    tokenizer = load_tokenizer(base_model_dir)
    encoded_train = encode_examples(
        tokenizer, train_examples, max_seq_len=train.max_seq_len, field="train_examples"
    )
    encoded_eval = encode_examples(
        tokenizer, eval_examples, max_seq_len=train.max_seq_len, field="eval_examples"
    )

    import torch

    # The run reseeds torch's global generator every step (LoRA dropout draws from it); fork
    # it so the calling worker's random state is the same afterwards.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # opacus' backward hooks on LoRA layers whose inputs need no gradient: expected here.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        job = _TrainingRun(base_model_dir, encoded_train, encoded_eval, lora, train, dp, output, fingerprint)
        return job.run(
            pad_id=pad_token_id(tokenizer),
            on_progress=on_progress,
            should_stop=should_stop,
            on_checkpoint=on_checkpoint,
        )


class _TrainingRun:
    def __init__(self, base_model_dir, encoded_train, encoded_eval, lora, train, dp, output, fingerprint):
        import torch
        from peft import get_peft_model

        self.train_set, self.eval_set = encoded_train, encoded_eval
        self.lora, self.settings, self.dp = lora, train, dp
        self.output, self.fingerprint = output, fingerprint
        self.base_model_dir = base_model_dir
        self.steps_per_epoch = math.ceil(len(encoded_train) / train.batch_size)
        self.total_steps = train.epochs * self.steps_per_epoch
        if train.max_steps is not None:
            self.total_steps = min(self.total_steps, train.max_steps)

        torch.manual_seed(train.seed)  # LoRA's A matrices start random; B starts at zero
        model = load_model(base_model_dir)
        self.model = get_peft_model(model, peft_lora_config(lora))
        self.model.train()
        self.device = next(self.model.parameters()).device
        self.trainable = {name: p for name, p in self.model.named_parameters() if p.requires_grad}
        self.total_parameters = sum(p.numel() for p in self.model.parameters())
        self.trainable_parameters = sum(p.numel() for p in self.trainable.values())
        self.optimizer = torch.optim.AdamW(
            list(self.trainable.values()), lr=train.learning_rate, weight_decay=0.0
        )
        self.private = None
        if dp is not None:
            self.private = privacy.make_private(
                self.model,
                self.optimizer,
                dp=dp,
                train_size=len(encoded_train),
                batch_size=train.batch_size,
                total_steps=self.total_steps,
            )
            self.optimizer = self.private.optimizer

    # --- the loop -------------------------------------------------------------------------
    def run(self, *, pad_id, on_progress, should_stop, on_checkpoint) -> TrainingOutcome:
        self.output.mkdir(parents=True, exist_ok=True)
        checkpoint_root = self.output / CHECKPOINT_FOLDER
        state = self._resume(checkpoint_root)
        resumed_from = state["step"] or None
        session_started = time.perf_counter()
        session_tokens, session_steps = 0, 0
        status: Status = "completed"
        try:
            for step in range(state["step"] + 1, self.total_steps + 1):
                if should_stop is not None and should_stop():
                    status = "cancelled"
                    break
                tokens, loss = self._step(step, state["seed"], pad_id)
                session_tokens += tokens
                session_steps += 1
                state["step"] = step
                state["tokens_seen"] += tokens
                if loss is not None:
                    state["recent_losses"] = [*state["recent_losses"], loss][-RECENT_LOSS_WINDOW:]
                evaluated = step % self.settings.checkpoint_every == 0 or step == self.total_steps
                if evaluated and self.eval_set:
                    state["eval_loss"] = self._eval_loss(pad_id)
                session_seconds = time.perf_counter() - session_started
                if on_progress is not None:
                    on_progress(
                        TrainingProgress(
                            step=step,
                            total_steps=self.total_steps,
                            epoch=step / self.steps_per_epoch,
                            train_loss=_mean(state["recent_losses"]),
                            eval_loss=state["eval_loss"] if evaluated else None,
                            tokens_per_s=session_tokens / max(session_seconds, 1e-9),
                            eta_s=(self.total_steps - step) * session_seconds / session_steps,
                            spent_epsilon=self._spent_epsilon(),
                        )
                    )
                if step % self.settings.checkpoint_every == 0 and step < self.total_steps:
                    path = self._save_checkpoint(
                        checkpoint_root,
                        state,
                        elapsed=state["seconds"] + time.perf_counter() - session_started,
                    )
                    if on_checkpoint is not None:
                        on_checkpoint(step, path)
        finally:
            if self.private is not None:
                self.private.hooks.cleanup()

        outcome = TrainingOutcome(
            status=status,
            steps=state["step"],
            total_steps=self.total_steps,
            train_loss=_mean(state["recent_losses"]),
            eval_loss=state["eval_loss"],
            spent_epsilon=self._spent_epsilon(),
            noise_multiplier=self.private.noise_multiplier if self.private else None,
            adapter_dir=None,
            trainable_parameters=self.trainable_parameters,
            total_parameters=self.total_parameters,
            tokens_seen=state["tokens_seen"],
            seconds=round(state["seconds"] + time.perf_counter() - session_started, 3),
            resumed_from_step=resumed_from,
        )
        if status == "cancelled":
            return outcome
        record = {
            "base_model_dir": str(self.base_model_dir),
            "lora": self.lora.to_dict(),
            "train": self.settings.to_dict(),
            "dp": self.dp.to_dict() if self.dp else None,
            "outcome": outcome.to_dict(),
        }
        adapter_dir = outputs.save_adapter(self.model, self.output, record=record)
        outcome = TrainingOutcome(**{**outcome.to_dict(), "adapter_dir": str(adapter_dir)})
        outputs.record_outcome(self.output, self.fingerprint, outcome.to_dict())
        # The final adapter supersedes the checkpoints, which also hold the DP sampling secret.
        checkpoints.remove_checkpoints(checkpoint_root)
        return outcome

    def _step(self, step: int, seed: int, pad_id: int) -> tuple[int, float | None]:
        """One optimizer step; returns (tokens in the batch, loss or None for an empty DP batch)."""
        import torch

        torch.manual_seed(privacy.derive_seed(seed, "dropout", step))
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate(step)
        indices = self._batch_indices(step, seed)
        before = [p.detach().clone() for p in self.trainable.values()]
        tokens, loss_value = 0, None
        if indices:
            batch = collate([self.train_set[i] for i in indices], pad_id=pad_id, device=self.device)
            loss = training_loss(self.model, batch)
            loss.backward()
            if self.private is None:
                torch.nn.utils.clip_grad_norm_(list(self.trainable.values()), PLAIN_MAX_GRAD_NORM)
            tokens, loss_value = int(batch["attention_mask"].sum()), float(loss.detach())
        else:
            privacy.prepare_empty_batch(self.trainable.values())
        if self.private is not None:
            self.private.noise_generator.manual_seed(privacy.derive_seed(seed, "noise", step))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._check_weights(step, before)
        return tokens, loss_value

    def _batch_indices(self, step: int, seed: int) -> list[int]:
        if self.private is not None:
            return privacy.poisson_batch(
                len(self.train_set), self.private.sample_rate, seed=privacy.derive_seed(seed, "batch", step)
            )
        import torch

        epoch, position = divmod(step - 1, self.steps_per_epoch)
        generator = torch.Generator().manual_seed(privacy.derive_seed(seed, "epoch-order", epoch))
        order = torch.randperm(len(self.train_set), generator=generator).tolist()
        size = self.settings.batch_size
        return order[position * size : (position + 1) * size]

    def _learning_rate(self, step: int) -> float:
        """Linear warm-up over the first 5% of steps, then cosine decay to 10% (never 0: see _check_weights)."""
        warmup = max(1, round(0.05 * self.total_steps))
        if step <= warmup:
            return self.settings.learning_rate * step / warmup
        progress = (step - warmup) / max(1, self.total_steps - warmup)
        return self.settings.learning_rate * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))

    def _check_weights(self, step: int, before) -> None:
        import torch

        after = list(self.trainable.values())
        broken = [name for name, p in self.trainable.items() if not bool(torch.isfinite(p).all())]
        if broken:
            raise BrokenWeightsError(
                f"Step {step} left non-finite values in {len(broken)} LoRA weight(s), e.g. {broken[0]}; "
                "lower the learning rate (or, with DP, check the clipping norm) and start the job again."
            )
        if all(torch.equal(old, new) for old, new in zip(before, after, strict=True)):
            raise BrokenWeightsError(
                f"Step {step} did not change any LoRA weight: the optimizer is not updating the adapter "
                "(a known opacus + peft failure, opacus issue #820). The job's adapter would be unusable."
            )

    def _eval_loss(self, pad_id: int) -> float:
        return mean_token_loss(
            self.model, self.eval_set, batch_size=self.settings.eval_batch_size, pad_id=pad_id
        )

    def _spent_epsilon(self) -> float | None:
        if self.private is None:
            return None
        return privacy.spent_epsilon(self.private.accountant.history, self.dp.delta)

    # --- checkpoints and the final adapter ----------------------------------------------
    def _resume(self, checkpoint_root: Path) -> dict[str, Any]:
        fresh = {
            "step": 0,
            "seed": privacy.new_secret_seed() if self.dp is not None else self.settings.seed,
            "tokens_seen": 0,
            "recent_losses": [],
            "eval_loss": None,
            "seconds": 0.0,
        }
        path = checkpoints.latest_checkpoint_path(checkpoint_root)
        if path is None:
            return fresh
        saved = checkpoints.load_checkpoint(path, device=self.device)
        if saved.state.get("fingerprint") != self.fingerprint:
            raise CheckpointMismatchError(
                f"{self.output} holds checkpoints of a different job (other data or settings); "
                "use a new output directory or delete the old one."
            )
        with _no_grad():
            for name, parameter in self.trainable.items():
                parameter.copy_(saved.weights[name])
        self.optimizer.load_state_dict(saved.optimizer_state)
        if self.private is not None:
            self.private.accountant.history = [tuple(entry) for entry in saved.state["accountant_history"]]
        return {key: saved.state[key] for key in fresh}

    def _save_checkpoint(self, root: Path, state: dict[str, Any], *, elapsed: float) -> Path:
        history = self.private.accountant.history if self.private is not None else []
        return checkpoints.save_checkpoint(
            root,
            step=state["step"],
            weights=dict(self.trainable),
            optimizer_state=self.optimizer.state_dict(),
            state={
                **state,
                "seconds": elapsed,
                "fingerprint": self.fingerprint,
                "accountant_history": [list(entry) for entry in history],
            },
        )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _no_grad():
    import torch

    return torch.no_grad()
