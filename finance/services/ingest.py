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

import base64
import datetime as dt
import gc
import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from access.enforcement import check
from access.resources import Resource
from audit.services import record
from finance.models import Account, ModelVersion, ScenarioVersion, Transaction
from finance.screening.engine import EngineConfig, ScenarioSpec, in_time_order, screen_columns
from finance.screening.formats import MAX_TS, MIN_TS
from finance.screening.names import NameIndex
from finance.screening.risk_model import RiskModel
from finance.screening.scenarios import SCENARIOS
from finance.screening.table import STR_COLS, TxTable
from finance.services.errors import BatchRejected, FinanceRefused
from finance.services.history import History, last_movements_before, stored_history
from finance.services.parties import NAME_CONTEXT, open_text, parties_store
from finance.services.persist import (
    MATCH_CONTEXT,
    BatchWriter,
    IngestResult,
    _refresh_statistics,
    _seal_matches,  # noqa: F401 (a vault test seals evidence as the ingest does)
)
from finance.services.sanctions import WhitelistingIndex, screening_index, whitelist_in_force
from finance.services.scenarios import DEFAULT_WEIGHTS, active_versions_or_seed
from finance.services.screening_process import (  # noqa: F401 (ScreeningProcessFailed: what a caller catches)
    ChunkScreener,
    ScreenedChunk,
    ScreeningProcessFailed,
)

REVIEW_THRESHOLD = 0.3  # risk at or above: alert, decision "review"
HOLD_THRESHOLD = 0.8  # risk at or above: alert, decision "hold" (stop the payment pending review)
NAME_THRESHOLD = 0.82  # a party name scoring at least this against a list entry is a match
NAME_HOLD_SCORE = 0.92  # a match this close holds the payment whatever the other signals say
HISTORY_SLACK_S = 86400
MAX_BATCH_ROWS = 50_000
MAX_NAME_CHARS = 200
BULK_ROWS = 10_000
SQLITE_BULK_CACHE_KIB = 131_072  # 128 MiB page cache for a large batch's connection
CHUNK_ROWS = 100_000  # rows screened per engine call (each call re-reads the history window)


# --- validation --------------------------------------------------------------------------------
def _epoch(value) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        seconds = value
    elif (text := str(value).strip()).lstrip("-").isdigit():
        seconds = int(text)
    else:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        seconds = parsed.timestamp()
    if not MIN_TS <= seconds <= MAX_TS:  # a datetime cannot hold it: storing the row would fail
        raise ValueError
    return int(seconds)


