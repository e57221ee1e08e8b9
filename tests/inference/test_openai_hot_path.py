"""What the /v1 request path does once instead of per request still answers as before: the input
serializers' shared fields validate like DRF's fresh copies, and /v1 answers JSON whatever Accept says."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from accounts.roles import Role
from inference.openai_api import ChatInput, CompletionInput
from tests.factories import api_key


class _FreshChat(ChatInput):
    fields = serializers.Serializer.fields  # DRF's own: a deep copy of the declared fields per instance


class _FreshCompletion(CompletionInput):
    fields = serializers.Serializer.fields


MESSAGES = [{"role": "user", "content": "Which failure code?"}]
BODIES = [
    {"model": "m", "messages": MESSAGES},
    {"model": "m", "messages": MESSAGES, "max_tokens": 0, "top_p": 0, "stop": ["", 3]},
    {"model": "m", "messages": MESSAGES, "max_tokens": "12", "temperature": "0.5", "stop": "END", "seed": 7},
    {"model": " m ", "messages": [{"role": "robot", "content": None}, {"content": 1}], "n": 2},
    {"messages": MESSAGES, "seed": 2**32, "speculative": "sometimes", "session_id": "s" * 201},
    {"model": "m", "messages": MESSAGES, "stream": True, "adapter": "a1", "speculative": "prompt_lookup"},
    {"model": "m", "prompt": "", "top_k": -1},
    {"model": "m", "prompt": "Work order", "max_completion_tokens": 5, "user": ""},
]


def _outcome(serializer):
    valid = serializer.is_valid()
    return valid, (dict(serializer.validated_data) if valid else serializer.errors)


@pytest.mark.parametrize(("shared", "fresh"), [(ChatInput, _FreshChat), (CompletionInput, _FreshCompletion)])
def test_shared_fields_validate_every_body_as_fresh_ones_do(shared, fresh):
    for _ in range(2):  # twice, so each body also follows others through the same bound fields
        for body in BODIES:
            assert _outcome(shared(data=body)) == _outcome(fresh(data=body)), body
    assert shared(data={}).fields is shared(data={}).fields


@pytest.mark.django_db
def test_v1_answers_json_whatever_accept_asks(make_user):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key(make_user(Role.ML_ENGINEER))}")
    for accept in ("text/html", "application/xml", "*/*"):
        response = api.get("/v1/models", HTTP_ACCEPT=accept)
        assert response.status_code == 200 and response["Content-Type"] == "application/json", accept
        assert response.json()["object"] == "list"
