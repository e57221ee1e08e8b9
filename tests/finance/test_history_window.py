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


def _table(refs: list[str], start: int) -> TxTable:
    return TxTable.from_rows(
        [
            {
                "tx_ref": ref,
                "ts": start + i,
                "src_account": f"A{i}",
                "dst_account": "B",
                "amount_paid": 1.0 + i,
            }
            for i, ref in enumerate(refs)
        ]
    )


def test_appended_chunks_equal_one_copy_and_leave_earlier_views_as_they_were():
    """Chunks appended in time order go into the window's spare room (no copy of the held rows),
    grow it when full or when a string is wider than the room's, and a view handed out before an
    append (a batch's history) still reads the same rows after it."""
    first = _table([f"r{i}" for i in range(5)], 1_000)
    window = history.BookWindow(("test",), 0, first, np.arange(1, 6), 5, 5)
    chunks = [_table([f"r{k}-{i}" for i in range(400)], 2_000 + 1_000 * k) for k in range(4)]
    chunks.append(_table(["a-much-longer-reference-than-the-others"], 9_000))
    before = None
    for k, chunk in enumerate(chunks):
        pks = np.arange(len(chunk)) + window.last_pk + 1
        window.merge(chunk, pks)
        window.last_pk = int(pks.max())
        if k == 1:
            held = window.table
            before = (held, held.tx_ref.copy(), held.ts.copy())
            window.trim(1_003)  # forgets the first rows: the rest stay where they are
    expected = TxTable.concat([first, *chunks])
    expected = expected.take(expected.ts >= 1_003)
    assert _same(window.table, expected)
    assert window.table.tx_ref.dtype.itemsize >= len("a-much-longer-reference-than-the-others") * 4
    assert window.spare is not None and window.end > 0
    held, refs, ts = before
    assert np.array_equal(held.tx_ref, refs) and np.array_equal(held.ts, ts)
    assert np.array_equal(window.pks, np.arange(4, window.last_pk + 1))  # ts 1,000-1,002 trimmed