def rows_validate(rows, *, sibling_batch: str = "") -> TxTable:
    """A TxTable from JSON rows, or BatchRejected listing every bad row (0-based row numbers)."""
    if not isinstance(rows, list) or not rows:
        raise BatchRejected([{"row": 0, "field": "transactions", "message": "a non-empty list is required"}])
    if len(rows) > MAX_BATCH_ROWS:
        raise BatchRejected(
            [{"row": 0, "field": "transactions", "message": f"at most {MAX_BATCH_ROWS} rows per batch"}]
        )
    errors, clean, seen = [], [], {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append({"row": i, "field": "row", "message": "each row must be an object"})
            continue
        out = {}
        ref = str(row.get("tx_ref") or "").strip()
        if not ref or len(ref) > 64:
            errors.append({"row": i, "field": "tx_ref", "message": "required, at most 64 characters"})
        elif ref in seen:
            errors.append({"row": i, "field": "tx_ref", "message": f"duplicate of row {seen[ref]}"})
        else:
            seen[ref] = i
        out["tx_ref"] = ref
        try:
            out["ts"] = _epoch(row.get("ts"))
        except (TypeError, ValueError, OverflowError):
            errors.append(
                {
                    "row": i,
                    "field": "ts",
                    "message": "ISO 8601 date-time (2024-05-01T10:00:00Z) or epoch seconds, years 1 to 9999",
                }
            )
        for name in ("src_account", "dst_account"):
            value = str(row.get(name) or "").strip()
            if not value or len(value) > 64:
                errors.append({"row": i, "field": name, "message": "required, at most 64 characters"})
            out[name] = value
        for name in ("amount_paid", "amount_received"):
            value = row.get(name, row.get("amount_paid") if name == "amount_received" else None)
            try:
                if isinstance(value, bool):
                    raise ValueError
                number = float(value)
                if not np.isfinite(number) or number < 0:
                    raise ValueError
                out[name] = number
            except (TypeError, ValueError):
                errors.append({"row": i, "field": name, "message": "a non-negative number is required"})
        currency = str(row.get("currency_paid") or "").strip()
        if not currency or len(currency) > 32:
            errors.append({"row": i, "field": "currency_paid", "message": "required (e.g. USD), at most 32"})
        out["currency_paid"] = currency
        out["currency_received"] = str(row.get("currency_received") or currency).strip()[:32]
        for name, limit in (("src_bank", 64), ("dst_bank", 64), ("payment_format", 32)):
            value = str(row.get(name) or "").strip()
            if len(value) > limit:
                errors.append({"row": i, "field": name, "message": f"at most {limit} characters"})
            out[name] = value
        for name in ("src_country", "dst_country"):
            value = str(row.get(name) or "").strip().upper()
            if value and (len(value) != 2 or not value.isalpha()):
                errors.append(
                    {"row": i, "field": name, "message": "ISO 3166 alpha-2 code (e.g. DE) or empty"}
                )
            out[name] = value
        for name in ("src_name", "dst_name"):
            value = row.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_CHARS):
                errors.append(
                    {
                        "row": i,
                        "field": name,
                        "message": f"the party's name as text, at most {MAX_NAME_CHARS}",
                    }
                )
        label = row.get("label", -1)
        if label not in (None, -1, 0, 1):
            errors.append({"row": i, "field": "label", "message": "0, 1 or absent"})
        out["label"] = -1 if label is None else label
        clean.append(out)
    if not errors:
        stored = Transaction.objects.filter(tx_ref__in=list(seen))
        if sibling_batch:  # a partition of a batch: rows its sibling partitions stored are expected
            stored = stored.exclude(batch=sibling_batch)
        existing = set(stored.values_list("tx_ref", flat=True)[:1000])
        errors = [
            {"row": seen[ref], "field": "tx_ref", "message": "already imported (transactions are immutable)"}
            for ref in sorted(existing, key=seen.get)
        ]
    if errors:
        raise BatchRejected(errors)
    return TxTable.from_rows(clean)


def rows_parties(rows: list[dict]) -> dict[str, dict]:
    """{tx_ref: {"src": originator name, "dst": beneficiary name}} of validated rows that name one."""
    out = {}
    for row in rows:
        src, dst = (" ".join(str(row.get(k) or "").split()) for k in ("src_name", "dst_name"))
        if src or dst:
            out[str(row["tx_ref"]).strip()] = {"src": src, "dst": dst}
    return out


# --- history -------------------------------------------------------------------------------------
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


def _chunk_history(stored: TxTable, table: TxTable, start: int, stop: int, lookback: int) -> TxTable | None:
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


# --- what screens --------------------------------------------------------------------------------
@dataclass
class ScreeningSetup:
    """Everything a screening decision depends on besides the transactions (see the trail)."""

    versions: list[ScenarioVersion]
    specs: list[ScenarioSpec]
    config: EngineConfig
    model: RiskModel | None
    names: NameIndex | None
    whitelist: dict
    lookback: int
    has_customers: bool = True  # any account with a KYC customer (read per call, not cached)


_MODEL_CACHE: dict[str, RiskModel] = {}


