"""The worker side of a fine-tune job: claim it, keep its heartbeat, report progress, finish it.

`job_run` is all the Celery task calls. It claims the job with one conditional UPDATE (queued,
and carrying this message's task id, becomes running with a fresh fencing token), so a message
delivered twice, or a stale one delivered after the job was requeued, does nothing. Every later
write names the token: once the reaper has given the job to another execution, this one's
writes match no row, it notices within a second and stops without touching the job.

A background thread refreshes the heartbeat every TUNING_HEARTBEAT_SECONDS, also during
evaluation, when no progress is reported. Progress (step, losses, tokens/s, ETA, spent epsilon,
the loss curve and a log) is written at most every TUNING_PROGRESS_SECONDS, and always at
evaluation steps, checkpoints and the last step. Cancellation is polled once a second.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from access.enforcement import check, trail_denial
from access.errors import PolicyDenied
from inference import datasets
from inference.registry import adapter_register
from inference.tuning import conf, snapshots
from inference.tuning.errors import InvalidSettingsError, TuningError
from inference.tuning.job_evaluation import evaluate_adapter
from inference.tuning.lifecycle import checkpoint_step, log_line, record_job_event, trim_log
from inference.tuning.models import FineTuneJob
from inference.tuning.services import field_errors
from inference.tuning.training import run_training

logger = logging.getLogger(__name__)

TASK_ACTOR = "task:tuning.run_job"
CANCEL_POLL_SECONDS = 1.0
MAX_CURVE_POINTS = 1000


def job_run(*, job_id: int, task_id: str) -> str:
    """Run the job if this message may claim it. Returns what happened: skipped, succeeded,
    cancelled, failed, or lost (another execution took the job over)."""
    job = _claim(job_id, task_id)
    if job is None:
        logger.info(
            "Fine-tune job %s: message %s does not claim it (not queued under that task id).", job_id, task_id
        )
        return "skipped"
    heartbeat = _Heartbeat(job.pk, job.claim_token, conf.heartbeat_seconds())
    heartbeat.start()
    try:
        return _execute(job)
    finally:
        heartbeat.stop()


def _claim(job_id: int, task_id: str) -> FineTuneJob | None:
    token, now = uuid.uuid4().hex, timezone.now()
    with transaction.atomic():
        claimed = FineTuneJob.objects.filter(
            pk=job_id, status=FineTuneJob.Status.QUEUED, task_id=task_id
        ).update(status=FineTuneJob.Status.RUNNING, claim_token=token, heartbeat_at=now, error="")
        if not claimed:
            return None
        job = FineTuneJob.objects.select_related("base_model", "created_by").get(pk=job_id)
        job.attempts += 1
        job.started_at = job.started_at or now
        resume_step = checkpoint_step(job)
        # Steps after the checkpoint are redone: progress and curve go back to it.
        job.step = resume_step or 0
        job.loss_curve = [point for point in job.loss_curve if resume_step and point["step"] <= resume_step]
        worker = f"{socket.gethostname()} pid {os.getpid()}"
        job.log = trim_log(
            job.log
            + log_line(
                f"Attempt {job.attempts} on {worker}: "
                + (f"resuming from the checkpoint at step {resume_step}." if resume_step else "starting.")
            )
        )
        job.save(update_fields=["attempts", "started_at", "step", "loss_curve", "log"])
        record_job_event(
            job,
            "resumed" if resume_step else "started",
            actor=TASK_ACTOR,
            payload={"task_id": task_id, "from_step": resume_step, "worker": worker},
        )
    return job


def _execute(job: FineTuneJob) -> str:
    reporter = _Reporter(job)
    try:
        # The job may run long after it was queued: the creator must still be allowed.
        for resource in job.policy_resources():
            check(job.created_by, "fine_tune", resource, actor=TASK_ACTOR)
        split = snapshots.snapshot_load(storage_key=job.storage_key, expected_hash=job.dataset_hash)
        outcome = run_training(
            base_model_dir=job.base_model.path,
            train_examples=[example.as_dict() for example in split.train],
            eval_examples=[example.as_dict() for example in split.eval],
            lora=job.lora_settings(),
            train=job.train_settings(),
            dp=job.dp_settings(),
            output_dir=job.output_dir,
            on_progress=reporter.progress,
            should_stop=reporter.should_stop,
            on_checkpoint=reporter.checkpoint,
        )
        if reporter.stop_reason == "lost":
            return "lost"
        if outcome.status == "cancelled":
            return _finish(job, reporter, FineTuneJob.Status.CANCELLED, outcome=outcome)
        reporter.note(
            f"Training done in {outcome.seconds:.0f} s; evaluating on {len(split.eval)} held-out examples."
        )
        reporter.write()
        evaluation = evaluate_adapter(
            base_model_dir=job.base_model.path,
            adapter_dir=outcome.adapter_dir,
            eval_examples=split.eval,
            max_seq_len=job.max_seq_len,
            task_metric=_task_metric(job, reporter),
        )
        return _finish(job, reporter, FineTuneJob.Status.SUCCEEDED, outcome=outcome, evaluation=evaluation)
    except PolicyDenied as exc:
        trail_denial(exc)
        error = f"{job.created_by.get_username()} may no longer fine-tune this model or data: {exc}"
    except InvalidSettingsError as exc:
        error = "; ".join(f"{name}: {message}" for name, message in field_errors(exc.errors).items())
    except (TuningError, ValidationError) as exc:
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    except Exception as exc:  # anything else still ends the job clearly, with the trace in its log
        logger.exception("Fine-tune job %s failed", job.pk)
        error = f"Unexpected {type(exc).__name__}: {exc}"
        reporter.note(traceback.format_exc(limit=8))
    return _finish(job, reporter, FineTuneJob.Status.FAILED, error=error)


def _task_metric(job: FineTuneJob, reporter: _Reporter):
    try:
        return getattr(datasets.get(job.data_adapter), "task_metric", None)
    except LookupError:
        reporter.note(f"Data adapter {job.data_adapter} is not registered in this worker: no task metric.")
        return None


def _finish(
    job: FineTuneJob, reporter: _Reporter, status: str, *, outcome=None, evaluation=None, error=""
) -> str:
    """End the job (if this execution still holds it) and trail the end, in one transaction."""
    try:
        with transaction.atomic():
            locked = FineTuneJob.objects.select_for_update().select_related("base_model").get(pk=job.pk)
            if locked.claim_token != reporter.token or locked.status not in FineTuneJob.CLAIMED:
                return "lost"
            if status == FineTuneJob.Status.SUCCEEDED and locked.status == FineTuneJob.Status.CANCELLING:
                status = FineTuneJob.Status.CANCELLED  # the cancel came in during evaluation: honour it
            payload = {}
            if outcome is not None:
                locked.outcome = outcome.to_dict()
                locked.spent_epsilon = outcome.spent_epsilon
                locked.step, locked.total_steps = outcome.steps, outcome.total_steps
                locked.train_loss, locked.eval_loss = outcome.train_loss, outcome.eval_loss
                payload = {"steps": outcome.steps, "total_steps": outcome.total_steps,
                           "spent_epsilon": outcome.spent_epsilon, "resumed_from_step": outcome.resumed_from_step}  # fmt: skip
            if status == FineTuneJob.Status.SUCCEEDED:
                locked.evaluation = evaluation
                locked.eta_s = 0
                locked.adapter = adapter_register(
                    base_model=locked.base_model,
                    name=locked.adapter_name,
                    path=outcome.adapter_dir,
                    source=f"fine-tune job {locked.pk}",
                    evaluation=_adapter_evaluation(locked, evaluation),
                )
                payload.update(adapter_id=locked.adapter.pk, evaluation=evaluation)
                reporter.note(f"Succeeded: adapter {locked.adapter_name} registered as a candidate.")
            elif status == FineTuneJob.Status.CANCELLED:
                reporter.note(f"Cancelled at step {locked.step}; the newest checkpoint is kept for a retry.")
            else:
                locked.error = error
                payload["error"] = error
                reporter.note(f"Failed: {error}")
            locked.status, locked.finished_at = status, timezone.now()
            locked.log, locked.loss_curve = reporter.log, reporter.curve
            locked.save()
            outcome_label = "failed" if status == FineTuneJob.Status.FAILED else "succeeded"
            record_job_event(locked, status, actor=TASK_ACTOR, outcome=outcome_label, payload=payload)
    except ValidationError as exc:  # the adapter name was taken while the job ran
        return _finish(
            job, reporter, FineTuneJob.Status.FAILED, error=f"adapter_name: {' '.join(exc.messages)}"
        )
    return status


def _adapter_evaluation(job: FineTuneJob, evaluation: dict) -> dict:
    """What a promotion decision rests on; the trail copies it when the adapter is promoted."""
    return {
        **evaluation,
        "job_id": job.pk,
        "data_adapter": job.data_adapter,
        "dataset_hash": job.dataset_hash,
        "train_examples": job.dataset_train_examples,
        "dp": {
            "target_epsilon": job.dp_target_epsilon,
            "delta": job.dp_delta,
            "spent_epsilon": job.spent_epsilon,
        }
        if job.dp_enabled
        else None,
    }


class _Reporter:
    """Progress, log and cancellation of one execution, written under its fencing token."""

    def __init__(self, job: FineTuneJob):
        self.job_id, self.token = job.pk, job.claim_token
        self.log, self.curve = job.log, list(job.loss_curve)
        self.fields: dict = {}
        self.interval = conf.progress_seconds()
        self.last_write = self.last_poll = float("-inf")
        self.stop_reason: str | None = None  # "cancel" or "lost"

    def note(self, message: str) -> None:
        self.log = trim_log(self.log + log_line(message))

    def progress(self, report) -> None:
        self.fields.update(
            step=report.step, total_steps=report.total_steps, train_loss=report.train_loss,
            tokens_per_s=report.tokens_per_s, eta_s=report.eta_s, spent_epsilon=report.spent_epsilon,
        )  # fmt: skip
        if report.eval_loss is not None:
            self.fields["eval_loss"] = report.eval_loss
        due = time.monotonic() - self.last_write >= self.interval
        if not (due or report.eval_loss is not None or report.step == report.total_steps):
            return
        self.curve.append(
            {"step": report.step, "train_loss": report.train_loss, "eval_loss": report.eval_loss}
        )
        if len(self.curve) > MAX_CURVE_POINTS:
            # Thin the history, keeping every evaluation point: the chart's shape survives.
            self.curve = [p for i, p in enumerate(self.curve) if p["eval_loss"] is not None or i % 2 == 0]
        parts = [f"step {report.step}/{report.total_steps}"]
        if report.train_loss is not None:
            parts.append(f"train loss {report.train_loss:.4f}")
        if report.eval_loss is not None:
            parts.append(f"eval loss {report.eval_loss:.4f}")
        parts.append(f"{report.tokens_per_s:.0f} tokens/s")
        if report.spent_epsilon is not None:
            parts.append(f"epsilon spent {report.spent_epsilon:.3f}")
        self.note(", ".join(parts))
        self.write()

    def checkpoint(self, step: int, path) -> None:
        self.note(f"Checkpoint saved at step {step}.")
        self.write()

    def write(self) -> None:
        written = FineTuneJob.objects.filter(pk=self.job_id, claim_token=self.token).update(
            **self.fields, loss_curve=self.curve, log=self.log, heartbeat_at=timezone.now()
        )
        self.last_write = time.monotonic()
        if not written:
            self.stop_reason = "lost"

    def should_stop(self) -> bool:
        if self.stop_reason is not None:
            return True
        if time.monotonic() - self.last_poll < CANCEL_POLL_SECONDS:
            return False
        self.last_poll = time.monotonic()
        row = FineTuneJob.objects.filter(pk=self.job_id).values("status", "claim_token").first()
        if row is None or row["claim_token"] != self.token:
            self.stop_reason = "lost"
        elif row["status"] == FineTuneJob.Status.CANCELLING:
            self.stop_reason = "cancel"
        return self.stop_reason is not None


class _Heartbeat(threading.Thread):
    def __init__(self, job_id: int, token: str, interval: float):
        super().__init__(name=f"tuning-heartbeat-{job_id}", daemon=True)
        self.job_id, self.token, self.interval = job_id, token, interval
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    FineTuneJob.objects.filter(
                        pk=self.job_id, claim_token=self.token, status__in=FineTuneJob.CLAIMED
                    ).update(heartbeat_at=timezone.now())
                except Exception:  # a busy database must not end the job; the next beat retries
                    logger.warning("Heartbeat of fine-tune job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=self.interval + 5)
