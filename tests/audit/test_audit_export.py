"""Exports re-verify with a few lines of independent code, as a regulator would write them."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from audit.models import Event
from audit.services import record

pytestmark = pytest.mark.django_db
ZEROS = "0" * 64


def independent_verify(rows: list[dict]) -> int:
    """A regulator's re-implementation: sha256(prev_hash || canonical JSON), rows linked in order."""
    previous = rows[0]["prev_hash"]
    for index, row in enumerate(rows):
        document = {
            key: row[key]
            for key in (
                "chain",
                "sequence",
                "timestamp",
                "actor_kind",
                "actor_label",
                "action",
                "resource_type",
                "resource_id",
                "outcome",
                "policy",
                "payload",
            )
        }
        if int(row["hash_version"]) >= 2:
            document["hash_version"] = int(row["hash_version"])
            document["actor_user_ref"] = (
                int(row["actor_user_ref"]) if row["actor_user_ref"] not in (None, "") else None
            )
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert row["prev_hash"] == previous, f"row {index} does not follow the row before"
        assert row["hash"] == hashlib.sha256(previous.encode() + canonical).hexdigest(), (
            f"row {index} altered"
        )
        assert index == 0 or row["sequence"] == rows[index - 1]["sequence"] + 1
        previous = row["hash"]
    return len(rows)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["sequence"] = int(row["sequence"])
        row["payload"] = json.loads(row["payload"])
    return rows


@pytest.fixture
def varied_events(chain_of):
    events = chain_of(3)
    events.append(
        record(
            actor="task:tests",
            action="aml.alert",
            resource_type="transaction",
            resource_id="tx-1",
            outcome="denied",
            payload={
                "amount": Decimal("9999.99"),
                "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "name": "Jürgen «Ω»",
                "nested": {"b": [1, 2.5, None, True], "a": ""},
            },
        )
    )
    return events


@pytest.mark.parametrize(("export_format", "reader"), [("jsonl", read_jsonl), ("csv", read_csv)])
def test_export_re_verifies_independently(varied_events, tmp_path, export_format, reader):
    output = tmp_path / f"trail.{export_format}"
    call_command("export_trail", "--format", export_format, "--output", str(output))
    rows = reader(output)
    assert rows[0]["prev_hash"] == ZEROS
    assert independent_verify(rows) == len(rows) == 5  # + the export's own event, recorded first
    assert rows[3]["payload"]["name"] == "Jürgen «Ω»"
    assert rows[-1]["action"] == "trail.export"
    assert rows[-1]["actor_label"] == "cli:export_trail"


def test_independent_verifier_catches_an_altered_export(varied_events, tmp_path):
    output = tmp_path / "trail.jsonl"
    call_command("export_trail", "--output", str(output))
    rows = read_jsonl(output)
    rows[2]["outcome"] = "allowed" if rows[2]["outcome"] != "allowed" else "denied"
    with pytest.raises(AssertionError, match="row 2 altered"):
        independent_verify(rows)


def test_time_range_export_starts_from_the_previous_hash(varied_events, tmp_path):
    since, until = varied_events[1].timestamp, varied_events[3].timestamp  # events 2 and 3
    output = tmp_path / "slice.jsonl"
    call_command(
        "export_trail", "--since", since.isoformat(), "--until", until.isoformat(), "--output", str(output)
    )
    rows = read_jsonl(output)
    assert [row["sequence"] for row in rows] == [2, 3]
    assert rows[0]["prev_hash"] == varied_events[0].hash
    assert independent_verify(rows) == 2


def test_export_to_standard_output_and_bad_dates(varied_events, capsys):
    call_command("export_trail", "--format", "jsonl", "--chain", "suite")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["sequence"] for row in rows] == list(
        range(1, Event.objects.filter(chain="suite").count() + 1)
    )
    assert independent_verify(rows) == 5
    with pytest.raises(CommandError, match="not an ISO-8601 date"):
        call_command("export_trail", "--since", "last tuesday")
