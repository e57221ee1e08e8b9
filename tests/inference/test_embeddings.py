"""Embeddings from the bundled all-MiniLM-L6-v2: shape, normalisation, similarity order, /v1/embeddings."""

import json

import numpy as np
import pytest

from accounts.roles import Role
from inference.services import embed
from tests.factories import api_key

SENTENCES = [
    "The pump bearing is overheating.",
    "Bearing temperature on the pump is too high.",
    "The invoice was paid late.",
]


def test_embed_shape_norm_and_similarity_order():
    vectors = np.array(embed(SENTENCES))
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.7 > 0.3 > sims[0, 2]
    assert embed([]) == []


@pytest.mark.django_db
def test_v1_embeddings_openai_format(client, make_user):
    user = make_user(Role.ML_ENGINEER)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key(user)}"}
    body = {"model": "all-MiniLM-L6-v2", "input": SENTENCES[:2]}
    response = client.post("/v1/embeddings", data=json.dumps(body), content_type="application/json", **auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["object"] == "list" and len(data["data"]) == 2
    assert len(data["data"][0]["embedding"]) == 384
    assert data["usage"]["prompt_tokens"] > 0
    bad = client.post(
        "/v1/embeddings", data=json.dumps({"input": []}), content_type="application/json", **auth
    )
    assert bad.status_code == 400 and "error" in bad.json()
