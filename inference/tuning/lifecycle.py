"""What the service and the worker both write about a job: its trail events, its log, its resume point."""

from __future__ import annotations

from pathlib import Path

from django.utils import timezone

from audit.services import record
from inference.tuning import checkpoints
from inference.tuning.models import FineTuneJob
from inference.tuning.training import CHECKPOINT_FOLDER

LOG_MAX_LINES = 400  # a job's log keeps its newest lines


def record_job_event(
    job: FineTuneJob, event: str, *, actor, outcome: str = "succeeded", payload=None, policy: str = ""
) -> None:
    """Trail one state change of `job`; call it inside the transaction that makes the change.

    `policy`: the access rule(s) that allowed a person's request (creation, cancel, retry).
    """
    record(
        actor=actor,
        action=f"fine_tune_job.{event}",
        resource_type="fine_tune_job",
        resource_id=job.pk,
        outcome=outcome,
        policy=policy,
        payload={
            "status": job.status,
            "base_model": job.base_model.name,
            "adapter_name": job.adapter_name,
            "data_adapter": job.data_adapter,
            "dataset_hash": job.dataset_hash,
            "attempt": job.attempts,
            **(payload or {}),
        },
    )


def checkpoint_step(job: FineTuneJob) -> int | None:
    """The step of the job's newest complete checkpoint, which a new execution resumes from."""
    if not job.output_dir:
        return None
    path = checkpoints.latest_checkpoint_path(Path(job.output_dir) / CHECKPOINT_FOLDER)
    return int(path.name.removeprefix("step-")) if path is not None else None


def log_line(message: str) -> str:
    return f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"


def trim_log(log: str) -> str:
    lines = log.splitlines(keepends=True)
    return "".join(lines[-LOG_MAX_LINES:])
