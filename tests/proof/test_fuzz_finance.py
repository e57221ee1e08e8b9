"""Fuzzing the transaction parsers: the JSON batch API and the AMLworld / AMLSim / JSON file import.

A batch is all or nothing: either every row is stored and screened (201, one decision per row) or
nothing is written and the answer lists the bad rows (row number, field, message) - never a 500,
never part of a batch.
"""

from __future__ import annotations

import itertools
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import event, given
from hypothesis import strategies as st

from audit.models import Event
from finance.models import Alert, Case, Transaction
from tests.proof.fuzzing import fuzz_settings, mutated

TEAM = "aml-eu"
_batch_numbers = itertools.count()


def _rows_written() -> tuple[int, ...]:
    return (
        Transaction.objects.count(),
        Alert.objects.count(),
        Case.objects.count(),
        Event.objects.filter(action__in=("transaction.screen", "alert.raise")).count(),
    )


@pytest.fixture
def officer(client, make_user):
    user = make_user("compliance_officer", department=TEAM)
    client.force_login(user)
    return client


# --- JSON rows ------------------------------------------------------------------------------------
# Numbers at the edges of what a datetime, a float column or an int column can hold.
EDGE_NUMBERS = st.sampled_from(
    [1e308, -1e308, 1e-320, 2**63, -(2**63), 10**30, -(10**20), 253402300800, -62135596801, -1, 0]
)
HOSTILE = st.one_of(
    EDGE_NUMBERS,
    EDGE_NUMBERS,  # twice: the likeliest to reach the database
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80),
    st.sampled_from(
        ["", " ", "NaN", "inf", "-1", "2024-02-30T00:00:00Z", "99999-01-01", "0001-01-01T00:00:00+01:00"]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
VALID = {
    "ts": st.integers(1_600_000_000, 1_800_000_000) | st.just("2024-05-01T10:00:00Z"),
    "src_account": st.sampled_from(["ACC-1", "ACC-2", "ACC-3"]),
    "dst_account": st.sampled_from(["DST-1", "DST-2"]),
    "amount_paid": st.floats(0, 20_000, allow_nan=False),
    "amount_received": st.floats(0, 20_000, allow_nan=False),
    "currency_paid": st.sampled_from(["USD", "EUR"]),
    "currency_received": st.sampled_from(["USD", "EUR"]),
    "payment_format": st.sampled_from(["Wire", "ACH"]),
    "src_country": st.sampled_from(["DE", "FR", ""]),
    "dst_country": st.sampled_from(["US", "KP"]),
    "src_bank": st.sampled_from(["B1", "B2"]),
    "label": st.sampled_from([0, 1, None]),
}


@st.composite
def json_rows(draw, prefix: str) -> list:
    """A batch of rows: most clean, some with one or several hostile or missing fields, now and
    then a row that is no object at all."""
    rows = []
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["clean", "clean", "clean", "one bad field", "several", "not an object"]))
        if kind == "not an object":
            rows.append(draw(HOSTILE))
            continue
        row = {"tx_ref": f"{prefix}-{i}", **{name: draw(valid) for name, valid in VALID.items()}}
        names = sorted(row)
        spoiled = [] if kind == "clean" else [draw(st.sampled_from(names))]
        if kind == "several":
            spoiled += draw(st.lists(st.sampled_from(names), max_size=4))
        for name in spoiled:
            if draw(st.integers(0, 3)) == 0:
                row.pop(name, None)
            else:
                row[name] = draw(HOSTILE)
        rows.append(row)
    return rows


def _check_batch_answer(response, rows_sent: int, before: tuple[int, ...]) -> None:
    assert response.status_code in (201, 400), response.content[:500]
    event(f"batch answered {response.status_code}")
    after = _rows_written()
    body = response.json()
    if response.status_code == 201:
        assert body["transactions"] == rows_sent == after[0] - before[0]
        assert len(body["decisions"]) == rows_sent
        assert {d["decision"] for d in body["decisions"]} <= {"approve", "review", "hold"}
        assert after[1] - before[1] == body["alerts"]
        return
    assert after == before, "a refused batch left rows behind"
    if "errors" in body:  # the per-row report
        assert body["errors"], body
        for error in body["errors"]:
            assert 0 <= error["row"] < max(rows_sent, 1) and error["field"] and error["message"], error
    else:  # the request's own shape (DRF's field errors)
        assert body and all(isinstance(v, list | dict | str) for v in body.values()), body


