"""Validation of transaction rows as the API and file imports send them: a screening table, or a
``BatchRejected`` naming every bad row and field (nothing is written for a rejected batch)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from finance.models import Transaction
from finance.screening.formats import MAX_TS, MIN_TS
from finance.screening.table import TxTable
from finance.services.errors import BatchRejected

MAX_BATCH_ROWS = 50_000
MAX_NAME_CHARS = 200


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
