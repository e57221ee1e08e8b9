"""Fixtures for the manufacturing tests: two sites, a machine on each, engineers, the failure codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from manufacturing.models import Line, Machine, Site


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _machine(site_code: str, tag: str) -> Machine:
    site, _ = Site.objects.get_or_create(code=site_code, defaults={"name": site_code.upper()})
    line, _ = Line.objects.get_or_create(site=site, name="Line 1")
    return Machine.objects.create(line=line, tag=tag, name=f"Chiller {tag}")


@pytest.fixture
def machine_a(db) -> Machine:
    return _machine("site-a", "CWC04009")


@pytest.fixture
def machine_b(db) -> Machine:
    return _machine("site-b", "CWC04013")


@pytest.fixture
def engineer_a(make_user):
    return make_user("maintenance_engineer", site="site-a")


@pytest.fixture
def engineer_b(make_user):
    return make_user("maintenance_engineer", site="site-b")


@pytest.fixture
def failure_codes(db):
    from manufacturing.services import failure_codes_import

    return failure_codes_import(path=Path(settings.SHARED_DATA_DIR) / "work_orders" / "failure_codes.csv")


@pytest.fixture(scope="session")
def fitted_failure_classifier():
    """The assistant's failure-mode classifier fitted once per test run (with the LLM layer's
    embeddings), as `train_failure_classifier` fits it, on up to 6 examples of each mode of the shared
    training file (a third of the fit's CPU)."""
    from inference.services import embed
    from manufacturing.analysis.failure_modes import FailureModeClassifier, read_labelled
    from manufacturing.services.failure_classifier import base_training_path

    texts, labels, seen = [], [], {}
    for text, label in zip(*read_labelled(base_training_path()), strict=True):
        if seen.setdefault(label, 0) < 6:
            seen[label] += 1
            texts.append(text)
            labels.append(label)
    return FailureModeClassifier(embed).fit(texts, labels), len(texts)


@pytest.fixture
def stored_failure_classifier(db, settings, tmp_path, fitted_failure_classifier):
    """That classifier stored as version 1 under a per-test MODEL_ROOT (the store path of the product)."""
    from manufacturing.services.failure_classifier import failure_classifier_store

    settings.MODEL_ROOT = tmp_path / "models"
    classifier, examples = fitted_failure_classifier
    return failure_classifier_store(actor="test:fixture", classifier=classifier, examples=examples)
