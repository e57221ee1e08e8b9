"""The process's copy of the stored history window (finance.services.history) equals what the
database holds after its own batches, another writer's rows, a deletion and a database change."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.db import transaction

from finance import services
from finance.models import Transaction
from finance.screening.table import TxTable
from finance.services import history

pytestmark = pytest.mark.django_db(transaction=True)
DAY = 86400


def _rows(prefix: str, n: int, start: int) -> list[dict]:
    return [
        {
            "tx_ref": f"{prefix}{i}",
            "ts": start + (i * 7919) % (3 * DAY),
            "src_account": f"A{i % 13}",
            "dst_account": f"A{(i * 5 + 1) % 17}",
            "amount_paid": 100.0 + i,
            "currency_paid": "USD",
            "payment_format": "Wire",
        }
        for i in range(n)
    ]


def _same(a: TxTable, b: TxTable) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(getattr(a, name), getattr(b, name))
        for name in ("tx_ref", "ts", "src_account", "dst_account", "amount_paid", "label")
    )


def _check(table: TxTable, lookback: int) -> history.History:
    kept = history.stored_history(table, lookback, reuse=True)
    assert kept.window is not None
    assert _same(kept.stored, history.stored_history(table, lookback, reuse=False).stored)
    return kept


def test_the_window_copy_follows_the_database(settings):
    settings.FINANCE_BOOK_ACCOUNTS = 5  # every batch here touches "most of the book"
    history._WINDOW = None
    start, lookback = 1_700_000_000, 10 * DAY
    first = services.rows_validate(_rows("a", 60, start))
    services.transactions_ingest(actor="system:test", table=first, team="aml-eu")
    window = history._WINDOW
    # built empty before the batch was stored; the batch's rows merged when it committed
    assert window is not None and len(window.table) == 60
    assert window.last_pk == Transaction.objects.order_by("-pk").first().pk and window.count == 60

    second = services.rows_validate(_rows("b", 60, start + 2 * DAY))
    kept = _check(second, lookback)
    assert len(kept.stored) == 60 and history._WINDOW is window  # reused, not re-read

    # another writer's row (another process): read as a row with a higher key
    Transaction.objects.create(
        tx_ref="other-1",
        ts=dt.datetime.fromtimestamp(start + DAY, tz=dt.UTC),
        src_account="A1",
        dst_account="A2",
        amount_paid=5.0,
        amount_received=5.0,
        currency_paid="USD",
        currency_received="USD",
    )
    assert len(_check(second, lookback).stored) == 61 and history._WINDOW is window

    # a deletion (or a rollback someone else's copy saw) changes the count: the copy is rebuilt
    Transaction.objects.filter(tx_ref="a3").delete()
    assert len(_check(second, lookback).stored) == 60 and history._WINDOW is not window

    # a batch inside the caller's transaction neither reads nor feeds the copy
    window = history._WINDOW
    with transaction.atomic():
        services.transactions_ingest(actor="system:test", table=second, team="aml-eu")
    assert history._WINDOW is window and window.last_pk < Transaction.objects.order_by("-pk").first().pk
    assert len(_check(services.rows_validate(_rows("c", 60, start + 2 * DAY)), lookback).stored) == 120
