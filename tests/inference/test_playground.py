"""The playground in a real browser: it streams from /v1/chat/completions and keeps the conversation."""

from __future__ import annotations

import json

import pytest

from audit.models import Event

SYSTEM = "You are a helpful assistant."


def _send(page, message: str) -> str:
    page.fill("#pg-message", message)
    page.click("#pg-send")
    page.wait_for_function(
        "() => !document.getElementById('pg-send').disabled && "
        "document.querySelectorAll('#pg-transcript [data-role=assistant]').length > 0",
        timeout=120_000,
    )
    answer = page.locator('#pg-transcript [data-role="assistant"] .text').last.inner_text()
    assert not answer.startswith("Error"), answer
    assert "tokens in" in page.inner_text("#pg-status")
    return answer


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_playground_streams_the_same_answer_the_api_gives_and_reuses_the_cache(
    page, log_in, client, served_model, make_user
):
    engineer = make_user("ml_engineer")
    log_in(engineer)
    page.click('nav.mainnav a[data-nav="models"]')
    page.click("text=Open the playground")
    page.locator("#pg-model").wait_for()
    page.fill("#pg-max-tokens", "24")

    first = _send(page, "Which failure code applies to a leaking pump seal?")
    assert first.strip() and not first.startswith("Error")
    assert "0 prompt tokens from cache" in page.inner_text("#pg-status")
    # Greedy decoding: the streamed text is what the API answers for the same request.
    client.force_login(engineer)
    response = client.post(
        "/v1/chat/completions",
        json.dumps(
            {
                "model": "suite-demo",
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": "Which failure code applies to a leaking pump seal?"},
                ],
                "temperature": 0,
                "max_tokens": 24,
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"].strip() == first.strip()

    # The second turn of the conversation prefills only its new tokens.
    _send(page, "And what causes it?")
    status = page.inner_text("#pg-status")
    cached = int(status.split(" prompt tokens from cache")[0].rsplit("·", 1)[1])
    assert cached > 0, status
    assert len(page.locator('#pg-transcript [data-role="user"]').all()) == 2
    # Each browser call went through the policy and onto the trail as the engineer.
    predictions = Event.objects.filter(actor_label=engineer.username, action="model.predict")
    assert predictions.filter(outcome="succeeded").count() == 3  # two turns in the browser, one API call

    page.click("#pg-reset")
    assert page.locator("#pg-transcript .card").count() == 0
