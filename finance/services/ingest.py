"""Ingestion and screening: a batch (API, file import) or one transaction in real time.

Every batch is all-or-nothing: rows are validated first (a per-row error report, nothing written),
then stored, screened and alerted in one database transaction per batch. Each alert's trail event
holds everything needed to recompute it (finance.services.replay): the scenario versions and
parameters, the exact input rows the scenarios saw, the hits, the risk and the thresholds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.db import transaction
from django.db.models import Q

from access.enforcement import check
from access.resources import Resource
from audit.services import record
from finance.models import Alert, ScenarioVersion, Transaction
from finance.screening.engine import EngineConfig, combine
from finance.screening.scenarios import run_scenarios
from finance.screening.table import STR_COLS, TxTable
from finance.services.errors import BatchRejected, FinanceRefused
from finance.services.scenarios import DEFAULT_WEIGHTS, active_versions_or_seed

REVIEW_THRESHOLD = 0.3  # risk at or above: alert, decision "review"
HOLD_THRESHOLD = 0.8  # risk at or above: alert, decision "hold" (stop the payment pending review)
HISTORY_SLACK_S = 86400
ENGINE = "finance.services.ingest/1"
INPUT_COLUMNS = [*STR_COLS, "ts", "amount_paid", "amount_received", "label"]
MAX_BATCH_ROWS = 50_000
CHUNK_ROWS = 2_000


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
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp())


def rows_validate(rows) -> TxTable:
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
        except (TypeError, ValueError):
            errors.append(
                {
                    "row": i,
                    "field": "ts",
                    "message": "ISO 8601 date-time (2024-05-01T10:00:00Z) or epoch seconds",
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
        label = row.get("label", -1)
        if label not in (None, -1, 0, 1):
            errors.append({"row": i, "field": "label", "message": "0, 1 or absent"})
        out["label"] = -1 if label is None else label
        clean.append(out)
    if not errors:
        existing = set(
            Transaction.objects.filter(tx_ref__in=list(seen)).values_list("tx_ref", flat=True)[:1000]
        )
        errors = [
            {"row": seen[ref], "field": "tx_ref", "message": "already imported (transactions are immutable)"}
            for ref in sorted(existing, key=seen.get)
        ]
    if errors:
        raise BatchRejected(errors)
    return TxTable.from_rows(clean)


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


def _history(table: TxTable, lookback: int) -> TxTable:
    accounts = sorted(set(table.src_account.tolist()) | set(table.dst_account.tolist()))
    since = dt.datetime.fromtimestamp(int(table.ts.min()) - lookback, tz=dt.UTC)
    until = dt.datetime.fromtimestamp(int(table.ts.max()), tz=dt.UTC)
    found = []
    for start in range(0, len(accounts), 4000):
        part = accounts[start : start + 4000]
        queryset = Transaction.objects.filter(ts__gte=since, ts__lte=until).filter(
            Q(src_account__in=part) | Q(dst_account__in=part)
        )
        found.append(load_table(queryset)[0])
    if len(found) == 1:
        return found[0]
    merged = TxTable.concat(found)
    _, first = np.unique(merged.tx_ref, return_index=True)
    return merged.take(np.sort(first)).sort_by_time()


# --- screening -----------------------------------------------------------------------------------
def _row(table: TxTable, i: int) -> list:
    return [
        *(str(getattr(table, c)[i]) for c in STR_COLS),
        int(table.ts[i]),
        float(table.amount_paid[i]),
        float(table.amount_received[i]),
        int(table.label[i]),
    ]


def table_from_inputs(inputs: dict) -> TxTable:
    columns, rows = inputs["columns"], inputs["rows"]
    if not rows:
        return TxTable.empty()
    data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    return TxTable(**data)


def risk_decision(hits: list[dict], thresholds: dict) -> tuple[float, str]:
    """The screening engine's risk formula over the rule hits, and the decision at `thresholds`."""
    weights = [float(hit["params"].get("weight", DEFAULT_WEIGHTS.get(hit["code"], 0.5))) for hit in hits]
    config = EngineConfig(alert_threshold=thresholds["review"], hold_threshold=thresholds["hold"])
    risk, decision = combine(None, weights, [], config)
    return round(risk, 6), decision


