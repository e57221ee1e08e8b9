"""Train the screening risk model and store it as a new ModelVersion (trailed).

    python manage.py train_screening_model ../shared/data/amlsim --format amlsim [--activate] [--json]

Features: ``finance.screening.features`` (past only). The model trains on the first
``--train-fraction`` of the time range (default all of it); when a later part is left, its PR-AUC is
stored in the version's metrics. The version string is the content hash of the booster
(``rm-...``): retraining on the same data with the same settings gives the same version, and the
command then reports the existing row instead of adding a duplicate. ``--activate`` makes it the
one active model (the others are deactivated in the same transaction). Each new version and each
activation is written to the decision trail.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from finance.management.commands.eval_screening import read_table
from finance.services.risk_models import risk_model_fit, risk_model_store

ACTOR = "command:train_screening_model"


class Command(BaseCommand):
    help = "Train the LightGBM screening model on labelled transactions and store a new version."

    def add_arguments(self, parser):
        parser.add_argument("path", help="AMLworld CSV file or AMLSim folder")
        parser.add_argument("--format", choices=["amlworld", "amlsim"], required=True)
        parser.add_argument("--train-fraction", type=float, default=1.0)
        parser.add_argument("--rounds", type=int, default=200)
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        frac = options["train_fraction"]
        if not 0.1 <= frac <= 1.0:
            raise CommandError("--train-fraction must be between 0.1 and 1.0")
        if options["rounds"] < 1:
            raise CommandError("--rounds must be at least 1")
        table = read_table(options["path"], options["format"]).sort_by_time()
        t0, t1 = int(table.ts.min()), int(table.ts.max())
        train = table.ts <= t0 + frac * (t1 - t0)
        try:
            model = risk_model_fit(
                table, train, rounds=options["rounds"], source=str(options["path"]), fmt=options["format"]
            )
        except ValueError as e:
            raise CommandError(str(e)) from e
        stored = risk_model_store(actor=ACTOR, model=model, activate=options["activate"])
        out = {
            "version": model.version,
            "id": stored.row.pk,
            "created": stored.created,
            "active": stored.row.active,
            "metrics": stored.row.metrics,
        }
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=2))
        else:
            self.stdout.write(
                f"model {model.version} ({'new' if stored.created else 'existing'}, active={stored.row.active})"
            )