def active_model() -> RiskModel | None:
    """The active risk model (ModelVersion.active), loaded once per process and version."""
    row = (
        ModelVersion.objects.filter(active=True).order_by("-created_at").values_list("version", "pk").first()
    )
    if row is None:
        return None
    return model_of_version(row[0])


def model_of_version(version: str) -> RiskModel | None:
    """The stored model of ``version`` (a content hash: the loaded booster is checked against it)."""
    model = _MODEL_CACHE.get(version)
    if model is None:
        blob = ModelVersion.objects.filter(version=version).values_list("blob", flat=True).first()
        if blob is None:
            return None
        model = RiskModel.from_bytes(blob)
        if model.version != version:
            raise FinanceRefused(f"Stored model {version} hashes to {model.version}: the blob was altered.")
        _MODEL_CACHE.clear()
        _MODEL_CACHE[version] = model
    return model


def _build_setup(now: dt.datetime) -> ScreeningSetup:
    versions = active_versions_or_seed()
    specs = [ScenarioSpec(v.code, v.version, dict(v.params)) for v in versions]
    config = EngineConfig(
        rule_weights={
            v.code: float(v.params.get("weight", DEFAULT_WEIGHTS.get(v.code, 0.5))) for v in versions
        },
        alert_threshold=REVIEW_THRESHOLD,
        hold_threshold=HOLD_THRESHOLD,
        name_threshold=NAME_THRESHOLD,
        name_hold_score=NAME_HOLD_SCORE,
    )
    names = screening_index()
    return ScreeningSetup(
        versions=versions,
        specs=specs,
        config=config,
        model=active_model(),
        names=names,
        whitelist=whitelist_in_force(now) if names is not None else {},
        lookback=history_window_s(versions) + HISTORY_SLACK_S,
    )


def _config_query() -> str:
    """One statement that reads what a screening configuration consists of: the active scenario
    versions with their parameters as stored, the active lists (id, content hash), the active
    models (id, content hash), the whitelist entries in force; and whether any account has a KYC
    customer (data, not configuration: read here to save its own query)."""
    from finance.models import MatchWhitelist, SanctionsListVersion

    q = connection.ops.quote_name
    scenario, lists = q(ScenarioVersion._meta.db_table), q(SanctionsListVersion._meta.db_table)
    model, whitelist = q(ModelVersion._meta.db_table), q(MatchWhitelist._meta.db_table)
    account = q(Account._meta.db_table)
    # identifiers only from the models' own table names; every value is a parameter
    return (
        f"SELECT 's', id, code, CAST(params AS TEXT) FROM {scenario} WHERE active = %s"  # noqa: S608
        f" UNION ALL SELECT 'l', id, sha256, name FROM {lists} WHERE active = %s"
        f" UNION ALL SELECT 'm', id, version, '' FROM {model} WHERE active = %s"
        f" UNION ALL SELECT 'w', id, party_hash, entry_id || ' ' || CAST(expires_at AS TEXT)"
        f" FROM {whitelist} WHERE expires_at > %s"
        f" UNION ALL SELECT 'c', COUNT(*), '', '' FROM (SELECT 1 FROM {account}"
        f" WHERE customer_id IS NOT NULL LIMIT 1) AS k"
    )


def _config_key(now: dt.datetime) -> tuple[tuple, bool]:
    """(the configuration's rows, sorted: the cache key; whether any account has a customer)."""
    with connection.cursor() as cursor:
        cursor.execute(_config_query(), [True, True, True, connection.ops.adapt_datetimefield_value(now)])
        rows = cursor.fetchall()
    customers = any(r[0] == "c" and r[1] for r in rows)
    return tuple(sorted(tuple(str(v) for v in r) for r in rows if r[0] != "c")), customers


_SETUP_CACHE: dict[tuple, ScreeningSetup] = {}
_SETUP_LOCK = threading.Lock()


