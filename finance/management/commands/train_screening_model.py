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

import hashlib
import json

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.services import record
from finance.management.commands.eval_screening import read_table
from finance.models import ModelVersion
from finance.screening.features import compute_features
from finance.screening.risk_model import train_risk_model

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
        y = table.label.astype(np.int64)
        if (y < 0).any():
            raise CommandError("every transaction needs a label (Is Laundering / AMLSim nodes.csv) to train")
        X = compute_features(table)
        t0, t1 = int(table.ts.min()), int(table.ts.max())
        cut = t0 + frac * (t1 - t0)
        train = table.ts <= cut
        try:
            model = train_risk_model(X[train], y[train], num_boost_round=options["rounds"])
        except ValueError as e:
            raise CommandError(str(e)) from e
        metrics = {
            "train_rows": int(train.sum()),
            "train_positives": int(y[train].sum()),
            "train_until_ts": int(cut),
            "data_sha256": hashlib.sha256(
                np.ascontiguousarray(table.ts).tobytes() + np.ascontiguousarray(y).tobytes()
            ).hexdigest(),
            "source": str(options["path"]),
            "format": options["format"],
        }
        if (~train).any() and 0 < y[~train].sum() < (~train).sum():
            from sklearn.metrics import average_precision_score

            metrics["holdout_rows"] = int((~train).sum())
            metrics["holdout_pr_auc"] = round(
                float(average_precision_score(y[~train], model.predict(X[~train]))), 4
            )
        model.metrics = metrics
        with transaction.atomic():
            row = ModelVersion.objects.filter(version=model.version).first()
            created = row is None
            if created:
                row = ModelVersion.objects.create(
                    version=model.version, blob=model.to_bytes(), metrics=metrics
                )
                record(
                    actor=ACTOR,
                    action="finance.model.train",
                    resource_type="finance.modelversion",
                    resource_id=row.pk,
                    outcome="succeeded",
                    payload={"version": model.version, "metrics": metrics, "params": model.params},
                )
            if options["activate"] and not row.active:
                ModelVersion.objects.exclude(pk=row.pk).filter(active=True).update(active=False)
                row.active = True
                row.save(update_fields=["active"])
                record(
                    actor=ACTOR,
                    action="finance.model.activate",
                    resource_type="finance.modelversion",
                    resource_id=row.pk,
                    outcome="succeeded",
                    payload={"version": model.version},
                )
        out = {
            "version": model.version,
            "id": row.pk,
            "created": created,
            "active": row.active,
            "metrics": metrics,
        }
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=2))
        else:
            self.stdout.write(
                f"model {model.version} ({'new' if created else 'existing'}, active={row.active})"
            )
