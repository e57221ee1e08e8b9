"""The screening engine: decisions from rules + names + model, evidence, and replay from evidence."""

import copy
import json

import numpy as np
import pytest

from finance.screening.engine import EngineConfig, ScenarioSpec, default_scenarios, replay, screen
from finance.screening.features import compute_features
from finance.screening.names import ListEntry, NameIndex
from finance.screening.risk_model import train_risk_model
from finance.screening.table import TxTable
from tests.finance.test_risk_model import amlsim_slice

DAY = 86400


@pytest.fixture(scope="module")
def model():
    table = amlsim_slice(8000)
    return train_risk_model(
        compute_features(table), table.label, num_boost_round=10, params={"num_leaves": 7, "num_threads": 1}
    )


@pytest.fixture(scope="module")
def names():
    return NameIndex.build(
        [
            ListEntry("UN-1", "AHMED HASSAN BAKR"),
            ListEntry("UN-2", "KIM SOK CHOL"),
            ListEntry("UN-3", "JOHN SMITH"),
        ],
        version="un-v7",
    )


def _tx(ref, ts, src, dst, amount, **kw):
    return {"tx_ref": ref, "ts": ts, "src_account": src, "dst_account": dst, "amount_paid": amount,
            "currency_paid": "USD", **kw}  # fmt: skip


def _history():
    rows = [_tx(f"h{i}", i * 3600, f"P{i % 5}", "A", 300.0 + i) for i in range(30)]
    rows += [_tx(f"s{i}", 2 * DAY + i * 3600, "A", f"B{i}", 9500.0) for i in range(2)]
    return TxTable.from_rows(rows)


def test_structuring_and_a_sanctions_hit_are_held_with_replayable_evidence(model, names):
    new = TxTable.from_rows(
        [
            _tx("n1", 2 * DAY + 5 * 3600, "A", "B9", 9600.0),  # third payment just below 10,000 in 3 days
            _tx("n2", 2 * DAY + 6 * 3600, "Q", "R", 120.0),  # ordinary
            _tx("n3", 2 * DAY + 7 * 3600, "Q", "S", 80.0),  # ordinary amount, sanctioned beneficiary
        ]
    )
    decisions = screen(
        new,
        _history(),
        default_scenarios(),
        names,
        model,
        party_names={"n3": ["Bakr, Ahmed Hassan", "Someone Else"], "n2": ["Jane Smith"]},
    )
    assert [d.tx_ref for d in decisions] == ["n1", "n2", "n3"]
    d1, d2, d3 = decisions
    assert d1.decision in ("review", "hold") and d1.evidence is not None
    codes = [r["code"] for r in d1.evidence["rules"]]
    assert "STRUCTURING" in codes
    assert d1.evidence["rules"][codes.index("STRUCTURING")]["hit"]["tx_refs"] == ["s0", "s1", "n1"]
    assert d1.evidence["model"]["version"] == model.version
    assert d2.decision == "approve" and d2.evidence is None  # shared surname SMITH is not a match
    assert d3.decision == "hold"
    match = d3.evidence["names"]["matches"][0]
    assert match["entry_id"] == "UN-1" and d3.evidence["names"]["list_version"] == "un-v7"
    for d in (d1, d3):
        stored = json.loads(json.dumps(d.evidence))  # as kept in the trail (JSON)
        for again in (replay(stored), replay(stored, model=model)):
            assert again.identical, again.differences
            assert again.decision == d.decision and again.risk == d.risk


def test_replay_detects_a_changed_input(model, names):
    new = TxTable.from_rows([_tx("n1", 2 * DAY + 5 * 3600, "A", "B9", 9600.0)])
    (d,) = screen(new, _history(), default_scenarios(), names, model, evidence_for_all=True)
    ev = json.loads(json.dumps(d.evidence))
    assert replay(ev, model=model).identical

    changed = copy.deepcopy(ev)
    changed["model"]["features"]["log_amount_usd"] += 1.0
    assert not replay(changed, model=model).identical

    changed = copy.deepcopy(ev)
    structuring = next(r for r in changed["rules"] if r["code"] == "STRUCTURING")
    structuring["hit"]["count"] = 2
    out = replay(changed)
    assert not out.identical and any("STRUCTURING" in x for x in out.differences)

    changed = copy.deepcopy(ev)
    changed["model"]["contributions"]["bias"] += 0.5
    assert not replay(changed).identical


def test_alone_after_history_equals_in_batch(model, names):
    hist = _history()
    new = TxTable.from_rows(
        [_tx("n1", 2 * DAY + 5 * 3600, "A", "B9", 9600.0), _tx("n2", 2 * DAY + 9 * 3600, "A", "C", 700.0)]
    )
    batch = screen(new, hist, default_scenarios(), names, model, evidence_for_all=True)
    first_alone = screen(new.take([0]), hist, default_scenarios(), names, model, evidence_for_all=True)[0]
    second_alone = screen(
        new.take([1]),
        TxTable.concat([hist, new.take([0])]),
        default_scenarios(),
        names,
        model,
        evidence_for_all=True,
    )[0]
    for a, b in ((batch[0], first_alone), (batch[1], second_alone)):
        assert (a.decision, a.risk) == (b.decision, b.risk)
        assert a.evidence["model"]["features"] == b.evidence["model"]["features"]


def test_scenario_versions_and_thresholds_are_respected(names):
    new = TxTable.from_rows([_tx("n1", 2 * DAY + 5 * 3600, "A", "B9", 9600.0)])
    strict = [ScenarioSpec("STRUCTURING", 4, {"min_count": 5})]
    (d,) = screen(new, _history(), strict, None, None)
    assert d.decision == "approve"  # 3 payments < 5 required by version 4
    loose = [ScenarioSpec("STRUCTURING", 5, {"min_count": 3})]
    (d,) = screen(new, _history(), loose, None, None, config=EngineConfig(alert_threshold=0.5))
    assert d.decision == "review" and d.evidence["rules"][0]["version"] == 5
    assert d.evidence["rules"][0]["params"]["min_count"] == 3 and d.evidence["model"] is None
    assert replay(d.evidence).identical
    (d,) = screen(new, _history(), loose, None, None, config=EngineConfig(alert_threshold=0.7))
    assert d.decision == "approve"


def test_empty_batch_and_no_history():
    assert screen(TxTable.empty(), None, None, None, None) == []
    (d,) = screen(TxTable.from_rows([_tx("x", 0, "A", "B", 50.0)]), None, None, None, None)
    assert d.decision == "approve" and np.isfinite(d.risk)
