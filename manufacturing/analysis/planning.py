"""Replacement policies compared by their long-run cost rate (renewal-reward theorem: expected cost per
renewal cycle / expected cycle length) on a population of unit lives.

Cost model: a planned (preventive) replacement costs `preventive_cost`; a failure in service costs
`failure_cost` (the replacement plus the consequences). A unit replaced at age `s` before its life `T`
ends its cycle at `s` with the preventive cost; otherwise it fails and ends its cycle at `T`.

- run to failure: every cycle ends in failure.
- best fixed interval (age replacement): one age for the whole fleet, chosen on the training lives
  (`fixed_interval`); the best one in hindsight on the evaluated lives is reported beside it as the
  strongest fixed baseline any fleet manager could have had.
- RUL-driven: each unit is replaced when its own prediction says so (observed age + predicted RUL - margin),
  the margin chosen on out-of-fold predictions for the training lives (`choose_margin`), never on the
  evaluated units. A prediction near the cap of the model's training targets (125 cycles on C-MAPSS)
  says only that no degradation shows yet, not when the unit will fail: `choose_policy` may also give
  such units a floor age (they are not replaced before it), chosen on the same training predictions
  together with the margin and the level counted as "near the cap"; with no floor it is the margin
  policy.
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


def plan_compare(
    lives,
    scheduled,
    *,
    preventive_cost: float = 1.0,
    failure_cost: float = 5.0,
    fixed_interval: int | None = None,
) -> dict:
    """Compare the policies; `scheduled` is the RUL-driven replacement age of each unit.

    `fixed_interval`: the fleet's replacement age chosen beforehand (on training lives); without it the
    best interval in hindsight on `lives` stands in (the strongest, unfair-to-RUL baseline)."""
    if preventive_cost <= 0 or failure_cost <= preventive_cost:
        raise ValueError("costs must satisfy 0 < preventive cost < failure cost")
    lives = np.asarray(lives, float)
    if lives.size == 0 or np.any(lives < 1):
        raise ValueError("lives must be positive cycle counts")
    run_to_failure = cost_rate(lives, np.inf, preventive_cost, failure_cost)
    hindsight = best_fixed_interval(lives, preventive_cost, failure_cost)
    fixed = (
        hindsight
        if fixed_interval is None
        else {
            **cost_rate(lives, fixed_interval, preventive_cost, failure_cost),
            "interval": int(fixed_interval),
        }
    )
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
        "hindsight_fixed_interval": hindsight,
        "rul_driven": rul_driven,
        "perfect_knowledge": perfect,
        "improvement_over_fixed_pct": round(100 * (1 - rul_driven["cost_rate"] / fixed["cost_rate"]), 2),
        "improvement_over_hindsight_fixed_pct": round(
            100 * (1 - rul_driven["cost_rate"] / hindsight["cost_rate"]), 2
        ),
        "improvement_over_run_to_failure_pct": round(
            100 * (1 - rul_driven["cost_rate"] / run_to_failure["cost_rate"]), 2
        ),
        "gap_to_perfect_pct": round(100 * (rul_driven["cost_rate"] / perfect["cost_rate"] - 1), 2),
    }


def gain_needs(
    lives, fixed_cost_rate: float, gain_pct: float, preventive_cost: float, failure_cost: float
) -> dict:
    """What any policy would have to do on `lives` to be `gain_pct` % cheaper per cycle than a fixed
    interval costing `fixed_cost_rate`: the cost rate, the most failures it may have (None: not even
    with none: the gain is beyond perfect knowledge), and without a failure how close to its failure
    each unit must be replaced on average (perfect knowledge: 1 cycle before). Each unit's cycle is at
    most its life, so with k failures the longest the cycles can add up to is sum(lives) - (n - k)."""
    lives = np.asarray(lives, float)
    units, total = lives.size, float(lives.sum())
    needed = fixed_cost_rate * (1 - gain_pct / 100)
    failures_allowed = None
    for failures in range(units + 1):
        cost = failures * failure_cost + (units - failures) * preventive_cost
        if cost / needed <= total - (units - failures):
            failures_allowed = failures
        else:
            break
    length = units * preventive_cost / needed  # the cycles that cost rate needs without a failure
    return {
        "gain_pct": gain_pct,
        "cost_rate_needed": needed,
        "failures_allowed": failures_allowed,
        "mean_replacement_age_needed": length / units,
        "mean_life": total / units,
        # on average how many cycles before its failure a unit may be replaced, with no failure at all
        "mean_cycles_before_failure_at_most": (total - length) / units,
    }


def rul_schedule(observed_age, predicted_rul, margin, *, healthy_at=None, healthy_floor=0) -> np.ndarray:
    """Replacement age of each unit: the age at the prediction plus the predicted RUL less a margin
    (never earlier than the next cycle). A unit whose predicted RUL is at least `healthy_at` (no
    degradation visible) is not replaced before age `healthy_floor` either."""
    age = np.asarray(observed_age, float)
    rul = np.asarray(predicted_rul, float)
    schedule = np.maximum(age + rul - np.asarray(margin, float), age + 1)
    if healthy_at is not None:
        schedule = np.where(rul >= healthy_at, np.maximum(schedule, healthy_floor), schedule)
    return schedule


def choose_margin(
    observed_age,
    predicted_rul,
    lives,
    *,
    preventive_cost: float,
    failure_cost: float,
    margins=range(0, 126),
) -> dict:
    """The margin (cycles subtracted from the predicted RUL) with the lowest cost rate on units whose
    lives are known: out-of-fold predictions at truncation points of the training lives, so the choice
    never sees the units it is judged on. Ties go to the smallest margin."""
    lives = np.asarray(lives, float)
    best = None
    for margin in margins:
        outcome = cost_rate(
            lives, rul_schedule(observed_age, predicted_rul, margin), preventive_cost, failure_cost
        )
        if best is None or outcome["cost_rate"] < best["cost_rate"] - 1e-15:
            best = {**outcome, "margin": int(margin)}
    return best


def choose_policy(
    observed_age,
    predicted_rul,
    lives,
    *,
    preventive_cost: float,
    failure_cost: float,
    margins=range(0, 126),
    healthy_levels=(100, 105, 110, 115, 120),
) -> dict:
    """The RUL-driven policy (margin, and optionally a floor age for units predicted near the cap) with
    the lowest cost rate on units whose lives are known, as `choose_margin`. Without a floor that
    beats it, the margin policy itself (`healthy_at` None); ties go to the simpler policy."""
    age = np.asarray(observed_age, float)
    rul = np.asarray(predicted_rul, float)
    lives = np.asarray(lives, float)
    best = {**choose_margin(age, rul, lives, preventive_cost=preventive_cost, failure_cost=failure_cost,
                            margins=margins), "healthy_at": None, "healthy_floor": 0}  # fmt: skip
    margin_grid = np.asarray(list(margins), float)[:, None]
    plain = np.maximum(age + rul - margin_grid, age + 1)  # margins x units
    for level in healthy_levels:
        healthy = rul >= level
        if not healthy.any():
            continue
        for floor in range(int(age.min()) + 1, int(lives.max()) + 1):
            schedule = np.where(healthy, np.maximum(plain, floor), plain)
            planned = schedule < lives
            cost = np.where(planned, preventive_cost, failure_cost).sum(axis=1)
            length = np.where(planned, schedule, lives).sum(axis=1)
            rates = cost / length
            index = int(np.argmin(rates))
            if rates[index] < best["cost_rate"] - 1e-12:
                outcome = cost_rate(lives, schedule[index], preventive_cost, failure_cost)
                best = {
                    **outcome,
                    "margin": int(margin_grid[index, 0]),
                    "healthy_at": level,
                    "healthy_floor": floor,
                }
    return best


def unit_lives(units, cycles) -> dict:
    """Each run-to-failure unit's life: its last recorded cycle."""
    units, cycles = np.asarray(units), np.asarray(cycles)
    return {unit: cycles[units == unit].max() for unit in np.unique(units)}


