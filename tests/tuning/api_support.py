"""Small helpers for the tuning API tests: authenticated JSON calls and a job request body."""

from __future__ import annotations

import json

from tests.factories import api_key

JOBS = "/api/tuning/jobs/"
ADAPTERS = "/api/tuning/adapters/"


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_key(user)}"}


def call(client, method: str, path: str, user=None, body=None):
    headers = bearer(user) if user is not None else {}
    if method == "get":
        return client.get(path, **headers)
    return client.post(path, data=json.dumps(body or {}), content_type="application/json", **headers)


def job_body(**overrides) -> dict:
    """A small job on the tiny demo model and the work-order DataAdapter (60 distinct work orders)."""
    return {
        "base_model": "suite-demo",
        "data_adapter": "tests.work_orders",
        "adapter_name": "failure-codes",
        "filters": {"limit": 60},
        "lora_r": 4,
        "lora_alpha": 8,
        "epochs": 1,
        "batch_size": 8,
        "max_seq_len": 96,
        "checkpoint_every": 4,
        **overrides,
    }
