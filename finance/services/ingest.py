"""Ingestion and screening: a batch (API, file import) or one transaction in real time.

Every batch is all-or-nothing: rows are validated first (a per-row error report, nothing written),
then stored, screened and alerted in one database transaction per batch. Every path (batch API,
real-time API, file import, the demo) screens through ``finance.screening.engine.screen_columns`` with
the whole engine: the active scenario versions, the active risk model (LightGBM, SHAP
contributions) and the active sanctions/PEP lists (party names, less whitelisted matches), combined
into one risk score and decision. Each alert's trail event (``alert.raise``, written with the
alert in the same transaction, one chained run per chunk) holds the engine's evidence: the
transaction, each rule hit with its scenario version, parameters, weight and numbers, the model
version, exact feature values, margin, score and contributions, the list versions and each match
(party names and match tokens sealed by the vault), the engine configuration, risk and decision.
``finance.services.replay`` recomputes the decision from that event alone.
"""

from __future__ import annotations

import gc
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from access.enforcement import check
from access.resources import Resource
from audit.services import record
from finance.models import Transaction
from finance.screening.engine import screen_columns
from finance.screening.scenarios import SCENARIOS
from finance.screening.table import STR_COLS, TxTable
from finance.services.errors import BatchRejected, FinanceRefused
from finance.services.history import (
    History,
    account_partition,
    chunk_history,
    last_movements_before,
    stored_history,
)
from finance.services.parties import parties_store, with_customer_names
from finance.services.persist import BatchWriter, IngestResult, _refresh_statistics
from finance.services.rows import rows_parties, rows_validate
from finance.services.sanctions import WhitelistingIndex
from finance.services.screening_process import ChunkScreener, ScreenedChunk
from finance.services.setup import ScreeningSetup, config_key, screening_setup

BULK_ROWS = 10_000
SQLITE_BULK_CACHE_KIB = 131_072  # 128 MiB page cache for a large batch's connection
CHUNK_ROWS = 100_000  # rows screened per engine call (each call re-reads the history window)


# --- the service ---------------------------------------------------------------------------------
def _authorize_screen(actor, team: str) -> None:
    if isinstance(actor, str):
        return  # system actors (management commands run by an operator, the demo) are trusted

    check(actor, "screen", Resource("transaction", "new", {"department": team}))


def _columns_digest(table: TxTable) -> str:
    """sha256 over the batch's columns (names, then values), in screening order."""
    digest = hashlib.sha256()
    for name in (*STR_COLS, "ts", "amount_paid", "amount_received", "label"):
        column = getattr(table, name)
        digest.update(name.encode())
        digest.update("\x1f".join(column.tolist()).encode() if column.dtype.kind == "U" else column.tobytes())
    return digest.hexdigest()


def screen_ahead() -> bool:
    """Screen a batch of more than one chunk (or a stream of batches) in two processes: a second
    process, forked once everything screening reads is in memory, and this one, which persists the
    chunks in order and screens the next untaken chunk whenever the one it needs is not ready
    (``screening_process.ChunkScreener``). Off: every chunk screened here, in turn
    (``FINANCE_SCREEN_AHEAD``)."""
    return bool(getattr(settings, "FINANCE_SCREEN_AHEAD", True))


def _chunk_screener(screen_chunk, bounds: list[tuple[int, int]]) -> ChunkScreener | None:
    """A screening process for the chunks, or None: screening ahead is off, there is one chunk, or
    this process cannot fork (a platform without fork, a daemonic pool worker): then every chunk
    is screened here, with the same result."""
    if not screen_ahead() or len(bounds) < 2:
        return None
    try:
        return ChunkScreener(screen_chunk, bounds)
    except (OSError, ValueError, AssertionError):
        return None


def _sqlite_cache(rows: int) -> None:
    if connection.vendor == "sqlite" and rows > BULK_ROWS:
        # the random-key indexes (tx_ref, accounts) of a large batch outgrow the default 2 MB
        # page cache; durability is unchanged (a commit still is one)
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")