def screen_table(table: TxTable, mask: np.ndarray, versions: list[dict]) -> dict[int, list[dict]]:
    """Scenario hits per screened row: {row: [{code, version, params, evidence}]} (pure; used by replay)."""
    by_code = {v["code"]: v for v in versions}
    hits = run_scenarios(
        table,
        screen_mask=mask,
        params_by_code={code: v["params"] for code, v in by_code.items()},
        codes=sorted(by_code),
    )
    out: dict[int, list[dict]] = {}
    for hit in hits:
        version = by_code[hit.code]
        out.setdefault(hit.row, []).append(
            {
                "code": hit.code,
                "version": version["version"],
                "params": version["params"],
                "evidence": hit.evidence,
            }
        )
    for row_hits in out.values():
        row_hits.sort(key=lambda h: h["code"])
    return out


def _inputs_for(table: TxTable, row: int) -> tuple[dict, int]:
    """The rows the scenarios could have looked at for `row`: every row touching its two accounts up
    to its timestamp, in table order (every scenario reads only those)."""
    accounts = [table.src_account[row], table.dst_account[row]]
    touching = np.isin(table.src_account, accounts) | np.isin(table.dst_account, accounts)
    keep = np.flatnonzero(touching & (table.ts <= table.ts[row]))
    return (
        {"columns": INPUT_COLUMNS, "rows": [_row(table, int(i)) for i in keep]},
        int(np.flatnonzero(keep == row)[0]),
    )


def _version_dicts(versions: list[ScenarioVersion]) -> list[dict]:
    return [{"id": v.pk, "code": v.code, "version": v.version, "params": v.params} for v in versions]


def _rows_digest(table: TxTable) -> str:
    digest = hashlib.sha256()
    for i in range(len(table)):
        digest.update(json.dumps(_row(table, i), separators=(",", ":")).encode())
    return digest.hexdigest()


def _authorize_screen(actor, team: str) -> None:
    if isinstance(actor, str):
        return  # system actors (management commands run by an operator, the demo) are trusted

    check(actor, "screen", Resource("transaction", "new", {"department": team}))


