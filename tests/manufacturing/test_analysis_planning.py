"""manufacturing.analysis.planning on small synthetic fleets with known optimum cost rates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from manufacturing.analysis.planning import (
    best_fixed_interval,
    choose_margin,
    choose_policy,
    cost_rate,
    monitoring_cross_validated,
    monitoring_triggers,
    plan_compare,
    replacement_plan,
    rul_schedule,
    smoothed_cost_rate,
    truncations,
)
from manufacturing.analysis.prognostics import read_cmapss, read_rul


def test_two_life_fleet_has_the_known_optimum():
    # half the units live 50 cycles, half 100; preventive 1, failure 10
    lives = [50, 100] * 5
    fixed = best_fixed_interval(lives, 1.0, 10.0)
    assert fixed["interval"] == 49  # replace everything just before the early failures
    assert fixed["cost_rate"] == pytest.approx(1 / 49) and fixed["failures"] == 0
    assert cost_rate(lives, float("inf"), 1.0, 10.0)["cost_rate"] == pytest.approx(10 / 75)


def test_perfect_predictions_reach_the_floor_and_beat_the_fixed_interval():
    lives = [50, 100] * 5
    report = plan_compare(lives, [life - 1 for life in lives], preventive_cost=1.0, failure_cost=10.0)
    assert report["rul_driven"]["cost_rate"] == pytest.approx(report["perfect_knowledge"]["cost_rate"])
    assert report["perfect_knowledge"]["cost_rate"] == pytest.approx(10 / (49 * 5 + 99 * 5))
    # floor 10/740 vs fixed 1/49: 33.8% lower
    assert report["improvement_over_fixed_pct"] == pytest.approx(100 * (1 - (10 / 740) / (1 / 49)), abs=0.01)
    assert report["gap_to_perfect_pct"] == pytest.approx(0.0)


def test_late_predictions_cost_failures():
    lives = [60, 80, 100]
    report = plan_compare(lives, [70, 90, 110], preventive_cost=1.0, failure_cost=5.0)
    assert report["rul_driven"]["failures"] == 3
    assert report["rul_driven"]["cost_rate"] == pytest.approx(report["run_to_failure"]["cost_rate"])


def test_schedule_and_refusals():
    assert rul_schedule([10, 10], [30, 0], [5, 5]).tolist() == [35, 11]
    with pytest.raises(ValueError, match="preventive cost < failure cost"):
        plan_compare([10], [5], preventive_cost=5, failure_cost=1)
    with pytest.raises(ValueError, match="positive"):
        plan_compare([0], [5])


def test_fixed_interval_chosen_beforehand_is_scored_beside_the_hindsight_one():
    lives = [50, 100] * 5
    report = plan_compare(lives, [49, 99] * 5, preventive_cost=1.0, failure_cost=10.0, fixed_interval=60)
    # 60 from training lives: the 50-cycle units fail (5 x 10 + 5 x 1 over 5 x 50 + 5 x 60 cycles)
    assert report["best_fixed_interval"]["interval"] == 60
    assert report["best_fixed_interval"]["cost_rate"] == pytest.approx(55 / 550)
    assert report["hindsight_fixed_interval"]["interval"] == 49
    assert report["improvement_over_fixed_pct"] == pytest.approx(
        100 * (1 - (10 / 740) / (55 / 550)), abs=0.01
    )


def test_margin_is_the_known_optimum_for_predictions_that_run_late():
    # every prediction is 10 cycles late: a margin of 11 replaces each unit one cycle before failure
    ages = np.array([20, 30, 40, 20, 30, 40])
    lives = np.array([60, 60, 60, 90, 90, 90])
    chosen = choose_margin(ages, lives - ages + 10, lives, preventive_cost=1.0, failure_cost=5.0)
    assert chosen["margin"] == 11 and chosen["failures"] == 0
    assert chosen["cost_rate"] == pytest.approx(6 / (3 * 59 + 3 * 89))


def test_a_floor_for_units_predicted_at_the_cap_is_the_known_optimum():
    """Predictions capped at 125 (as the models' targets): a unit 180 cycles from failure reads 125, so
    the margin policy replaces it at 20 + 125 - margin, 55 cycles early; a floor for units predicted
    near the cap keeps it until just before its life."""
    ages = np.array([20, 20, 20, 20])
    lives = np.array([100, 200, 100, 200])
    predicted = np.minimum(lives - ages, 125)  # exact below the cap
    margin_only = choose_margin(ages, predicted, lives, preventive_cost=1.0, failure_cost=5.0)
    assert margin_only["margin"] == 1 and margin_only["cost_rate"] == pytest.approx(4 / (2 * 99 + 2 * 144))
    chosen = choose_policy(ages, predicted, lives, preventive_cost=1.0, failure_cost=5.0)
    assert (chosen["margin"], chosen["healthy_at"], chosen["healthy_floor"]) == (1, 100, 199)
    assert chosen["cost_rate"] == pytest.approx(4 / (2 * 99 + 2 * 199)) and chosen["failures"] == 0
    schedule = rul_schedule(ages, predicted, 1, healthy_at=100, healthy_floor=199)
    assert schedule.tolist() == [99, 199, 99, 199]


def test_no_floor_when_it_does_not_pay():
    # predictions 10 cycles late and never near the cap: the margin policy itself
    ages = np.array([20, 30, 40, 20, 30, 40])
    lives = np.array([60, 60, 60, 90, 90, 90])
    chosen = choose_policy(ages, lives - ages + 10, lives, preventive_cost=1.0, failure_cost=5.0)
    assert (chosen["margin"], chosen["healthy_at"], chosen["healthy_floor"]) == (11, None, 0)


def test_truncations_weigh_every_unit_the_same():
    units = np.repeat([1, 2], [100, 300])
    cycles = np.concatenate([np.arange(1, 101), np.arange(1, 301)])
    rows = truncations(units, cycles, first=31, per_unit=5)
    assert cycles[rows].tolist() == [31, 48, 65, 82, 99, 31, 98, 165, 232, 299]
    assert units[rows].tolist() == [1] * 5 + [2] * 5


def test_monitoring_replaces_at_the_first_cycle_predicted_at_or_below_the_margin():
    units = np.repeat([7, 3], [6, 5])
    cycles = np.concatenate([np.arange(1, 7), np.arange(1, 6)])
    predicted = np.array([50, 9, 12, 4, 6, 1, 30, 20, 20, 15, 3], float)
    order, ages = monitoring_triggers(units, cycles, predicted, [0, 4, 10, 25], first=2)
    assert order.tolist() == [3, 7]
    # unit 3 (from cycle 2: 20, 20, 15, 3); unit 7 (9, 12, 4, 6, 1): cycle 1 is before `first`
    assert ages.tolist() == [[np.inf, np.inf], [5, 4], [5, 2], [2, 2]]


def test_monitoring_with_exact_predictions_comes_within_a_few_cycles_of_perfect_knowledge():
    rng = np.random.default_rng(0)
    lives = dict(enumerate(rng.integers(130, 330, size=60).tolist()))
    units = np.concatenate([[unit] * life for unit, life in lives.items()])
    cycles = np.concatenate([np.arange(1, life + 1) for life in lives.values()])
    truth = np.array([lives[unit] for unit in units]) - cycles
    costs = {"preventive_cost": 1.0, "failure_cost": 5.0}
    report = monitoring_cross_validated(units, cycles, np.minimum(truth, 125.0), lives, costs=costs, folds=4)
    assert report["units"] == 60 and len(report["choices"]) == 4
    assert report["rul_monitoring"]["failures"] == 0
    assert all(1 <= choice["margin"] <= 3 for choice in report["choices"])
    # the fixed interval wastes a third of the fleet's life: monitoring gets nearly all of it back
    assert report["perfect_knowledge_over_fixed_pct"] - 2 < report["improvement_over_fixed_pct"]
    assert report["improvement_over_fixed_pct"] < report["perfect_knowledge_over_fixed_pct"]
    # predictions that run 20 cycles late fail units until the margin covers the lateness
    late = monitoring_cross_validated(units, cycles, truth + 20.0, lives, costs=costs, folds=4)
    assert all(21 <= choice["margin"] <= 24 for choice in late["choices"])
    with pytest.raises(ValueError, match="at least 2 units"):
        monitoring_cross_validated(units[:5], cycles[:5], truth[:5], lives, costs=costs, folds=4)


def test_a_lead_time_moves_the_trigger_earlier_and_costs_what_the_earlier_prediction_is_less_sure_of():
    """Parts that take 15 cycles: the replacement follows each trigger by 15 cycles, so the margin chosen
    grows by about 15 and no unit fails in between; the fixed interval (known ahead) is unchanged."""
    rng = np.random.default_rng(0)
    lives = dict(enumerate(rng.integers(130, 330, size=60).tolist()))
    units = np.concatenate([[unit] * life for unit, life in lives.items()])
    cycles = np.concatenate([np.arange(1, life + 1) for life in lives.values()])
    exact = np.minimum(np.array([lives[unit] for unit in units]) - cycles, 125.0)
    order, ages = monitoring_triggers(units, cycles, exact, [10, 40], lead_time=15)
    at_once = monitoring_triggers(units, cycles, exact, [10, 40])[1]
    assert np.array_equal(ages, at_once + 15)
    costs = {"preventive_cost": 1.0, "failure_cost": 5.0}
    base = monitoring_cross_validated(units, cycles, exact, lives, costs=costs, folds=4)
    lead = monitoring_cross_validated(units, cycles, exact, lives, costs=costs, folds=4, lead_time=15)
    assert lead["lead_time"] == 15 and lead["rul_monitoring"]["failures"] == 0
    assert all(16 <= choice["margin"] <= 18 for choice in lead["choices"])
    assert [c["fixed_interval"] for c in lead["choices"]] == [c["fixed_interval"] for c in base["choices"]]
    # exact predictions lose nothing by deciding earlier: the replacement lands at the same age
    assert lead["improvement_over_fixed_pct"] == base["improvement_over_fixed_pct"]
    # predictions whose error grows with the RUL do: the decision rests on a less certain prediction
    noisy = exact + rng.normal(0, 2 + 0.15 * exact)
    base = monitoring_cross_validated(units, cycles, noisy, lives, costs=costs, folds=4)
    lead = monitoring_cross_validated(units, cycles, noisy, lives, costs=costs, folds=4, lead_time=15)
    assert 0 < lead["improvement_over_fixed_pct"] < base["improvement_over_fixed_pct"]
    plan = replacement_plan(units, cycles, exact, lives, costs=costs, folds=4, lead_time=15)
    assert plan["lead_time"] == 15 and 16 <= plan["replace_at_rul"] <= 18
    with pytest.raises(ValueError, match="lead time"):
        monitoring_triggers(units, cycles, exact, [10], lead_time=-1)


def test_a_near_miss_is_not_a_zero_risk():
    lives = np.full(20, 200.0)
    costs = {"preventive_cost": 1.0, "failure_cost": 50.0}
    # every unit replaced one cycle before failure vs ten cycles before: raw, the first looks cheaper
    assert cost_rate(lives, 199, **costs)["cost_rate"] < cost_rate(lives, 190, **costs)["cost_rate"]
    assert smoothed_cost_rate(lives, 199, **costs) > smoothed_cost_rate(lives, 190, **costs)
    # and with slack to spare the smoothing changes (almost) nothing
    assert smoothed_cost_rate(lives, 190, **costs) == pytest.approx(1 / 190, rel=1e-6)


def test_plan_maintenance_chooses_on_training_lives_only(tmp_path, capsys):
    """A slice of FD001 with a tiny budget: the fixed interval is the best one for the training lives
    and the margin comes from out-of-fold predictions; the test engines only score the plans."""
    cmapss = Path(settings.SHARED_DATA_DIR) / "cmapss"
    train = read_cmapss(cmapss / "train_FD001.txt")
    train = train[train[:, 0] <= 20]
    test = read_cmapss(cmapss / "test_FD001.txt")
    test = test[test[:, 0] <= 10]
    true = read_rul(cmapss / "RUL_FD001.txt")[:10]
    paths = {name: tmp_path / f"{name}.txt" for name in ("train", "test", "rul")}
    np.savetxt(paths["train"], train, fmt="%g")
    np.savetxt(paths["test"], test, fmt="%g")
    np.savetxt(paths["rul"], true, fmt="%g")
    args = [f"--{name}={path}" for name, path in paths.items()]
    budget = ["--trees", "20", "--members", "1", "--folds", "2", "--network-seeds", "1"]
    call_command("plan_maintenance", "--json", *args, *budget)
    report = json.loads(capsys.readouterr().out)
    train_lives = [train[train[:, 0] == unit, 1].max() for unit in range(1, 21)]
    assert report["best_fixed_interval"]["interval"] == best_fixed_interval(train_lives, 1.0, 5.0)["interval"]
    chosen = report["choices_on_training_lives"]
    assert chosen["units"] == 20 and chosen["truncation_points"] == 20 * 20
    assert 0 <= chosen["rul_margin"]["margin"] <= 125 and 0 <= chosen["rul_policy"]["margin"] <= 125
    assert f"- {chosen['rul_policy']['margin']} cycles" in report["rul_policy"]
    test_lives = [
        test[test[:, 0] == unit, 1].max() + rul for unit, rul in zip(range(1, 11), true, strict=True)
    ]
    assert report["hindsight_fixed_interval"] == best_fixed_interval(test_lives, 1.0, 5.0)
    assert report["perfect_knowledge"]["cost_rate"] <= report["rul_driven"]["cost_rate"]
    # the chosen policy is at least as good as the margin alone on the training predictions
    assert chosen["rul_policy"]["cost_rate"] <= chosen["rul_margin"]["cost_rate"]
    assert [row["failure_cost"] for row in report["sensitivity"]] == [2, 5, 10, 20, 50]
    for row in report["sensitivity"]:
        assert row["improvement_over_fixed_pct"] <= row["perfect_knowledge_over_fixed_pct"]
        monitoring = row["monitoring_on_held_out_training_engines"]
        assert monitoring["improvement_over_fixed_pct"] <= monitoring["perfect_knowledge_over_fixed_pct"]
        assert len(monitoring["margins"]) == 2
    held_out = report["rul_monitoring_on_held_out_training_engines"]
    assert held_out["units"] == 20 and held_out["folds"] == 2
    assert sum(choice["units"] for choice in held_out["choices"]) == 20
    assert held_out["rul_monitoring"]["failures"] + held_out["rul_monitoring"]["planned"] == 20
    assert [row["lead_time"] for row in report["monitoring_lead_time_sensitivity"]] == [0, 5, 10, 20]
    assert (
        report["monitoring_lead_time_sensitivity"][0]["improvement_over_fixed_pct"]
        == (held_out["improvement_over_fixed_pct"])
    )
    at_five = report["sensitivity"][1]
    assert at_five["improvement_over_fixed_pct"] == report["improvement_over_fixed_pct"]
    # what 34% would need on these test engines, from their lives and the fixed interval's cost
    needs = report["target_gain_needs"]
    assert needs["gain_pct"] == 34 and needs["mean_life"] == pytest.approx(np.mean(test_lives))
    assert needs["cost_rate_needed"] == pytest.approx(0.66 * report["best_fixed_interval"]["cost_rate"])
    perfect_gain = 1 - report["perfect_knowledge"]["cost_rate"] / report["best_fixed_interval"]["cost_rate"]
    assert (needs["failures_allowed"] is None) == (perfect_gain < 0.34)
    with pytest.raises(CommandError, match="--target-gain is a percentage"):
        call_command("plan_maintenance", *args, "--target-gain", "120")
    with pytest.raises(CommandError, match="sensitivity"):
        call_command("plan_maintenance", *args, "--sensitivity", "0.5,abc")
    with pytest.raises(CommandError, match="--lead-time must be a whole number of cycles from 0 to 100"):
        call_command("plan_maintenance", *args, "--lead-time", "-3")
    with pytest.raises(CommandError, match="whole cycles"):
        call_command("plan_maintenance", *args, "--lead-time-sensitivity", "5,x")
    with pytest.raises(CommandError, match=r"--lead-time-sensitivity must be .* \(got 101\)"):
        call_command("plan_maintenance", *args, "--lead-time-sensitivity", "5,101")
    with pytest.raises(CommandError, match="out-of-fold"):
        call_command("plan_maintenance", *args, "--folds", "0")


def test_what_a_gain_over_the_fixed_interval_needs():
    """Ten units that all live 100 cycles against an interval of 80 (cost 1/80 per cycle): 15% cheaper
    needs no failure (one costs 5, more than 9 cycles can earn back) and replacements on average 5.9
    cycles before failure; 20% needs a mean cycle of 100, beyond perfect knowledge (99); perfect
    knowledge's own gain needs exactly its 1 cycle."""
    from manufacturing.analysis.planning import gain_needs

    lives = np.full(10, 100.0)
    needs = gain_needs(lives, 1 / 80, 15, preventive_cost=1, failure_cost=5)
    assert needs["failures_allowed"] == 0 and needs["cost_rate_needed"] == pytest.approx(0.85 / 80)
    assert needs["mean_replacement_age_needed"] == pytest.approx(80 / 0.85)
    assert needs["mean_cycles_before_failure_at_most"] == pytest.approx(100 - 80 / 0.85)
    assert gain_needs(lives, 1 / 80, 20, preventive_cost=1, failure_cost=5)["failures_allowed"] is None
    perfect = 100 * (1 - (1 / 99) / (1 / 80))
    exact = gain_needs(lives, 1 / 80, perfect, preventive_cost=1, failure_cost=5)
    assert exact["failures_allowed"] == 0 and exact["mean_cycles_before_failure_at_most"] == pytest.approx(1)
    cheap = gain_needs(lives, 1 / 80, 15, preventive_cost=1, failure_cost=1.01)  # failures nearly free
    assert cheap["failures_allowed"] >= 1
