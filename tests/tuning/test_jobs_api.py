"""Creating fine-tune jobs through the API: snapshot, validation, policy, trail; the other endpoints' access."""

from __future__ import annotations

from pathlib import Path

import pytest

from access.loader import load_policy_file
from access.policy import activate, active_policy
from accounts.roles import Role
from audit.models import Event
from inference.models import LoraAdapter
from inference.registry import adapter_register
from inference.tuning import services
from inference.tuning.conf import data_root
from inference.tuning.models import FineTuneJob
from tests.tuning.api_support import ADAPTERS, JOBS, call, job_body

DATA = Path(__file__).resolve().parent / "data"
pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(make_user, work_orders, private_tuning_dirs):
    return make_user(Role.ML_ENGINEER)


def test_creating_a_job_snapshots_the_data_the_user_may_see_and_queues_it(client, served_model, engineer):
    response = call(client, "post", JOBS, engineer, job_body())
    assert response.status_code == 201, response.content
    data = response.json()
    job = FineTuneJob.objects.get()
    assert data["id"] == job.pk and data["status"] == "queued" == job.status
    assert job.created_by == engineer and job.task_id and job.enqueued_at
    assert job.dataset_examples == 60 == job.dataset_train_examples + job.dataset_eval_examples
    assert job.dataset_eval_examples > 0 and len(job.dataset_hash) == 64
    assert len(job.dataset_source_ids) == 60 and all(
        s.startswith("work_order:") for s in job.dataset_source_ids
    )
    assert engineer.username in job.dataset_query and "limit=60" in job.dataset_query
    assert data["dataset"]["content_hash"] == job.dataset_hash
    assert (
        data["settings"]["target_modules"] == ["q_proj", "v_proj"] and data["settings"]["lora_dropout"] == 0.1
    )
    # The examples are sealed on disk: no work-order text is readable there.
    [sealed] = (data_root() / "snapshots").iterdir()
    assert b"Which failure code applies" not in sealed.read_bytes()
    event = Event.objects.get(action="fine_tune_job.created")
    assert event.resource_id == str(job.pk) and event.actor_kind == "token"
    assert event.policy == "ml_engineering"  # the rule that allowed fine-tuning the model and the data
    assert event.payload["dataset"]["content_hash"] == job.dataset_hash
    assert event.payload["settings"]["lora"]["r"] == 4


def test_a_dp_job_runs_without_lora_dropout_and_says_so(client, served_model, engineer):
    body = job_body(dp_enabled=True, dp_target_epsilon=3, lora_dropout=0.1)
    response = call(client, "post", JOBS, engineer, body)
    assert response.status_code == 201, response.content
    job = FineTuneJob.objects.get()
    assert job.lora_dropout == 0.0 == response.json()["settings"]["lora_dropout"]
    assert "LoRA dropout 0.1 set to 0" in job.log
    event = Event.objects.get(action="fine_tune_job.created")
    assert event.payload["settings"]["lora"]["dropout"] == 0.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"target_modules": ["q_proj", "not_a_module"]}, "target_modules"),
        ({"lora_r": 0}, "lora_r"),
        ({"lora_r": -4}, "lora_r"),
        ({"filters": {"equipment": "No such chiller"}}, "data_adapter"),
        ({"dp_enabled": True, "dp_target_epsilon": 0}, "dp_target_epsilon"),
        ({"dp_enabled": True, "dp_target_epsilon": -3}, "dp_target_epsilon"),
        ({"filters": {"colour": "red"}}, "filters"),
        ({"data_adapter": "nobody.registered_this"}, "data_adapter"),
        ({"base_model": "no-such-model"}, "base_model"),
        ({"adapter_name": "Not A Name!"}, "adapter_name"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"lora_rank": 8}, "lora_rank"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, served_model, engineer, overrides, field):
    response = call(client, "post", JOBS, engineer, job_body(**overrides))
    assert response.status_code == 400, response.content
    errors = response.json()
    assert isinstance(errors[field], list) and len(errors[field][0]) > 10
    assert not FineTuneJob.objects.exists()
    assert not Event.objects.filter(action__startswith="fine_tune_job.").exists()


