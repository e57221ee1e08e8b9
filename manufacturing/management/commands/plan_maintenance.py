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
    choose_margin,
    plan_compare,
    rul_schedule,
    truncations,
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
        parser.add_argument("--json", action="store_true")
        config_arguments(parser)

    def handle(self, *args, **options):
        for key in ("train", "test", "rul"):
            if not Path(options[key]).exists():
                raise CommandError(f"--{key} {options[key]} does not exist")
        if options["folds"] < 2:  # before config_from, whose own check of --folds speaks of --members
            raise CommandError("--folds must be at least 2: the margin is chosen on out-of-fold predictions")
        config = config_from(options)
        costs = {"preventive_cost": options["preventive_cost"], "failure_cost": options["failure_cost"]}
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
            train_life = {u: oof["cycle"][oof["unit"] == u].max() for u in np.unique(oof["unit"])}
            rows = truncations(oof["unit"], oof["cycle"])
            margin = choose_margin(
                oof["cycle"][rows],
                oof["rul"][rows],
                np.array([train_life[u] for u in oof["unit"][rows]]),
                **costs,
            )
            fixed = best_fixed_interval(np.array(list(train_life.values())), **costs)
            # scored on the test engines
            age = np.array([p["cycle"] for p in predictions], float)
            rul = np.array([p["rul"] for p in predictions])
            report = plan_compare(
                age + true,
                rul_schedule(age, rul, margin["margin"]),
                fixed_interval=fixed["interval"],
                **costs,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        report["choices_on_training_lives"] = {
            "units": len(train_life),
            "fixed_interval": fixed,
            "rul_margin": margin,
            "truncation_points": int(rows.size),
        }
        report["rul_policy"] = (
            f"replace at observed age + predicted RUL - {margin['margin']} cycles (the margin with the lowest "
            f"cost rate on {config.folds}-fold out-of-fold predictions at {rows.size} truncation points of the "
            "training lives)"
        )
        report["fixed_policy"] = (
            f"replace every engine at age {fixed['interval']} (the best interval for the training lives); "
            "hindsight_fixed_interval is the best interval for the test lives themselves, for reference"
        )
        report["lives"] = "test engine life = last observed cycle + true RUL (RUL file of the test set)"
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
            f"RUL-driven (margin {margin['margin']}) vs fixed interval {fixed['interval']} chosen on training "
            f"lives: {report['improvement_over_fixed_pct']:.1f}% lower cost rate "
            f"({report['improvement_over_hindsight_fixed_pct']:.1f}% vs the hindsight interval)"
        )
