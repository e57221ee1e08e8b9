"""History older than every window, summarised (``finance.screening.prior``), screens exactly like
the whole history: same features, rule numbers, evidence, risk and decision for every row."""

import numpy as np
import pytest

from finance.management.commands.bench_screening import synthetic_stream
from finance.screening.engine import ScenarioSpec, default_scenarios, screen
from finance.screening.features import compute_features
from finance.screening.risk_model import train_risk_model
from finance.screening.table import TxTable

DAY = 86400


def _book() -> TxTable:
    """250 days among 400 accounts (recurring payees, so pairs and degrees reach far back), plus
    accounts that pay on day 2 and again, above 5,000 USD, on day 245 (dormant reactivation
    read through the older rows) and a pair that only paid long ago."""
    stream = synthetic_stream(6000, accounts=400, days=250, seed=5)
    t0 = int(stream.ts.min())
    extra = [
        {
            "tx_ref": f"old{i}",
            "ts": t0 + 2 * DAY + i,
            "src_account": f"D{i}",
            "dst_account": "A1",
            "amount_paid": 700.0,
            "currency_paid": "USD",
        }  # fmt: skip
        for i in range(3)
    ] + [
        {
            "tx_ref": f"back{i}",
            "ts": t0 + 245 * DAY + i,
            "src_account": f"D{i}",
            "dst_account": "A2",
            "amount_paid": 8000.0,
            "currency_paid": "USD",
        }  # fmt: skip
        for i in range(3)
    ]
    # an account that paid on day 2 and received on day 100 (older than every window too) is not
    # dormant when it pays on day 245; one that paid on day 2 and is paid on day 245 is (payee side)
    extra += [
        {"tx_ref": "r-old", "ts": t0 + 2 * DAY, "src_account": "E0", "dst_account": "A3", "amount_paid": 700.0},
        {"tx_ref": "r-in", "ts": t0 + 100 * DAY, "src_account": "A4", "dst_account": "E0", "amount_paid": 700.0},
        {"tx_ref": "r-out", "ts": t0 + 245 * DAY, "src_account": "E0", "dst_account": "A5", "amount_paid": 8000.0},
        {"tx_ref": "p-old", "ts": t0 + 2 * DAY, "src_account": "E1", "dst_account": "A3", "amount_paid": 700.0},
        {"tx_ref": "p-in", "ts": t0 + 245 * DAY, "src_account": "A6", "dst_account": "E1", "amount_paid": 9000.0},
    ]  # fmt: skip
    extra = [{"currency_paid": "USD", **row} for row in extra]
    return TxTable.concat([stream, TxTable.from_rows(extra)]).sort_by_time()


@pytest.fixture(scope="module")
def book_and_model():
    book = _book()
    part = book.take(np.arange(3000))
    model = train_risk_model(
        compute_features(part),
        (part.amount_usd > 2000).astype(np.int8),  # any labels: the model only has to use the features
        num_boost_round=8,
        params={"num_leaves": 7, "num_threads": 1},
    )
    return book, model


@pytest.mark.parametrize(
    "scenarios",
    [default_scenarios(), [ScenarioSpec("FAN_OUT", 2, {"window_s": 20 * DAY, "min_counterparties": 3})]],
    ids=["library", "wider-fan-out"],
)
def test_summarised_older_history_screens_like_the_whole_history(book_and_model, scenarios):
    book, model = book_and_model
    cut = np.searchsorted(book.ts, int(book.ts.max()) - 10 * DAY)
    history, new = book.take(np.arange(cut)), book.take(np.arange(cut, len(book)))
    assert int(new.ts.min()) - int(history.ts.min()) > 200 * DAY  # most of the history is older
    whole = screen(new, history, scenarios, None, model, evidence_for_all=True, summarise_older=False)
    summarised = screen(new, history, scenarios, None, model, evidence_for_all=True)
    assert len(whole) == len(new) > 100
    for a, b in zip(whole, summarised, strict=True):
        assert (a.row, a.decision, a.risk) == (b.row, b.decision, b.risk)
        assert a.evidence == b.evidence  # features, rule numbers and tx refs, contributions
    features = [d.evidence["model"]["features"] for d in summarised]
    # the older rows were read: long-lived pairs, degrees and ages beyond any window
    assert max(f["pair_prior_count"] for f in features) > 5
    assert max(f["src_age_days"] for f in features) > 200
    assert max(f["src_out_degree"] for f in features) > 5
    if len(scenarios) > 1:
        dormant = [d for d in summarised if any(r["code"] == "DORMANT" for r in d.evidence["rules"])]
        assert {d.tx_ref for d in dormant} >= {"back0", "back1", "back2", "p-in"}
        assert "r-out" not in {d.tx_ref for d in dormant}  # received on day 100: not dormant
        (payee,) = [
            r["hit"]
            for d in dormant
            if d.tx_ref == "p-in"
            for r in d.evidence["rules"]
            if r["code"] == "DORMANT"
        ]
        assert (payee["side"], payee["account"], payee["dormant_days"]) == ("dst", "E1", 243.0)
