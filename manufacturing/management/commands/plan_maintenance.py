"""Run-to-failure vs best fixed interval vs RUL-driven replacement on the C-MAPSS test engines.

Every choice is made on the training lives: the fixed interval is the best one for the training
engines' lives, and the RUL margin is the best one for out-of-fold predictions at truncation points
of the training engines. The test engines are only used to score the plans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.planning import (
    best_fixed_interval,
    check_lead_time,
    choose_margin,
    choose_policy,
    cost_rate,
    gain_needs,
    monitoring_cross_validated,
    plan_compare,
    rul_schedule,
    truncations,
    unit_lives,
)
from manufacturing.analysis.prognostics import RulModel, read_cmapss, read_rul
from manufacturing.management.commands.eval_prognostics import cmapss_path, config_arguments, config_from


class Command(BaseCommand):
    help = (
        "Compare replacement policies by long-run cost rate on the test engines (life = last observed "
        "cycle + true RUL); the fixed interval and the RUL margin are chosen on the training lives."
    )

    def add_arguments(self, parser):
        parser.add_argument("--train", default=cmapss_path("train_FD001.txt"))
        parser.add_argument("--test", default=cmapss_path("test_FD001.txt"))
        parser.add_argument("--rul", default=cmapss_path("RUL_FD001.txt"))
        parser.add_argument("--preventive-cost", type=float, default=1.0)
        parser.add_argument("--failure-cost", type=float, default=5.0)
        parser.add_argument(
            "--sensitivity",
            default="2,5,10,20,50",
            help="Failure costs (in preventive costs) to repeat the comparison at, every choice remade on "
            "the training lives for each ('' for none).",
        )
        parser.add_argument(
            "--lead-time",
            type=int,
            default=0,
            help="cycles between the monitoring policy's decision to replace and the replacement (parts, "
            "crew); the fixed interval is known ahead and carries none (default 0)",
        )
        parser.add_argument(
            "--lead-time-sensitivity",
            default="0,5,10,20",
            help="lead times to repeat the monitoring comparison at ('' for none)",
        )
        parser.add_argument(
            "--target-gain",
            type=float,
            default=34.0,
            help="a gain over the fixed interval (%%) to say what any policy would need on the test engines "
            "to reach it (default 34, the seed's claim)",
        )
        parser.add_argument("--json", action="store_true")
        config_arguments(parser)

    def handle(self, *args, **options):
        for key in ("train", "test", "rul"):
            if not Path(options[key]).exists():
                raise CommandError(f"--{key} {options[key]} does not exist")
        if options["folds"] < 2:  # before config_from, whose own check of --folds speaks of --members
            raise CommandError("--folds must be at least 2: the margin is chosen on out-of-fold predictions")
        if not 0 < options["target_gain"] < 100:
            raise CommandError("--target-gain is a percentage between 0 and 100, e.g. 34")
        config = config_from(options)
        costs = {"preventive_cost": options["preventive_cost"], "failure_cost": options["failure_cost"]}
        try:
            sensitivity = [float(value) for value in options["sensitivity"].split(",") if value.strip()]
        except ValueError:
            raise CommandError(
                f"--sensitivity {options['sensitivity']!r}: give failure costs such as 2,5,10"
            ) from None
        if any(value <= 1 for value in sensitivity):
            raise CommandError("--sensitivity: every failure cost must exceed the preventive cost (1)")
        try:
            lead_times = [
                int(value) for value in options["lead_time_sensitivity"].split(",") if value.strip()
            ]
        except ValueError:
            raise CommandError(
                f"--lead-time-sensitivity {options['lead_time_sensitivity']!r}: give whole cycles such as 0,5,10"
            ) from None
        try:
            check_lead_time(options["lead_time"], option="--lead-time")
            check_lead_time(*lead_times, option="--lead-time-sensitivity")
        except ValueError as error:
            raise CommandError(str(error)) from None
        try:
            if not 0 < costs["preventive_cost"] < costs["failure_cost"]:
                raise ValueError("costs must satisfy 0 < preventive cost < failure cost")
            train = read_cmapss(options["train"])
            model = RulModel(config).fit(train, source=options["train"])
            predictions = model.predict(read_cmapss(options["test"]))
            true = read_rul(options["rul"])
            if len(predictions) != true.size:
                raise ValueError(f"{len(predictions)} test engines but {true.size} true RULs")
            # choices on the training lives only
            oof = model.training_oof
            train_life = unit_lives(oof["unit"], oof["cycle"])
            rows = truncations(oof["unit"], oof["cycle"])
            chooser = Chooser(oof["cycle"][rows], oof["rul"][rows], np.array([train_life[u] for u in oof["unit"][rows]]),
                              np.array(list(train_life.values())))  # fmt: skip
            # scored on the test engines
            age = np.array([p["cycle"] for p in predictions], float)
            rul = np.array([p["rul"] for p in predictions])
            report, policy, margin_only, fixed = chooser.plan(age, rul, age + true, costs)
            monitoring = Monitoring(oof, train_life, folds=config.folds)
            report["rul_monitoring_on_held_out_training_engines"] = monitoring.report(
                costs, lead_time=options["lead_time"]
            )
            report["monitoring_lead_time_sensitivity"] = [
                monitoring.summary(costs, lead_time=lead) for lead in lead_times
            ]
            report["sensitivity"] = [
                {
                    **chooser.summary(age, rul, age + true, varied),
                    "monitoring_on_held_out_training_engines": monitoring.summary(
                        varied, lead_time=options["lead_time"]
                    ),
                }
                for varied in ({"preventive_cost": 1.0, "failure_cost": value} for value in sensitivity)
            ]
        except ValueError as error:
            raise CommandError(str(error)) from None
        report["choices_on_training_lives"] = {
            "units": len(train_life),
            "fixed_interval": fixed,
            "rul_margin": margin_only,
            "rul_policy": policy,
            "truncation_points": int(rows.size),
        }
        report["rul_policy"] = (
            f"replace at observed age + predicted RUL - {policy['margin']} cycles"
            + (
                f", and a unit predicted at {policy['healthy_at']} cycles or more (no degradation visible) not "
                f"before age {policy['healthy_floor']}"
                if policy["healthy_at"] is not None
                else ""
            )
            + f" (the policy with the lowest cost rate on {config.folds}-fold out-of-fold predictions at "
            f"{rows.size} truncation points of the training lives; rul_driven_margin_only: the margin alone)"
        )
        report["rul_monitoring_note"] = (
            "the test engines end at one observation each, so on them a plan can only be scheduled from that "
            "one prediction; the product renews the prediction with every reading. "
            "rul_monitoring_on_held_out_training_engines scores that policy (replace at the first cycle whose "
            "predicted RUL is at or below the margin) where whole lives are recorded: the training engines' "
            f"out-of-fold predictions, in {config.folds} groups, each group's margin and fixed interval "
            "chosen on the other groups (smoothed_cost_rate), costs pooled over the groups; with a lead time "
            "the replacement follows the trigger by that many cycles (monitoring_lead_time_sensitivity: "
            "the same at each lead time, at the main failure cost)"
        )
        report["sensitivity_note"] = (
            "the comparison repeated with preventive cost 1 and each failure cost, every choice remade on the "
            "training lives; perfect_knowledge_over_fixed_pct is the most any policy could gain"
        )
        report["fixed_policy"] = (
            f"replace every engine at age {fixed['interval']} (the best interval for the training lives); "
            "hindsight_fixed_interval is the best interval for the test lives themselves, for reference"
        )
        report["lives"] = "test engine life = last observed cycle + true RUL (RUL file of the test set)"
        report["target_gain_needs"] = gain_needs(
            age + true, report["best_fixed_interval"]["cost_rate"], options["target_gain"], **costs
        )
        report["target_gain_note"] = (
            "what any policy, with any model, would need on these test engines to be target_gain_needs.gain_pct "
            "% cheaper per cycle than the fixed interval: at most failures_allowed failures (null: beyond "
            "perfect knowledge) and, with none, every engine replaced on average no more than "
            "mean_cycles_before_failure_at_most cycles before it would fail"
        )
        report["model"] = model.description
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        for name in (
            "run_to_failure",
            "best_fixed_interval",
            "hindsight_fixed_interval",
            "rul_driven",
            "perfect_knowledge",
        ):
            row = report[name]
            self.stdout.write(
                f"{name:24s} cost/cycle {row['cost_rate']:.5f}  failures {row['failures']:3d}  "
                f"mean cycle {row['mean_cycle_length']:.1f}"
                + (f"  interval {row['interval']}" if "interval" in row else "")
            )
        self.stdout.write(
            f"RUL-driven (margin {policy['margin']}) vs fixed interval {fixed['interval']} chosen on training "
            f"lives: {report['improvement_over_fixed_pct']:.1f}% lower cost rate "
            f"({report['improvement_over_hindsight_fixed_pct']:.1f}% vs the hindsight interval)"
        )
        held_out = report["rul_monitoring_on_held_out_training_engines"]
        self.stdout.write(
            f"RUL monitoring (prediction renewed every cycle) on held-out training engines: "
            f"{held_out['improvement_over_fixed_pct']:.1f}% lower cost rate than the fixed interval "
            f"(perfect knowledge {held_out['perfect_knowledge_over_fixed_pct']:.1f}%), "
            f"{held_out['rul_monitoring']['failures']} failures in {held_out['units']} engines"
            + (f", lead time {held_out['lead_time']} cycles" if held_out["lead_time"] else "")
        )
        needs = report["target_gain_needs"]
        self.stdout.write(
            f"{needs['gain_pct']:g}% on these test engines needs "
            + (
                "more than perfect knowledge"
                if needs["failures_allowed"] is None
                else f"at most {needs['failures_allowed']} failures and, with none, every engine replaced on "
                f"average within {needs['mean_cycles_before_failure_at_most']:.1f} cycles of its failure"
            )
        )


class Chooser:
    """Every choice of a plan made on the training lives: the fleet interval on the lives, the RUL
    policy on out-of-fold predictions at truncation points (`age`, `rul`, `lives` per point)."""

    def __init__(self, age, rul, lives, unit_lives):
        self.age, self.rul, self.lives, self.unit_lives = age, rul, lives, unit_lives

    def plan(self, age, rul, lives, costs: dict) -> tuple[dict, dict, dict, dict]:
        """(report on the evaluated units, the chosen policy, the margin-only policy, the interval)."""
        fixed = best_fixed_interval(self.unit_lives, **costs)
        margin_only = choose_margin(self.age, self.rul, self.lives, **costs)
        policy = choose_policy(self.age, self.rul, self.lives, **costs)
        schedule = rul_schedule(
            age, rul, policy["margin"], healthy_at=policy["healthy_at"], healthy_floor=policy["healthy_floor"]
        )
        report = plan_compare(lives, schedule, fixed_interval=fixed["interval"], **costs)
        report["rul_driven_margin_only"] = cost_rate(
            lives, np.maximum(rul_schedule(age, rul, margin_only["margin"]), 1.0), **costs
        )
        report["rul_driven_margin_only"]["improvement_over_fixed_pct"] = round(
            100
            * (
                1 - report["rul_driven_margin_only"]["cost_rate"] / report["best_fixed_interval"]["cost_rate"]
            ),
            2,
        )
        return report, policy, margin_only, fixed

    def summary(self, age, rul, lives, costs: dict) -> dict:
        report, policy, _, fixed = self.plan(age, rul, lives, costs)
        fixed_rate = report["best_fixed_interval"]["cost_rate"]
        return {
            "failure_cost": costs["failure_cost"],
            "fixed_interval": fixed["interval"],
            "rul_policy": {key: policy[key] for key in ("margin", "healthy_at", "healthy_floor")},
            "rul_driven_failures": report["rul_driven"]["failures"],
            "improvement_over_fixed_pct": report["improvement_over_fixed_pct"],
            "margin_only_improvement_over_fixed_pct": report["rul_driven_margin_only"][
                "improvement_over_fixed_pct"
            ],
            "perfect_knowledge_over_fixed_pct": round(
                100 * (1 - report["perfect_knowledge"]["cost_rate"] / fixed_rate), 2
            ),
        }


class Monitoring:
    """The monitoring policy on the training engines' out-of-fold predictions (whole lives recorded),
    cross-validated over engines (`monitoring_cross_validated`)."""

    def __init__(self, oof: dict, lives: dict, *, folds: int):
        self.oof, self.lives, self.folds = oof, lives, folds

    def report(self, costs: dict, *, lead_time: int = 0) -> dict:
        return monitoring_cross_validated(
            self.oof["unit"], self.oof["cycle"], self.oof["rul"], self.lives, costs=costs, folds=self.folds,
            lead_time=lead_time,
        )  # fmt: skip

    def summary(self, costs: dict, *, lead_time: int = 0) -> dict:
        report = self.report(costs, lead_time=lead_time)
        return {
            "lead_time": lead_time,
            "margins": [choice["margin"] for choice in report["choices"]],
            "failures": report["rul_monitoring"]["failures"],
            "improvement_over_fixed_pct": report["improvement_over_fixed_pct"],
            "perfect_knowledge_over_fixed_pct": report["perfect_knowledge_over_fixed_pct"],
        }
