"""Offline evaluation of the screening engine on labelled data (no Django).

``evaluate(table)``: temporal split (the first ``train_fraction`` of the time range trains), the
rule engine alone versus rules + model, on the later part:

- rules only: a transaction alerts when any scenario hits (what a rule engine does);
- rules + model: the engine's noisy-OR risk (``engine.combine``) of the rule weights and the model
  probability; its operating threshold is the best-F1 threshold on a validation slice (the last
  ``validation_fraction`` of the training period, scored by a model fitted on the part before it),
  then the model is refitted on the whole training period;
- PR-AUC (average precision) of the model alone, of rules + model, and of the rule risk alone;
- ``fp_reduction_at_equal_recall``: 1 - FP(rules + model) / FP(rules only), where rules + model
  is cut at the highest threshold whose recall reaches the rule engine's recall.

Features and rule hits of a test transaction read the whole earlier history (training period
included), as in production; labels of the test period are never used for fitting or thresholds.
"""

from __future__ import annotations

import time

import numpy as np

from .engine import DEFAULT_RULE_WEIGHTS, EngineConfig
from .features import compute_features
from .risk_model import train_risk_model
from .scenarios import run_scenarios
from .table import TxTable


def rule_risk(table: TxTable, rows: np.ndarray, weights: dict | None = None) -> tuple[np.ndarray, dict]:
    """(noisy-OR rule risk per row of ``rows``, {code: hit count}) with every scenario at defaults."""
    weights = weights or DEFAULT_RULE_WEIGHTS
    mask = np.zeros(len(table), bool)
    mask[rows] = True
    keep = np.ones(len(table))
    counts: dict[str, int] = {}
    for h in run_scenarios(table, screen_mask=mask):
        keep[h.row] *= 1.0 - weights.get(h.code, 0.0)
        counts[h.code] = counts.get(h.code, 0) + 1
    return 1.0 - keep[rows], counts


def combine_vec(model_p: np.ndarray, rules: np.ndarray, config: EngineConfig) -> np.ndarray:
    """``engine.combine`` over arrays (no names): 1 - (1 - w * p) * (1 - rule risk)."""
    return 1.0 - (1.0 - config.model_weight * model_p) * (1.0 - rules)


def prf(y: np.ndarray, alert: np.ndarray) -> dict:
    tp = int(((alert) & (y == 1)).sum())
    fp = int(((alert) & (y != 1)).sum())
    fn = int(((~alert) & (y == 1)).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f, 4),
        "alerts": tp + fp,
        "tp": tp,
        "fp": fp,
    }


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    p, r, t = precision_recall_curve(y, score)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)[:-1]
    return float(t[int(np.argmax(f))]) if len(t) else 0.5


def fp_at_recall(y: np.ndarray, score: np.ndarray, recall: float) -> tuple[int, float]:
    """(false positives, threshold) of the highest threshold whose recall reaches ``recall``."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    pos = (y[order] == 1).astype(np.int64)
    tp = np.cumsum(pos)
    fp = np.cumsum(1 - pos)
    # cut only between distinct scores (ties alert together)
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    need = recall * max(int(pos.sum()), 1)
    ok = np.flatnonzero(last_of_tie & (tp >= need - 1e-9))
    if not len(ok):
        return int(fp[-1]), float(s[-1])
    k = ok[0]
    return int(fp[k]), float(s[k])


def evaluate(
    table: TxTable,
    *,
    train_fraction: float = 0.7,
    validation_fraction: float = 0.2,
    num_boost_round: int = 200,
    config: EngineConfig | None = None,
) -> dict:
    from sklearn.metrics import average_precision_score

    config = config or EngineConfig()
    table = table.sort_by_time()
    y_all = table.label.astype(np.int64)
    if (y_all < 0).any():
        raise ValueError("evaluation needs a label on every transaction")
    t0, t1 = int(table.ts.min()), int(table.ts.max())
    cut = t0 + train_fraction * (t1 - t0)
    train = np.flatnonzero(table.ts <= cut)
    test = np.flatnonzero(table.ts > cut)
    vcut = t0 + (1 - validation_fraction) * (cut - t0)
    fit = train[table.ts[train] <= vcut]
    val = train[table.ts[train] > vcut]
    timings = {}

    started = time.perf_counter()
    X = compute_features(table)
    timings["features_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    rules_val, _ = rule_risk(table, val)
    rules_test, counts = rule_risk(table, test)
    timings["rules_s"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    m_val = train_risk_model(X[fit], y_all[fit], num_boost_round=num_boost_round)
    threshold = best_f1_threshold(y_all[val], combine_vec(m_val.predict(X[val]), rules_val, config))
    model = train_risk_model(X[train], y_all[train], num_boost_round=num_boost_round)
    timings["train_s"] = round(time.perf_counter() - started, 2)

    y = y_all[test]
    p = model.predict(X[test])
    risk = combine_vec(p, rules_test, config)
    rules_alert = rules_test > 0
    rules_only = prf(y, rules_alert)
    combined = prf(y, risk >= threshold)
    fp_m, thr_eq = fp_at_recall(y, risk, rules_only["recall"])
    reduction = 1.0 - fp_m / rules_only["fp"] if rules_only["fp"] else None
    return {
        "transactions": len(table),
        "train": {"rows": len(train), "positives": int(y_all[train].sum()), "until_ts": int(cut)},
        "test": {"rows": len(test), "positives": int(y.sum())},
        "rules_only": {**rules_only, "pr_auc": round(float(average_precision_score(y, rules_test)), 4)},
        "rules_model": {
            **combined,
            "threshold": round(threshold, 6),
            "pr_auc": round(float(average_precision_score(y, risk)), 4),
        },
        "model_only_pr_auc": round(float(average_precision_score(y, p)), 4),
        "fp_reduction_at_equal_recall": None if reduction is None else round(reduction, 4),
        "equal_recall": {
            "recall": rules_only["recall"],
            "threshold": round(thr_eq, 6),
            "fp_rules": rules_only["fp"],
            "fp_rules_model": fp_m,
        },
        "rule_hits_test": counts,
        "model_version": model.version,
        "timings": timings,
    }
