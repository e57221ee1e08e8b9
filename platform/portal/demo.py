"""Demo data registry. Each app registers a step in AppConfig.ready(); bootstrap_demo runs them in order.

A step is idempotent: it creates what is missing and leaves what exists alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoStep:
    name: str
    order: int
    run: Callable[[Callable[[str], None]], None]  # receives a `say(message)` progress callback


_STEPS: dict[str, DemoStep] = {}


def register(name: str, *, order: int = 100) -> Callable:
    def decorator(func: Callable[[Callable[[str], None]], None]):
        _STEPS[name] = DemoStep(name=name, order=order, run=func)
        return func

    return decorator


def steps() -> list[DemoStep]:
    return sorted(_STEPS.values(), key=lambda step: (step.order, step.name))