@dataclass
class _Plan:
    """What the rows of ``table`` (one batch, or a stream of batches) are screened with, read once
    before any screening process is forked: the configuration, the stored history, the party
    names (``given`` by the caller; ``parties`` completed with the customers' KYC names)."""

    table: TxTable
    setup: ScreeningSetup
    history: History
    stored: TxTable
    given: dict
    parties: dict
    db_last: dict[str, int] = field(default_factory=dict)  # DORMANT: last movement before ``stored``

    def screen_chunk(self, start: int, stop: int) -> ScreenedChunk:
        """Rows [start, stop) of the table screened: reads memory only, never the database (so a
        second process can screen it beside the persistence of another chunk)."""
        setup, chunk = self.setup, self.table.take(np.arange(start, stop))
        # the active lists are named in every alert's evidence, even when the rows carry no party
        # names to match (the engine matches only names it is given)
        names = None if setup.names is None else WhitelistingIndex(setup.names, setup.whitelist)
        screened = screen_columns(
            chunk,
            chunk_history(self.stored, self.table, start, stop, setup.lookback),
            setup.specs,
            names,
            setup.model,
            party_names={
                ref: [p.get("src") or "", p.get("dst") or ""]
                for ref in chunk.tx_ref.tolist()
                if (p := self.parties.get(ref))
            },
            config=setup.config,
            older_last_movement=self._older_last(chunk, start),
        )
        return ScreenedChunk.of(screened, names)

    def _older_last(self, chunk: TxTable, start: int) -> dict[str, int] | None:
        """DORMANT: each account's last movement before the chunk's look-back, for the accounts of
        the rows large enough to fire (an account idle longer than the look-back has no movement in
        the history the chunk is screened against). From the stored and earlier batch rows older
        than the look-back, else the database's (``db_last``)."""
        spec = next((s for s in self.setup.specs if s.code == "DORMANT"), None)
        if spec is None:
            return None
        params = {**SCENARIOS["DORMANT"].default_params, **spec.params}
        large = chunk.amount_usd >= params["min_usd"]
        if not large.any():
            return None
        accounts = np.union1d(chunk.src_account[large], chunk.dst_account[large])
        out = {a: self.db_last[a] for a in accounts.tolist() if a in self.db_last}
        since = int(self.table.ts[start]) - self.setup.lookback
        for part, stop in ((self.stored, len(self.stored)), (self.table, start)):
            older = part.take(slice(0, int(np.searchsorted(part.ts[:stop], since, side="left"))))
            if not len(older):
                continue
            moved = np.concatenate([older.src_account, older.dst_account])
            when = np.concatenate([older.ts, older.ts])
            mine = np.isin(moved, accounts)
            if mine.any():
                names, at = np.unique(moved[mine], return_inverse=True)
                last = np.full(len(names), np.iinfo(np.int64).min)
                np.maximum.at(last, at, when[mine])
                out.update(zip(names.tolist(), last.tolist(), strict=True))  # later than db_last
        return out or None


def _plan(table: TxTable, parties: dict, *, reuse: bool, context: TxTable | None = None) -> _Plan:
    setup = screening_setup()
    history = stored_history(table, setup.lookback, reuse=reuse)
    stored = history.stored
    if context is not None and len(stored):
        # rows of other partitions already committed are in the context already
        stored = stored.take(~np.isin(stored.tx_ref, context.tx_ref))
    if context is not None and len(context):
        stored = TxTable.concat([stored, context]).sort_by_time() if len(stored) else context
    completed = parties
    if setup.names is not None:
        completed = with_customer_names(table, parties, customers=setup.has_customers)
    return _Plan(
        table, setup, history, stored, parties, completed, _stored_last_movements(table, stored, setup)
    )


def _stored_last_movements(table: TxTable, stored: TxTable, setup: ScreeningSetup) -> dict[str, int]:
    """DORMANT: from the database, the last movement (either side) before ``stored``'s look-back
    of each account on a row of ``table`` large enough to fire that has no stored movement at or
    before the table's first row (one that has is never idle longer than what ``stored`` holds)."""
    spec = next((s for s in setup.specs if s.code == "DORMANT"), None)
    if spec is None:
        return {}
    params = {**SCENARIOS["DORMANT"].default_params, **spec.params}
    large = table.amount_usd >= params["min_usd"]
    if not large.any():
        return {}
    accounts = np.union1d(table.src_account[large], table.dst_account[large])
    first = int(table.ts.min())
    if len(stored):
        upto = int(np.searchsorted(stored.ts, first, side="right"))
        seen = np.union1d(stored.src_account[:upto], stored.dst_account[:upto])
        accounts = np.setdiff1d(accounts, seen, assume_unique=True)
    return last_movements_before(accounts.tolist(), first - setup.lookback)


