"""Remaining-life models: store a trained model as the family's next version, and store its predictions
for the family's machines (each trailed in the same transaction)."""

from __future__ import annotations

import numpy as np
from django.db import transaction
from django.db.models import Max

from audit.services import record
from manufacturing.models import ConditionRecord, RulModelVersion, RulPrediction
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
        stored += _predict(machine, model, version, ConditionRecord.objects.filter(machine=machine), actor)
    return stored


def _predict(machine, model, version, records, actor: str, *, renewing=False) -> list[dict]:
    rows = list(records.order_by("unit", "cycle"))
    if not rows:
        return []
    stored = []
    for prediction in model.predict(condition_rows(rows)):
        if (
            renewing
            and RulPrediction.objects.filter(
                machine=machine, model=version, unit=prediction["unit"], cycle=prediction["cycle"]
            ).exists()
        ):
            continue  # predicted at this cycle already: a message delivered twice changes nothing
        prediction_store(
            machine=machine,
            model=version,
            unit=prediction["unit"],
            cycle=prediction["cycle"],
            rul=prediction["rul"],
            lower=prediction["lower"],
            upper=prediction["upper"],
            actor=actor,
        )
        stored.append({"machine": machine.tag, **prediction})
    return stored


def latest_rul_model(machine) -> RulModelVersion | None:
    """The model that predicts `machine`: the latest version of its family's, None without one."""
    if not machine.family:
        return None
    return RulModelVersion.objects.filter(family=machine.family).order_by("-version").first()


_LOADED: dict[int, object] = {}  # the last RUL model a worker loaded, by version pk


def _loaded(version: RulModelVersion):
    model = _LOADED.get(version.pk)
    if model is None:
        from manufacturing.analysis.prognostics import RulModel

        model = RulModel.from_bytes(version.blob)
        _LOADED.clear()
        _LOADED[version.pk] = model
    return model


def rul_renew(*, machine, actor: str, units=None) -> list[dict]:
    """Renew the remaining-life prediction of `machine`'s units (all, or `units`) with the latest model of
    its family, after new condition data: each prediction stored, trailed and alerting as
    `prediction_store` does (the model's replacement point included). A unit already predicted by that
    model at its last cycle is left alone. [] when the family has no model yet."""
    version = latest_rul_model(machine)
    if version is None:
        return []
    records = ConditionRecord.objects.filter(machine=machine)
    if units is not None:
        records = records.filter(unit__in=list(units))
    return _predict(machine, _loaded(version), version, records, actor, renewing=True)


__all__ = ["condition_rows", "latest_rul_model", "rul_model_register", "rul_predictions_store", "rul_renew"]
