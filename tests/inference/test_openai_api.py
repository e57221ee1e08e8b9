"""The OpenAI-compatible API over a real (tiny) local model: authorization, trail, errors, streaming."""

import json

import pytest

from accounts.roles import Role
from audit.models import Event
from inference.models import Generation
from tests.factories import api_key

CHAT = "/v1/chat/completions"


@pytest.fixture
def engineer(make_user):
    return make_user(Role.ML_ENGINEER)


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_key(user)}"}


def post(client, user, body, path=CHAT):
    return client.post(path, data=json.dumps(body), content_type="application/json", **bearer(user))


@pytest.mark.django_db
def test_chat_completion_is_served_authorized_and_trailed(client, served_model, engineer):
    body = {"model": "suite-demo", "messages": [{"role": "user", "content": "Which failure code?"}],
            "max_tokens": 12, "temperature": 0}  # fmt: skip
    response = post(client, engineer, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "suite-demo"
    usage = data["usage"]
    assert 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    generation = Generation.objects.get()
    assert generation.user == engineer and generation.completion_tokens == usage["completion_tokens"]
    event = Event.objects.filter(action="model.predict").get()
    assert event.outcome == "succeeded" and event.resource_id == "suite-demo"
    assert event.policy == "ml_engineering"  # the rule that allowed the prediction
    assert event.payload["generation_id"] == generation.pk
    assert event.payload["output_sha256"] == generation.output_sha256
    assert event.actor_kind == "token"
    # Greedy decoding is deterministic: the same request gives the same text.
    again = post(client, engineer, body).json()
    assert again["choices"][0]["message"]["content"] == data["choices"][0]["message"]["content"]


@pytest.mark.django_db
def test_text_completion_and_streaming(client, served_model, engineer):
    body = {"model": "suite-demo", "prompt": "Work order", "max_tokens": 10, "temperature": 0}
    plain = post(client, engineer, body, "/v1/completions").json()
    assert plain["object"] == "text_completion"
    streamed = post(client, engineer, {**body, "stream": True}, "/v1/completions")
    assert streamed["Content-Type"].startswith("text/event-stream")
    events = b"".join(streamed.streaming_content).decode().strip().split("\n\n")
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == plain["choices"][0]["text"]
    assert chunks[-1]["usage"]["completion_tokens"] == plain["usage"]["completion_tokens"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401), (Role.AUDITOR, 403), (Role.COMPLIANCE_OFFICER, 403), (Role.ML_ENGINEER, 200)],
)
def test_predict_authorization(client, served_model, make_user, role, status):
    body = {"model": "suite-demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    if role is None:
        response = client.post(CHAT, data=json.dumps(body), content_type="application/json")
    else:
        response = post(client, make_user(role), body)
    assert response.status_code == status
    if status != 200:
        assert response.json()["error"]["type"] in ("invalid_request_error", "permission_error")
        assert not Generation.objects.exists()
    if status == 403:
        assert Event.objects.filter(action="model.predict", outcome="denied").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
        ({"model": "suite-demo", "messages": []}, 400, "messages"),
        ({"model": "suite-demo", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
        (
            {"model": "suite-demo", "messages": [{"role": "user", "content": "x"}], "temperature": 5},
            400,
            "temperature",
        ),
        (
            {"model": "suite-demo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            400,
            "max_tokens",
        ),
        ({"model": "suite-demo:no-adapter", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
    ],
)
def test_bad_requests_get_openai_errors_naming_the_field(client, served_model, engineer, body, status, param):
    response = post(client, engineer, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and error["message"]
    assert not Generation.objects.exists()


@pytest.mark.django_db
def test_malformed_json_and_too_long_prompts(client, served_model, engineer):
    response = client.post(CHAT, data="{not json", content_type="application/json", **bearer(engineer))
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
    limit = served_model.context_length
    long_prompt = "valve " * (limit * 2)
    response = post(
        client, engineer, {"model": "suite-demo", "messages": [{"role": "user", "content": long_prompt}]}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and str(limit) in error["message"]


@pytest.mark.django_db
def test_models_list_follows_the_policy(client, served_model, engineer, make_user):
    names = [m["id"] for m in client.get("/v1/models", **bearer(engineer)).json()["data"]]
    assert names == ["suite-demo", "suite-demo-draft"]
    assert client.get("/v1/models", **bearer(make_user(Role.AUDITOR))).json()["data"] == []


@pytest.mark.django_db
def test_session_reuses_the_kv_cache_across_turns(client, served_model, engineer):
    history = [{"role": "user", "content": "Describe work order WO1."}]
    first = post(client, engineer, {"model": "suite-demo", "messages": history, "max_tokens": 8,
                                    "temperature": 0, "session_id": "conv-1"}).json()  # fmt: skip
    history += [first["choices"][0]["message"], {"role": "user", "content": "And its priority?"}]
    second = post(client, engineer, {"model": "suite-demo", "messages": history, "max_tokens": 8,
                                     "temperature": 0, "session_id": "conv-1"}).json()  # fmt: skip
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    fresh = post(client, engineer, {"model": "suite-demo", "messages": history, "max_tokens": 8,
                                    "temperature": 0}).json()  # fmt: skip
    assert fresh["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert fresh["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]


@pytest.mark.django_db
def test_metrics_expose_serving_figures(client, served_model, engineer):
    post(
        client,
        engineer,
        {"model": "suite-demo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4},
    )
    text = client.get("/metrics").content.decode()
    assert 'suite:generation_tokens_total{model_name="suite-demo"}' in text
    assert "suite:time_to_first_token_seconds_bucket" in text
    assert "suite:num_requests_waiting" in text


@pytest.mark.django_db
def test_the_models_page_shows_serving_speed_from_the_generations(client, served_model, engineer):
    body = {"model": "suite-demo", "messages": [{"role": "user", "content": "Which failure code?"}],
            "max_tokens": 8, "temperature": 0, "session_id": "speed"}  # fmt: skip
    for _ in range(3):
        assert post(client, engineer, body).status_code == 200
    client.force_login(engineer)
    page = client.get("/models/")
    assert page.status_code == 200
    (row,) = [s for s in page.context["stats"] if s.model.name == "suite-demo"]
    generations = list(Generation.objects.filter(model=served_model))
    assert row.requests == 3 == len(generations)
    assert row.tokens_per_s == pytest.approx(  # after the first token: decode, not prefill or loading
        sum(g.completion_tokens - 1 for g in generations)
        / sum((g.latency_ms - g.ttft_ms) / 1000 for g in generations)
    )
    assert row.latency_ms_p50 == sorted(g.latency_ms for g in generations)[1]
    assert 0 < row.cached_prompt_fraction < 1  # turns 2 and 3 reuse the session's cache
    assert b'data-testid="serving-stats"' in page.content
