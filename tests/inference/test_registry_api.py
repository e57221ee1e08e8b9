"""Registering a model directory through the API and the portal: policy, MODEL_ROOT, bad input."""

from __future__ import annotations

import shutil

import pytest

from audit.models import Event
from inference.models import LanguageModel

pytestmark = pytest.mark.django_db

API = "/api/models/"


@pytest.fixture
def model_root(settings, tmp_path, tiny_model_dirs):
    """MODEL_ROOT with a copy of the tiny demo model in it, as `copied`."""
    settings.MODEL_ROOT = tmp_path / "models"
    shutil.copytree(tiny_model_dirs[0], settings.MODEL_ROOT / "copied")
    return settings.MODEL_ROOT


@pytest.fixture
def engineer(make_user):
    return make_user("ml_engineer")


ANONYMOUS, WRONG_ROLE, RIGHT_ROLE = "anonymous", "wrong role", "right role"


@pytest.mark.parametrize("caller", [ANONYMOUS, WRONG_ROLE, RIGHT_ROLE])
def test_who_may_register(client, make_user, model_root, caller):
    user = {ANONYMOUS: None, WRONG_ROLE: make_user("clinician", department="radiology"),
            RIGHT_ROLE: make_user("ml_engineer")}[caller]  # fmt: skip
    if user is not None:
        client.force_login(user)
    response = client.post(API, {"path": "copied", "name": "copied-llm"}, "application/json")
    assert response.status_code == {ANONYMOUS: 401, WRONG_ROLE: 403, RIGHT_ROLE: 201}[caller]
    registered = LanguageModel.objects.filter(name="copied-llm")
    if caller != RIGHT_ROLE:
        assert not registered.exists()
        if user is not None:
            assert Event.objects.filter(
                action="model.register", outcome="denied", actor_label=user.username
            ).exists()
        return
    model = registered.get()
    data = response.json()
    assert data["architecture"] == "LlamaForCausalLM" and data["parameter_count"] == model.parameter_count > 0
    assert model.path == str((model_root / "copied").resolve()) and model.registered_by == user
    event = Event.objects.get(action="model.register", outcome="succeeded")
    assert event.policy == "ml_engineering" and event.resource_id == "copied-llm"
    # Registered is servable: the OpenAI-compatible API lists it and answers with it.
    assert "copied-llm" in [m["name"] for m in client.get(API).json()]
    answer = client.post(
        "/v1/chat/completions",
        {"model": "copied-llm", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4},
        "application/json",
    )
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"path": "/etc", "name": "x-model"}, "path", "under"),
        ({"path": "../..", "name": "x-model"}, "path", "under"),
        ({"path": "missing-dir", "name": "x-model"}, "path", "no directory"),
        ({"path": "copied", "name": "Not A Name"}, "name", "lower-case"),
        ({"path": "copied", "name": "x-model", "draft": "no-such-draft"}, "draft", "no-such-draft"),
        ({"path": "copied", "name": "x-model", "quantization": "int3"}, "quantization", "int8"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, engineer, model_root, body, field, words):
    client.force_login(engineer)
    response = client.post(API, body, "application/json")
    assert response.status_code == 400, response.content
    assert words in response.json()[field][0]
    assert not LanguageModel.objects.exists()


def test_a_broken_directory_is_refused_with_the_file_named(client, engineer, model_root):
    broken = model_root / "broken"
    shutil.copytree(model_root / "copied", broken)
    (broken / "config.json").write_text("{ not json")
    client.force_login(engineer)
    response = client.post(API, {"path": "broken", "name": "broken-llm"}, "application/json")
    assert response.status_code == 400 and "config.json" in response.json()["path"][0]
    assert not LanguageModel.objects.exists()


def test_a_registered_name_is_replaced_only_when_asked(client, engineer, model_root):
    client.force_login(engineer)
    assert client.post(API, {"path": "copied", "name": "copied-llm"}, "application/json").status_code == 201
    again = client.post(
        API, {"path": "copied", "name": "copied-llm", "description": "v2"}, "application/json"
    )
    assert again.status_code == 400 and "registered already" in again.json()["name"][0]
    replaced = client.post(
        API,
        {"path": "copied", "name": "copied-llm", "description": "v2", "replace": True},
        "application/json",
    )
    assert replaced.status_code == 201 and LanguageModel.objects.get(name="copied-llm").description == "v2"


def test_the_portal_form_registers_and_shows_errors_beside_the_fields(
    client, engineer, model_root, make_user
):
    client.force_login(engineer)
    page = client.get("/models/")
    assert b'data-testid="register-form"' in page.content
    bad = client.post("/models/register/", {"path": "/etc", "name": "x-model", "quantization": "none"})
    assert bad.status_code == 400 and b"MODEL_ROOT" in bad.content
    good = client.post("/models/register/", {"path": "copied", "name": "copied-llm", "quantization": "int8"})
    assert good.status_code == 302
    registered = LanguageModel.objects.get(name="copied-llm")
    assert registered.quantization == "int8"
    # a speculative-decoding draft shows beside the engine, not in a column of its own
    LanguageModel.objects.filter(pk=registered.pk).update(draft=registered)
    row = client.get("/models/").content.decode().split("copied-llm</strong>")[1].split("</tr>")[0]
    assert 'data-field="draft">drafts from copied-llm</div></td>' in row and row.count("<td") == 6
    # Someone who may use models but not register them sees no form.
    client.force_login(make_user("clinician", department="radiology"))
    LanguageModel.objects.filter(name="copied-llm").update(name="medical_demo")
    page = client.get("/models/")
    assert page.status_code == 200 and b'data-testid="register-form"' not in page.content
    # ... nor the administrator's command line; the lead says what the page is for them.
    assert b"import_model" not in page.content and b"leaves the site" in page.content
