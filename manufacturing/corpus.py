"""Real maintenance text for the demo models' corpus: ISO-14224-style failure codes, failure modes,
component explanations and work orders (IBM AssetOpsBench sample data, Apache-2.0)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

MAX_WORK_ORDERS = 1500


def data_dir() -> Path:
    return Path(settings.SHARED_DATA_DIR) / "work_orders"


def _rows(name: str) -> Iterator[dict]:
    path = data_dir() / name
    if not path.exists():
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def documents() -> Iterator[str]:
    for row in _rows("failure_codes.csv"):
        yield (
            f"Failure code {row['secondary_code']} ({row['secondary_code_description']}) belongs to primary code "
            f"{row['primary_code']} {row['primary_code_description']}, category {row['category']}."
        )
    for row in _rows("failure_mode.csv"):
        factors = row.get("Influencing Factors") or "not recorded"
        yield (
            f"{row['Equipment']} failure mode {row['Failure Mode']}: degradation mechanism "
            f"{row['Degradation Mechanism'].lower()}; influencing factors {factors.lower()}."
        )
    for row in _rows("component.csv"):
        yield f"The {row['component']} of a {row['equipment']} {row['explanation']}"
    for index, row in enumerate(_rows("all_wo_with_code_component_events.csv")):
        if index >= MAX_WORK_ORDERS:
            break
        kind = "preventive" if row["preventive"].upper() == "TRUE" else "corrective"
        yield (
            f"Work order {row['wo_id']} on {row['equipment_name']} ({row['equipment_id']}): {row['wo_description']}. "
            f"{kind.capitalize()} maintenance, priority {row['work_priority']}, failure code {row['secondary_code']} "
            f"{row['secondary_code_description']}, finished {row['actual_finish']}, duration {row['duration']}."
        )


def conversations() -> Iterator[list[dict]]:
    for index, row in enumerate(_rows("all_wo_with_code_component_events.csv")):
        if index >= MAX_WORK_ORDERS // 3:
            break
        record = (
            f"Work order: {row['wo_id']}\nEquipment: {row['equipment_name']}\nDescription: {row['wo_description']}\n"
            f"Failure code: {row['secondary_code']} {row['secondary_code_description']}\nPriority: {row['work_priority']}"
        )
        yield [
            {"role": "system", "content": "Answer from the record below."},
            {
                "role": "user",
                "content": f"{record}\nQuestion: Which failure code does work order {row['wo_id']} carry?",
            },
            {
                "role": "assistant",
                "content": f"The failure code is {row['secondary_code']} ({row['secondary_code_description']}).",
            },
        ]
