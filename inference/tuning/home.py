"""The fine-tuning home-page panel: the ML engineer's most recent jobs with their state."""

from __future__ import annotations

from django.urls import reverse

from inference.tuning.selectors import jobs_for
from portal.homes import HomeRow

RECENT = 5


def recent_jobs(user) -> list[HomeRow]:
    rows = []
    for job in jobs_for(user).order_by("-created_at", "-pk")[:RECENT]:
        progress = f"step {job.step} / {job.total_steps}" if job.total_steps else "not started"
        rows.append(
            HomeRow(
                label=f"Job {job.pk}: {job.adapter_name} on {job.base_model.name}",
                url=reverse("tuning:job_detail", args=[job.pk]),
                detail=f"{job.data_adapter} · {progress}",
                badge=job.get_status_display(),
            )
        )
    return rows