def truncations(units, cycles, first: int = 31, per_unit: int = 20) -> np.ndarray:
    """Row indices of `per_unit` evenly spaced truncation points of each unit's life, from cycle `first`
    (a full feature window) to one cycle before failure: the training stand-in for test units observed
    up to an arbitrary cycle. Every unit weighs the same, however long it lived."""
    units, cycles = np.asarray(units), np.asarray(cycles)
    picked = []
    for unit in np.unique(units):
        rows = np.flatnonzero(units == unit)
        rows = rows[np.argsort(cycles[rows])][:-1]  # the last row is the failure itself
        eligible = rows[cycles[rows] >= first] if np.any(cycles[rows] >= first) else rows
        if eligible.size:
            picked.append(
                eligible[np.unique(np.linspace(0, eligible.size - 1, per_unit).round().astype(int))]
            )
    return np.concatenate(picked) if picked else np.array([], int)


MAX_LEAD_TIME = 100  # cycles; more than most units' whole remaining life once the model alerts


def check_lead_time(*values: int, option: str = "the lead time") -> None:
    """Refuse a lead time outside 0..MAX_LEAD_TIME cycles (what the commands accept)."""
    for value in values:
        if not 0 <= value <= MAX_LEAD_TIME:
            raise ValueError(
                f"{option} must be a whole number of cycles from 0 to {MAX_LEAD_TIME} (got {value})"
            )


