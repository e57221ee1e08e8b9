"""Trail exports for regulators and other third parties: JSON Lines or CSV, with the hashes.

Each row carries the hashed fields, `prev_hash` and `hash`. Rows are grouped by chain and in
sequence order. To re-verify an export without any of this code, for each chain:

1. Take the rows in order. The first row's `prev_hash` is 64 zeros when the export starts at the
   beginning of the chain; otherwise it is the hash of the event just before the export (match
   it against a signed checkpoint or an earlier export).
2. For each row build the object

       {"action", "actor_kind", "actor_label", "chain", "outcome", "payload", "policy",
        "resource_id", "resource_type", "sequence", "timestamp"}

   with `sequence` as an integer, `payload` as the JSON object (in CSV it is a JSON text: parse
   it), every other value a string, and `timestamp` exactly as exported (ISO-8601 UTC with
   microseconds, e.g. "2026-11-03T10:15:30.123456Z"). When the row's `hash_version` is 2 or more,
   add `"hash_version"` (an integer) and `"actor_user_ref"` (an integer, or null; empty in CSV).
3. Serialise it canonically: keys sorted, separators "," and ":" with no whitespace, non-ASCII
   characters written as themselves (not \\u escapes), encoded as UTF-8. In Python:
   `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`.
4. Check `hash == sha256(prev_hash.encode("ascii") + canonical).hexdigest()`, that `prev_hash`
   equals the previous row's `hash`, and that `sequence` grows by exactly one.

A row that fails step 4 was altered after it was recorded; a missing sequence number means an
event was removed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from django.utils import dateparse, timezone

from audit.canonical import HASHED_FIELDS, format_timestamp
from audit.models import Event

EXPORT_FORMATS = ("jsonl", "csv")
EXPORT_FIELDS = (
    *HASHED_FIELDS,
    "hash_version",
    "actor_user_ref",
    "prev_hash",
    "hash",
)  # everything a third party needs to re-verify
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def export_row(event: Event) -> dict:
    return {
        "chain": event.chain,
        "sequence": event.sequence,
        "timestamp": format_timestamp(event.timestamp),
        "actor_kind": event.actor_kind,
        "actor_label": event.actor_label,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "policy": event.policy,
        "payload": event.payload,
        "hash_version": event.hash_version,
        "actor_user_ref": event.actor_user_ref,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def iter_jsonl(events: Iterable[Event]) -> Iterator[str]:
    for event in events:
        yield json.dumps(export_row(event), ensure_ascii=False, separators=(",", ":")) + "\n"


def iter_csv(events: Iterable[Event]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writeheader()
    yield flush()
    for event in events:
        row = export_row(event)
        row["payload"] = event.payload_json  # already canonical JSON text
        writer.writerow(row)
        yield flush()


def iter_export(events: Iterable[Event], export_format: str) -> Iterator[str]:
    if export_format == "jsonl":
        return iter_jsonl(events)
    if export_format == "csv":
        return iter_csv(events)
    raise ValueError(f"Unknown export format {export_format!r}: use one of {', '.join(EXPORT_FORMATS)}.")


def stream(queryset) -> Iterator[Event]:
    """Events from a queryset without loading them all into memory."""
    return queryset.iterator(chunk_size=2000)


def parse_moment(text: str) -> dt.datetime:
    """An ISO-8601 date ("2026-11-03") or time ("2026-11-03T10:00", optional offset); UTC when none is given."""
    value = text.strip()
    try:
        moment = dateparse.parse_datetime(value)
        if moment is None and (day := dateparse.parse_date(value)) is not None:
            moment = dt.datetime.combine(day, dt.time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(
            f"{text!r} is not an ISO-8601 date or time, e.g. 2026-11-03 or 2026-11-03T10:00:00Z."
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def export_response(events, export_format: str) -> StreamingHttpResponse:
    """A download of `events` (a queryset in chain order), streamed so big exports use little memory."""
    response = StreamingHttpResponse(
        iter_export(stream(events), export_format),
        content_type=f"{CONTENT_TYPES[export_format]}; charset=utf-8",
    )
    filename = f"trail-{timezone.now():%Y%m%dT%H%M%SZ}.{export_format}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
