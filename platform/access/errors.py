"""Errors raised by the access policy: a malformed policy file, and a refused decision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import PermissionDenied


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy file, at a 1-based line (0 when the file could not be read)."""

    line: int
    message: str


class PolicyError(ValueError):
    """A policy file that cannot be used. Names the file and the line of every problem."""

    def __init__(self, path: Path | str, problems: list[Problem]):
        self.path = str(path)
        self.problems = sorted(problems, key=lambda problem: problem.line)
        super().__init__("\n".join(self.describe(problem) for problem in self.problems))

    def describe(self, problem: Problem) -> str:
        where = f"{self.path}, line {problem.line}" if problem.line else self.path
        return f"Access policy {where}: {problem.message}"


class PolicyDenied(PermissionDenied):
    """The access policy refused `decision`. A PermissionDenied, so views answer 403.

    `trail`, when set (access.enforcement.check), writes the denial to the trail again should the
    transaction it was written in have rolled back (access.enforcement.trail_denial)."""

    def __init__(self, decision, trail=None):
        self.decision = decision
        self.trail = trail
        super().__init__(decision.reason)