def test_unknown_target_module_error_lists_the_models_modules(client, served_model, engineer):
    errors = call(client, "post", JOBS, engineer, job_body(target_modules=["qkv"])).json()
    assert "'qkv'" in errors["target_modules"][0] and "q_proj" in errors["target_modules"][0]


def test_denied_creation_is_a_403_leaves_no_job_and_is_trailed(client, served_model, make_user, work_orders):
    clinician = make_user(Role.CLINICIAN, department="radiology")
    response = call(client, "post", JOBS, clinician, job_body())
    assert response.status_code == 403
    assert not FineTuneJob.objects.exists()
    denial = Event.objects.get(action="model.fine_tune")
    assert denial.outcome == "denied" and denial.resource_id == "suite-demo"
    assert denial.actor_user == clinician


def test_the_data_adapters_resource_is_decided_too(client, served_model, engineer):
    """The policy may let a user fine-tune the model but not on this data."""
    original = active_policy()
    activate(load_policy_file(DATA / "suite_models_only.yaml"))
    try:
        response = call(client, "post", JOBS, engineer, job_body())
    finally:
        activate(original)
    assert response.status_code == 403
    assert not FineTuneJob.objects.exists()
    denial = Event.objects.get(action="model.fine_tune", outcome="denied")
    assert denial.resource_id == "maintenance_work_orders"


def test_a_queued_job_is_cancelled_at_once_and_a_finished_one_is_a_conflict(client, served_model, engineer):
    job_id = call(client, "post", JOBS, engineer, job_body()).json()["id"]
    response = call(client, "post", f"{JOBS}{job_id}/cancel/", engineer)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Event.objects.filter(action="fine_tune_job.cancelled", resource_id=str(job_id)).count() == 1
    again = call(client, "post", f"{JOBS}{job_id}/cancel/", engineer)
    assert again.status_code == 409 and "nothing to cancel" in again.json()["detail"]


def test_an_adapter_name_in_use_is_refused(client, served_model, engineer, trained_adapter_dir):
    adapter_register(
        base_model=served_model, name="taken", path=str(trained_adapter_dir), source="t", evaluation={}
    )
    errors = call(client, "post", JOBS, engineer, job_body(adapter_name="taken")).json()
    assert "already has an adapter named 'taken'" in errors["adapter_name"][0]
    assert call(client, "post", JOBS, engineer, job_body(adapter_name="fresh")).status_code == 201
    errors = call(client, "post", JOBS, engineer, job_body(adapter_name="fresh")).json()
    assert "already training 'fresh'" in errors["adapter_name"][0]


def test_the_api_is_in_the_openapi_schema(client, engineer):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/tuning/jobs/", "/api/tuning/jobs/{id}/cancel/", "/api/tuning/adapters/{id}/promote/",
                 "/api/tuning/adapters/{id}/demote/", "/api/tuning/data-adapters/"):  # fmt: skip
        assert path in schema["paths"], path
    assert "dp_target_epsilon" in schema["components"]["schemas"]["JobCreateInput"]["properties"]


# --- authorization of every restricted endpoint ------------------------------------------------
@pytest.fixture
def world(served_model, make_user, work_orders, private_tuning_dirs, trained_adapter_dir):
    """A queued job, a cancelled job and a candidate adapter, owned by an ML engineer."""
    owner = make_user(Role.ML_ENGINEER)
    queued = services.job_create(user=owner, base_model="suite-demo", data_adapter="tests.work_orders",
                                 adapter_name="queued", filters={"limit": 30}, **_small_settings())  # fmt: skip
    cancelled = services.job_create(user=owner, base_model="suite-demo", data_adapter="tests.work_orders",
                                    adapter_name="stopped", filters={"limit": 30}, **_small_settings())  # fmt: skip
    services.job_cancel(user=owner, job=cancelled)
    adapter = adapter_register(
        base_model=served_model,
        name="candidate",
        path=str(trained_adapter_dir),
        source="test",
        evaluation={"x": 1},
    )
    promoted = adapter_register(
        base_model=served_model,
        name="served",
        path=str(trained_adapter_dir),
        source="test",
        evaluation={"x": 2},
    )
    LoraAdapter.objects.filter(pk=promoted.pk).update(status=LoraAdapter.Status.PROMOTED)
    return {"queued": queued, "cancelled": cancelled, "adapter": adapter, "promoted": promoted}


