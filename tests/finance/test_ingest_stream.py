"""A stream of batches (``transactions_ingest_batches``) stores what one ``transactions_ingest``
call per batch stores, while screening runs ahead across batches in two processes; a row another
writer stores between two batches sends the rest through the calls in turn. DORMANT sees an
account idle for longer than the stored history reaches back."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from audit.models import Event
from finance import services
from finance.management.commands.bench_screening import synthetic_stream
from finance.models import Alert, Transaction
from finance.services.ingest import transactions_ingest_batches
from tests.finance.conftest import TEAM, payment

pytestmark = pytest.mark.django_db(transaction=True)
_FORKS: list[int] = []  # one entry per fork of this test process (the screening processes)
os.register_at_fork(after_in_parent=lambda: _FORKS.append(1))
DAY = 86400


def _stream(prefix: str, n: int = 900):
    stream = synthetic_stream(n, accounts=60, days=10, seed=5)
    stream.ts = np.arange(len(stream), dtype=np.int64) * 577 + 1_700_000_000
    for column in ("tx_ref", "src_account", "dst_account"):
        setattr(stream, column, np.char.add(prefix, getattr(stream, column)))
    return stream


def _stored(prefix: str) -> dict:
    return {
        ref[len(prefix) :]: (decision, round(risk, 12))
        for ref, decision, risk in Transaction.objects.filter(tx_ref__startswith=prefix).values_list(
            "tx_ref", "decision", "risk"
        )
    }


def _evidence(prefix: str) -> dict:
    out = {}
    for ref, ev in Alert.objects.filter(transaction__tx_ref__startswith=prefix).values_list(
        "transaction__tx_ref", "evidence"
    ):
        ev = {k: v for k, v in ev.items() if k != "names"}
        out[ref[len(prefix) :]] = json.dumps(ev, sort_keys=True).replace(f'"{prefix}', '"')
    return out


def _decision_events() -> int:
    return Event.objects.filter(action__in=("alert.raise", "case.open", "transaction.screen")).count()


def _in_turn(table, batch_rows: int, **kwargs) -> list:
    return [
        services.transactions_ingest(
            actor="system:test", table=table.take(slice(a, a + batch_rows)), team=TEAM, **kwargs
        )
        for a in range(0, len(table), batch_rows)
    ]


def _passing_on(prefix: str) -> dict:
    """A payment into one of the stream's accounts that a payment of the next batch passes on."""
    return {
        "tx_ref": f"{prefix}foreign",
        "ts": 1_700_000_000 + 300 * 577 - 60,
        "src_account": f"{prefix}OUTSIDE",
        "dst_account": f"{prefix}A7",
        "amount_paid": 50_000.0,
        "currency_paid": "USD",
    }


def test_a_stream_of_batches_stores_what_calls_in_turn_store(settings):
    settings.FINANCE_SCREEN_AHEAD = True
    forks = len(_FORKS)
    # first, on a fresh database (the scenario library is seeded by the first batch)
    streamed = transactions_ingest_batches(
        actor="system:test", table=_stream("b-"), team=TEAM, batch_rows=300, chunk_rows=150
    )
    assert len(_FORKS) == forks + 1 and all(r.streamed for r in streamed)  # one screening process
    events = _decision_events()
    in_turn = _in_turn(_stream("a-"), 300, chunk_rows=150)
    assert [r.transactions for r in streamed] == [300, 300, 300]
    assert [r.alerts for r in streamed] == [r.alerts for r in in_turn] and sum(r.alerts for r in in_turn) > 0
    assert _stored("a-") == _stored("b-") and len(_stored("b-")) == 900
    assert _evidence("a-") == _evidence("b-")
    assert _decision_events() == 2 * events  # per batch: its events, as in turn
    assert len(_FORKS) == forks + 4  # in turn: one per batch of two chunks
    for alert in Alert.objects.filter(transaction__tx_ref__startswith="b-")[:10]:
        assert services.alert_replay(alert_id=alert.pk).identical


