"""The screening risk model's versions: fit on labelled transactions, store, activate (trailed).

`train_screening_model` and the demo call these; nothing else writes ModelVersion rows. The version
string is the content hash of the booster (`rm-...`): the same data and settings give the same
version, and storing it again reports the existing row instead of adding a duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from audit.services import record
from finance.models import ModelVersion
from finance.screening.features import compute_features
from finance.screening.risk_model import RiskModel, train_risk_model


@dataclass
class StoredModel:
    row: ModelVersion
    created: bool
    activated: bool


def risk_model_fit(
    table, train: np.ndarray, *, rounds: int = 200, source: str = "", fmt: str = ""
) -> RiskModel:
    """Fit on the rows where `train` is true (labels required: ValueError otherwise); the version's
    metrics describe the training data and, when labelled rows are left out, their PR-AUC."""
    labels = table.label.astype(np.int64)
    if (labels < 0).any():
        raise ValueError("every transaction needs a label (Is Laundering / AMLSim nodes.csv) to train")
    features = compute_features(table)
    model = train_risk_model(features[train], labels[train], num_boost_round=rounds)
    metrics = {
        "train_rows": int(train.sum()),
        "train_positives": int(labels[train].sum()),
        "train_until_ts": int(table.ts[train].max()),
        "data_sha256": hashlib.sha256(
            np.ascontiguousarray(table.ts).tobytes() + np.ascontiguousarray(labels).tobytes()
        ).hexdigest(),
        "source": source,
        "format": fmt,
    }
    held_out = ~train
    if held_out.any() and 0 < labels[held_out].sum() < held_out.sum():
        from sklearn.metrics import average_precision_score

        metrics["holdout_rows"] = int(held_out.sum())
        metrics["holdout_pr_auc"] = round(
            float(average_precision_score(labels[held_out], model.predict(features[held_out]))), 4
        )
    model.metrics = metrics
    return model


@transaction.atomic
def risk_model_store(*, actor: str, model: RiskModel, activate: bool = False) -> StoredModel:
    """Store `model` as a version (trailed `finance.model.train`) unless that version exists, and with
    `activate` make it the one active model (the others off in the same transaction; trailed)."""
    row = ModelVersion.objects.select_for_update().filter(version=model.version).first()
    created = row is None
    if created:
        row = ModelVersion.objects.create(version=model.version, blob=model.to_bytes(), metrics=model.metrics)
        record(
            actor=actor,
            action="finance.model.train",
            resource_type="finance.modelversion",
            resource_id=row.pk,
            outcome="succeeded",
            payload={"version": model.version, "metrics": model.metrics, "params": model.params},
        )
    activated = activate and not row.active
    if activated:
        ModelVersion.objects.exclude(pk=row.pk).filter(active=True).update(active=False)
        row.active = True
        row.save(update_fields=["active"])
        record(
            actor=actor,
            action="finance.model.activate",
            resource_type="finance.modelversion",
            resource_id=row.pk,
            outcome="succeeded",
            payload={"version": model.version},
        )
    return StoredModel(row=row, created=created, activated=activated)