def _small_settings():
    from inference.tuning.lora_config import LoraSettings, TrainSettings

    return {"lora": LoraSettings(r=4, alpha=8), "train": TrainSettings(max_seq_len=96)}


def _state() -> tuple:
    jobs = tuple(FineTuneJob.objects.order_by("pk").values_list("pk", "status", "task_id", "attempts"))
    adapters = tuple(LoraAdapter.objects.order_by("pk").values_list("pk", "status"))
    return jobs, adapters


ENDPOINTS = {
    # name: (method, path template, body, status for the right role)
    "job list": ("get", JOBS, None, 200),
    "job create": ("post", JOBS, job_body(adapter_name="another"), 201),
    "job detail": ("get", JOBS + "{queued}/", None, 200),
    "job cancel": ("post", JOBS + "{queued}/cancel/", None, 200),
    "job retry": ("post", JOBS + "{cancelled}/retry/", None, 200),
    "data adapter list": ("get", "/api/tuning/data-adapters/", None, 200),
    "adapter list": ("get", ADAPTERS, None, 200),
    "adapter promote": ("post", ADAPTERS + "{adapter}/promote/", {"reason": "better"}, 200),
    "adapter demote": ("post", ADAPTERS + "{promoted}/demote/", {"reason": "rollback"}, 200),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("role", "expected"), [(None, 401), (Role.CLINICIAN, 403), (Role.ML_ENGINEER, "ok")])
def test_authorization(client, world, make_user, endpoint, role, expected):
    method, template, body, ok_status = ENDPOINTS[endpoint]
    path = template.format(**{name: obj.pk for name, obj in world.items()})
    user = make_user(role, department="radiology") if role else None
    before = _state()
    response = call(client, method, path, user, body)
    if expected == "ok":
        assert response.status_code == ok_status, response.content
        if method == "post":
            assert _state() != before
        return
    if method == "get" and role is not None and response.status_code == 200:
        # Lists answer with what the caller may see: nothing here. Details are refused.
        data = response.json()
        assert (data["results"] if isinstance(data, dict) else data) == []
        assert endpoint.endswith("list")
        return
    assert response.status_code == expected, response.content
    assert _state() == before
    if expected == 403:
        assert Event.objects.filter(outcome="denied", actor_user=user).exists()


def test_the_home_page_lists_the_engineers_recent_jobs(client, served_model, engineer, make_user):
    client.force_login(engineer)
    page = client.get("/", follow=True)
    assert b"No job yet: start one from Fine-tuning." in page.content
    job_id = call(client, "post", JOBS, engineer, job_body()).json()["id"]
    page = client.get("/", follow=True)
    (panel,) = [panel for panel in page.context["panels"] if panel["key"] == "tuning-recent"]
    assert [(row.url, row.badge) for row in panel["rows"]] == [(f"/tuning/{job_id}/", "Queued")]
    # Roles that may not see models get no fine-tuning panel.
    client.force_login(make_user(Role.CLINICIAN, department="radiology"))
    keys = [panel["key"] for panel in client.get("/", follow=True).context["panels"]]
    assert "tuning-recent" not in keys


def test_each_data_adapter_says_which_filters_it_takes(client, served_model, engineer):
    listed = {a["name"]: a for a in call(client, "get", "/api/tuning/data-adapters/", engineer).json()}
    assert listed["tests.work_orders"]["filter_help"].startswith("equipment")
    assert "modality" in listed["medical.dicom_qa"]["filter_help"]
    client.force_login(engineer)
    form = client.get("/tuning/new/").content.decode()
    assert (
        "<code>medical.dicom_qa</code>: department" in form
        and "<code>tests.work_orders</code>: equipment" in form
    )