def transactions_ingest(
    *,
    actor,
    table: TxTable,
    team: str,
    batch: str = "",
    source: str = "api",
    realtime: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Store, screen and alert a validated batch, all or nothing. Returns per-row decisions."""
    from finance.services.cases import alerts_group_into_cases

    team = (team or "").strip()
    if not team:
        raise FinanceRefused("A team is required: transactions belong to an AML team.")
    if len(table) == 0:
        raise BatchRejected([{"row": 0, "field": "transactions", "message": "no rows"}])
    _authorize_screen(actor, team)
    batch = batch or uuid.uuid4().hex[:12]
    table = table.sort_by_time()
    result = IngestResult(batch=batch)
    thresholds = {"review": REVIEW_THRESHOLD, "hold": HOLD_THRESHOLD}
    with transaction.atomic():
        versions = active_versions_or_seed()
        version_dicts = _version_dicts(versions)
        version_ids = {v.code: v.pk for v in versions}
        lookback = history_window_s(versions) + HISTORY_SLACK_S
        for start in range(0, len(table), CHUNK_ROWS):
            chunk = table.take(np.arange(start, min(start + CHUNK_ROWS, len(table))))
            history = _history(chunk, lookback)
            full = TxTable.concat([history, chunk]).sort_by_time() if len(history) else chunk
            mask = np.isin(full.tx_ref, chunk.tx_ref)
            hits = screen_table(full, mask, version_dicts)
            created = Transaction.objects.bulk_create(
                [
                    Transaction(
                        tx_ref=str(chunk.tx_ref[i]),
                        ts=dt.datetime.fromtimestamp(int(chunk.ts[i]), tz=dt.UTC),
                        src_account=str(chunk.src_account[i]),
                        dst_account=str(chunk.dst_account[i]),
                        src_bank=str(chunk.src_bank[i]),
                        dst_bank=str(chunk.dst_bank[i]),
                        amount_paid=float(chunk.amount_paid[i]),
                        amount_received=float(chunk.amount_received[i]),
                        currency_paid=str(chunk.currency_paid[i]),
                        currency_received=str(chunk.currency_received[i]),
                        payment_format=str(chunk.payment_format[i]),
                        src_country=str(chunk.src_country[i]),
                        dst_country=str(chunk.dst_country[i]),
                        label=None if int(chunk.label[i]) < 0 else int(chunk.label[i]),
                        batch=batch,
                        team=team,
                        decision="approve",
                    )
                    for i in range(len(chunk))
                ],
                batch_size=500,
            )
            if created and created[0].pk is None:  # backends without RETURNING
                ids = dict(Transaction.objects.filter(batch=batch).values_list("tx_ref", "pk"))
                for tx in created:
                    tx.pk = ids[tx.tx_ref]
            by_ref = {tx.tx_ref: tx for tx in created}
            new_alerts, decided = [], []
            for row in sorted(hits):
                row_hits = hits[row]
                risk, decision = risk_decision(row_hits, thresholds)
                tx = by_ref[str(full.tx_ref[row])]
                tx.risk, tx.decision = risk, decision
                decided.append(tx)
                if decision == "approve":
                    continue
                inputs, screened_row = _inputs_for(full, row)
                evidence = {
                    "engine": ENGINE,
                    "transaction": dict(zip(INPUT_COLUMNS, _row(full, row), strict=True)),
                    "transaction_id": tx.pk,
                    "scenario_versions": version_dicts,
                    "inputs": inputs,
                    "screened_row": screened_row,
                    "hits": row_hits,
                    "risk": risk,
                    "thresholds": thresholds,
                    "decision": decision,
                }
                alert = Alert.objects.create(
                    transaction=tx, team=team, risk=risk, decision=decision, evidence=evidence
                )
                event = record(
                    actor=actor,
                    action="alert.raise",
                    resource_type="alert",
                    resource_id=str(alert.pk),
                    outcome="succeeded",
                    payload={"alert": alert.pk, "batch": batch, "team": team, **evidence},
                )
                alert.trail_event = event.sequence
                alert.save(update_fields=["trail_event"])
                alert.scenario_versions.set([version_ids[h["code"]] for h in row_hits])
                new_alerts.append(alert)
            Transaction.objects.bulk_update(decided, ["risk", "decision"], batch_size=500)
            result.cases += alerts_group_into_cases(actor=actor, alerts=new_alerts)
            result.transactions += len(chunk)
            result.alerts += len(new_alerts)
            result.holds += sum(a.decision == "hold" for a in new_alerts)
            if realtime or len(table) <= 1000:
                alert_of = {a.transaction_id: a.pk for a in new_alerts}
                result.decisions += [
                    {
                        "tx_ref": tx.tx_ref,
                        "id": tx.pk,
                        "decision": tx.decision,
                        "risk": tx.risk,
                        "alert": alert_of.get(tx.pk),
                    }
                    for tx in created
                ]
            if progress:
                progress(result.transactions, len(table))
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
                "rows_sha256": _rows_digest(table),
                "alerts": result.alerts,
                "holds": result.holds,
                "scenario_versions": [f"{v['code']}:{v['version']}" for v in version_dicts],
                "thresholds": thresholds,
                "decisions": result.decisions if realtime else [],
            },
        )
    return result


def table_from_file(*, fmt: str, source, batch: str) -> TxTable:
    """Read an AMLworld CSV, an AMLSim folder (or transactions file) or a JSON list of rows into a
    TxTable whose tx_refs carry the batch id (file line numbers repeat across files)."""
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
            return rows_validate(rows)
        else:
            raise FinanceRefused("format must be amlworld, amlsim or json.")
    except FormatError as error:
        raise BatchRejected([{"row": r, "field": f, "message": m} for r, f, m in error.row_errors]) from None
    table.tx_ref = np.char.add(f"{batch}:", table.tx_ref.astype(str))
    return table
