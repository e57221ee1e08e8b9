"""SmolLM2 imported with `import_model` and served by llama.cpp behind /v1: the registry fields
the portal and /v1/models show, GET /v1/models/{id}, OpenAI error objects for every failure
(a stream that fails after its headers included), the default model setting, and the official
`openai` client against a live server."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from accounts.roles import Role
from audit.models import Event
from inference.engine.importer import bundled_smollm2
from inference.models import Generation, LanguageModel, ModelDefault

CHAT = "/v1/chat/completions"
QUESTION = [{"role": "user", "content": "(0018,0050) SliceThickness: 5.0\nWhat is the slice thickness?"}]


def api_key(user) -> str:
    try:
        from knox.models import AuthToken

        return AuthToken.objects.create(user=user)[1]
    except ImportError:  # pragma: no cover - DRF tokens before knox
        from rest_framework.authtoken.models import Token

        return Token.objects.create(user=user).key


def post(client, key, body, path=CHAT):
    return client.post(path, data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {key}")  # fmt: skip


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """SmolLM2 imported once per module as import_model does it (copy, sha check, read back),
    without the slow parts (Hugging Face directory, quantizations: see test_import_quantizes)."""
    from inference.engine.importer import import_gguf

    root = tmp_path_factory.mktemp("models")
    return import_gguf(bundled_smollm2(), name="smollm2", root=root, quantizations=(), with_hf=False,
                       threads=1, progress=lambda message: None)  # fmt: skip


@pytest.fixture
def smollm2(db, settings, imported):
    from inference import services

    settings.INFERENCE_LLAMACPP_THREADS = 1
    settings.INFERENCE_LLAMACPP_CONTEXT = 1024
    return services.model_import_register(actor="test:fixture", result=imported)


@pytest.fixture
def engineer_key(make_user):
    return api_key(make_user(Role.ML_ENGINEER))


@pytest.mark.django_db
def test_import_registers_name_parameters_quantization_and_licence(tmp_path):
    call_command("import_model", str(bundled_smollm2()), "--name", "smollm2", "--no-hf", "--quantize", "none",
                 "--root", str(tmp_path), "--threads", "1")  # fmt: skip
    smollm2 = LanguageModel.objects.get(name="smollm2")
    assert smollm2.engine == "llamacpp"
    assert smollm2.parameter_count == 134_515_008
    assert smollm2.quantization == "q4_1" and smollm2.licence == "apache-2.0"
    assert smollm2.architecture == "llama" and smollm2.context_length == 8192
    assert (
        smollm2.gguf_path.startswith(str(tmp_path)) and smollm2.info["import_checks"]["copy_sha256_identical"]
    )
    event = Event.objects.filter(action="model.register", resource_id="smollm2").get()
    assert event.payload["licence"] == "apache-2.0"


@pytest.mark.django_db
def test_import_quantizes_with_llamacpp_and_checks_the_f16_copy(tmp_path):
    call_command("import_model", str(bundled_smollm2()), "--name", "smol-q8", "--no-hf", "--quantize", "q8_0",
                 "--serve", "q8_0", "--root", str(tmp_path), "--threads", "1")  # fmt: skip
    model = LanguageModel.objects.get(name="smol-q8")
    files = model.info["gguf_files"]
    assert set(files) == {"q4_1", "f16", "q8_0"}
    assert model.quantization == "q8_0" and model.gguf_path == files["q8_0"]
    assert model.info["import_checks"]["f16_greedy_identical"] is True
    from inference.engine.importer import gguf_metadata

    assert gguf_metadata(files["q8_0"])["general.file_type"] == 7  # LLAMA_FTYPE_MOSTLY_Q8_0


@pytest.mark.django_db
def test_import_of_a_hugging_face_directory(tiny_model_dirs, tmp_path):
    target_dir, _ = tiny_model_dirs
    call_command("import_model", target_dir, "--name", "tiny-hf", "--root", str(tmp_path))
    model = LanguageModel.objects.get(name="tiny-hf")
    assert model.engine == "transformers" and model.path == str((tmp_path / "tiny-hf" / "hf").resolve())
    assert model.parameter_count > 0


@pytest.mark.django_db
def test_import_refuses_what_is_not_a_model(tmp_path):
    from django.core.management.base import CommandError

    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"nope")
    with pytest.raises(CommandError, match="not a GGUF"):
        call_command("import_model", str(junk), "--name", "junk", "--root", str(tmp_path))
    assert not LanguageModel.objects.filter(name="junk").exists()


@pytest.mark.django_db
def test_chat_on_llamacpp_is_trailed_and_models_show_the_registry_fields(client, smollm2, engineer_key):
    response = post(client, engineer_key, {"model": "smollm2", "messages": QUESTION, "max_tokens": 16,
                                           "temperature": 0})  # fmt: skip
    assert response.status_code == 200, response.content
    assert "5.0" in response.json()["choices"][0]["message"]["content"]
    assert Generation.objects.get().model_id == smollm2.id
    listed = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {engineer_key}").json()["data"]
    (entry,) = [m for m in listed if m["id"] == "smollm2"]
    assert entry["parameters"] == 134_515_008 and entry["quantization"] == "q4_1"
    assert entry["licence"] == "apache-2.0" and entry["engine"] == "llamacpp"
    one = client.get("/v1/models/smollm2", HTTP_AUTHORIZATION=f"Bearer {engineer_key}")
    assert one.status_code == 200 and one.json() == entry


@pytest.mark.django_db
def test_v1_errors_are_openai_error_objects(client, smollm2, engineer_key, make_user):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {engineer_key}"}
    missing = client.get("/v1/models/no-such-model", **auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    # The policy hides models from roles that may not use them: same 404, no leak.
    auditor = client.get(
        "/v1/models/smollm2", HTTP_AUTHORIZATION=f"Bearer {api_key(make_user(Role.AUDITOR))}"
    )
    assert auditor.status_code == 404
    unknown = client.get("/v1/no/such/endpoint", **auth)
    assert unknown.status_code == 404 and unknown["Content-Type"] == "application/json"
    assert unknown.json()["error"]["code"] == "unknown_url"
    wrong_method = client.delete("/v1/chat/completions", **auth)
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    # A prompt longer than the context: llama.cpp checks it before a streamed response starts.
    long = [{"role": "user", "content": "valve " * 3000}]
    streamed = post(client, engineer_key, {"model": "smollm2", "messages": long, "stream": True})
    assert streamed.status_code == 400 and streamed.json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.django_db
def test_a_stream_that_fails_after_its_headers_ends_with_an_error_event_and_done(
    client, served_model, engineer_key
):
    """The transformers engine finds the over-long prompt only once the stream runs."""
    long = [{"role": "user", "content": "valve " * (served_model.context_length * 2)}]
    response = post(client, engineer_key, {"model": "suite-demo", "messages": long, "stream": True})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    events = b"".join(response.streaming_content).decode().strip().split("\n\n")
    assert events[-1] == "data: [DONE]"
    error = json.loads(events[-2].removeprefix("data: "))["error"]
    assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
    assert Generation.objects.get().finish_reason == "length"  # trailed as a failed generation
    assert Event.objects.filter(action="model.predict", outcome="failed").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "allowed"), [(Role.AUDITOR, False), (Role.ML_ENGINEER, True)])
def test_setting_a_default_model_is_policy_checked_and_trailed(smollm2, make_user, role, allowed):
    from access.errors import PolicyDenied
    from inference import services

    user = make_user(role)
    if not allowed:
        with pytest.raises(PolicyDenied):
            services.model_default_set(actor=user, purpose="qa", model=smollm2)
        assert not ModelDefault.objects.exists()
        return
    services.model_default_set(actor=user, purpose="qa", model=smollm2)
    assert services.default_model("qa") == smollm2
    event = Event.objects.filter(action="model.default_set").get()
    assert (
        event.payload
        == {
            "purpose": "qa",
            "previous": None,
            "previous_adapter": None,
            "model": "smollm2",
            "adapter": None,
            "adapter_id": None,
        }
        and event.outcome == "succeeded"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "changed"), [(None, False), (Role.AUDITOR, False), (Role.ML_ENGINEER, True)]
)
def test_the_models_page_sets_defaults_for_ml_engineers_only(client, smollm2, make_user, role, changed):
    if role is not None:
        client.force_login(make_user(role))
    response = client.post("/models/default/", {"purpose": "chat", "model": "smollm2"})
    assert ModelDefault.objects.filter(purpose="chat", model_id=smollm2.id).exists() is changed
    if changed:
        assert response.status_code == 302
        page = client.get("/models/")
        assert b"llama.cpp" in page.content and b"apache-2.0" in page.content
        assert b'<span class="badge">default: Chat (playground' in page.content  # beside its name
        # The default-model form opens on the model that serves chat now.
        assert b'<option value="smollm2" selected>' in page.content
        assert Event.objects.filter(action="model.default_set", outcome="succeeded").count() == 1
    else:
        assert response.status_code in (302, 403)
        assert not Event.objects.filter(action="model.default_set", outcome="succeeded").exists()


@pytest.mark.django_db(transaction=True)
def test_the_official_openai_client_against_a_live_server(live_server, smollm2, make_user):
    import openai

    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=api_key(make_user(Role.ML_ENGINEER)),
                           max_retries=0)  # fmt: skip
    retrieved = client.models.retrieve("smollm2")
    assert retrieved.id == "smollm2" and retrieved.model_extra["licence"] == "apache-2.0"
    chat = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=16, temperature=0)
    stream = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=16, temperature=0,
                                            stream=True)  # fmt: skip
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed == chat.choices[0].message.content and "5.0" in streamed
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "valve " * 3000}],
                                       stream=True)  # fmt: skip
    assert excinfo.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
