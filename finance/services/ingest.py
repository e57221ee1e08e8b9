"""Ingestion and screening: a batch (API, file import) or one transaction in real time.

Every batch is all-or-nothing: rows are validated first (a per-row error report, nothing written),
then stored, screened and alerted in one database transaction per batch. Every path (batch API,
real-time API, file import, the demo) screens through ``finance.screening.engine.screen`` with
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
import contextlib
import datetime as dt
import hashlib
import json
import multiprocessing
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from access.enforcement import check
from access.resources import Resource
from audit.services import record, record_many
from finance.models import Account, Alert, ModelVersion, ScenarioVersion, Transaction, name_hash
from finance.screening.engine import EngineConfig, ScenarioSpec, in_time_order, screen
from finance.screening.formats import MAX_TS, MIN_TS
from finance.screening.names import NameIndex
from finance.screening.risk_model import RiskModel
from finance.screening.table import STR_COLS, TxTable
from finance.services.bulk import bulk_insert
from finance.services.errors import BatchRejected, FinanceRefused
from finance.services.history import stored_history
from finance.services.parties import NAME_CONTEXT, open_text, parties_store, seal_text
from finance.services.sanctions import WhitelistingIndex, screening_index, whitelist_in_force
from finance.services.scenarios import DEFAULT_WEIGHTS, active_versions_or_seed

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
MATCH_CONTEXT = b"finance.alert.name_match"


def screen_ahead() -> bool:
    """Screen the chunks of a batch of more than one chunk in a second process (forked once the
    batch's history is read) while this one persists the chunks screened before: the two cores of
    a small server both work. Off: every chunk screened here, in turn (``FINANCE_SCREEN_AHEAD``)."""
    return bool(getattr(settings, "FINANCE_SCREEN_AHEAD", True))


DECISION_CODES = ("approve", "review", "hold")


@dataclass
class ScreenedChunk:
    """A chunk's screening as persistence needs it: per row (chunk order) decision and risk, the
    evidence of the rows that alert, and the whitelisted name matches screening dropped. Compact,
    so that a screening process sends it cheaply (arrays, not one object per row)."""

    decision: list[str]
    risk: list[float]
    evidence: dict[int, dict]  # row in the chunk -> evidence (rows with a decision other than approve)
    dropped: dict[str, list[dict]] = field(default_factory=dict)  # party name hash -> whitelisted matches

    @classmethod
    def of(cls, decisions, names) -> ScreenedChunk:
        return cls(
            decision=[d.decision for d in decisions],
            risk=[d.risk for d in decisions],
            evidence={i: d.evidence for i, d in enumerate(decisions) if d.evidence is not None},
            dropped=names.dropped if names is not None else {},
        )

    def packed(self) -> tuple:
        code = {decision: k for k, decision in enumerate(DECISION_CODES)}
        return (
            np.fromiter((code[d] for d in self.decision), np.int8, len(self.decision)),
            np.array(self.risk, dtype=np.float64),
            self.evidence,
            self.dropped,
        )

    @classmethod
    def unpacked(cls, packed: tuple) -> ScreenedChunk:
        codes, risk, evidence, dropped = packed
        return cls(np.array(DECISION_CODES)[codes].tolist(), risk.tolist(), evidence, dropped)


class ScreeningProcessFailed(RuntimeError):
    """The screening process of a batch failed or died: the batch is rolled back."""


class ChunkScreener:
    """Chunks screened in a forked process, in order, each handed over when asked for.

    Forked after the batch's history, configuration and party names are read, so the child holds
    them without copying; screening reads only those, never the database (the child never touches
    the parent's connection, and leaves by ``os._exit``, multiprocessing's own exit for a forked
    child). A failure in the child is raised here with its traceback; a child that died (killed,
    out of memory) is an error too: the caller's transaction then rolls the batch back."""

    def __init__(self, screen_chunk: Callable[[int, int], ScreenedChunk], bounds: list[tuple[int, int]]):
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_screen_chunks, args=(send, screen_chunk, bounds), name="finance-screening", daemon=True
        )
        self._process.start()
        send.close()
        self._left = len(bounds)

    def next(self) -> ScreenedChunk:
        if self._left == 0:
            raise ScreeningProcessFailed("no chunk left to screen")
        try:
            status, payload = self._receive.recv()
        except EOFError:
            self._process.join(timeout=5)
            raise ScreeningProcessFailed(
                f"the screening process ended without a result (exit code {self._process.exitcode})"
            ) from None
        if status != "ok":
            raise ScreeningProcessFailed(f"screening failed in the screening process:\n{payload}")
        self._left -= 1
        return ScreenedChunk.unpacked(payload)

    def close(self) -> None:
        self._receive.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=30)


