"""The portal's fine-tuning pages: list, create form, live job page, adapters with promote/demote."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from audit.models import Event
from inference.models import LoraAdapter
from inference.registry import adapter_register
from inference.tuning.models import FineTuneJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(client, make_user, work_orders, private_tuning_dirs):
    user = make_user(Role.ML_ENGINEER)
    client.force_login(user)
    return user


def form_data(**overrides) -> dict:
    return {
        "base_model": "suite-demo", "data_adapter": "tests.work_orders", "adapter_name": "via-form",
        "filters": '{"limit": 40}', "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.1,
        "target_modules": "q_proj, v_proj", "epochs": 1, "max_steps": "", "learning_rate": 2e-4, "batch_size": 8,
        "seed": 0, "checkpoint_every": 20, "max_seq_len": 96, "dp_target_epsilon": 3, "dp_delta": 1e-5,
        "dp_max_grad_norm": 1.0, **overrides,
    }  # fmt: skip


def test_an_ml_engineer_creates_a_job_in_the_form_and_watches_it(client, served_model, engineer):
    listing = client.get("/tuning/")
    assert listing.status_code == 200
    assert (
        'data-nav="tuning"' in listing.content.decode()
        and 'data-testid="new-job"' in listing.content.decode()
    )
    form = client.get("/tuning/new/").content.decode()
    assert "tests.work_orders" in form and "suite-demo" in form and 'name="dp_target_epsilon"' in form

    response = client.post("/tuning/new/", form_data(dp_enabled="on"))
    job = FineTuneJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/tuning/{job.pk}/"
    assert job.dp_enabled and job.dp_target_epsilon == 3 and job.dataset_examples == 40
    page = client.get(response["Location"]).content.decode()
    assert f'data-api="/api/tuning/jobs/{job.pk}/"' in page and 'id="loss-chart"' in page
    assert 'data-testid="cancel-job"' in page and job.dataset_hash in page
    assert client.get("/static/tuning/job.js").status_code == 200
    assert job.adapter_name in client.get("/tuning/").content.decode()


def test_the_form_shows_the_services_errors_on_their_fields(client, served_model, engineer):
    response = client.post("/tuning/new/", form_data(lora_r=0, target_modules="q_proj, nope", filters="[1]"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"filters"}  # a form error stops before the service is asked
    response = client.post("/tuning/new/", form_data(lora_r=0, target_modules="q_proj, nope"))
    errors = response.context["form"].errors
    assert "lora_r" in errors and "'nope'" in errors["target_modules"][0]
    assert not FineTuneJob.objects.exists()


def test_a_finished_job_shows_base_and_adapter_side_by_side(client, served_model, engineer):
    client.post("/tuning/new/", form_data())
    job = FineTuneJob.objects.get()
    job.status = FineTuneJob.Status.SUCCEEDED
    job.evaluation = {
        "eval_split": {"examples": 8, "target_tokens": 90, "base_perplexity": 41.5, "adapter_perplexity": 12.25,
                       "relative_change": -0.7048},
        "task_metric": {"name": "failure_code_accuracy", "examples": 8, "base": 0.0, "adapter": 0.625},
    }  # fmt: skip
    job.save()
    page = client.get(f"/tuning/{job.pk}/").content.decode()
    assert 'data-testid="evaluation"' in page and "41.5000" in page and "12.2500" in page and "-70.5%" in page
    assert "failure_code_accuracy" in page and "+0.625" in page
    assert 'data-active="false"' in page and 'data-testid="retry-job"' not in page


def test_adapters_are_promoted_and_demoted_from_the_portal(
    client, served_model, engineer, trained_adapter_dir
):
    adapter = adapter_register(
        base_model=served_model, name="codes", path=str(trained_adapter_dir), source="test", evaluation={}
    )
    assert "suite-demo:codes" in client.get("/tuning/adapters/").content.decode()
    response = client.post(f"/tuning/adapters/{adapter.pk}/promote/", {"reason": "better on held-out"})
    assert response.status_code == 302
    adapter.refresh_from_db()
    assert adapter.status == LoraAdapter.Status.PROMOTED
    assert Event.objects.get(action="adapter.promote").payload["reason"] == "better on held-out"
    client.post(f"/tuning/adapters/{adapter.pk}/demote/", {"reason": "rollback"})
    adapter.refresh_from_db()
    assert adapter.status == LoraAdapter.Status.DEMOTED


@pytest.mark.parametrize("path", ["/tuning/", "/tuning/new/", "/tuning/adapters/"])
def test_other_roles_are_refused_the_section_and_it_is_trailed(client, make_user, path):
    clinician = make_user(Role.CLINICIAN, department="radiology")
    client.force_login(clinician)
    assert client.get(path).status_code == 403
    assert Event.objects.filter(action="portal.view", outcome="denied", actor_user=clinician).exists()
    assert 'data-nav="tuning"' not in client.get("/").content.decode()
