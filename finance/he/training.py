"""Fitting the linear scorer that encrypted scoring evaluates.

The features are ones a partner institution can compute on its own side from a payment and its own
history, in this order (FEATURE_NAMES); a logistic regression is fitted on them and its
standardisation folded into the weights, so the partner sends raw feature values and the encrypted
score is the model's logit (decision function).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from finance.he.scoring import HeInputError, LinearScorer

FEATURE_NAMES = (
    "log_amount",
    "log_source_balance",
    "log_source_payments_before",
    "log_target_receipts_before",
    "round_amount",
)


def amlsim_features(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """FEATURE_NAMES per AMLSim transaction (time order, only earlier payments counted); label:
    either party is a laundering node."""
    folder = Path(folder)
    nodes: dict[int, tuple[int, float]] = {}
    with open(folder / "nodes.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            nodes[int(row["nodeid"])] = (int(row["isFraud"]), float(row["init_balance"]))
    rows = []
    with open(folder / "transactions.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append(
                (int(row["time"]), int(row["sourceNodeId"]), int(row["targetNodeId"]), float(row["value"]))
            )
    rows.sort(key=lambda r: r[0])
    sent: dict[int, int] = {}
    received: dict[int, int] = {}
    features = np.empty((len(rows), len(FEATURE_NAMES)))
    labels = np.empty(len(rows), dtype=np.int8)
    for i, (_time, source, target, amount) in enumerate(rows):
        source_fraud, balance = nodes.get(source, (0, 0.0))
        target_fraud = nodes.get(target, (0, 0.0))[0]
        features[i] = (
            np.log1p(amount),
            np.log1p(max(balance, 0.0)),
            np.log1p(sent.get(source, 0)),
            np.log1p(received.get(target, 0)),
            float(amount >= 100 and amount % 100 == 0),
        )
        labels[i] = int(source_fraud or target_fraud)
        sent[source] = sent.get(source, 0) + 1
        received[target] = received.get(target, 0) + 1
    return features, labels


def csv_features(path: Path, *, label: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Numeric feature columns and a 0/1 label column from a CSV file (all other columns are features)."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or label not in reader.fieldnames:
            raise HeInputError(f"{path}: no column {label!r} (columns: {', '.join(reader.fieldnames or [])})")
        names = tuple(name for name in reader.fieldnames if name != label)
        values, labels = [], []
        for number, row in enumerate(reader, start=2):
            try:
                values.append([float(row[name]) for name in names])
                labels.append(int(row[label]))
            except (TypeError, ValueError) as error:
                raise HeInputError(f"{path}, line {number}: {error}") from error
    if not values:
        raise HeInputError(f"{path}: no rows")
    return np.asarray(values), np.asarray(labels), names


def fit_linear_scorer(features: np.ndarray, labels: np.ndarray, names, *, description: str) -> LinearScorer:
    from sklearn.linear_model import LogisticRegression

    if len(set(labels.tolist())) < 2:
        raise HeInputError("the labels hold one class only: a scorer needs positive and negative examples")
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(max_iter=1000, class_weight="balanced")
    model.fit((features - mean) / scale, labels)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * mean / scale))
    return LinearScorer(tuple(names), tuple(float(w) for w in weights), bias, description)
