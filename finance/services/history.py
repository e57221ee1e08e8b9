"""Stored transaction history that screening reads (the scenarios' windows, the model's features).

A batch that touches few accounts reads their rows in the window (indexed by account). A batch
that touches most of the book (a bank's daily feed, a file import, the benchmark's stream) needs
the whole window: re-reading it from the database for every batch cost more than screening it
(the 1,000,000-row run read 4.5 million rows back). So each process keeps one copy of the window,
``BookWindow``, and per batch reads only the rows stored since it last looked.

The copy is only ever used when it provably equals the table: it remembers the highest primary key
it holds and how many rows the table had up to that key. Per batch one COUNT re-checks that (a row
committed late by another writer with a lower key, a rollback, a flushed or recreated database all
change it, and the copy is then rebuilt from the database), then the rows with higher keys are read
and merged. Rows this process stores are merged when their transaction commits; a batch screened
inside someone else's transaction (a test, a caller's atomic block) never reads or feeds the copy,
since what it would hold could still be rolled back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from dataclasses import dataclass, fields

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q

from finance.models import ScenarioVersion, Transaction
from finance.screening.engine import in_time_order
from finance.screening.table import STR_COLS, TxTable


def book_accounts() -> int:
    """A batch touching more accounts than this reads the whole window (one range scan)."""
    return int(getattr(settings, "FINANCE_BOOK_ACCOUNTS", 20_000))


def load_table(queryset) -> tuple[TxTable, np.ndarray]:
    """Transactions as a time-sorted TxTable and their primary keys (same order)."""
    names = ["pk", *STR_COLS, "ts", "amount_paid", "amount_received", "label"]
    rows = list(queryset.order_by("ts", "pk").values_list(*names))
    if not rows:
        return TxTable.empty(), np.array([], dtype=np.int64)
    cols = list(zip(*rows, strict=True))
    data = {name: list(cols[i + 1]) for i, name in enumerate(names[1:])}
    data["ts"] = [int(t.timestamp()) for t in data["ts"]]
    data["label"] = [-1 if v is None else v for v in data["label"]]
    return TxTable(**data), np.array(cols[0], dtype=np.int64)


def _moment(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def last_movements_before(accounts: list[str], before: int, *, team: str | None = None) -> dict[str, int]:
    """{account: epoch seconds of its last movement, paid or received, stored before ``before``}
    for those of ``accounts`` that have one (``team``: that team's transactions only). DORMANT
    reads it for an account idle longer than the history a screening loads reaches back (live
    ingest and shadow runs alike)."""
    stored = Transaction.objects.filter(ts__lt=_moment(before))
    if team is not None:
        stored = stored.filter(team=team)
    out: dict[str, int] = {}
    if not accounts or not stored.exists():  # nothing that old (one indexed probe, not a query per
        return out  # 4,000 accounts: 1.7 s for the 100,000 accounts of a 600,000-row import)
    for column in ("src_account", "dst_account"):
        for start in range(0, len(accounts), 4000):
            rows = (
                stored.filter(**{f"{column}__in": accounts[start : start + 4000]})
                .order_by()
                .values_list(column)
                .annotate(last=Max("ts"))
                .values_list(column, "last")
            )
            for account, last in rows:
                out[account] = max(out.get(account, -(2**62)), int(last.timestamp()))
    return out


@dataclass
class BookWindow:
    """Every stored transaction with ts >= ``since``, time-sorted (then by key), as the database
    held them when ``count`` rows had a key <= ``last_pk``."""

    database: tuple
    since: int
    table: TxTable
    pks: np.ndarray
    last_pk: int
    count: int
    # appends write into spare room after ``table`` (its columns are the last rows of these
    # arrays, up to ``end``) instead of copying the whole window per chunk stored: None until
    # the first append, and again after a sort
    spare: dict[str, np.ndarray] | None = None
    end: int = 0

    def rows(self, since: int, until: int) -> TxTable:
        """The rows in [since, until] (a view: no copy of the window)."""
        lo = np.searchsorted(self.table.ts, since, side="left")
        hi = np.searchsorted(self.table.ts, until, side="right")
        return self.table.take(slice(lo, hi))

    def merge(self, table: TxTable, pks: np.ndarray) -> None:
        """Add rows with keys above ``last_pk`` (kept in (ts, key) order; older than the window
        dropped)."""
        if len(table) and int(table.ts.min()) < self.since:
            keep = table.ts >= self.since
            table, pks = table.take(keep), pks[keep]
        if not len(table):
            return
        if not (
            in_time_order(table.ts)
            and (len(pks) < 2 or bool((np.diff(pks)[np.diff(table.ts) == 0] > 0).all()))
        ):
            order = np.lexsort((pks, table.ts))
            table, pks = table.take(order), pks[order]
        if len(self.table) and (table.ts[0], pks[0]) < (self.table.ts[-1], self.pks[-1]):
            # rows older than the newest held (a late commit, a back-dated batch): sort all
            merged = TxTable.concat([self.table, table])
            all_pks = np.concatenate([self.pks, pks])
            order = np.lexsort((all_pks, merged.ts))
            self.table, self.pks, self.spare = merged.take(order), all_pks[order], None
        else:  # the usual case, a feed in time order: append
            self._append(table)
            self.pks = np.concatenate([self.pks, pks])

    def _append(self, table: TxTable) -> None:
        """``table``'s rows after the held ones: written into the spare room when they fit (no
        copy of the held rows), else both copied into new arrays with half as much room again."""
        held, n, m = self.table, len(self.table), len(table)
        names = [f.name for f in fields(TxTable)]
        spare = self.spare
        if (
            spare is None
            or self.end + m > len(spare["ts"])
            or any(np.promote_types(spare[c].dtype, getattr(table, c).dtype) != spare[c].dtype for c in names)
        ):
            room = (n + m) * 3 // 2 + 1024
            spare = {}
            for c in names:
                spare[c] = np.empty(room, np.promote_types(getattr(held, c).dtype, getattr(table, c).dtype))
                spare[c][:n] = getattr(held, c)
            self.end = n
        for c in names:
            spare[c][self.end : self.end + m] = getattr(table, c)
        self.end += m
        self.spare = spare
        self.table = TxTable(**{c: spare[c][self.end - n - m : self.end] for c in names})

    def trim(self, since: int) -> None:
        """Forget rows older than ``since`` (later batches look no further back)."""
        if since > self.since:
            lo = np.searchsorted(self.table.ts, since, side="left")
            self.table, self.pks, self.since = (
                self.table.take(slice(lo, len(self.table))),
                self.pks[lo:],
                since,
            )


_WINDOW: BookWindow | None = None
_LOCK = threading.Lock()


def _database() -> tuple:
    return (connection.vendor, str(connection.settings_dict.get("NAME")), connection.alias)


def _fresh_window(since: int) -> BookWindow:
    last_pk = Transaction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    count = Transaction.objects.filter(pk__lte=last_pk).count()
    table, pks = load_table(Transaction.objects.filter(ts__gte=_moment(since), pk__lte=last_pk))
    return BookWindow(_database(), since, table, pks, last_pk, count)


def _current_window(since: int) -> BookWindow:
    """The process's window, checked against the table and brought up to date, or a new one."""
    global _WINDOW
    window = _WINDOW
    if (
        window is None
        or window.database != _database()
        or window.since > since
        or Transaction.objects.filter(pk__lte=window.last_pk).count() != window.count
    ):
        window = _fresh_window(since)
    else:
        newer = Transaction.objects.filter(pk__gt=window.last_pk)
        table, pks = load_table(newer)
        if len(pks):
            window.count += len(pks)
            window.last_pk = int(pks.max())
            window.merge(table, pks)
    window.trim(since)
    _WINDOW = window
    return window


