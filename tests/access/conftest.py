"""Fixtures for the access policy tests: a policy put in force for one test, and trail reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from access.loader import load_policy_file
from access.policy import activate, active_policy

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """These tests create hundreds of users; the production hasher would spend minutes on them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def use_policy():
    """use_policy("seed.yaml") puts tests/access/data/seed.yaml in force until the test ends."""
    original = active_policy()

    def use(name: str):
        policy = load_policy_file(DATA / name)
        activate(policy)
        return policy

    yield use
    activate(original)


def trail(**filters):
    from audit.models import Event

    return list(Event.objects.filter(**filters).order_by("sequence"))
