"""System checks: `manage.py check` fails on a malformed policy file, naming the file and line."""

from __future__ import annotations

from django.core import checks

from access.errors import PolicyError
from access.loader import load_policy_file
from access.policy import policy_file
from access.resources import validate_resource_models


@checks.register()
def check_policy_file(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The configured policy file as it is on disk now (it may have changed since start-up)."""
    path = policy_file()
    try:
        load_policy_file(path)
    except PolicyError as error:
        return [
            checks.Error(
                error.describe(problem),
                hint="Fix the policy file (see platform/access/POLICY.md); the suite refuses to start with it.",
                obj=f"{path}:{problem.line}" if problem.line else str(path),
                id="access.E001",
            )
            for problem in error.problems
        ]
    return []


@checks.register()
def check_resource_models(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    return [checks.Error(problem, id="access.E002") for problem in validate_resource_models()]
