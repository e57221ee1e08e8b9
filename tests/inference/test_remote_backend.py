"""A second Suite process serves /v1; the official `openai` client and our RemoteEngine talk to it."""

import json
import subprocess
import sys
import urllib.request

import openai
import pytest

from accounts.roles import Role
from audit.models import Event
from inference import services
from tests.factories import api_key
from tests.support import MANAGE, ROOT, free_port, subprocess_env, wait_for


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def second_suite(transactional_db, served_model):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, MANAGE, "serve_web", "--bind", f"127.0.0.1:{port}", "--threads", "4"],
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url) or process.poll() is not None, timeout=60, message="the second suite")
        assert process.poll() is None, "the second suite did not start"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def engineer_token(make_user):
    return api_key(make_user(Role.ML_ENGINEER))


def test_the_official_openai_client_works_unchanged(second_suite, engineer_token):
    client = openai.OpenAI(base_url=f"{second_suite}/v1", api_key=engineer_token, max_retries=0)
    assert {m.id for m in client.models.list()} >= {"suite-demo"}
    reply = client.chat.completions.create(
        model="suite-demo",
        messages=[{"role": "user", "content": "Which failure code?"}],
        max_tokens=10,
        temperature=0,
    )
    text = reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0 and isinstance(text, str)
    pieces = client.chat.completions.create(
        model="suite-demo", messages=[{"role": "user", "content": "Which failure code?"}], max_tokens=10,
        temperature=0, stream=True,
    )  # fmt: skip
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in pieces if chunk.choices)
    assert streamed == text
    completion = client.completions.create(
        model="suite-demo", prompt="Work order", max_tokens=5, temperature=0
    )
    assert completion.choices[0].text is not None
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{second_suite}/v1", api_key="wrong", max_retries=0).models.list()
    assert Event.objects.filter(action="model.predict", actor_kind="token", outcome="succeeded").count() == 3


def test_remote_backend_serves_a_model_of_another_server(second_suite, engineer_token, client, monkeypatch):
    monkeypatch.setenv("SUITE_TEST_REMOTE_KEY", engineer_token)
    services.model_register_remote(
        actor="test:remote", name="remote-demo", base_url=f"{second_suite}/v1", remote_model="suite-demo",
        api_key_env="SUITE_TEST_REMOTE_KEY",
    )  # fmt: skip
    body = {
        "messages": [{"role": "user", "content": "Describe the chiller."}],
        "max_tokens": 8,
        "temperature": 0,
    }
    auth = {"HTTP_AUTHORIZATION": f"Bearer {engineer_token}"}

    def ask(model, **extra):
        response = client.post(
            "/v1/chat/completions", data=json.dumps({**body, "model": model, **extra}), content_type="application/json",
            **auth,
        )  # fmt: skip
        assert response.status_code == 200, response.content
        return response

    local = ask("suite-demo").json()
    remote = ask("remote-demo").json()
    assert remote["choices"][0]["message"]["content"] == local["choices"][0]["message"]["content"]
    assert remote["usage"]["completion_tokens"] == local["usage"]["completion_tokens"]
    streamed = ask("remote-demo", stream=True)
    events = b"".join(streamed.streaming_content).decode().strip().split("\n\n")
    text = "".join(
        json.loads(e.removeprefix("data: "))["choices"][0]["delta"].get("content", "") for e in events[:-1]
    )
    assert text == local["choices"][0]["message"]["content"]
    predictions = Event.objects.filter(action="model.predict", outcome="succeeded")
    # ours for remote-demo (twice) and the second suite's for suite-demo behind it (twice), plus the local one.
    assert predictions.filter(resource_id="remote-demo").count() == 2
    assert predictions.filter(resource_id="suite-demo").count() == 3