def _chunk_screener(screen_chunk, bounds: list[tuple[int, int]]) -> ChunkScreener | None:
    """A screening process for chunks 1.. of a batch of several chunks, or None: screening ahead
    is off, the batch is one chunk, or this process cannot fork (a platform without fork, a
    daemonic pool worker): then every chunk is screened here, with the same result."""
    if not screen_ahead() or len(bounds) < 2:
        return None
    try:
        return ChunkScreener(screen_chunk, bounds[1:])
    except (OSError, ValueError, AssertionError):
        return None


def _screen_chunks(send, screen_chunk, bounds) -> None:
    """The screening process: each chunk screened and sent, in order (a send waits while the
    parent is still persisting the chunk before: at most one chunk ahead)."""
    try:
        for start, stop in bounds:
            send.send(("ok", screen_chunk(start, stop).packed()))
    except BaseException:  # everything goes back to the parent, which raises it
        with contextlib.suppress(OSError):  # the parent stopped listening: nothing to tell
            send.send(("error", traceback.format_exc()))
    finally:
        send.close()


@dataclass
class IngestResult:
    batch: str
    transactions: int = 0
    alerts: int = 0
    holds: int = 0
    cases: int = 0
    decisions: list[dict] = field(default_factory=list)  # per row: tx_ref, id, decision, risk, alert


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
def _seal_matches(evidence: dict, parties: dict, dropped: dict) -> dict:
    """Alert evidence without a person's name in clear: each match keeps the list entry (public),
    score, party side and keyed name hash; the party's name, the match reason and the tokens the
    score rests on are sealed by the vault (replay opens them). Whitelisted matches that screening
    dropped are listed with their whitelist decision."""
    sides = {name: side for side, name in parties.items() if name}
    matches = []
    for m in evidence["names"]["matches"]:
        party_name = m["party_name"]
        secret = json.dumps(
            {"party_name": party_name, "reason": m["reason"], "details": m["details"]},
            sort_keys=True,
            separators=(",", ":"),
        )
        matches.append(
            {
                "party": sides.get(party_name, ""),
                "party_hash": name_hash(party_name),
                "entry_id": m["entry_id"],
                "entry_name": m["entry_name"],
                "score": m["score"],
                "sealed": base64.b64encode(seal_text(secret, MATCH_CONTEXT)).decode("ascii"),
            }
        )
    evidence["names"]["matches"] = matches
    evidence["names"]["whitelisted"] = [
        {"party": side, **d}
        for side, name in parties.items()
        if name
        for d in dropped.get(name_hash(name), [])
    ]
    return evidence


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
    result = IngestResult(batch=batch)
    keep_decisions = realtime or len(table) <= 1000
    outermost = not connection.in_atomic_block  # what this call stores commits when it returns
    with transaction.atomic():
        if connection.vendor == "sqlite" and len(table) > BULK_ROWS:
            # the random-key indexes (tx_ref, accounts) of a large batch outgrow the default 2 MB
            # page cache; durability is unchanged (a commit still is one)
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")
        setup = screening_setup()
        version_ids = {v.code: v.pk for v in setup.versions}
        history = stored_history(table, setup.lookback, reuse=outermost)
        stored = history.stored
        if context is not None and len(stored):
            # rows of other partitions already committed are in the context already
            stored = stored.take(~np.isin(stored.tx_ref, context.tx_ref))
        if context is not None and len(context):
            stored = TxTable.concat([stored, context]).sort_by_time() if len(stored) else context
        given = parties
        if setup.names is not None:
            parties = _with_customer_names(table, parties, customers=setup.has_customers)

        def screen_chunk(start: int, stop: int) -> ScreenedChunk:
            """Chunk [start, stop) screened: it reads the batch and the history read above, never
            the database (so a second process can screen it beside the persistence of another)."""
            chunk = table.take(np.arange(start, stop))
            names = None
            if setup.names is not None and parties:
                names = WhitelistingIndex(setup.names, setup.whitelist)
            decisions = screen(
                chunk,
                _chunk_history(stored, table, start, stop, setup.lookback),
                setup.specs,
                names,
                setup.model,
                party_names={
                    ref: [p.get("src") or "", p.get("dst") or ""]
                    for ref in chunk.tx_ref.tolist()
                    if (p := parties.get(ref))
                },
                config=setup.config,
            )
            return ScreenedChunk.of(decisions, names)

        bounds = [(start, min(start + chunk_rows, len(table))) for start in range(0, len(table), chunk_rows)]
        # a batch of several chunks: chunks 1.. are screened in a second process while this one
        # screens chunk 0 and then persists each chunk in turn; same inputs, same decisions, and
        # everything written here, in this one transaction
        screener = _chunk_screener(screen_chunk, bounds)
        trail: list = []  # per chunk: (cases opened, alerts), trailed at the end of the batch
        try:
            # the named parties' counterparty rows (sealed names) are written while the screening
            # process works: persistence needs them, screening does not
            party_ids = parties_store(table=table, parties=given) if given else {}
            for k, (start, stop) in enumerate(bounds):
                screened = screener.next() if screener is not None and k else screen_chunk(start, stop)
                result = _persist_chunk(
                    actor=actor,
                    result=result,
                    chunk=table.take(slice(start, stop)),
                    screened=screened,
                    batch=batch,
                    team=team,
                    parties=parties,
                    party_ids=party_ids,
                    history=history,
                    version_ids=version_ids,
                    keep_decisions=keep_decisions,
                    trail=trail,
                )
                if progress:
                    progress(result.transactions, len(table))
        finally:
            if screener is not None:
                screener.close()
        _trail_alerts(actor=actor, trail=trail, batch=batch, team=team)
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
    if outermost and len(table) >= BULK_ROWS:
        _refresh_statistics(len(table))
    return result


