"""Replacement policies compared by their long-run cost rate (renewal-reward theorem: expected cost per
renewal cycle / expected cycle length) on a population of unit lives.

Cost model: a planned (preventive) replacement costs `preventive_cost`; a failure in service costs
`failure_cost` (the replacement plus the consequences). A unit replaced at age `s` before its life `T`
ends its cycle at `s` with the preventive cost; otherwise it fails and ends its cycle at `T`.

- run to failure: every cycle ends in failure.
- best fixed interval (age replacement): one age for the whole fleet, the best one in hindsight on the
  same lives (the strongest fixed baseline).
- RUL-driven: each unit is replaced when its own prediction says so (observed age + predicted RUL - margin).
- perfect knowledge: each unit replaced one cycle before it would fail (the floor no policy can beat).
"""

from __future__ import annotations

import numpy as np


def cost_rate(lives, replace_at, preventive_cost: float, failure_cost: float) -> dict:
    lives = np.asarray(lives, float)
    replace_at = np.broadcast_to(np.asarray(replace_at, float), lives.shape)
    planned = replace_at < lives
    cost = np.where(planned, preventive_cost, failure_cost).sum()
    length = np.where(planned, replace_at, lives).sum()
    return {
        "cost_rate": float(cost / length),
        "failures": int((~planned).sum()),
        "planned": int(planned.sum()),
        "mean_cycle_length": float(length / lives.size),
    }


def best_fixed_interval(lives, preventive_cost: float, failure_cost: float) -> dict:
    lives = np.asarray(lives, float)
    best = None
    for age in range(1, int(lives.max()) + 1):
        outcome = cost_rate(lives, age, preventive_cost, failure_cost)
        if best is None or outcome["cost_rate"] < best["cost_rate"]:
            best = {**outcome, "interval": age}
    return best


def plan_compare(lives, scheduled, *, preventive_cost: float = 1.0, failure_cost: float = 5.0) -> dict:
    """Compare the policies; `scheduled` is the RUL-driven replacement age of each unit."""
    if preventive_cost <= 0 or failure_cost <= preventive_cost:
        raise ValueError("costs must satisfy 0 < preventive cost < failure cost")
    lives = np.asarray(lives, float)
    if lives.size == 0 or np.any(lives < 1):
        raise ValueError("lives must be positive cycle counts")
    run_to_failure = cost_rate(lives, np.inf, preventive_cost, failure_cost)
    fixed = best_fixed_interval(lives, preventive_cost, failure_cost)
    rul_driven = cost_rate(
        lives, np.maximum(np.asarray(scheduled, float), 1.0), preventive_cost, failure_cost
    )
    perfect = cost_rate(lives, lives - 1, preventive_cost, failure_cost)
    return {
        "cost_model": {
            "preventive_cost": preventive_cost,
            "failure_cost": failure_cost,
            "cost_rate": "expected cost per renewal cycle / expected cycle length (cost per operating cycle)",
        },
        "units": int(lives.size),
        "run_to_failure": run_to_failure,
        "best_fixed_interval": fixed,
        "rul_driven": rul_driven,
        "perfect_knowledge": perfect,
        "improvement_over_fixed_pct": round(100 * (1 - rul_driven["cost_rate"] / fixed["cost_rate"]), 2),
        "improvement_over_run_to_failure_pct": round(
            100 * (1 - rul_driven["cost_rate"] / run_to_failure["cost_rate"]), 2
        ),
        "gap_to_perfect_pct": round(100 * (rul_driven["cost_rate"] / perfect["cost_rate"] - 1), 2),
    }


def rul_schedule(observed_age, predicted_rul, margin) -> np.ndarray:
    """Replacement age of each unit: the age at the prediction plus the predicted RUL less a margin
    (never earlier than the next cycle)."""
    age = np.asarray(observed_age, float)
    return np.maximum(age + np.asarray(predicted_rul, float) - np.asarray(margin, float), age + 1)
