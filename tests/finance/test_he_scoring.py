"""Encrypted scoring (CKKS, TenSEAL): the partner's ciphertext is scored by Suite without Suite
ever holding a secret key, the decrypted score matches the plaintext one, and the API refuses bad
input and the wrong roles."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from audit.models import Event
from finance.he import services, training
from finance.he.client import PartnerKeys
from finance.he.scoring import HeInputError, LinearScorer, load_public_context, score_encrypted
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def keys() -> PartnerKeys:
    return PartnerKeys.generate()


@pytest.fixture(scope="module")
def amlsim():
    from django.conf import settings

    return training.amlsim_features(settings.SHARED_DATA_DIR / "amlsim")


@pytest.fixture
def scorer_file(tmp_path, amlsim):
    features, labels = amlsim
    scorer = training.fit_linear_scorer(features, labels, training.FEATURE_NAMES, description="test")
    path = tmp_path / "scorer.json"
    path.write_text(scorer.to_json())
    with override_settings(FINANCE_HE_SCORER=path):
        yield scorer


def test_encrypted_scores_match_plaintext_within_1e_3(keys, amlsim, scorer_file):
    features, _ = amlsim
    context = load_public_context(keys.public_context())
    assert not context.has_secret_key()
    for row in features[np.random.default_rng(1).choice(len(features), 10, replace=False)]:
        encrypted = score_encrypted(context, keys.encrypt(row.tolist()), scorer_file)
        assert abs(keys.decrypt(encrypted) - scorer_file.plaintext_score(row)) <= 1e-3


def test_the_fitted_scorer_ranks_laundering_payments_higher(amlsim, scorer_file):
    features, labels = amlsim
    scores = features @ np.asarray(scorer_file.weights) + scorer_file.bias
    assert scores[labels == 1].mean() > scores[labels == 0].mean()


def test_suite_cannot_decrypt_and_refuses_a_secret_context(keys, scorer_file):
    context = load_public_context(keys.public_context())
    encrypted = score_encrypted(context, keys.encrypt([1.0] * 5), scorer_file)
    from tenseal import ckks_vector_from

    with pytest.raises(ValueError, match="secret_key"):
        ckks_vector_from(context, encrypted).decrypt()
    with pytest.raises(HeInputError, match="secret key"):
        load_public_context(keys.save())


def test_wrong_length_vector_is_a_clear_error(keys, scorer_file):
    context = load_public_context(keys.public_context())
    with pytest.raises(HeInputError, match="model takes 5"):
        score_encrypted(context, keys.encrypt([1.0, 2.0]), scorer_file)


def test_scorer_round_trips_and_rejects_garbage():
    scorer = LinearScorer(("a", "b"), (0.5, -1.0), 0.25)
    assert LinearScorer.from_json(scorer.to_json()) == scorer
    with pytest.raises(HeInputError):
        LinearScorer.from_json("{}")


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    "who, expected",
    [("anonymous", {401, 403}), ("clinician", {403}), ("maintenance_engineer", {403})],
)
def test_api_refuses_the_wrong_callers_and_changes_nothing(
    who, expected, keys, scorer_file, tmp_path, settings
):
    settings.VAR_DIR = tmp_path
    user = None if who == "anonymous" else UserFactory(roles=[who], department="radiology", site="site-a")
    before = Event.objects.filter(action__startswith="he.").count()
    client = _client(user)
    response = client.post(
        "/api/finance/he/keys/",
        {"context": SimpleUploadedFile("ctx", keys.public_context())},
        format="multipart",
    )
    assert response.status_code in expected
    assert not services.key_dir().exists()
    assert (
        client.post(
            "/api/finance/he/score/", {"key_id": "0" * 64, "ciphertext": "AA=="}, format="json"
        ).status_code
        in expected
    )
    assert Event.objects.filter(action__startswith="he.").count() == before


def test_partner_round_trip_through_the_api(keys, scorer_file, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    officer = UserFactory(roles=["compliance_officer"], department="aml-eu")
    client = _client(officer)
    model = client.get("/api/finance/he/model/")
    assert model.status_code == 200 and model.json()["feature_names"] == list(training.FEATURE_NAMES)
    registered = client.post(
        "/api/finance/he/keys/",
        {"context": SimpleUploadedFile("ctx", keys.public_context())},
        format="multipart",
    )
    assert registered.status_code == 201, registered.content
    key_id = registered.json()["key_id"]
    features = [4.2, 5.0, 1.1, 0.7, 0.0]
    response = client.post(
        "/api/finance/he/score/",
        {"key_id": key_id, "ciphertext": base64.b64encode(keys.encrypt(features)).decode()},
        format="json",
    )
    assert response.status_code == 200, response.content
    score = keys.decrypt(base64.b64decode(response.json()["encrypted_score"]))
    assert abs(score - scorer_file.plaintext_score(features)) <= 1e-3
    assert Event.objects.filter(action="he.score", outcome="succeeded").count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"key_id": "nothex", "ciphertext": "AA=="}, "key_id"),
        ({"key_id": "a" * 64, "ciphertext": "AA=="}, "no public context"),
        ({"key_id": "a" * 64, "ciphertext": "***"}, "base64"),
        ({"ciphertext": "AA=="}, "key_id"),
    ],
)
def test_bad_score_requests_are_400s_naming_the_problem(body, field, scorer_file, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    client = _client(UserFactory(roles=["compliance_officer"], department="aml-eu"))
    response = client.post("/api/finance/he/score/", body, format="json")
    assert response.status_code == 400
    assert field in response.content.decode()


def test_a_garbage_context_is_a_400(tmp_path, settings, scorer_file):
    settings.VAR_DIR = tmp_path
    client = _client(UserFactory(roles=["compliance_officer"], department="aml-eu"))
    response = client.post(
        "/api/finance/he/keys/", {"context": SimpleUploadedFile("ctx", b"not a context")}, format="multipart"
    )
    assert response.status_code == 400 and "TenSEAL context" in response.content.decode()
    assert not services.key_dir().exists() or not any(services.key_dir().iterdir())


def test_without_a_trained_model_the_api_says_how_to_get_one(tmp_path, settings):
    settings.FINANCE_HE_SCORER = tmp_path / "missing.json"
    client = _client(UserFactory(roles=["compliance_officer"], department="aml-eu"))
    response = client.get("/api/finance/he/model/")
    assert response.status_code == 409 and "train_he_scorer" in response.json()["detail"]
