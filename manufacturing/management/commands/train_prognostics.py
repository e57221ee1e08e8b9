"""Train a versioned RUL model for an asset family and store each machine's prediction with its band."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.planning import check_lead_time, replacement_plan, unit_lives
from manufacturing.analysis.prognostics import RulModel, read_cmapss
from manufacturing.management.commands.eval_prognostics import config_arguments, config_from
from manufacturing.models import ConditionRecord, Machine
from manufacturing.services.prognostics import condition_rows, rul_model_register, rul_predictions_store

ACTOR = "command:train_prognostics"


class Command(BaseCommand):
    help = (
        "Train the RUL model of an asset family on a C-MAPSS file (--file) or on the family's imported "
        "condition data, store it as the next version, then predict every machine of the family."
    )

    def add_arguments(self, parser):
        parser.add_argument("--family", required=True, help="asset family, e.g. turbofan")
        parser.add_argument("--file", default="", help="C-MAPSS run-to-failure file to train on")
        parser.add_argument("--no-predict", action="store_true", help="train and store only")
        parser.add_argument(
            "--failure-cost",
            type=float,
            default=5.0,
            help="what a failure in service costs, in planned replacements (1), for the replacement point "
            "the model recommends (default 5)",
        )
        parser.add_argument(
            "--lead-time",
            type=int,
            default=0,
            help="cycles between deciding to replace a unit and replacing it (parts, crew): the replacement "
            "point then says when to order (default 0: replace at once)",
        )
        parser.add_argument("--json", action="store_true")
        config_arguments(parser)

    def handle(self, *args, **options):
        family = options["family"]
        machines = Machine.objects.filter(family=family)
        try:
            if options["file"]:
                if not Path(options["file"]).exists():
                    raise CommandError(f"--file {options['file']} does not exist")
                data, source = read_cmapss(options["file"]), Path(options["file"]).name
            else:
                records = ConditionRecord.objects.filter(machine__in=machines).order_by(
                    "machine", "unit", "cycle"
                )
                if not records.exists():
                    raise CommandError(
                        f"no condition data for family {family!r}: import some (import_condition_data) or pass --file"
                    )
                # units are numbered per machine: offset them so two machines' unit 1 stay apart
                rows = condition_rows(records)
                machine_ids = np.array(list(records.values_list("machine_id", flat=True)))
                rows[:, 0] += machine_ids * 100000
                data, source = rows, f"condition data of {machines.count()} machine(s) in family {family}"
            if options["failure_cost"] <= 1:
                raise ValueError("--failure-cost must exceed the cost of a planned replacement (1)")
            check_lead_time(options["lead_time"], option="--lead-time")
            model = RulModel(config_from(options)).fit(data, family=family, source=source)
            oof = model.training_oof
            model.description["replacement_plan"] = replacement_plan(
                oof["unit"], oof["cycle"], oof["rul"], unit_lives(oof["unit"], oof["cycle"]),
                costs={"preventive_cost": 1.0, "failure_cost": options["failure_cost"]},
                folds=model.config.folds, lead_time=options["lead_time"],
            )  # fmt: skip
        except ValueError as error:
            raise CommandError(str(error)) from None
        version = rul_model_register(model=model, family=family, actor=ACTOR)
        predictions = (
            []
            if options["no_predict"]
            else rul_predictions_store(model=model, version=version, machines=machines, actor=ACTOR)
        )
        summary = {
            "family": family,
            "version": version.version,
            "description": model.description,
            "predictions": predictions,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            self.stdout.write(
                f"{family} v{version.version}: {model.description['units']} units, "
                f"out-of-fold RMSE {model.description['oof_rmse']}, {len(predictions)} prediction(s) stored; "
                f"at predicted RUL <= {model.description['replacement_plan']['replace_at_rul']} cycles: "
                f"{version.replacement_action}"
            )