def screening_setup() -> ScreeningSetup:
    """The screening configuration, cached per process and checked on every call.

    The cache key is the configuration itself as the database holds it now, read in one statement
    (``_config_query``): a version activated, approved or retired, a list imported, a model
    activated, a whitelist entry added or expired, by this process or any other, by the services
    or by hand in SQL, changes the key, and the next call rebuilds. A rebuild re-reads the key
    after it and caches only when nothing changed meanwhile (another writer committing between
    the two reads gets a setup used once, not cached)."""
    now = timezone.now()
    key, customers = _config_key(now)
    if not any(row[0] == "s" for row in key):  # nothing active: seed the library (a fresh install)
        active_versions_or_seed()
        key, customers = _config_key(now)
        if not any(row[0] == "s" for row in key):  # every version retired: nothing to cache
            return replace(_build_setup(now), has_customers=customers)
    database = (connection.vendor, str(connection.settings_dict.get("NAME")), connection.alias)
    cached = _SETUP_CACHE.get((database, key))
    if cached is None:
        built = _build_setup(now)
        again, _ = _config_key(now)
        if again != key:
            return replace(built, has_customers=customers)
        with _SETUP_LOCK:
            _SETUP_CACHE.clear()
            _SETUP_CACHE[(database, key)] = cached = built
    return replace(cached, has_customers=customers)


def _with_customer_names(
    table: TxTable, parties: dict[str, dict], *, customers: bool = True
) -> dict[str, dict]:
    """``parties`` completed with the KYC name of each side's customer where the row names none
    (unsealed here for screening only, once per account). ``customers`` False: no account has a
    customer (read with the configuration), nothing to look up."""
    if not customers:  # no KYC customers on file (a feed of payments alone)
        return parties
    with_customer = Account.objects.filter(customer__isnull=False)
    pairs = set(zip(table.src_bank.tolist(), table.src_account.tolist(), strict=True))
    pairs |= set(zip(table.dst_bank.tolist(), table.dst_account.tolist(), strict=True))
    numbers = sorted({n for _, n in pairs})
    known: dict[tuple[str, str], str] = {}
    # a large batch: one pass over the accounts that have a customer (compiling IN lists of
    # thousands of numbers cost more than the scan)
    parts = [numbers[start : start + 4000] for start in range(0, len(numbers), 4000)]
    queries = (
        [with_customer.filter(number__in=part) for part in parts] if len(parts) <= 2 else [with_customer]
    )
    for query in queries:
        for bank, number, sealed in query.values_list("bank", "number", "customer__name_sealed"):
            if (bank, number) in pairs and sealed:
                known[(bank, number)] = open_text(sealed, NAME_CONTEXT)
    if not known:
        return parties
    merged = dict(parties)
    for ref, sb, sa, db, da in zip(
        table.tx_ref.tolist(),
        table.src_bank.tolist(),
        table.src_account.tolist(),
        table.dst_bank.tolist(),
        table.dst_account.tolist(),
        strict=True,
    ):
        src, dst = known.get((sb, sa), ""), known.get((db, da), "")
        if src or dst:
            given = parties.get(ref, {})
            merged[ref] = {"src": given.get("src") or src, "dst": given.get("dst") or dst}
    return merged


# --- evidence ------------------------------------------------------------------------------------
def open_matches(evidence: dict) -> dict:
    """The engine's form of an alert's evidence (match names and tokens unsealed) for replay."""
    opened = json.loads(json.dumps(evidence))
    for m in opened["names"]["matches"]:
        secret = json.loads(open_text(base64.b64decode(m.pop("sealed")), MATCH_CONTEXT))
        m.update(secret)
    opened["names"].pop("whitelisted", None)
    return opened


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
            _chunk_history(self.stored, self.table, start, stop, setup.lookback),
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
        completed = _with_customer_names(table, parties, customers=setup.has_customers)
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
    key, customers = _config_key(timezone.now())
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
    return _with_customer_names(table, given(span, plan.given), customers=True) == given(span, plan.parties)


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
