"""The fine-tuning pages in a real browser: the form's validation, a job page that follows a real
worker live (no reload) and cancels it, and promote/demote from the adapter list."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from audit.models import Event
from inference.models import LoraAdapter
from inference.registry import adapter_register
from inference.tuning.models import FineTuneJob

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def engineer(make_user, work_orders):
    return make_user(Role.ML_ENGINEER)


@pytest.mark.worker
def test_create_watch_live_and_cancel_a_job(page, log_in, celery_worker, served_model, engineer):
    log_in(engineer)
    page.click('nav.mainnav a[data-nav="tuning"]')
    page.click('[data-testid="new-job"]')
    form = page.locator('[data-testid="job-form"]')
    form.locator("select[name=base_model]").select_option("suite-demo")
    form.locator("select[name=data_adapter]").select_option("tests.work_orders")
    form.locator("input[name=adapter_name]").fill("live-view")
    form.locator("textarea[name=filters]").fill('{"limit": 60}')
    for name, value in {"lora_r": "0", "lora_alpha": "8", "epochs": "60", "batch_size": "8", "max_seq_len": "96",
                        "checkpoint_every": "4"}.items():  # fmt: skip
        form.locator(f"input[name={name}]").fill(value)
    form.locator("button[type=submit]").click()
    # r = 0 is refused next to its field, and nothing was created.
    assert "rank r must be a whole number above 0" in page.inner_text('[data-testid="job-form"]')
    assert not FineTuneJob.objects.exists()

    page.locator('[data-testid="job-form"] input[name=lora_r]').fill("4")
    page.locator('[data-testid="job-form"] button[type=submit]').click()
    page.locator("#job").wait_for()
    job = FineTuneJob.objects.get()
    assert job.created_by == engineer and job.adapter_name == "live-view"

    # The page follows the worker without reloading: a marker set now survives while the step
    # count, the progress bar and the loss curve move.
    page.evaluate("window.__notReloaded = true")
    page.wait_for_function(
        "() => window.__notReloaded === true"
        " && parseInt(document.querySelector('[data-field=steps]').textContent, 10) >= 2"
        " && document.querySelectorAll('#loss-chart polyline').length >= 1"
        " && parseFloat(document.querySelector('[data-field=progress-bar]').style.width) > 0",
        timeout=180_000,
    )
    assert page.inner_text('[data-field="train_loss"]') != "—"

    page.click('[data-testid="cancel-job"]')
    page.wait_for_function(
        "() => document.querySelector('[data-testid=job-status]').textContent.trim() === 'Cancelled'",
        timeout=60_000,
    )
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.CANCELLED and 0 < job.step < job.total_steps
    assert Event.objects.filter(
        action="fine_tune_job.cancel_requested", actor_label=engineer.username
    ).exists()


def test_promote_and_demote_from_the_adapter_list(page, log_in, served_model, engineer, trained_adapter_dir):
    adapter = adapter_register(
        base_model=served_model,
        name="failure-codes",
        path=str(trained_adapter_dir),
        source="test",
        evaluation={"eval_split": {"base_perplexity": 40.0, "adapter_perplexity": 30.0}},
    )
    log_in(engineer)
    page.goto("/tuning/adapters/")
    row = page.locator('[data-testid="adapter-table"] tbody tr', has_text="suite-demo:failure-codes")
    assert "40.000 → 30.000" in row.inner_text()
    row.locator("input[name=reason]").fill("Better held-out perplexity")
    row.locator("button", has_text="Promote").click()
    row = page.locator('[data-testid="adapter-table"] tbody tr', has_text="suite-demo:failure-codes")
    row.locator("button", has_text="Demote").wait_for()
    adapter.refresh_from_db()
    assert adapter.status == LoraAdapter.Status.PROMOTED
    event = Event.objects.get(action="adapter.promote")
    assert event.actor_label == engineer.username and event.payload["reason"] == "Better held-out perplexity"
    assert event.policy == "ml_engineering"

    row.locator("input[name=reason]").fill("Rolled back")
    row.locator("button", has_text="Demote").click()
    page.locator('[data-testid="adapter-table"] tbody tr', has_text="suite-demo:failure-codes").locator(
        "button", has_text="Promote"
    ).wait_for()
    adapter.refresh_from_db()
    assert adapter.status == LoraAdapter.Status.DEMOTED
    assert Event.objects.filter(action="adapter.demote", actor_label=engineer.username).count() == 1