def _merge_committed(window: BookWindow, table: TxTable, pks: np.ndarray) -> None:
    """After commit: this process's stored rows join the window it read them against (if it is
    still the current one); the next batch's count check catches anyone else's rows."""
    with _LOCK:
        if _WINDOW is window and len(pks):
            window.merge(table, pks)
            window.count += len(pks)
            window.last_pk = max(window.last_pk, int(pks.max()))


@dataclass
class History:
    """What one batch reads: ``stored`` (time-sorted) and, for the window, a hook that adds the
    batch's own rows to the process's copy when its transaction commits."""

    stored: TxTable
    window: BookWindow | None = None

    def stored_rows(self, table: TxTable, pks: list[int]) -> None:
        """Call inside the batch's transaction with each chunk of rows it inserted."""
        if self.window is not None and len(pks):
            window, ids = self.window, np.asarray(pks, dtype=np.int64)
            transaction.on_commit(lambda: _merge_committed(window, table, ids))


def stored_history(table: TxTable, lookback: int, *, reuse: bool) -> History:
    """Stored transactions touching the accounts of ``table`` from ``lookback`` seconds before its
    first row up to its last, time-sorted. ``reuse``: the caller's transaction is the outermost one
    (what it stores commits with it), so the process's copy of the window may be used and fed."""
    since, until = int(table.ts.min()) - lookback, int(table.ts.max())
    accounts = sorted(set(table.src_account.tolist()) | set(table.dst_account.tolist()))
    if len(accounts) > book_accounts():  # most of the book: the whole window
        if not reuse:
            return History(
                load_table(Transaction.objects.filter(ts__gte=_moment(since), ts__lte=_moment(until)))[0]
            )
        with _LOCK:
            window = _current_window(since)
            return History(window.rows(since, until), window)
    span = Transaction.objects.filter(ts__gte=_moment(since), ts__lte=_moment(until))
    found = []
    for start in range(0, len(accounts), 4000):
        part = accounts[start : start + 4000]
        found.append(load_table(span.filter(Q(src_account__in=part) | Q(dst_account__in=part)))[0])
    if len(found) == 1:
        return History(found[0])
    merged = TxTable.concat(found)
    _, first = np.unique(merged.tx_ref, return_index=True)
    return History(merged.take(np.sort(first)).sort_by_time())


