"""The screening risk model: LightGBM on ``features.FEATURE_NAMES``, versioned, explained (no Django).

    model = train_risk_model(X, y)                     # X from features.compute_features
    blob = model.to_bytes(); model = RiskModel.from_bytes(blob)
    score, contributions = model.score(x_row)          # probability, {feature: SHAP value, "bias": ...}

``score`` returns the probability sigmoid(margin) and the booster's own TreeSHAP contributions
(``predict(pred_contrib=True)``) in margin (log-odds) space: they sum, with "bias" (the expected
margin), to the margin exactly. ``version`` is a content hash of the serialised booster, so two
models with the same version score identically. lightgbm is imported lazily (not at Django start).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np

from .features import FEATURE_NAMES

MAGIC = b"SUITE-RISK-MODEL-1\n"
DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "seed": 0,
    "deterministic": True,
    "num_threads": 2,
}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class RiskModel:
    booster: object
    feature_names: tuple = FEATURE_NAMES
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def model_string(self) -> str:
        s = self.__dict__.get("_model_string")
        if s is None:
            s = self.booster.model_to_string()
            self.__dict__["_model_string"] = s
        return s

    @property
    def version(self) -> str:
        v = self.__dict__.get("_version")
        if v is None:
            v = "rm-" + hashlib.sha256(self.model_string.encode()).hexdigest()[:16]
            self.__dict__["_version"] = v
        return v

    def to_bytes(self) -> bytes:
        head = json.dumps(
            {"feature_names": list(self.feature_names), "params": self.params, "metrics": self.metrics},
            sort_keys=True,
        ).encode()
        return MAGIC + head + b"\n" + self.model_string.encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> RiskModel:
        import lightgbm as lgb

        blob = bytes(blob)
        if not blob.startswith(MAGIC):
            raise ValueError("not a Suite risk model (bad header)")
        head, _, text = blob[len(MAGIC) :].partition(b"\n")
        meta = json.loads(head)
        booster = lgb.Booster(model_str=text.decode())
        model = cls(booster, tuple(meta["feature_names"]), meta.get("params", {}), meta.get("metrics", {}))
        model.__dict__["_model_string"] = text.decode()
        return model

    def _matrix(self, features) -> np.ndarray:
        if isinstance(features, dict):
            missing = [f for f in self.feature_names if f not in features]
            if missing:
                raise ValueError(f"missing features: {', '.join(missing)}")
            return np.array([[float(features[f]) for f in self.feature_names]])
        x = np.asarray(features, dtype=np.float64)
        x = x.reshape(1, -1) if x.ndim == 1 else x
        if x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} features, got {x.shape[1]}")
        return x

    def margin(self, features) -> np.ndarray:
        return np.asarray(self.booster.predict(self._matrix(features), raw_score=True, num_threads=1))

    def predict(self, features) -> np.ndarray:
        """Probabilities for a matrix (or one row / one feature dict)."""
        return _sigmoid(self.margin(features))

    def contributions(self, features) -> np.ndarray:
        """SHAP contributions, shape (rows, n_features + 1); last column is the bias."""
        return np.asarray(self.booster.predict(self._matrix(features), pred_contrib=True, num_threads=1))

    def score(self, features) -> tuple[float, dict]:
        """(probability, {feature name: contribution, ..., "bias": expected margin}) for one row."""
        return self.score_many(features)[0]

    def score_many(self, features) -> list[tuple[float, dict]]:
        """``score`` for every row of a matrix, with one booster call."""
        out = []
        names = self.feature_names
        for row in self.contributions(features).tolist():
            named = dict(zip(names, row[:-1], strict=True))
            named["bias"] = row[-1]
            # summed in Python in this order, so that replay (sum of the stored dict) gets the same bits
            margin = sum(named.values())
            out.append((1.0 / (1.0 + math.exp(-margin)), named))
        return out


def train_risk_model(
    X, y, *, params: dict | None = None, num_boost_round: int = 200, feature_names=FEATURE_NAMES
) -> RiskModel:
    """Fit the booster. Classes are not re-weighted, so the probability stays close to calibrated
    and the engine's thresholds (review at 0.5) mean what they say."""
    import lightgbm as lgb

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if X.shape[0] != y.shape[0] or X.shape[1] != len(feature_names):
        raise ValueError("X must be (rows, len(feature_names)) with one label per row")
    pos = int(y.sum())
    if pos == 0 or pos == len(y):
        raise ValueError("training needs both laundering (1) and normal (0) labels")
    p = {**DEFAULT_PARAMS, **(params or {})}
    data = lgb.Dataset(X, label=y, feature_name=[str(f) for f in feature_names], free_raw_data=True)
    booster = lgb.train(p, data, num_boost_round=num_boost_round)
    return RiskModel(booster, tuple(feature_names), {**p, "num_boost_round": num_boost_round})
