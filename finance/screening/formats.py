"""Readers for public AML data formats (AMLworld/IBM CSV, AMLSim nodes+transactions)."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path

from .table import TxTable

AMLWORLD_HEADER = [
    "Timestamp",
    "From Bank",
    "Account",
    "To Bank",
    "Account",
    "Amount Received",
    "Receiving Currency",
    "Amount Paid",
    "Payment Currency",
    "Payment Format",
]


class FormatError(ValueError):
    """Whole-file rejection; ``row_errors`` is a list of (row_number, field, message)."""

    def __init__(self, row_errors):
        self.row_errors = list(row_errors)
        head = "; ".join(f"row {r} {f}: {m}" for r, f, m in self.row_errors[:5])
        more = f" (+{len(self.row_errors) - 5} more)" if len(self.row_errors) > 5 else ""
        super().__init__(f"{len(self.row_errors)} bad row(s): {head}{more}")


def _not_utf8(error: UnicodeDecodeError) -> FormatError:
    return FormatError([(1, "file", f"not UTF-8 text (byte {error.start}); save the file as UTF-8 CSV")])


def _open_text(path_or_file):
    if hasattr(path_or_file, "read"):
        data = path_or_file.read()
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8-sig")
            except UnicodeDecodeError as error:
                raise _not_utf8(error) from None
        return io.StringIO(data)
    return open(path_or_file, newline="", encoding="utf-8-sig")


# Timestamps a datetime can hold (years 1 to 9999): beyond them storing the row would fail.
MIN_TS, MAX_TS = -62135596800, 253402300799


def _in_range_ts(value: float) -> int:
    if not MIN_TS <= value <= MAX_TS:  # also false for NaN
        raise ValueError(f"timestamp {value!r} is outside the years 1 to 9999")
    return int(value)


def _amount(text) -> float:
    """A finite, non-negative amount, else ValueError."""
    value = float(text)
    if not 0 <= value < float("inf"):  # NaN, negative and infinite amounts
        raise ValueError
    return value


# Column widths of finance.models.Transaction: a longer value is a row error (PostgreSQL would refuse
# the whole insert).
FIELD_LIMITS = {
    "src_bank": 64,
    "src_account": 64,
    "dst_bank": 64,
    "dst_account": 64,
    "currency_received": 32,
    "currency_paid": 32,
    "payment_format": 32,
}


def _check_widths(i: int, row: dict, errors: list) -> None:
    for key, limit in FIELD_LIMITS.items():
        if len(row.get(key) or "") > limit:
            errors.append((i, key, f"at most {limit} characters"))


def _parse_ts(s: str) -> int:
    s = s.strip()
    for fmt in ("%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return int(datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            continue
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"unparseable timestamp {s!r} (expected YYYY/MM/DD HH:MM)") from None
    return _in_range_ts(value)


def read_amlworld(path_or_file) -> TxTable:
    """Read an AMLworld (IBM synthetic) CSV; accounts by column position; label optional.

    Raises FormatError listing every bad row (nothing is returned for a partly bad file).
    """
    f = _open_text(path_or_file)
    try:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise FormatError([(1, "header", "empty file")])
        header = [h.strip() for h in header]
        if header[:10] != AMLWORLD_HEADER:
            raise FormatError([(1, "header", f"expected {','.join(AMLWORLD_HEADER)}[,Is Laundering]")])
        has_label = len(header) > 10
        rows, errors = [], []
        for i, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) < 10:
                errors.append((i, "row", f"expected >= 10 fields, got {len(rec)}"))
                continue
            r = {"tx_ref": f"r{i}"}
            try:
                r["ts"] = _parse_ts(rec[0])
            except ValueError as e:
                errors.append((i, "Timestamp", str(e)))
            r["src_bank"], r["src_account"] = rec[1].strip(), rec[2].strip()
            r["dst_bank"], r["dst_account"] = rec[3].strip(), rec[4].strip()
            if not r["src_account"]:
                errors.append((i, "Account", "empty source account"))
            if not r["dst_account"]:
                errors.append((i, "Account", "empty destination account"))
            for key, col, name in (
                ("amount_received", 5, "Amount Received"),
                ("amount_paid", 7, "Amount Paid"),
            ):
                try:
                    r[key] = _amount(rec[col])
                except ValueError:
                    errors.append((i, name, f"not a non-negative number: {rec[col]!r}"))
            r["currency_received"], r["currency_paid"] = rec[6].strip(), rec[8].strip()
            r["payment_format"] = rec[9].strip()
            if has_label and len(rec) > 10 and rec[10].strip() != "":
                if rec[10].strip() not in ("0", "1"):
                    errors.append((i, "Is Laundering", f"expected 0 or 1, got {rec[10]!r}"))
                else:
                    r["label"] = int(rec[10])
            _check_widths(i, r, errors)
            rows.append(r)
        if errors:
            raise FormatError(errors)
        return TxTable.from_rows(rows)
    except UnicodeDecodeError as error:
        raise _not_utf8(error) from None
    except csv.Error as error:
        raise FormatError([(0, "file", f"not a readable CSV file: {error}")]) from None
    finally:
        f.close()


def read_amlsim(folder_or_files) -> TxTable:
    """Read AMLSim-style ``transactions.csv`` (sourceNodeId,targetNodeId,value,time) and optional
    ``nodes.csv`` (nodeid,isFraud,init_balance,fraudStep).

    ``folder_or_files``: a folder holding both, or a (transactions, nodes-or-None) pair.
    Label: 1 when both ends are fraud nodes (and time >= the later fraudStep when given), 0 otherwise;
    -1 without nodes. ``time`` is a step; ts = step * 86400. Currency USD, format 'wire'.
    """
    if isinstance(folder_or_files, (str, os.PathLike)) and Path(folder_or_files).is_dir():
        d = Path(folder_or_files)
        tx_path, nodes_path = d / "transactions.csv", d / "nodes.csv"
        if not nodes_path.exists():
            nodes_path = None
    else:
        tx_path, nodes_path = folder_or_files
    fraud = {}
    errors = []
    if nodes_path is not None:
        f = _open_text(nodes_path)
        try:
            for i, rec in enumerate(csv.DictReader(f), start=2):
                try:
                    fraud[rec["nodeid"].strip()] = (
                        int(rec["isFraud"]),
                        int(float(rec.get("fraudStep") or -1)),
                    )
                except (KeyError, ValueError, AttributeError, OverflowError):
                    errors.append((i, "nodes", f"bad node row {rec!r}"))
        except UnicodeDecodeError as error:
            raise _not_utf8(error) from None
        except csv.Error as error:
            raise FormatError([(0, "file", f"not a readable CSV file: {error}")]) from None
        finally:
            f.close()
    rows = []
    f = _open_text(tx_path)
    try:
        reader = csv.DictReader(f)
        need = {"sourceNodeId", "targetNodeId", "value", "time"}
        if not need <= set(reader.fieldnames or []):
            raise FormatError([(1, "header", f"expected columns {sorted(need)}")])
        for i, rec in enumerate(reader, start=2):
            r = {"tx_ref": f"t{i}", "currency_paid": "USD", "payment_format": "wire"}
            if None in rec.values():
                errors.append((i, "row", f"expected {len(reader.fieldnames)} fields, got fewer"))
                continue
            r["src_account"], r["dst_account"] = rec["sourceNodeId"].strip(), rec["targetNodeId"].strip()
            try:
                r["amount_paid"] = _amount(rec["value"])
            except (ValueError, TypeError):
                errors.append((i, "value", f"not a non-negative number: {rec['value']!r}"))
            try:
                time = float(rec["time"])
                _in_range_ts(time * 86400)
                step = int(time)
                r["ts"] = step * 86400
            except (ValueError, TypeError):
                errors.append((i, "time", f"not a number: {rec['time']!r}"))
                step = 0
            if fraud:
                a, b = fraud.get(r["src_account"], (0, -1)), fraud.get(r["dst_account"], (0, -1))
                r["label"] = int(a[0] == 1 and b[0] == 1 and step >= max(a[1], b[1]))
            _check_widths(i, r, errors)
            rows.append(r)
    except UnicodeDecodeError as error:
        raise _not_utf8(error) from None
    except csv.Error as error:
        raise FormatError([(0, "file", f"not a readable CSV file: {error}")]) from None
    finally:
        f.close()
    if errors:
        raise FormatError(errors)
    return TxTable.from_rows(rows).sort_by_time()