# --- how far back, and which rows a chunk is screened against ----------------------------------
HISTORY_SLACK_S = 86400


def history_window_s(versions: list[ScenarioVersion]) -> int:
    """How far back the scenarios look (the longest window, history or dormancy period)."""
    longest = 0
    for version in versions:
        for key in ("window_s", "history_s", "dormant_s"):
            value = version.params.get(key)
            if isinstance(value, int | float):
                longest = max(longest, int(value))
    return longest


def account_partition(accounts: np.ndarray, parts: int) -> np.ndarray:
    """A stable partition number per account (sha256, not Python's per-process string hash)."""
    unique, inverse = np.unique(accounts, return_inverse=True)
    numbers = np.array(
        [int.from_bytes(hashlib.sha256(a.encode()).digest()[:8], "big") % parts for a in unique.tolist()],
        dtype=np.int64,
    )
    return numbers[inverse]


def chunk_history(stored: TxTable, table: TxTable, start: int, stop: int, lookback: int) -> TxTable | None:
    """What chunk [start, stop) of the time-sorted batch is screened against: the stored rows up to
    its last timestamp and the batch's own earlier rows, both from ``lookback`` before its first."""
    since = int(table.ts[start]) - lookback
    parts = []
    if len(stored):
        lo = np.searchsorted(stored.ts, since, side="left")
        hi = np.searchsorted(stored.ts, int(table.ts[stop - 1]), side="right")
        if hi > lo:
            parts.append(stored.take(slice(lo, hi)))  # views, not copies, of the window
    lo = np.searchsorted(table.ts[:start], since, side="left")
    if start > lo:
        parts.append(table.take(slice(lo, start)))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    joined = TxTable.concat(parts)
    return joined if in_time_order(joined.ts) else joined.sort_by_time()
