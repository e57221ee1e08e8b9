"""A job run in this process by the service the Celery task calls: DP budget, weight check,
evaluation, claiming, and the reaper that settles jobs whose worker died."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.roles import Role
from audit.models import Event
from inference.tuning import runner, services
from inference.tuning.lora_config import DPSettings, LoraSettings, TrainSettings
from inference.tuning.models import FineTuneJob


@pytest.fixture
def engineer(make_user, work_orders, private_tuning_dirs, in_process_jobs):
    return make_user(Role.ML_ENGINEER)


def _create(user, *, name="failure-codes", dp=None, **train):
    return services.job_create(
        user=user,
        base_model="suite-demo",
        data_adapter="tests.work_orders",
        adapter_name=name,
        filters={"limit": 60},
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(**{"batch_size": 8, "max_seq_len": 96, "checkpoint_every": 4, **train}),
        dp=dp,
    )


@pytest.mark.django_db(transaction=True)
def test_dp_job_spends_its_budget_passes_the_weight_check_and_is_evaluated(served_model, engineer):
    import torch
    from safetensors.torch import load_file

    job = _create(engineer, dp=DPSettings(target_epsilon=3.0, delta=1e-5), epochs=2, learning_rate=5e-3)
    # A message that does not carry the job's task id cannot claim it.
    assert runner.job_run(job_id=job.pk, task_id="not-this-job's-message") == "skipped"
    assert FineTuneJob.objects.get(pk=job.pk).status == FineTuneJob.Status.QUEUED

    outcome = runner.job_run(job_id=job.pk, task_id=job.task_id)
    job.refresh_from_db()
    assert outcome == "succeeded", job.error
    assert job.status == FineTuneJob.Status.SUCCEEDED and job.attempts == 1
    assert job.spent_epsilon == pytest.approx(3.0, rel=0.05)
    assert job.outcome["noise_multiplier"] > 0 and job.step == job.total_steps == job.outcome["steps"]
    # The weight sanity check ran after every step (a broken step fails the job); the saved
    # adapter is finite and trained: LoRA's B matrices start at zero and have moved.
    weights = load_file(Path(job.adapter.path) / "adapter_model.safetensors")
    assert all(bool(torch.isfinite(tensor).all()) for tensor in weights.values())
    assert all(float(tensor.abs().sum()) > 0 for name, tensor in weights.items() if "lora_B" in name)
    # Evaluation: base vs adapter on the held-out split, and the DataAdapter's own metric.
    split, metric = job.evaluation["eval_split"], job.evaluation["task_metric"]
    assert split["examples"] == job.dataset_eval_examples
    assert split["base_perplexity"] > 1 and split["adapter_perplexity"] > 1
    assert (
        metric["name"] == "failure_code_accuracy" and 0 <= metric["base"] <= 1 and 0 <= metric["adapter"] <= 1
    )
    assert (
        job.adapter.status == "candidate"
        and job.adapter.evaluation["dp"]["spent_epsilon"] == job.spent_epsilon
    )
    assert job.loss_curve and job.loss_curve[-1]["step"] == job.total_steps and "epsilon spent" in job.log
    events = [e.action for e in Event.objects.filter(resource_type="fine_tune_job").order_by("sequence")]
    assert events == ["fine_tune_job.created", "fine_tune_job.started", "fine_tune_job.succeeded"]
    succeeded = Event.objects.get(action="fine_tune_job.succeeded")
    assert succeeded.payload["adapter_id"] == job.adapter.pk and succeeded.actor_label == runner.TASK_ACTOR
    # The same message delivered again finds the job finished: it does not train twice.
    assert runner.job_run(job_id=job.pk, task_id=job.task_id) == "skipped"
    assert Event.objects.filter(action="fine_tune_job.started").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_creator_lost_the_right_fails_when_it_starts(served_model, engineer):
    job = _create(engineer, max_steps=2)
    engineer.groups.clear()
    assert runner.job_run(job_id=job.pk, task_id=job.task_id) == "failed"
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.FAILED and "may no longer fine-tune" in job.error
    assert Event.objects.filter(
        action="model.fine_tune", outcome="denied", actor_label=runner.TASK_ACTOR
    ).exists()
    assert Event.objects.get(action="fine_tune_job.failed").outcome == "failed"


@pytest.mark.django_db
def test_the_reaper_requeues_fails_or_cancels_jobs_whose_worker_went_silent(served_model, engineer, settings):
    settings.TUNING_MAX_ATTEMPTS = 2
    now = timezone.now()
    silent, exhausted, stopping, alive = (_create(engineer, name=f"job-{i}") for i in range(4))
    long_ago = now - timedelta(minutes=10)
    FineTuneJob.objects.filter(pk__in=[silent.pk, exhausted.pk, alive.pk]).update(
        status=FineTuneJob.Status.RUNNING, attempts=1, heartbeat_at=long_ago, claim_token="gone"
    )
    FineTuneJob.objects.filter(pk=exhausted.pk).update(attempts=2)
    FineTuneJob.objects.filter(pk=stopping.pk).update(
        status=FineTuneJob.Status.CANCELLING, heartbeat_at=long_ago
    )
    FineTuneJob.objects.filter(pk=alive.pk).update(heartbeat_at=now - timedelta(seconds=5))
    old_task_id = silent.task_id

    report = services.jobs_reap(stale_after=timedelta(minutes=2), now=now)

    assert report == {
        "requeued": [silent.pk],
        "failed": [exhausted.pk],
        "cancelled": [stopping.pk],
        "resent": [],
    }
    silent.refresh_from_db()
    assert silent.status == FineTuneJob.Status.QUEUED and silent.claim_token == ""
    assert silent.task_id != old_task_id  # a late delivery of the lost message cannot claim it
    exhausted.refresh_from_db()
    assert exhausted.status == FineTuneJob.Status.FAILED and "stopped answering" in exhausted.error
    assert FineTuneJob.objects.get(pk=stopping.pk).status == FineTuneJob.Status.CANCELLED
    assert FineTuneJob.objects.get(pk=alive.pk).status == FineTuneJob.Status.RUNNING
    trailed = dict(
        Event.objects.filter(actor_label=services.REAPER_ACTOR).values_list("resource_id", "action")
    )
    assert trailed == {
        str(silent.pk): "fine_tune_job.requeued",
        str(exhausted.pk): "fine_tune_job.failed",
        str(stopping.pk): "fine_tune_job.cancelled",
    }
    # A job queued for too long (its message may have died with a worker) is sent again, once.
    FineTuneJob.objects.filter(pk=silent.pk).update(enqueued_at=now - timedelta(hours=1))
    later = now + timedelta(seconds=1)
    assert services.jobs_reap(now=later)["resent"] == [silent.pk]
    assert services.jobs_reap(now=later)["resent"] == []