def monitoring_triggers(
    units, cycles, predicted_rul, margins, *, first: int = 31, lead_time: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """RUL-driven replacement with the prediction renewed at every cycle, as the product runs it: the
    replacement is set in motion at the first cycle (from `first`, a full feature window) whose predicted
    RUL is at or below the margin, and happens `lead_time` cycles later (parts ordered, crew booked; a
    unit that fails in between fails). Returns (the units, in order; replacement age per margin x unit,
    inf where the prediction never fell that low, i.e. the unit ran to failure)."""
    if lead_time < 0:
        raise ValueError(f"the lead time must be zero or more cycles (got {lead_time})")
    units, cycles = np.asarray(units), np.asarray(cycles)
    predicted_rul = np.asarray(predicted_rul, float)
    margins = np.asarray(list(margins), float)
    order = np.unique(units)
    ages = np.full((margins.size, order.size), np.inf)
    for column, unit in enumerate(order):
        rows = np.flatnonzero((units == unit) & (cycles >= first))
        if rows.size == 0:
            continue
        rows = rows[np.argsort(cycles[rows])]
        lowest = np.minimum.accumulate(predicted_rul[rows])  # non-increasing
        position = np.searchsorted(-lowest, -margins, side="left")  # first row at or below each margin
        hit = position < rows.size
        ages[hit, column] = cycles[rows][position[hit]] + lead_time
    return order, ages


def smoothed_cost_rate(lives, replace_at, preventive_cost: float, failure_cost: float) -> float:
    """The cost rate with the failure probability smoothed over the units' slack (life - replacement
    age): a plan that replaced every unit of a small sample a cycle or two before it failed has not
    earned a zero failure risk. P(failure) is the mass below half a cycle of a Gaussian kernel density of
    the slacks (Silverman's bandwidth); the expected cycle length is the sample's. With the failures
    counted raw, the margin chosen is always the smallest one without a failure in the sample, which on
    held-out units fails as often as the sample's edge was luck."""
    from scipy.stats import norm

    lives = np.asarray(lives, float)
    replace_at = np.broadcast_to(np.asarray(replace_at, float), lives.shape)
    slack = np.maximum(lives - replace_at, 0.0)  # cycles to spare; 0: failed (never replaced in time)
    spread = min(slack.std(), (np.subtract(*np.percentile(slack, [75, 25]))) / 1.34) or slack.std() or 1.0
    bandwidth = 0.9 * spread * slack.size**-0.2
    failure = float(norm.cdf((0.5 - slack) / bandwidth).mean())  # mass below half a cycle of slack
    length = np.where(replace_at < lives, replace_at, lives).mean()
    return ((1 - failure) * preventive_cost + failure * failure_cost) / length


def _smoothed_best(lives, ages, costs: dict) -> int:
    """Index of the margin (row of `ages`) with the lowest `smoothed_cost_rate` on these units."""
    return int(np.argmin([smoothed_cost_rate(lives, row, **costs) for row in ages]))


def _pooled(lives, replace_at, costs: dict) -> tuple[float, float]:
    """(total cost, total operating cycles) of these units under the plan."""
    outcome = cost_rate(lives, replace_at, **costs)
    length = outcome["mean_cycle_length"] * len(lives)
    return outcome["cost_rate"] * length, length


def monitoring_cross_validated(
    units,
    cycles,
    predicted_rul,
    lives: dict,
    *,
    costs: dict,
    folds: int = 5,
    margins=range(0, 126),
    first: int = 31,
    lead_time: int = 0,
) -> dict:
    """The monitoring policy (`monitoring_triggers`) scored on units whose whole lives are recorded, with
    every choice made without them: the units are split into `folds` groups; for each group the margin
    and the fleet's fixed interval are chosen on the other groups' units (their out-of-fold predictions
    and lives), both by `smoothed_cost_rate`, and scored on the group. Costs and cycle lengths are
    pooled over the groups (long-run cost rate = total cost / total operating cycles), beside run to
    failure and perfect knowledge. A `lead_time` delays each RUL-driven replacement after its trigger;
    the fixed interval is known in advance, so it carries none (its parts are ordered ahead)."""
    order, ages = monitoring_triggers(units, cycles, predicted_rul, margins, first=first, lead_time=lead_time)
    if order.size < 2 or folds < 2:
        raise ValueError("monitoring is scored on held-out units: give at least 2 units and 2 folds")
    life = np.array([lives[unit] for unit in order], float)
    margin_grid = np.asarray(list(margins), int)
    group = np.arange(order.size) % folds
    totals = {name: [0.0, 0.0, 0, 0] for name in ("rul_monitoring", "best_fixed_interval")}
    chosen = []
    for k in range(folds):
        held, rest = group == k, group != k
        if not held.any() or not rest.any():
            continue
        m = _smoothed_best(life[rest], ages[:, rest], costs)
        candidates = np.arange(1, int(life[rest].max()) + 1)
        interval = int(
            candidates[np.argmin([smoothed_cost_rate(life[rest], a, **costs) for a in candidates])]
        )
        chosen.append(
            {"fold": k, "units": int(held.sum()), "margin": int(margin_grid[m]), "fixed_interval": interval}
        )
        for name, replace_at in (("rul_monitoring", ages[m, held]), ("best_fixed_interval", interval)):
            outcome = cost_rate(life[held], replace_at, **costs)
            cost, length = _pooled(life[held], replace_at, costs)
            totals[name][0] += cost
            totals[name][1] += length
            totals[name][2] += outcome["failures"]
            totals[name][3] += outcome["planned"]
    report = {
        name: {"cost_rate": cost / length, "failures": failures, "planned": planned,
               "mean_cycle_length": length / life.size}
        for name, (cost, length, failures, planned) in totals.items()
    }  # fmt: skip
    report["run_to_failure"] = cost_rate(life, np.inf, **costs)
    report["perfect_knowledge"] = cost_rate(life, life - 1, **costs)
    fixed = report["best_fixed_interval"]["cost_rate"]
    return {
        "units": int(order.size),
        "folds": folds,
        "lead_time": int(lead_time),
        **report,
        "choices": chosen,
        "improvement_over_fixed_pct": round(100 * (1 - report["rul_monitoring"]["cost_rate"] / fixed), 2),
        "perfect_knowledge_over_fixed_pct": round(
            100 * (1 - report["perfect_knowledge"]["cost_rate"] / fixed), 2
        ),
    }


def replacement_plan(
    units,
    cycles,
    predicted_rul,
    lives: dict,
    *,
    costs: dict,
    folds: int = 5,
    margins=range(0, 126),
    first: int = 31,
    lead_time: int = 0,
) -> dict:
    """The replacement point a model's users act on: once a unit's predicted RUL is at or below
    `replace_at_rul`, replace it (with a `lead_time`: order its parts now, the replacement follows
    `lead_time` cycles later); the margin with the lowest `smoothed_cost_rate` over all the
    (run-to-failure) training units' out-of-fold predictions, with what the same choice was worth on
    units it did not see (`monitoring_cross_validated`)."""
    held_out = monitoring_cross_validated(
        units, cycles, predicted_rul, lives, costs=costs, folds=folds, margins=margins, first=first,
        lead_time=lead_time,
    )  # fmt: skip
    order, ages = monitoring_triggers(units, cycles, predicted_rul, margins, first=first, lead_time=lead_time)
    life = np.array([lives[unit] for unit in order], float)
    margin = int(np.asarray(list(margins))[_smoothed_best(life, ages, costs)])
    return {
        "replace_at_rul": margin,
        "lead_time": int(lead_time),
        **costs,
        "held_out_units": held_out["units"],
        "held_out_failures": held_out["rul_monitoring"]["failures"],
        "held_out_improvement_over_fixed_pct": held_out["improvement_over_fixed_pct"],
        "perfect_knowledge_over_fixed_pct": held_out["perfect_knowledge_over_fixed_pct"],
    }
