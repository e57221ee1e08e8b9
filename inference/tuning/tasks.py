"""Celery tasks of the tuning app. Each receives ids, and calls one service."""

from __future__ import annotations

from celery import shared_task

from inference.tuning.runner import job_run
from inference.tuning.services import RUN_JOB_TASK, jobs_reap


@shared_task(name=RUN_JOB_TASK, bind=True)
def run_job(self, job_id: int) -> str:
    """Train fine-tune job `job_id`, if this message (its task id) may claim it."""
    return job_run(job_id=job_id, task_id=self.request.id)


@shared_task(name="tuning.reap_jobs")
def reap_jobs() -> dict[str, list[int]]:
    """Requeue or fail jobs whose worker stopped answering; resend messages of jobs queued too long.
    Scheduled in CELERY_BEAT_SCHEDULE (every minute)."""
    return jobs_reap()
