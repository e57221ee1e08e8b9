"""A real DataAdapter for the tuning tests, plugged in exactly as an industry app plugs in its own.

It turns IBM AssetOpsBench maintenance work orders (Apache-2.0, ../shared/data/work_orders/) into
question/answer examples: a work order's description -> its ISO-14224-style failure codes. Its
task metric is the share of held-out work orders whose generated answer names the right code.
It is not part of the suite: the tuning app must work with any DataAdapter it is given.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inference.datasets import TaskMetric, TrainingExample

WORK_ORDERS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "work_orders"
FILTER_KEYS = ("equipment", "limit")
CODE = re.compile(r"\b[A-Z]{1,2}\d{3}[a-z]?\b")


def failure_code_accuracy(answer, examples: list[TrainingExample]) -> float:
    """Share of examples whose answer contains the expected secondary failure code."""
    hits = 0
    for example in examples:
        expected = CODE.findall(example.completion)[-1]
        hits += expected in answer([{"role": "user", "content": example.prompt}])
    return hits / len(examples)


class WorkOrderDataAdapter:
    name = "tests.work_orders"
    description = "Work order description -> failure codes (AssetOpsBench sample work orders)."
    resource = "model:maintenance_work_orders"
    filter_help = "equipment (an equipment name), limit (at most this many work orders)"
    task_metric = TaskMetric("failure_code_accuracy", failure_code_accuracy)

    def examples(self, *, user, filters: dict[str, Any]) -> Iterable[TrainingExample]:
        seen = set()
        for row in self._rows(filters):
            key = (row["wo_description"], row["secondary_code"])
            if key in seen:
                continue
            seen.add(key)
            yield TrainingExample(
                source_id=f"work_order:{row['wo_id']}",
                prompt=f"Work order: {row['wo_description']}. Which failure code applies?",
                completion=(
                    f"{row['primary_code']} {row['primary_code_description']}, "
                    f"{row['secondary_code']} {row['secondary_code_description']}."
                ),
            )
            if len(seen) >= int(filters.get("limit", 10_000)):
                return

    def describe_query(self, *, user, filters: dict[str, Any]) -> str:
        scope = ", ".join(f"{key}={filters[key]!r}" for key in FILTER_KEYS if key in filters) or "all"
        return f"Distinct work orders visible to {user.get_username()} ({scope})."

    def _rows(self, filters: dict[str, Any]):
        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            raise ValueError(f"Unknown filters {sorted(unknown)}; use {', '.join(FILTER_KEYS)}.")
        with open(
            WORK_ORDERS / "all_wo_with_code_component_events.csv", encoding="utf-8-sig", newline=""
        ) as handle:
            for row in csv.DictReader(handle):
                if filters.get("equipment") in (None, row["equipment_name"]):
                    yield row