def _store_batch(
    *,
    actor,
    plan: _Plan,
    span: tuple[int, int],
    chunks: list[int],
    bounds: list[tuple[int, int]],
    screener: ChunkScreener | None,
    batch: str,
    team: str,
    source: str,
    realtime: bool,
    given: dict,
    parties: dict,
    partition: tuple[int, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    done_before: int = 0,
) -> IngestResult:
    """Rows ``span`` of the plan's table (one batch) stored, chunk by chunk as screened, then
    trailed; runs inside the batch's transaction."""
    table = plan.table.take(slice(*span))
    # the named parties' counterparty rows (sealed names) are written while the screening process
    # works: persistence needs them, screening does not
    writer = BatchWriter(
        actor=actor,
        batch=batch,
        team=team,
        parties=parties,
        party_ids=parties_store(table=table, parties=given) if given else {},
        history=plan.history,
        version_ids={v.code: v.pk for v in plan.setup.versions},
        keep_decisions=realtime or len(table) <= 1000,
    )
    for k in chunks:
        start, stop = bounds[k]
        screened = screener.get(k) if screener is not None else plan.screen_chunk(start, stop)
        result = writer.store(plan.table.take(slice(start, stop)), screened)
        if progress:
            progress(done_before + result.transactions, len(plan.table))
    writer.trail()  # at the end of the batch: the trail's head row is not held while it is stored
    result = writer.result
    setup = plan.setup
    record(
        actor=actor,
        action="transaction.screen",
        resource_type="transaction",
        resource_id=str(result.decisions[0]["id"]) if realtime and result.decisions else batch,
        outcome="succeeded",
        payload={
            "batch": batch,
            "team": team,
            "source": source,
            "rows": len(table),
            "columns_sha256": _columns_digest(table),
            "alerts": result.alerts,
            "holds": result.holds,
            "scenario_versions": [f"{s.code}:{s.version}" for s in setup.specs],
            "model": setup.model.version if setup.model is not None else None,
            "lists": setup.names.version if setup.names is not None else None,
            "named_rows": len(parties),
            "partition": list(partition) if partition is not None else None,
            "config": asdict(setup.config),
            "decisions": result.decisions if realtime else [],
        },
    )
    return result


def _chunk_bounds(
    spans: list[tuple[int, int]], chunk_rows: int
) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """Chunks of at most ``chunk_rows`` rows that never cross a span (batch), and each span's chunk
    indices."""
    bounds, of_span = [], []
    for start, stop in spans:
        first = len(bounds)
        bounds += [(a, min(a + chunk_rows, stop)) for a in range(start, stop, chunk_rows)]
        of_span.append(list(range(first, len(bounds))))
    return bounds, of_span


_FROZEN_SETUP: int | None = None  # id() of the cached setup's specs the last freeze covered


def _freeze_long_lived(setup: ScreeningSetup) -> None:
    """After a real-time call: move what the process holds for good (modules, Django and DRF,
    the cached screening setup with its model and list index) out of the collector's reach
    (``gc.freeze``), so that a full collection no longer scans it. A full collection of an
    unfrozen process after a large batch took 130-230 ms inside one real-time call on this host
    (PostgreSQL bench, 200 calls: the p99). The first call of the process collects once before
    freezing (its warm-up); a rebuilt setup (a configuration change) is frozen again without a
    collection. Frozen objects are still freed by reference counting; only garbage in reference
    cycles at freeze time stays. ``FINANCE_GC_FREEZE = False`` turns it off."""
    global _FROZEN_SETUP
    built = id(setup.specs)  # shared by every copy ``screening_setup`` hands out of one cached setup
    if built == _FROZEN_SETUP or not getattr(settings, "FINANCE_GC_FREEZE", True):
        return
    if _FROZEN_SETUP is None:
        gc.collect()
    gc.freeze()
    _FROZEN_SETUP = built


def transactions_ingest(
    *,
    actor,
    table: TxTable,
    team: str,
    batch: str = "",
    source: str = "api",
    realtime: bool = False,
    parties: dict[str, dict] | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    partition: tuple[int, int] | None = None,
) -> IngestResult:
    """Store, screen and alert a validated batch, all or nothing. Returns per-row decisions.

    ``parties``: {tx_ref: {"src": originator name, "dst": beneficiary name}} (optional): the names
    are screened against the active sanctions and PEP lists and sealed at rest. ``partition``
    (k, n): screen and store only the rows whose payer account falls in partition k of n
    (``account_partition``), the other rows of the batch serving as history: n workers given the
    same batch store it once between them (scale-out; each partition is its own transaction)."""
    team = (team or "").strip()
    if not team:
        raise FinanceRefused("A team is required: transactions belong to an AML team.")
    if len(table) == 0:
        raise BatchRejected([{"row": 0, "field": "transactions", "message": "no rows"}])
    _authorize_screen(actor, team)
    batch = batch or uuid.uuid4().hex[:12]
    table = table.sort_by_time()
    context = None
    if partition is not None:
        # screen and store only this partition's rows; the rest of the batch is read-only history
        # (the engine reads only the past, so each row is decided as in a single-process run)
        part, parts = partition
        mine = account_partition(table.src_account, parts) == part
        context, table = table.take(~mine), table.take(mine)
        if len(table) == 0:
            return IngestResult(batch=batch)
    parties = parties or {}
    outermost = not connection.in_atomic_block  # what this call stores commits when it returns
    with transaction.atomic():
        _sqlite_cache(len(table))
        plan = _plan(table, parties, reuse=outermost, context=context)
        bounds, (chunks,) = _chunk_bounds([(0, len(table))], chunk_rows)
        screener = _chunk_screener(plan.screen_chunk, bounds)
        try:
            result = _store_batch(
                actor=actor,
                plan=plan,
                span=(0, len(table)),
                chunks=chunks,
                bounds=bounds,
                screener=screener,
                batch=batch,
                team=team,
                source=source,
                realtime=realtime,
                given=parties,
                parties=plan.parties,
                partition=partition,
                progress=progress,
            )
        finally:
            if screener is not None:
                screener.close()
    if outermost and len(table) >= BULK_ROWS:
        _refresh_statistics(len(table))
    if realtime:
        _freeze_long_lived(plan.setup)
    return result


class _BookChanged(Exception):
    """Between two batches of a stream someone else stored transactions or changed what screening
    depends on: the batches screened ahead are not what a call per batch would decide now."""


def _book_state() -> tuple[int, tuple, bool]:
    """(transactions stored, the screening configuration's key, whether any account has a KYC
    customer): read before a stream's history, and again before each later batch."""
    key, customers = config_key(timezone.now())
    return Transaction.objects.count(), key, customers


def transactions_ingest_batches(
    *,
    actor,
    table: TxTable,
    team: str,
    batch_rows: int,
    source: str = "api",
    parties: dict[str, dict] | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> list[IngestResult]:
    """A stream: the time-sorted ``table`` stored as consecutive batches of ``batch_rows`` rows, each
    its own all-or-nothing database transaction with its own batch id (a bank's batch feed, a long
    import committed as it goes). Same decisions, alerts, cases and trail events as
    ``transactions_ingest`` called on each batch in turn (``parties`` split by batch).

    What differs is the schedule: the configuration, the stored history and the party names are read
    once, then chunks of every batch are screened by two processes (``ChunkScreener``) while this one
    persists batch after batch, so the screening of batch k+1 runs while batch k is written. Before
    each later batch one COUNT and the configuration's key are re-read (and, where accounts have KYC
    customers, their names): if another writer stored transactions or the configuration changed
    meanwhile, the batches screened ahead are dropped and the rest go through ``transactions_ingest``
    one by one, which reads the book again. A failure rolls back the batch it happens in; the
    batches before it stay committed (as with calls in turn), the ones after are not stored."""
    team = (team or "").strip()
    if not team:
        raise FinanceRefused("A team is required: transactions belong to an AML team.")
    if len(table) == 0 or batch_rows < 1:
        raise BatchRejected([{"row": 0, "field": "transactions", "message": "no rows"}])
    _authorize_screen(actor, team)
    table = table.sort_by_time()
    parties = parties or {}
    spans = [(start, min(start + batch_rows, len(table))) for start in range(0, len(table), batch_rows)]
    names = [uuid.uuid4().hex[:12] for _ in spans]
    refs = table.tx_ref.tolist()

    def given(span: tuple[int, int], named: dict) -> dict:
        return {ref: named[ref] for ref in refs[slice(*span)] if ref in named} if named else {}

    results: list[IngestResult] = []
    if len(spans) > 1 and screen_ahead() and not connection.in_atomic_block:
        screener = None
        try:
            plan, bounds, of_span, state = None, [], [], None
            for b, span in enumerate(spans):
                with transaction.atomic():
                    if plan is None:
                        _sqlite_cache(len(table))
                        screening_setup()  # a fresh install seeds the scenario library first
                        state = _book_state()  # before the history read: a row stored after it is seen
                        plan = _plan(table, parties, reuse=True)
                        bounds, of_span = _chunk_bounds(spans, chunk_rows)
                        screener = _chunk_screener(plan.screen_chunk, bounds)
                    elif _book_state() != state or not _same_customer_names(plan, span, given):
                        raise _BookChanged
                    result = _store_batch(
                        actor=actor,
                        plan=plan,
                        span=span,
                        chunks=of_span[b],
                        bounds=bounds,
                        screener=screener,
                        batch=names[b],
                        team=team,
                        source=source,
                        realtime=False,
                        given=given(span, parties),
                        parties=given(span, plan.parties),
                        progress=progress,
                        done_before=span[0],
                    )
                result.streamed = True
                results.append(result)
                state = (state[0] + result.transactions, *state[1:])
                if span[1] - span[0] >= BULK_ROWS:
                    _refresh_statistics(span[1] - span[0])
        except _BookChanged:
            pass
        finally:
            if screener is not None:
                screener.close()
    for b in range(len(results), len(spans)):  # one call per batch (also after a change)
        span = spans[b]
        results.append(
            transactions_ingest(
                actor=actor,
                table=table.take(slice(*span)),
                team=team,
                batch=names[b],
                source=source,
                parties=given(span, parties),
                progress=(lambda done, total, s=span[0]: progress(s + done, len(table)))
                if progress
                else None,
                chunk_rows=chunk_rows,
            )
        )
    return results


def _same_customer_names(plan: _Plan, span: tuple[int, int], given) -> bool:
    """The KYC names screening used for the batch's rows are still those on file (whether any
    account has a customer at all is part of the book's state)."""
    if plan.setup.names is None or not plan.setup.has_customers:
        return True
    table = plan.table.take(slice(*span))
    return with_customer_names(table, given(span, plan.given), customers=True) == given(span, plan.parties)


def table_from_file(
    *, fmt: str, source, batch: str, parties: dict | None = None, partitioned: bool = False
) -> TxTable:
    """Read an AMLworld CSV, an AMLSim folder (or transactions file) or a JSON list of rows into a
    TxTable whose tx_refs carry the batch id (file line numbers repeat across files). JSON rows
    may name their parties (src_name, dst_name): those are put in ``parties``."""
    from finance.screening.formats import FormatError, read_amlsim, read_amlworld

    try:
        if fmt == "amlworld":
            table = read_amlworld(source)
        elif fmt == "amlsim":
            table = read_amlsim(source if not hasattr(source, "read") else (source, None))
        elif fmt == "json":
            raw = source.read() if hasattr(source, "read") else Path(source).read_bytes()
            try:
                rows = json.loads(raw)
            except ValueError as error:
                raise BatchRejected([{"row": 0, "field": "file", "message": f"not JSON: {error}"}]) from None
            rows = rows.get("transactions", rows) if isinstance(rows, dict) else rows
            table = rows_validate(rows, sibling_batch=batch if partitioned else "")
            if parties is not None:
                parties.update(rows_parties(rows))
            return table
        else:
            raise FinanceRefused("format must be amlworld, amlsim or json.")
    except FormatError as error:
        raise BatchRejected([{"row": r, "field": f, "message": m} for r, f, m in error.row_errors]) from None
    table.tx_ref = np.char.add(f"{batch}:", table.tx_ref.astype(str))
    return table