def test_a_row_stored_by_another_writer_between_batches_is_seen(settings):
    """The foreign row is stored when the first batch ends (before the second batch starts): the
    stream stops screening ahead and decides the later batches as calls in turn do."""
    settings.FINANCE_SCREEN_AHEAD = True
    table = _stream("a-")
    table.amount_paid[300], table.amount_received[300] = 49_000.0, 49_000.0  # A7 passes it on
    table.src_account[300] = "a-A7"
    services.transactions_ingest(actor="system:test", table=table.take(slice(0, 300)), team=TEAM)
    services.transactions_ingest(
        actor="system:test", table=services.rows_validate([_passing_on("a-")]), team=TEAM
    )
    _in_turn(table.take(slice(300, 900)), 300)
    assert "PASS_THROUGH" in _evidence("a-")["bench-300"]  # the foreign row matters

    table = _stream("b-")
    table.amount_paid[300], table.amount_received[300] = 49_000.0, 49_000.0
    table.src_account[300] = "b-A7"

    def progress(done: int, total: int) -> None:
        if done == 300:  # the first batch's last chunk is stored: another writer stores a row
            foreign = services.rows_validate([_passing_on("b-")])
            services.transactions_ingest(actor="system:test", table=foreign, team=TEAM)

    streamed = transactions_ingest_batches(
        actor="system:test", table=table, team=TEAM, batch_rows=300, chunk_rows=150, progress=progress
    )
    assert [r.transactions for r in streamed] == [300, 300, 300]
    assert [r.streamed for r in streamed] == [True, False, False]
    assert _stored("a-") == _stored("b-") and _evidence("a-") == _evidence("b-")


def _dormant(ref: str):
    alert = Alert.objects.filter(transaction__tx_ref=ref).first()
    hits = [r["hit"] for r in alert.evidence["rules"] if r["code"] == "DORMANT"] if alert else []
    return hits[0] if hits else None


def test_an_account_idle_longer_than_the_history_reaches_back_is_dormant():
    """Idle 400 days: its last movement is older than the 181 days of stored history read per
    batch, and the account still comes back from dormancy (the database's last movement, or an
    earlier row of the same import older than the chunk's look-back); idle 170 days: no hit."""
    t0 = 1_700_000_000
    first = [payment("p1", t0, "OLD", "X1", 100.0), payment("p2", t0, "RECENT", "X2", 100.0)]
    services.transactions_ingest(actor="system:test", table=services.rows_validate(first), team=TEAM)
    for later in (
        payment("p4", t0 + 170 * DAY, "RECENT", "Y2", 6000.0),
        payment("p3", t0 + 400 * DAY, "OLD", "Y1", 6000.0),
    ):  # each its own batch (a batch's history reaches back from its earliest row)
        services.transactions_ingest(actor="system:test", table=services.rows_validate([later]), team=TEAM)
    assert _dormant("p3") == {
        "dormant_days": 400.0,
        "side": "src",
        "account": "OLD",
        "amount_usd": 6000.0,
        "tx_refs": ["p3"],
    }
    assert _dormant("p4") is None
    alert = Alert.objects.get(transaction__tx_ref="p3")
    assert services.alert_replay(alert_id=alert.pk).identical

    # one import of 300 days, in chunks of 2 rows: the receiving side's movement 300 days before
    # lies outside the last chunk's look-back, in the import itself
    rows = [payment("q1", t0, "S1", "IDLE", 100.0)]
    rows += [payment(f"q{k}", t0 + k * 20 * DAY, f"F{k}", f"G{k}", 50.0) for k in range(2, 15)]
    rows += [payment("q99", t0 + 300 * DAY, "S2", "IDLE", 7000.0)]
    services.transactions_ingest(
        actor="system:test", table=services.rows_validate(rows), team=TEAM, chunk_rows=2
    )
    assert _dormant("q99")["dormant_days"] == 300.0 and _dormant("q99")["side"] == "dst"
