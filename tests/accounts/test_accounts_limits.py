"""Input limits and the inference throttle: 400/429 with a message, never a 500."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from rest_framework.throttling import ScopedRateThrottle

from accounts.roles import Role
from restapi.parsers import json_depth
from tests.factories import api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth(make_user):
    cache.clear()
    yield {"HTTP_AUTHORIZATION": f"Bearer {api_key(make_user(Role.ML_ENGINEER))}"}
    cache.clear()


def _post(client, auth, body, url="/v1/completions"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **auth)


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'"\\"[["') == 0
    assert json_depth(b"[" * 50 + b"]" * 50) == 50


def test_deeply_nested_json_is_a_400(client, auth):
    response = _post(client, auth, '{"model": "x", "prompt": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["error"]["message"]


def test_oversized_json_is_a_400(client, auth, settings):
    settings.SUITE_JSON_MAX_BYTES = 1000
    response = _post(client, auth, {"model": "x", "prompt": "y" * 2000})
    assert response.status_code == 400
    assert "larger than 1000 bytes" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["/v1/completions", "/api/auth/token/"])
def test_a_body_over_django_s_request_size_limit_is_a_400(client, auth, settings, url):
    """Found by scripts/probe_security.py: DRF read the whole body (Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
    2.5 MiB) before the JSON parser saw it, and a 5 MiB body was a 500 on /v1."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE, settings.SUITE_JSON_MAX_BYTES = 1000, 1500
    response = _post(client, auth, {"model": "x", "prompt": "y" * 2000, "username": "y" * 2000}, url=url)
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    message = body["error"]["message"] if "error" in body else body["detail"]
    assert "larger than 1500 bytes" in message


@pytest.mark.parametrize("seed", [2**32, 10**40, -1])
def test_out_of_range_seed_is_a_400_naming_the_field(client, auth, seed):
    response = _post(client, auth, {"model": "x", "prompt": "hi", "seed": seed})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "seed"


def test_inference_is_throttled_per_user_with_retry_after(client, auth, make_user, monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "inference", "3/min")
    codes = [_post(client, auth, {"prompt": "no model"}).status_code for _ in range(3)]
    assert codes == [400, 400, 400]
    throttled = _post(client, auth, {"prompt": "no model"})
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert throttled.json()["error"]["type"] == "rate_limit_error"
    assert _post(client, auth, {"input": "x"}, url="/v1/embeddings").status_code == 429
    # Another user has a budget of their own.
    other = {"HTTP_AUTHORIZATION": f"Bearer {api_key(make_user(Role.ML_ENGINEER))}"}
    assert _post(client, other, {"prompt": "no model"}).status_code == 400


def _views(patterns, prefix=""):
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
            yield prefix + str(pattern.pattern), view


def test_every_api_view_parses_json_with_the_limits():
    from django.urls import get_resolver
    from rest_framework.parsers import JSONParser
    from rest_framework.views import APIView

    from restapi.parsers import LimitedJSONParser

    api_views = [
        (route, view)
        for route, view in _views(get_resolver().url_patterns)
        if isinstance(view, type) and issubclass(view, APIView)
    ]
    assert len(api_views) > 20
    unlimited = [
        route
        for route, view in api_views
        for parser in view().get_parsers()
        if parser.media_type == JSONParser.media_type and not isinstance(parser, LimitedJSONParser)
    ]
    assert not unlimited, f"views parsing JSON without size/depth limits: {unlimited}"