@pytest.mark.django_db
@given(data=st.data())
@fuzz_settings(examples=30)
def test_json_batch_api_is_all_or_nothing_with_a_row_report(officer, data):
    rows = data.draw(json_rows(prefix=f"fz{next(_batch_numbers)}"))
    before = _rows_written()
    response = officer.post(
        "/api/finance/transactions/batch/", {"transactions": rows}, content_type="application/json"
    )
    _check_batch_answer(response, len(rows), before)


@pytest.mark.django_db
@given(data=st.data())
@fuzz_settings(examples=15)
def test_realtime_screening_answers_or_refuses_one_row(officer, data):
    rows = data.draw(json_rows(prefix=f"rt{next(_batch_numbers)}"))
    before = _rows_written()
    response = officer.post(
        "/api/finance/transactions/screen/", {"transaction": rows[0]}, content_type="application/json"
    )
    assert response.status_code in (200, 400), response.content[:500]
    event(f"screening answered {response.status_code}")
    if response.status_code == 400:
        assert _rows_written() == before
    else:
        assert _rows_written()[0] == before[0] + 1
        assert response.json()["decision"] in ("approve", "review", "hold")


# --- files: AMLworld CSV, AMLSim CSV, JSON --------------------------------------------------------
AMLWORLD_HEADER = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
    "Payment Currency,Payment Format,Is Laundering"
)
# The first lines of ../shared/data/amlsim/transactions.csv (AMLSim, IBM, Apache-2.0).
AMLSIM = b"sourceNodeId,targetNodeId,value,time\n216,14730,163.3,1\n322,5431,143.11,1\n"

CSV_FIELD = (
    st.sampled_from(
        ["", " ", "-1", "1e999", "nan", "inf", "-inf", "0", "1", "x" * 70, "y" * 40, '"', "\x00", "1,2"]
    )
    | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.integers(-(10**20), 10**20).map(str)
)


def _csv_line(fields: list[str]) -> str:
    return ",".join(fields)


@st.composite
def amlworld_files(draw) -> bytes:
    lines = [AMLWORLD_HEADER]
    for minute in range(draw(st.integers(0, 5))):
        fields = [
            f"2022/09/01 00:{minute:02d}",
            "10",
            f"A{minute % 2}",
            "20",
            f"B{minute % 3}",
            "9500.00",
            "US Dollar",
            "9500.00",
            "US Dollar",
            "Wire",
            "0",
        ]
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            fields[draw(st.integers(0, 10))] = draw(CSV_FIELD)
        if draw(st.integers(0, 9)) == 0:
            fields = fields[: draw(st.integers(0, 10))]
        lines.append(_csv_line(fields))
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 3)) == 0:
        return draw(mutated(text.encode(), hot_region=len(text)))
    return text.encode()


@st.composite
def amlsim_files(draw) -> bytes:
    if draw(st.integers(0, 3)) == 0:
        return draw(mutated(AMLSIM, hot_region=len(AMLSIM)))
    lines = ["sourceNodeId,targetNodeId,value,time"]
    for _ in range(draw(st.integers(0, 4))):
        fields = ["216", "14730", "163.3", "1"]
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            fields[draw(st.integers(0, 3))] = draw(CSV_FIELD)
        lines.append(_csv_line(fields[: draw(st.sampled_from([4, 4, 4, 2, 5]))]))
    return ("\n".join(lines) + "\n").encode()


@st.composite
def json_files(draw) -> bytes:
    rows = draw(json_rows(prefix=f"jf{next(_batch_numbers)}"))
    text = json.dumps(rows if draw(st.booleans()) else {"transactions": rows}).encode()
    if draw(st.integers(0, 2)) == 0:
        return draw(mutated(text, hot_region=len(text)))
    return text


FILES = {"amlworld": amlworld_files(), "amlsim": amlsim_files(), "json": json_files()}


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", sorted(FILES))
@given(data=st.data())
@fuzz_settings(examples=12)
def test_file_import_through_the_portal_is_all_or_nothing(officer, fmt, data):
    data = data.draw(FILES[fmt])
    session = officer.session
    session.pop("finance_batch_errors", None)  # the queue page shows and drops it; no page shown here
    session.save()
    before = _rows_written()
    response = officer.post("/finance/", {"format": fmt, "file": SimpleUploadedFile(f"batch.{fmt}", data)})
    assert response.status_code == 302, response.content[:500]
    after = _rows_written()
    errors = officer.session.get("finance_batch_errors")
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages, "the officer is told what happened"
    event(f"{fmt} file {'refused' if after == before else 'imported'}")
    if after == before:
        assert "screened" not in messages[-1], messages
        if errors:  # the per-row report shown on the queue page
            for error in errors:
                assert error["row"] >= 0 and error["field"] and error["message"], error
    else:
        assert "screened" in messages[-1], messages
        assert after[0] > before[0]
