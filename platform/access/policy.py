"""The policy in force: loaded from settings.ACCESS_POLICY_FILE at start-up, reloaded on demand.

Each process holds one validated Policy. `AccessConfig.ready()` loads it and refuses to start
when the file is malformed (ImproperlyConfigured naming the file and line); `reload()` re-reads
the file in the calling process, keeps the policy in force if the new file is malformed, and
records a "policy.reload" event on the trail either way. Other processes (web workers, Celery
workers) pick up a changed file when they restart or call reload() themselves.
"""

from __future__ import annotations

import threading
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from access.errors import PolicyError
from access.loader import load_policy_file
from access.rules import Policy
from audit.services import record

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "policies" / "default.yaml"
POLICY_RESOURCE_NAME = "suite"  # the policy as a resource: "policy:suite" (explain, reload)

_lock = threading.Lock()
_active: Policy | None = None


def policy_file() -> Path:
    configured = getattr(settings, "ACCESS_POLICY_FILE", None)
    if not configured:
        return DEFAULT_POLICY_FILE
    path = Path(configured)
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def load_at_startup() -> Policy:
    """Load and activate the configured file; ImproperlyConfigured (naming file and line) if malformed."""
    try:
        policy = load_policy_file(policy_file())
    except PolicyError as error:
        raise ImproperlyConfigured(str(error)) from error
    activate(policy)
    return policy


def active_policy() -> Policy:
    policy = _active
    return policy if policy is not None else load_at_startup()


def activate(policy: Policy) -> Policy | None:
    """Put `policy` in force in this process; returns the one it replaces (tests restore it)."""
    global _active
    with _lock:
        previous, _active = _active, policy
    return previous


def reload(*, actor: object = "system:access") -> Policy:
    """Re-read the policy file and put it in force; trailed as "policy.reload" with the file's hash.

    A malformed file raises PolicyError, is trailed with outcome "failed", and leaves the policy
    in force unchanged: a bad edit never opens (or closes) anything.
    """
    path = policy_file()
    previous = active_policy()
    try:
        policy = load_policy_file(path)
    except PolicyError as error:
        record(
            actor=actor,
            action="policy.reload",
            resource_type="policy",
            resource_id=POLICY_RESOURCE_NAME,
            outcome="failed",
            payload={
                "file": str(path),
                "problems": [error.describe(problem) for problem in error.problems],
                "sha256_in_force": previous.sha256,
            },
        )
        raise
    record(
        actor=actor,
        action="policy.reload",
        resource_type="policy",
        resource_id=POLICY_RESOURCE_NAME,
        outcome="succeeded",
        payload={
            "file": str(path),
            "sha256": policy.sha256,
            "previous_sha256": previous.sha256,
            "rules": len(policy.rules),
        },
    )
    activate(policy)
    return policy
