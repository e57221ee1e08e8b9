"""Writes of the tuning app: create, cancel, retry and reap fine-tune jobs; promote and demote adapters.

Every job state change is written to the decision trail in the same transaction as the change
(actions `fine_tune_job.<event>`: created, started, resumed, cancel_requested, cancelled,
requeued, retried, failed, succeeded). The worker side of a job (claiming it, progress,
finishing it) lives in inference.tuning.runner.

Delivery: a job is sent to Celery after its transaction commits, under a task id stored on the
job. Only a message carrying the job's current task id can claim it, and only while it is
queued, so a message delivered twice never runs a job twice. A worker that dies leaves a job
whose heartbeat goes stale; `jobs_reap` (a periodic task) requeues it to resume from its newest
checkpoint, or fails it after TUNING_MAX_ATTEMPTS executions. Nothing stays "running" forever.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from inference import datasets
from inference.models import LanguageModel, LoraAdapter, model_name_validator
from inference.registry import adapter_set_status
from inference.tuning import conf, snapshots
from inference.tuning.errors import InvalidSettingsError
from inference.tuning.lifecycle import checkpoint_step, log_line, record_job_event
from inference.tuning.lora_config import (
    DPSettings,
    LoraSettings,
    TrainSettings,
    lora_for_privacy,
    validate_job,
)
from inference.tuning.models import FineTuneJob, new_storage_key
from inference.tuning.selectors import model_module_names

logger = logging.getLogger(__name__)

RUN_JOB_TASK = "tuning.run_job"  # inference.tuning.tasks.run_job
REAPER_ACTOR = "task:tuning.reap_jobs"

# The training core names settings as its dataclasses do; the API, the form and the job row
# prefix the LoRA and DP ones. Errors always name the field the person filled in.
FIELD_NAMES = {
    "r": "lora_r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "target_epsilon": "dp_target_epsilon",
    "delta": "dp_delta",
    "max_grad_norm": "dp_max_grad_norm",
    "train_examples": "data_adapter",
    "eval_examples": "data_adapter",
}


class JobInputError(InvalidSettingsError):
    """Input a person must fix: `errors` maps each field (as the API and the form name it) to a message."""


class JobStateError(Exception):
    """The job's (or adapter's) current state does not allow the action, e.g. cancelling a finished job."""


def field_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """The training core's {setting: message} with each setting named as the API and the form name it."""
    return {FIELD_NAMES.get(name, name): message for name, message in errors.items()}


def _authorize_fine_tune(user, resources, actor) -> str:
    """The rules that let `user` fine-tune every resource (model and data), comma-separated;
    PolicyDenied (403, trailed) for the first one refused. Called before any transaction opens, so a
    denial's trail event never rolls back with it."""
    rules = [check(user, "fine_tune", resource, actor=actor).policy or "" for resource in resources]
    return ", ".join(dict.fromkeys(rule for rule in rules if rule))


# --- creating ---------------------------------------------------------------------------------
def job_create_authorize(*, user, base_model: str, data_adapter: str, actor=None):
    """The access check job_create makes, callable on its own (the API makes it before asking
    whether the queue is up, so a caller who may not fine-tune gets 403, not 503): fine_tune on
    the model and on the data adapter's resource. Returns (model, data adapter, rules that allowed
    it); JobInputError for an unknown name, PolicyDenied (403, trailed) when refused."""
    actor = user if actor is None else actor
    model = _tunable_model(base_model)
    source = _data_adapter(data_adapter)
    policy = _authorize_fine_tune(user, dict.fromkeys([f"model:{model.name}", source.resource]), actor)
    return model, source, policy