ANALYZE_SHARE = 0.1  # PostgreSQL: re-analyse when a batch adds this share of the table's rows


def _refresh_statistics(rows: int) -> None:
    """PostgreSQL, after a large batch committed: the planner's statistics of the transaction table
    refreshed now (the columns screening filters on), when the batch added at least a tenth of the
    rows the statistics last counted (autovacuum's own default share, without waiting for it).
    Stale statistics after a bulk load made the real-time history read (a few rows of two accounts)
    intersect the whole time index: 17.6 ms instead of 0.12 ms on 200,000 rows (EXPLAIN ANALYZE)."""
    if connection.vendor != "postgresql":
        return
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        found = cursor.fetchone()
        counted = float(found[0]) if found else -1.0
        if counted <= 0 or rows >= ANALYZE_SHARE * counted:
            q = connection.ops.quote_name
            columns = ", ".join(q(c) for c in ("ts", "src_account", "dst_account", "tx_ref", "team"))
            cursor.execute(f"ANALYZE {q(table)} ({columns})")


def _persist_chunk(
    *,
    actor,
    result: IngestResult,
    chunk: TxTable,
    screened: ScreenedChunk,
    batch: str,
    team: str,
    parties: dict,
    party_ids: dict,
    history,
    version_ids: dict,
    keep_decisions: bool,
    trail: list,
) -> IngestResult:
    """A screened chunk stored: its transactions with their decisions, its alerts (cases opened,
    scenario versions linked); ``result`` updated and returned. The opened cases and the alerts
    are appended to ``trail``, for ``_trail_alerts`` at the end of the batch."""
    from finance.services.cases import alerts_group_into_cases

    ids, rows = _store_transactions(chunk, screened, batch=batch, team=team, party_ids=party_ids)
    history.stored_rows(chunk, ids)
    alerts = []
    for i in sorted(screened.evidence):
        tx = _transaction_of(ids[i], rows[i], int(chunk.ts[i]))
        evidence = _seal_matches(screened.evidence[i], parties.get(tx.tx_ref, {}), screened.dropped)
        alerts.append(
            Alert(
                transaction=tx,
                team=team,
                risk=screened.risk[i],
                decision=screened.decision[i],
                evidence=evidence,
            )
        )
    opened = alerts_group_into_cases(actor=actor, alerts=alerts)
    _insert_alerts(alerts)
    trail.append((opened, alerts))
    bulk_insert(
        Alert.scenario_versions.through,
        ("alert_id", "scenarioversion_id"),
        [
            (alert.pk, version_ids[rule["code"]])
            for alert in alerts
            for rule in alert.evidence["rules"]
            if rule["code"] in version_ids
        ],
    )
    result.cases += len(opened)
    result.transactions += len(chunk)
    result.alerts += len(alerts)
    result.holds += sum(a.decision == "hold" for a in alerts)
    if keep_decisions:
        alert_of = {a.transaction_id: a for a in alerts}
        for pk, ref, decision, risk in zip(
            ids, chunk.tx_ref.tolist(), screened.decision, screened.risk, strict=True
        ):
            alert = alert_of.get(pk)
            result.decisions.append(
                {
                    "tx_ref": ref,
                    "id": pk,
                    "decision": decision,
                    "risk": risk,
                    "alert": alert.pk if alert else None,
                    "hits": [r["code"] for r in alert.evidence["rules"]] if alert else [],
                    "name_matches": [m["entry_id"] for m in alert.evidence["names"]["matches"]]
                    if alert
                    else [],
                }
            )
    return result


