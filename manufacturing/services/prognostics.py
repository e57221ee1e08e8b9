"""Remaining-life models: store a trained model as the family's next version, and store its predictions
for the family's machines (each trailed in the same transaction)."""

from __future__ import annotations

import numpy as np
from django.db import transaction
from django.db.models import Max

from audit.services import record
from manufacturing.models import ConditionRecord, RulModelVersion
from manufacturing.services.alerts import prediction_store


def condition_rows(records) -> np.ndarray:
    """C-MAPSS-shaped rows (unit, cycle, settings..., sensors...) of condition records."""
    return np.array([[r.unit, r.cycle, *r.settings, *r.sensors] for r in records], dtype=float)


@transaction.atomic
def rul_model_register(*, model, family: str, actor: str) -> RulModelVersion:
    """Store a trained RulModel (manufacturing.analysis.prognostics) as the next version of `family`."""
    latest = (
        RulModelVersion.objects.select_for_update().filter(family=family).aggregate(v=Max("version"))["v"]
    )
    version = RulModelVersion.objects.create(
        family=family,
        version=(latest or 0) + 1,
        blob=model.to_bytes(),
        description=model.description,
        trained_by=actor,
    )
    record(
        actor=actor,
        action="rul_model.train",
        resource_type="rul_model",
        resource_id=version.pk,
        outcome="succeeded",
        payload={"family": family, "version": version.version, "units": model.description["units"]},
    )
    return version


def rul_predictions_store(*, model, version: RulModelVersion, machines, actor: str) -> list[dict]:
    """Predict every unit of every machine with condition data; each prediction stored and trailed."""
    stored = []
    for machine in machines:
        records = list(ConditionRecord.objects.filter(machine=machine).order_by("unit", "cycle"))
        if not records:
            continue
        for prediction in model.predict(condition_rows(records)):
            prediction_store(
                machine=machine,
                model=version,
                unit=prediction["unit"],
                rul=prediction["rul"],
                lower=prediction["lower"],
                upper=prediction["upper"],
                actor=actor,
            )
            stored.append({"machine": machine.tag, **prediction})
    return stored


__all__ = ["condition_rows", "rul_model_register", "rul_predictions_store"]
