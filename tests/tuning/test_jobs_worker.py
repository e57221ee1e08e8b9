"""Fine-tune jobs on real Celery workers (the configured broker): end to end into serving, cancel
mid-run, and a worker killed mid-run whose job the reaper hands to another worker to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings

from accounts.roles import Role
from audit.models import Event
from inference.tuning import services
from inference.tuning.lifecycle import checkpoint_step
from inference.tuning.models import FineTuneJob
from tests.support import MANAGE, ROOT, subprocess_env, wait_for
from tests.tuning.api_support import ADAPTERS, JOBS, call, job_body

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHAT = "/v1/chat/completions"
JOB_TIMEOUT = 300  # a generous bound for a loaded 2-core machine; jobs here take seconds


@pytest.fixture
def engineer(make_user, work_orders):
    return make_user(Role.ML_ENGINEER)


def _finished(job_id: int) -> FineTuneJob | None:
    job = FineTuneJob.objects.select_related("adapter").get(pk=job_id)
    return job if job.status in FineTuneJob.FINISHED else None


def _job_events(job_id: int) -> list[str]:
    events = Event.objects.filter(resource_type="fine_tune_job", resource_id=str(job_id)).order_by("sequence")
    return [event.action.removeprefix("fine_tune_job.") for event in events]


def _chat(client, user, model: str, prompt: str) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 24,
        "temperature": 0,
    }
    response = call(client, "post", CHAT, user, body)
    assert response.status_code == 200, response.content
    return response.json()["choices"][0]["message"]["content"]


def test_a_worker_trains_the_job_and_the_promoted_adapter_changes_chat_completions(
    client, celery_worker, served_model, engineer
):
    # A high learning rate on every projection, so the adapter changes greedy answers for sure.
    body = job_body(adapter_name="failure-codes", epochs=3, learning_rate=2e-2, lora_r=8, lora_alpha=16,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])  # fmt: skip
    response = call(client, "post", JOBS, engineer, body)
    assert response.status_code == 201, response.content
    job = wait_for(lambda: _finished(response.json()["id"]), timeout=JOB_TIMEOUT, message="the job to finish")
    assert job.status == FineTuneJob.Status.SUCCEEDED, f"{job.error}\n{job.log}"
    assert job.step == job.total_steps > 0 and job.loss_curve and job.attempts == 1
    split = job.evaluation["eval_split"]
    assert split["adapter_perplexity"] < split["base_perplexity"]  # it learned the domain's held-out examples
    assert _job_events(job.pk) == ["created", "started", "succeeded"]
    adapter = job.adapter
    assert adapter.status == "candidate" and adapter.evaluation["eval_split"] == split

    prompt = "Work order: Oil Analysis and more specific Routine Oil Analysis related to compressor. Which failure code applies?"  # fmt: skip
    before = _chat(client, engineer, "suite-demo", prompt)
    promoted = call(
        client, "post", f"{ADAPTERS}{adapter.pk}/promote/", engineer, {"reason": "beats the base"}
    )
    assert promoted.status_code == 200 and promoted.json()["status"] == "promoted"
    promotion = Event.objects.get(action="adapter.promote")
    assert (
        promotion.payload["adapter_id"] == adapter.pk and promotion.payload["evaluation"]["job_id"] == job.pk
    )

    tuned = _chat(client, engineer, f"suite-demo:{adapter.name}", prompt)
    assert tuned != before
    assert _chat(client, engineer, "suite-demo", prompt) == before  # the base model is served unchanged
    served = Event.objects.filter(action="model.predict").order_by("sequence")
    assert [e.payload["adapter_id"] for e in served] == [None, adapter.pk, None]

    demoted = call(client, "post", f"{ADAPTERS}{adapter.pk}/demote/", engineer, {"reason": "rollback"})
    assert demoted.status_code == 200 and demoted.json()["status"] == "demoted"
    body = {"model": f"suite-demo:{adapter.name}", "messages": [{"role": "user", "content": prompt}]}
    assert call(client, "post", CHAT, engineer, body).status_code == 404
    assert Event.objects.filter(action="adapter.demote", outcome="succeeded").count() == 1


def test_a_running_job_is_cancelled_and_keeps_its_checkpoint(client, celery_worker, served_model, engineer):
    job_id = call(client, "post", JOBS, engineer, job_body(adapter_name="long", epochs=60)).json()["id"]
    wait_for(
        lambda: checkpoint_step(FineTuneJob.objects.get(pk=job_id)),
        timeout=JOB_TIMEOUT,
        message="the first checkpoint",
    )
    response = call(client, "post", f"{JOBS}{job_id}/cancel/", engineer)
    assert response.status_code == 200 and response.json()["status"] == "cancelling"
    job = wait_for(lambda: _finished(job_id), timeout=30, message="the worker to stop")
    assert job.status == FineTuneJob.Status.CANCELLED
    assert job.step < job.total_steps and checkpoint_step(job) >= 4
    assert job.adapter is None
    assert _job_events(job_id) == ["created", "started", "cancel_requested", "cancelled"]


def _running_in_group(group: int) -> list[int]:
    """Processes of process group `group` that still run (a zombie awaiting its reaper runs nothing)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            running.append(int(stat.parent.name))
    return running


def _worker_in_its_own_process_group(queue: str) -> subprocess.Popen:
    """A worker (and its pool children) that can be SIGKILLed as a whole without touching pytest."""
    return subprocess.Popen(
        [sys.executable, MANAGE, "run_worker", "--concurrency=1", "--loglevel=WARNING"],
        env=subprocess_env(CELERY_QUEUE=queue),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        start_new_session=True,
    )


def test_a_killed_worker_leaves_a_job_that_resumes_from_its_checkpoint(
    client, celery_worker, served_model, engineer
):
    doomed_queue = "tuning-tests-doomed-worker"
    with override_settings(TUNING_QUEUE=doomed_queue):  # only the doomed worker reads this queue
        job_id = call(client, "post", JOBS, engineer, job_body(adapter_name="survivor", epochs=20)).json()[
            "id"
        ]
    doomed = _worker_in_its_own_process_group(doomed_queue)
    try:
        wait_for(
            lambda: checkpoint_step(FineTuneJob.objects.get(pk=job_id)),
            timeout=JOB_TIMEOUT,
            message="the first checkpoint",
        )
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
    # Nothing of the killed worker keeps running: its pool child (the trainer) went with the group.
    wait_for(
        lambda: not _running_in_group(doomed.pid), timeout=10, message="the killed worker's processes to end"
    )
    job = FineTuneJob.objects.get(pk=job_id)
    checkpoint = checkpoint_step(job)
    assert job.status == FineTuneJob.Status.RUNNING and job.step < job.total_steps
    # Its heartbeat is still fresh: the reaper does not take a job from a worker that may be alive.
    assert services.jobs_reap()["requeued"] == []
    # The worker is dead, so its heartbeat is stale by any threshold: the reaper requeues the job.
    assert services.jobs_reap(stale_after=timedelta(0))["requeued"] == [job_id]

    job = wait_for(lambda: _finished(job_id), timeout=JOB_TIMEOUT, message="the resumed job to finish")
    assert job.status == FineTuneJob.Status.SUCCEEDED, f"{job.error}\n{job.log}"
    assert job.attempts == 2 and job.outcome["resumed_from_step"] == checkpoint
    assert job.step == job.total_steps and job.adapter is not None
    assert _job_events(job_id) == ["created", "started", "requeued", "resumed", "succeeded"]
    resumed = Event.objects.get(action="fine_tune_job.resumed", resource_id=str(job_id))
    assert resumed.payload["from_step"] == checkpoint
