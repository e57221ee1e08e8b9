"""Train a versioned RUL model for an asset family and store each machine's prediction with its band."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max

from manufacturing.analysis.prognostics import RulModel, read_cmapss
from manufacturing.management.commands.eval_prognostics import config_arguments, config_from
from manufacturing.models import ConditionRecord, Machine, RulModelVersion
from manufacturing.services import prediction_store

ACTOR = "command:train_prognostics"


def _condition_rows(records) -> np.ndarray:
    return np.array([[r.unit, r.cycle, *r.settings, *r.sensors] for r in records], dtype=float)


class Command(BaseCommand):
    help = (
        "Train the RUL model of an asset family on a C-MAPSS file (--file) or on the family's imported "
        "condition data, store it as the next version, then predict every machine of the family."
    )

    def add_arguments(self, parser):
        parser.add_argument("--family", required=True, help="asset family, e.g. turbofan")
        parser.add_argument("--file", default="", help="C-MAPSS run-to-failure file to train on")
        parser.add_argument("--no-predict", action="store_true", help="train and store only")
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
                rows = _condition_rows(records)
                machine_ids = np.array(list(records.values_list("machine_id", flat=True)))
                rows[:, 0] += machine_ids * 100000
                data, source = rows, f"condition data of {machines.count()} machine(s) in family {family}"
            model = RulModel(config_from(options)).fit(data, family=family, source=source)
        except ValueError as error:
            raise CommandError(str(error)) from None
        version = self._store(model, family)
        predictions = [] if options["no_predict"] else self._predict(model, version, machines)
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
                f"out-of-fold RMSE {model.description['oof_rmse']}, {len(predictions)} prediction(s) stored"
            )

    @transaction.atomic
    def _store(self, model: RulModel, family: str) -> RulModelVersion:
        from audit.services import record

        latest = (
            RulModelVersion.objects.select_for_update().filter(family=family).aggregate(v=Max("version"))["v"]
        )
        version = RulModelVersion.objects.create(
            family=family,
            version=(latest or 0) + 1,
            blob=model.to_bytes(),
            description=model.description,
            trained_by=ACTOR,
        )
        record(
            actor=ACTOR,
            action="rul_model.train",
            resource_type="rul_model",
            resource_id=version.pk,
            outcome="succeeded",
            payload={"family": family, "version": version.version, "units": model.description["units"]},
        )
        return version

    def _predict(self, model: RulModel, version: RulModelVersion, machines) -> list[dict]:
        stored = []
        for machine in machines:
            records = list(ConditionRecord.objects.filter(machine=machine).order_by("unit", "cycle"))
            if not records:
                continue
            for prediction in model.predict(_condition_rows(records)):
                prediction_store(
                    machine=machine,
                    model=version,
                    unit=prediction["unit"],
                    rul=prediction["rul"],
                    lower=prediction["lower"],
                    upper=prediction["upper"],
                    actor=ACTOR,
                )
                stored.append({"machine": machine.tag, **prediction})
        return stored