def _trail_alerts(*, actor, trail: list, batch: str, team: str) -> None:
    """The trail events of a batch's decisions, chunk by chunk: the cases it opened, each with the
    alert that opened it, and one ``alert.raise`` per alert with its evidence (one chained run
    each). Written at the end of the batch's transaction, so the trail's head row (locked by the
    first append until the commit) is not held while the batch is screened and stored: real-time
    screening, whose own event needs that lock, does not wait for a whole import."""
    from finance.services.cases import cases_opened_record

    for opened, alerts in trail:
        cases_opened_record(actor=actor, opened=opened)
        events = record_many(
            actor=actor,
            action="alert.raise",
            resource_type="alert",
            outcome="succeeded",
            events=[
                (
                    alert.pk,
                    {
                        "alert": alert.pk,
                        "transaction": alert.transaction_id,
                        "batch": batch,
                        "team": team,
                        "evidence": alert.evidence,
                    },
                )
                for alert in alerts
            ],
        )
        _link_trail_events(alerts, events)


def _link_trail_events(alerts: list[Alert], events: list) -> None:
    """alert.trail_event = its event's sequence: one UPDATE when both run without gaps (the usual
    case: one writer inserted both in this transaction), else a bulk update."""
    if not alerts:
        return
    for alert, event in zip(alerts, events, strict=True):
        alert.trail_event = event.sequence
    first, last = alerts[0], alerts[-1]
    contiguous = last.pk - first.pk == len(alerts) - 1 and all(
        alert.trail_event - alert.pk == first.trail_event - first.pk for alert in alerts
    )
    if contiguous:
        Alert.objects.filter(pk__gte=first.pk, pk__lte=last.pk).update(
            trail_event=F("id") + (first.trail_event - first.pk)
        )
    else:
        Alert.objects.bulk_update(alerts, ["trail_event"], batch_size=500)


