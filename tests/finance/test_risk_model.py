"""Risk-model features (past only) and the LightGBM model (contributions, versioned bytes)."""

import io

import numpy as np
import pytest
from django.conf import settings

from finance.screening.features import FEATURE_NAMES, compute_features
from finance.screening.formats import read_amlsim
from finance.screening.risk_model import RiskModel, train_risk_model
from finance.screening.table import TxTable

AMLSIM = settings.SHARED_DATA_DIR / "amlsim"


def amlsim_slice(rows: int) -> TxTable:
    """The first ``rows`` transfers of the shared AMLSim sample (time-ordered in the file)."""
    with open(AMLSIM / "transactions.csv") as f:
        head = "".join(line for _, line in zip(range(rows + 1), f, strict=False))
    return read_amlsim((io.StringIO(head), AMLSIM / "nodes.csv"))


@pytest.fixture(scope="module")
def sample():
    table = amlsim_slice(8000)
    return table, compute_features(table)


@pytest.fixture(scope="module")
def model(sample):
    table, X = sample
    return train_risk_model(X, table.label, num_boost_round=15, params={"num_leaves": 7, "num_threads": 1})


def test_features_read_only_the_past(sample):
    table, X = sample
    t = int(np.median(table.ts))
    past_and_now = table.take(table.ts <= t)
    now = np.flatnonzero(past_and_now.ts == t)
    # the same rows featurised without any later transaction in the table
    assert np.array_equal(compute_features(past_and_now, now), X[np.flatnonzero(table.ts == t)])
    # and a row's features do not change when rows at its own timestamp are added or removed
    alone = TxTable.concat([table.take(table.ts < t), table.take(np.flatnonzero(table.ts == t)[:1])])
    assert np.array_equal(compute_features(alone, [len(alone) - 1])[0], X[np.flatnonzero(table.ts == t)[0]])


def test_features_on_crafted_history():
    rows = [
        {"ts": 0, "src_account": "A", "dst_account": "B", "amount_paid": 1000.0, "currency_paid": "USD"},
        {"ts": 3600, "src_account": "C", "dst_account": "B", "amount_paid": 500.0, "currency_paid": "USD"},
        {"ts": 7200, "src_account": "B", "dst_account": "D", "amount_paid": 1500.0, "currency_paid": "USD"},
        {"ts": 7200, "src_account": "B", "dst_account": "A", "amount_paid": 10.0, "currency_paid": "USD"},
    ]
    f = dict(zip(FEATURE_NAMES, compute_features(TxTable.from_rows(rows), [2])[0], strict=True))
    assert f["src_in_count_7d"] == 2 and f["src_in_degree"] == 2 and f["src_out_count_7d"] == 0
    assert f["pass_through_ratio_2d"] == 1.0 and f["round_100"] == 1.0 and f["round_1000"] == 0.0
    assert f["src_age_days"] == pytest.approx(2 / 24) and f["src_days_since_active"] == pytest.approx(1 / 24)
    assert f["reverse_pair_prior_count"] == 0  # B->A at the same second is not the past
    g = dict(zip(FEATURE_NAMES, compute_features(TxTable.from_rows(rows), [3])[0], strict=True))
    assert g["reverse_pair_prior_count"] == 1 and g["dst_out_degree"] == 1


def test_contributions_sum_to_the_margin(sample, model):
    table, X = sample
    rows = X[:200]
    contrib = model.contributions(rows)
    assert contrib.shape == (200, len(FEATURE_NAMES) + 1)
    assert np.allclose(contrib.sum(axis=1), model.margin(rows), atol=1e-9)
    p, named = model.score(rows[0])
    assert list(named)[-1] == "bias" and len(named) == len(FEATURE_NAMES) + 1
    assert p == pytest.approx(1 / (1 + np.exp(-sum(named.values()))), abs=0)
    assert model.score(dict(zip(FEATURE_NAMES, rows[0], strict=True))) == (p, named)


def test_model_is_useful_on_its_own_training_slice(sample, model):
    table, X = sample
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(table.label, model.predict(X)) > 0.8


def test_bytes_round_trip_keeps_version_and_scores(sample, model):
    _, X = sample
    blob = model.to_bytes()
    again = RiskModel.from_bytes(blob)
    assert again.version == model.version and again.version.startswith("rm-")
    assert again.to_bytes() == blob
    assert np.array_equal(again.contributions(X[:50]), model.contributions(X[:50]))
    with pytest.raises(ValueError, match="bad header"):
        RiskModel.from_bytes(b"not a model")


def test_training_refuses_one_class_and_bad_shapes(sample):
    _, X = sample
    with pytest.raises(ValueError, match="both"):
        train_risk_model(X[:50], np.zeros(50))
    with pytest.raises(ValueError, match="one label per row"):
        train_risk_model(X[:50, :3], np.zeros(50))
