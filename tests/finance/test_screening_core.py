import numpy as np
import pytest

from finance.screening.formats import FormatError, read_amlworld
from finance.screening.scenarios import run_scenarios
from finance.screening.table import TxTable

HDR = "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,Payment Currency,Payment Format,Is Laundering\n"


def test_amlworld_good_and_bad(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text(
        HDR
        + "2022/09/01 00:20,10,8000EBD30,10,8000EBD30,3697.34,US Dollar,3697.34,US Dollar,Reinvestment,0\n"
    )
    t = read_amlworld(p)
    assert len(t) == 1 and t.src_account[0] == "8000EBD30" and t.label[0] == 0
    p.write_text(HDR + "bad,10,A,10,B,x,US Dollar,1,US Dollar,Cash,0\n")
    with pytest.raises(FormatError) as e:
        read_amlworld(p)
    fields = {f for _, f, _ in e.value.row_errors}
    assert {"Timestamp", "Amount Received"} <= fields


def _t(rows):
    return TxTable.from_rows([{"currency_paid": "USD", **r} for r in rows])


def test_structuring_hit_and_near_miss():
    rows = [
        {"ts": i * 3600, "src_account": "A", "dst_account": f"B{i}", "amount_paid": 9500.0} for i in range(3)
    ]
    t = _t(rows)
    hits = run_scenarios(t, screen_mask=np.arange(3) == 2, codes=["STRUCTURING"])
    assert [h.code for h in hits] == ["STRUCTURING"] and len(hits[0].evidence["tx_refs"]) == 3
    t2 = _t(rows[:2])
    assert run_scenarios(t2, screen_mask=np.arange(2) == 1, codes=["STRUCTURING"]) == []


def test_large_cash_and_short_cycle():
    t = _t(
        [
            {"ts": 0, "src_account": "A", "dst_account": "B", "amount_paid": 100.0},
            {"ts": 10, "src_account": "B", "dst_account": "C", "amount_paid": 100.0},
            {
                "ts": 20,
                "src_account": "C",
                "dst_account": "A",
                "amount_paid": 12000.0,
                "payment_format": "Cash",
            },
        ]
    )
    codes = {h.code for h in run_scenarios(t, screen_mask=np.arange(3) == 2)}
    assert {"SHORT_CYCLE", "LARGE_CASH"} <= codes
    assert run_scenarios(t, screen_mask=np.arange(3) == 1, codes=["SHORT_CYCLE", "LARGE_CASH"]) == []


def test_dormant_reactivation_on_either_side_and_near_misses():
    """Any movement, paid or received, on an account idle on both sides for 180 days is a hit; a
    payment received in between keeps the account active; a small amount is no hit."""
    day = 86400
    rows = [(0, "A", "X", 100), (0, "B", "X", 100), (0, "C", "X", 100), (0, "D", "X", 100)]
    rows += [(100 * day, "Y", "C", 100)]  # C is paid on day 100
    rows += [
        (200 * day, "A", "Z1", 6000),  # row5: A pays after 200 idle days
        (200 * day, "Z2", "B", 6000),  # row6: B is paid after 200 idle days
        (200 * day, "C", "Z3", 6000),  # row7: C was paid 100 days ago: active
        (200 * day, "D", "Z4", 4000),  # row8: D idle, but below 5,000 USD
        (200 * day + 1, "A", "Z5", 6000),  # row9: A moved a second ago
    ]
    t = _t([{"ts": ts, "src_account": a, "dst_account": b, "amount_paid": float(x)} for ts, a, b, x in rows])
    hits = run_scenarios(t, screen_mask=np.arange(len(rows)) >= 5, codes=["DORMANT"])
    assert [(t.tx_ref[h.row], h.evidence["side"], h.evidence["account"]) for h in hits] == [
        ("row5", "src", "A"),
        ("row6", "dst", "B"),
    ]
    assert [h.evidence["dormant_days"] for h in hits] == [200.0, 200.0]