TX_COLUMNS = (
    "tx_ref",
    "ts",
    "src_account",
    "dst_account",
    "src_bank",
    "dst_bank",
    "amount_paid",
    "amount_received",
    "currency_paid",
    "currency_received",
    "payment_format",
    "src_country",
    "dst_country",
    "label",
    "batch",
    "team",
    "decision",
    "risk",
    "originator_id",
    "beneficiary_id",
)


def _insert_alerts(alerts: list[Alert]) -> None:
    """Insert new alerts (ids set on the objects), as bulk_insert does transactions."""
    if not alerts:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    adapt_json = connection.ops.adapt_json_value
    ids = bulk_insert(
        Alert,
        ("transaction_id", "case_id", "team", "risk", "decision", "status", "evidence", "created_at"),
        [
            (
                a.transaction_id,
                a.case_id,
                a.team,
                a.risk,
                a.decision,
                a.status,
                adapt_json(a.evidence, None),
                now,
            )
            for a in alerts
        ],
    )
    for alert, pk in zip(alerts, ids, strict=True):
        alert.pk = pk
        alert._state.adding = False


def _store_transactions(
    chunk: TxTable, screened: ScreenedChunk, *, batch: str, team: str, party_ids: dict
) -> tuple[list[int], list[tuple]]:
    """Insert the chunk's transactions with their decisions; returns their ids and stored rows."""
    refs = chunk.tx_ref.tolist()
    n = len(refs)
    no_party = (None, None)
    parties = [party_ids.get(ref, no_party) for ref in refs] if party_ids else [no_party] * n
    # column lists zipped in C: a per-row tuple built in Python cost as much as the insert
    rows = list(
        zip(
            refs,
            _stamps(chunk.ts),
            chunk.src_account.tolist(),
            chunk.dst_account.tolist(),
            chunk.src_bank.tolist(),
            chunk.dst_bank.tolist(),
            chunk.amount_paid.tolist(),
            chunk.amount_received.tolist(),
            chunk.currency_paid.tolist(),
            chunk.currency_received.tolist(),
            chunk.payment_format.tolist(),
            chunk.src_country.tolist(),
            chunk.dst_country.tolist(),
            [None if label < 0 else label for label in chunk.label.tolist()],
            [batch] * n,
            [team] * n,
            screened.decision,
            screened.risk,
            [p[0] for p in parties],
            [p[1] for p in parties],
            strict=True,
        )
    )
    return bulk_insert(Transaction, TX_COLUMNS, rows), rows


def _stamps(ts: np.ndarray) -> list:
    """Epoch seconds as the database adapter stores datetimes. SQLite: the text Django writes for
    an aware datetime (UTC, naive, "YYYY-MM-DD HH:MM:SS"; whole seconds), built by numpy; the
    text must be byte-identical, since SQLite compares datetimes as text."""
    if connection.vendor == "sqlite":
        text = np.datetime_as_string(ts.astype("datetime64[s]"), unit="s")
        return np.char.replace(text, "T", " ").tolist()
    adapt = connection.ops.adapt_datetimefield_value
    return [adapt(dt.datetime.fromtimestamp(t, tz=dt.UTC)) for t in ts.tolist()]


def _transaction_of(pk: int, row: tuple, ts: int) -> Transaction:
    """A stored transaction as a model instance (built for the alerted rows only: instances cost)."""
    tx = Transaction(**dict(zip(TX_COLUMNS, row, strict=True)))
    tx.ts = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    tx.pk = pk
    tx._state.adding = False
    return tx


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
