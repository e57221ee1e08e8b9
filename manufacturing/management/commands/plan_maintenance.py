"""Run-to-failure vs best fixed interval vs RUL-driven replacement on the C-MAPSS test engines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.planning import plan_compare, rul_schedule
from manufacturing.analysis.prognostics import RulModel, read_cmapss, read_rul
from manufacturing.management.commands.eval_prognostics import cmapss_path, config_arguments, config_from


class Command(BaseCommand):
    help = (
        "Compare replacement policies by long-run cost rate on the test engines (life = last observed "
        "cycle + true RUL); the RUL-driven plan replaces each engine at the lower end of its predicted band."
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
        try:
            model = RulModel(config_from(options)).fit(read_cmapss(options["train"]), source=options["train"])
            predictions = model.predict(read_cmapss(options["test"]))
            true = read_rul(options["rul"])
            if len(predictions) != true.size:
                raise ValueError(f"{len(predictions)} test engines but {true.size} true RULs")
            age = np.array([p["cycle"] for p in predictions], float)
            rul = np.array([p["rul"] for p in predictions])
            margin = rul - np.array([p["lower"] for p in predictions])
            report = plan_compare(
                age + true,
                rul_schedule(age, rul, margin),
                preventive_cost=options["preventive_cost"],
                failure_cost=options["failure_cost"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        report["rul_policy"] = (
            "replace at observed age + predicted RUL - (RUL - lower band), band " + model.description["band"]
        )
        report["lives"] = "test engine life = last observed cycle + true RUL (RUL_FD001 protocol)"
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        for name in ("run_to_failure", "best_fixed_interval", "rul_driven", "perfect_knowledge"):
            row = report[name]
            self.stdout.write(
                f"{name:20s} cost/cycle {row['cost_rate']:.5f}  failures {row['failures']:3d}  "
                f"mean cycle {row['mean_cycle_length']:.1f}"
                + (f"  interval {row['interval']}" if "interval" in row else "")
            )
        self.stdout.write(
            f"RUL-driven vs best fixed interval: {report['improvement_over_fixed_pct']:.1f}% lower cost rate"
        )
