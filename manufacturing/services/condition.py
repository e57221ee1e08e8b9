"""Condition data: a C-MAPSS file (unit, cycle, 3 operating settings, 21 sensors per row) becomes an
asset's ConditionRecords, all or nothing, trailed."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from audit.services import record
from manufacturing.analysis.prognostics import read_cmapss
from manufacturing.models import ConditionRecord, Machine


class ConditionRefused(Exception):
    """A condition file that cannot be imported; the message names the row (maps to 400 / CommandError)."""


def _parse(path: Path, units: set[int] | None) -> list[tuple[int, int, list[float], list[float]]]:
    try:
        data = read_cmapss(path)
    except ValueError as error:
        raise ConditionRefused(str(error)) from None
    rows = []
    for unit, cycle, *values in data.tolist():
        if units is None or int(unit) in units:
            rows.append((int(unit), int(cycle), values[:3], values[3:]))
    return rows


@transaction.atomic
def condition_import(
    *, machine: Machine, path: Path, units: set[int] | None = None, actor="command:import_condition_data"
) -> int:
    """Replace `machine`'s condition data for the imported units with the rows of `path`; returns rows written."""

    rows = _parse(path, units)
    if not rows:
        raise ConditionRefused(f"{Path(path).name}: no rows for units {sorted(units) if units else 'any'}")
    imported_units = {unit for unit, *_ in rows}
    ConditionRecord.objects.filter(machine=machine, unit__in=imported_units).delete()
    ConditionRecord.objects.bulk_create(
        [
            ConditionRecord(
                machine=machine,
                unit=unit,
                cycle=cycle,
                settings=settings,
                sensors=sensors,
                source=Path(path).name,
            )
            for unit, cycle, settings, sensors in rows
        ],
        batch_size=1000,
    )
    record(
        actor=actor,
        action="condition.import",
        resource_type="asset",
        resource_id=machine.pk,
        outcome="succeeded",
        payload={
            "site": machine.site,
            "source": Path(path).name,
            "rows": len(rows),
            "units": len(imported_units),
        },
    )
    return len(rows)