def job_create(
    *,
    user,
    base_model: str,
    data_adapter: str,
    adapter_name: str,
    lora: LoraSettings,
    train: TrainSettings,
    dp: DPSettings | None = None,
    filters: Mapping[str, Any] | None = None,
    actor=None,
) -> FineTuneJob:
    """Check, snapshot the data `user` may see, create the job and queue it.

    Raises JobInputError (400: unknown model or data adapter, bad settings, empty data set) or
    PolicyDenied (403, trailed) when the policy does not let `user` fine-tune the model and the
    data adapter's resource. Nothing is written unless the job is created.
    """
    actor = user if actor is None else actor
    model, source, policy = job_create_authorize(
        user=user, base_model=base_model, data_adapter=data_adapter, actor=actor
    )

    errors = _adapter_name_errors(model, adapter_name)
    if filters is None:
        filters = {}
    if not isinstance(filters, Mapping):
        errors["filters"] = "Filters must be an object of the data adapter's filter names and values."
    errors.update(
        field_errors(
            validate_job(lora=lora, train=train, dp=dp, model_module_names=model_module_names(model))
        )
    )
    if (
        model.context_length
        and isinstance(train.max_seq_len, int)
        and train.max_seq_len > model.context_length
    ):
        errors["max_seq_len"] = f"{model.name} reads at most {model.context_length} tokens; use that or less."
    if errors:
        raise JobInputError(errors)
    try:
        snapshot = snapshots.snapshot_take(data_adapter=source, user=user, filters=filters)
    except InvalidSettingsError as exc:
        raise JobInputError(field_errors(exc.errors)) from exc
    if dp is not None and (dp_errors := dp.validate(train_size=len(snapshot.split.train))):
        raise JobInputError(field_errors(dp_errors))
    log = log_line(f"Created by {user.get_username()}: {snapshot.query}")
    if dp is not None and lora.dropout:
        log += log_line(f"LoRA dropout {lora.dropout} set to 0: differential privacy runs without dropout.")
        lora = lora_for_privacy(lora, dp)

    storage_key = new_storage_key()
    # Written before the transaction so the write lock is not held during disk I/O; a snapshot
    # left by a failed transaction is unreferenced and opens under no other job's key.
    snapshots.snapshot_save(storage_key=storage_key, snapshot=snapshot)
    split = snapshot.split
    with transaction.atomic():
        job = FineTuneJob.objects.create(
            base_model=model,
            data_adapter=source.name,
            data_adapter_resource=source.resource,
            filters=dict(filters),
            adapter_name=adapter_name,
            lora_r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            epochs=train.epochs,
            max_steps=train.max_steps,
            learning_rate=train.learning_rate,
            batch_size=train.batch_size,
            seed=train.seed,
            checkpoint_every=train.checkpoint_every,
            max_seq_len=train.max_seq_len,
            dp_enabled=dp is not None,
            dp_target_epsilon=dp.target_epsilon if dp else None,
            dp_delta=dp.delta if dp else None,
            dp_max_grad_norm=dp.max_grad_norm if dp else None,
            dataset_examples=snapshot.size,
            dataset_train_examples=len(split.train),
            dataset_eval_examples=len(split.eval),
            dataset_hash=split.content_hash,
            dataset_source_ids=split.source_ids,
            dataset_query=snapshot.query,
            created_by=user,
            storage_key=storage_key,
            output_dir=str(conf.output_root() / model.name / f"{adapter_name}-{storage_key[:12]}"),
            log=log,
        )
        record_job_event(
            job,
            "created",
            actor=actor,
            policy=policy,
            payload={
                "settings": {"lora": lora.to_dict(), "train": train.to_dict(), "dp": dp.to_dict() if dp else None},
                "data_adapter_resource": source.resource,
                "filters": job.filters,
                "dataset": {"examples": snapshot.size, "train": len(split.train), "eval": len(split.eval),
                            "content_hash": split.content_hash, "query": snapshot.query},
            },
        )  # fmt: skip
        _enqueue(job)
    return job


def _tunable_model(name: str) -> LanguageModel:
    model = LanguageModel.objects.filter(name=name, is_active=True).first()
    if model is None:
        raise JobInputError({"base_model": f"No active model is named {name!r}."})
    if model.backend != LanguageModel.Backend.LOCAL:
        raise JobInputError(
            {"base_model": f"{name} is served by a remote server; fine-tuning needs a local model directory."}
        )
    return model


def _data_adapter(name: str):
    try:
        return datasets.get(name)
    except LookupError as exc:
        raise JobInputError({"data_adapter": str(exc)}) from None


def _adapter_name_errors(model: LanguageModel, adapter_name: str, *, exclude_job: int | None = None) -> dict:
    try:
        model_name_validator(adapter_name)
    except ValidationError as exc:
        return {"adapter_name": " ".join(exc.messages)}
    if LoraAdapter.objects.filter(base_model=model, name=adapter_name).exists():
        return {
            "adapter_name": f"{model.name} already has an adapter named {adapter_name!r}; choose another name."
        }
    pending = FineTuneJob.objects.filter(
        base_model=model, adapter_name=adapter_name, status__in=FineTuneJob.ACTIVE
    ).exclude(pk=exclude_job)
    if pending.exists():
        return {
            "adapter_name": f"Job {pending.first().pk} is already training {adapter_name!r} on {model.name}."
        }
    return {}


