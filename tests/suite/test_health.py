"""Liveness and readiness, including readiness failing when a dependency is unreachable."""

import json

import pytest

from tests.support import manage, subprocess_env

PROBE = "from django.test import Client; r = Client(HTTP_HOST='localhost').get('/readyz'); print(r.status_code); print(r.content.decode())"


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_when_everything_is_reachable(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def _probe(**environment):
    result = manage("shell", "--no-imports", "-c", PROBE, env=subprocess_env(**environment), timeout=90)
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split("\n", 1)
    return int(status), json.loads(body)


def test_readyz_is_503_when_the_database_is_unreachable():
    status, body = _probe(DATABASE_URL="postgres://postgres@127.0.0.1:9/nowhere")
    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"]


def test_readyz_is_503_when_the_broker_is_unreachable():
    status, body = _probe(CELERY_BROKER_URL="redis://127.0.0.1:9/0")
    assert status == 503
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