# --- cancelling and retrying ------------------------------------------------------------------
def job_cancel(*, user, job: FineTuneJob, actor=None) -> FineTuneJob:
    """Cancel a queued job at once; ask the worker to stop a running one (it stops within seconds)."""
    actor = user if actor is None else actor
    policy = _authorize_fine_tune(user, job.policy_resources(), actor)
    with transaction.atomic():
        locked = FineTuneJob.objects.select_for_update().select_related("base_model").get(pk=job.pk)
        if locked.status == FineTuneJob.Status.QUEUED:
            locked.status = FineTuneJob.Status.CANCELLED
            locked.finished_at = timezone.now()
            locked.log += log_line(f"Cancelled by {user.get_username()} before it started.")
            locked.save(update_fields=["status", "finished_at", "log"])
            record_job_event(locked, "cancelled", actor=actor, policy=policy, payload={"while": "queued"})
        elif locked.status == FineTuneJob.Status.RUNNING:
            locked.status = FineTuneJob.Status.CANCELLING
            locked.log += log_line(f"Cancel requested by {user.get_username()}.")
            locked.save(update_fields=["status", "log"])
            record_job_event(
                locked, "cancel_requested", actor=actor, policy=policy, payload={"step": locked.step}
            )
        elif locked.status != FineTuneJob.Status.CANCELLING:
            raise JobStateError(f"Job {locked.pk} has already {locked.status}; there is nothing to cancel.")
    return locked


def job_retry(*, user, job: FineTuneJob, actor=None) -> FineTuneJob:
    """Queue a failed or cancelled job again; it resumes from its newest checkpoint."""
    actor = user if actor is None else actor
    policy = _authorize_fine_tune(user, job.policy_resources(), actor)
    with transaction.atomic():
        locked = FineTuneJob.objects.select_for_update().select_related("base_model").get(pk=job.pk)
        if not locked.can_retry:
            raise JobStateError(
                f"Job {locked.pk} is {locked.status}; only failed or cancelled jobs can be retried."
            )
        if name_errors := _adapter_name_errors(locked.base_model, locked.adapter_name, exclude_job=locked.pk):
            raise JobStateError(name_errors["adapter_name"])
        previous = locked.status
        locked.status = FineTuneJob.Status.QUEUED
        locked.finished_at = None
        locked.claim_token = ""
        locked.attempts = 0  # a fresh allowance of executions against lost workers
        resume_step = checkpoint_step(locked)
        locked.log += log_line(
            f"Retried by {user.get_username()}; "
            + (
                f"resumes from the checkpoint at step {resume_step}."
                if resume_step
                else "starts from step 0."
            )
        )
        locked.save(update_fields=["status", "finished_at", "claim_token", "attempts", "log"])
        record_job_event(
            locked,
            "retried",
            actor=actor,
            policy=policy,
            payload={"previous_status": previous, "checkpoint_step": resume_step},
        )
        _enqueue(locked)
    return locked


# --- the reaper -------------------------------------------------------------------------------
def jobs_reap(*, stale_after=None, now=None) -> dict[str, list[int]]:
    """Settle jobs whose worker stopped answering: requeue (resume from the checkpoint) or fail them.

    A job held by a worker (running or cancelling) whose heartbeat is older than `stale_after`
    (TUNING_HEARTBEAT_STALE_SECONDS) lost its worker: a cancelling one is cancelled, a running one
    is requeued until it has used TUNING_MAX_ATTEMPTS executions, then failed. A job queued for
    longer than TUNING_QUEUED_RESEND_SECONDS gets its message sent again (a broker can lose a
    message taken by a worker that was killed before it started the job); a duplicate is harmless.
    """
    now = now or timezone.now()
    cutoff = now - (conf.stale_after() if stale_after is None else stale_after)
    report: dict[str, list[int]] = {"requeued": [], "failed": [], "cancelled": [], "resent": []}
    stale = FineTuneJob.objects.filter(status__in=FineTuneJob.CLAIMED, heartbeat_at__lt=cutoff)
    for pk in stale.values_list("pk", flat=True):
        with transaction.atomic():
            job = FineTuneJob.objects.select_for_update().select_related("base_model").get(pk=pk)
            if job.status not in FineTuneJob.CLAIMED or job.heartbeat_at >= cutoff:
                continue  # the worker answered, or the job finished, since the query above
            outcome = _settle_lost_job(job, now=now)
            report[outcome].append(job.pk)
    lost_after = now - conf.queued_resend_after()
    for job in FineTuneJob.objects.filter(status=FineTuneJob.Status.QUEUED, enqueued_at__lt=lost_after):
        # Conditional, so two reapers never both resend, and a job claimed meanwhile is left alone.
        if FineTuneJob.objects.filter(
            pk=job.pk, status=FineTuneJob.Status.QUEUED, task_id=job.task_id, enqueued_at__lt=lost_after
        ).update(enqueued_at=now):
            _send(job.pk, job.task_id)
            report["resent"].append(job.pk)
    return report


def _settle_lost_job(job: FineTuneJob, *, now) -> str:
    silent = f"its worker stopped answering (last heartbeat {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)"
    resume_step = checkpoint_step(job)
    payload = {"last_heartbeat": job.heartbeat_at, "attempts": job.attempts, "checkpoint_step": resume_step}
    job.claim_token = ""
    if job.status == FineTuneJob.Status.CANCELLING:
        job.status, job.finished_at = FineTuneJob.Status.CANCELLED, now
        job.log += log_line(f"Cancelled: {silent} while it was stopping.")
        job.save(update_fields=["status", "finished_at", "claim_token", "log"])
        record_job_event(job, "cancelled", actor=REAPER_ACTOR, payload=payload)
        return "cancelled"
    if job.attempts >= conf.max_attempts():
        job.status, job.finished_at = FineTuneJob.Status.FAILED, now
        job.error = f"The job failed after {job.attempts} executions: {silent}. Retry it to resume from " + (
            f"the checkpoint at step {resume_step}." if resume_step else "the start."
        )
        job.log += log_line(job.error)
        job.save(update_fields=["status", "finished_at", "claim_token", "error", "log"])
        record_job_event(
            job, "failed", actor=REAPER_ACTOR, outcome="failed", payload={**payload, "error": job.error}
        )
        return "failed"
    job.status = FineTuneJob.Status.QUEUED
    job.log += log_line(
        f"Requeued: {silent}; "
        + (f"it resumes from the checkpoint at step {resume_step}." if resume_step else "it starts again.")
    )
    job.save(update_fields=["status", "claim_token", "log"])
    record_job_event(job, "requeued", actor=REAPER_ACTOR, payload=payload)
    _enqueue(job)
    return "requeued"


# --- LoRA adapters ----------------------------------------------------------------------------
def adapter_status_change(*, user, adapter: LoraAdapter, status: str, reason: str = "") -> LoraAdapter:
    """Promote (serve) or demote an adapter; `promote` on its base model decides, and the trail keeps
    the evaluation the decision was based on (inference.registry.adapter_set_status)."""
    if status == LoraAdapter.Status.PROMOTED:
        check(user, "promote", f"model:{adapter.base_model.name}")
        if not (Path(adapter.path) / "adapter_config.json").is_file():
            raise JobStateError(f"The adapter's files are missing from {adapter.path}; it cannot be served.")
    if adapter.status == status:
        raise JobStateError(f"{adapter} is already {status}.")
    return adapter_set_status(actor=user, adapter=adapter, status=status, reason=reason)


def _enqueue(job: FineTuneJob) -> None:
    """Give the job a new task id and send it once the surrounding transaction commits."""
    job.task_id = str(uuid.uuid4())
    job.enqueued_at = timezone.now()
    job.save(update_fields=["task_id", "enqueued_at"])
    pk, task_id = job.pk, job.task_id
    transaction.on_commit(lambda: _send_or_leave_to_reaper(pk, task_id))


def _send_or_leave_to_reaper(job_id: int, task_id: str) -> None:
    # The job is committed: a broker that went away since the API checked it must not turn that
    # into a server error. The reaper resends a job queued longer than TUNING_QUEUED_RESEND_SECONDS.
    try:
        _send(job_id, task_id)
    except Exception:
        logger.exception(
            "Fine-tune job %s: the broker refused its message; the reaper will resend it.", job_id
        )


def _send(job_id: int, task_id: str) -> None:
    # By name: the task module calls these services, so they do not import it.
    current_app.send_task(RUN_JOB_TASK, args=[job_id], task_id=task_id, queue=conf.queue())
