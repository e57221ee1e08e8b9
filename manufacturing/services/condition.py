"""Condition data: a C-MAPSS file (unit, cycle, 3 operating settings, 21 sensors per row) becomes an
asset's ConditionRecords, all or nothing, trailed; new readings are appended the same way
(`condition_append`, the API's), and each write renews the asset's remaining-life prediction on a worker
when its family has a model."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from access.enforcement import check
from audit.services import record
from manufacturing.analysis.prognostics import read_cmapss
from manufacturing.models import ConditionRecord, Machine
from manufacturing.services.prognostics import latest_rul_model

logger = logging.getLogger(__name__)

SETTINGS, SENSORS = 3, 21  # a C-MAPSS row: unit, cycle, 3 operating settings, 21 sensors
MAX_APPEND_ROWS = 10_000
MAX_REPORTED = 50


class ConditionRefused(Exception):
    """Condition data that cannot be stored; the message names the row (maps to 400 / CommandError).
    `rows`: the per-row report [{"row": 1-based index, "error": ...}] where there is one."""

    def __init__(self, message: str, rows: list[dict] | None = None):
        super().__init__(message)
        self.rows = rows or []


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


def _finite(value) -> bool:
    """A JSON number that is a real value (not true/false, not a string, not infinite)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _whole(value, name: str) -> int:
    if not _finite(value):
        raise ValueError(f"{name} must be a whole number (got {value!r})")
    if value != int(value) or value < 1:
        raise ValueError(f"{name} must be a whole number from 1 (got {value!r})")
    return int(value)


def _numbers(values, count: int, name: str) -> list[float]:
    if not isinstance(values, list | tuple) or len(values) != count:
        got = f"{len(values)} values" if isinstance(values, list | tuple) else repr(values)[:40]
        raise ValueError(f"{name} must be a list of {count} numbers (got {got})")
    for position, value in enumerate(values, 1):
        if not _finite(value):
            raise ValueError(f"{name} value {position} must be a finite number (got {value!r})")
    return [float(value) for value in values]


def _reading(raw) -> tuple[int, int, list[float], list[float]]:
    """(unit, cycle, settings, sensors) of one reading: an object {unit, cycle, settings, sensors} or a
    list of the 26 numbers of a C-MAPSS row. ValueError says what is wrong."""
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"unit", "cycle", "settings", "sensors"})
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(map(str, unknown))}: give unit, cycle, settings, sensors"
            )
        missing = [key for key in ("unit", "cycle", "settings", "sensors") if key not in raw]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        unit, cycle, settings, sensors = raw["unit"], raw["cycle"], raw["settings"], raw["sensors"]
    elif isinstance(raw, list | tuple):
        if len(raw) != 2 + SETTINGS + SENSORS:
            raise ValueError(
                f"{len(raw)} values; a C-MAPSS row has {2 + SETTINGS + SENSORS}: unit, cycle, "
                f"{SETTINGS} settings, {SENSORS} sensors"
            )
        unit, cycle, settings, sensors = (
            raw[0],
            raw[1],
            list(raw[2 : 2 + SETTINGS]),
            list(raw[2 + SETTINGS :]),
        )
    else:
        raise ValueError(
            f"a reading is an object {{unit, cycle, settings, sensors}} or a list of {2 + SETTINGS + SENSORS} "
            "numbers"
        )
    return (
        _whole(unit, "unit"),
        _whole(cycle, "cycle"),
        _numbers(settings, SETTINGS, "settings"),
        _numbers(sensors, SENSORS, "sensors"),
    )


def rul_model_exists(machine: Machine) -> bool:
    """Whether new readings of `machine` renew a prediction (its family has a RUL model)."""
    return latest_rul_model(machine) is not None


@transaction.atomic
def condition_append(*, actor, machine: Machine, rows, source: str = "api", renew: bool = True) -> dict:
    """Append new readings (cycles after the unit's last stored one) to `machine`'s condition data, all
    or nothing: any bad row refuses the batch with a per-row report. Trailed; once committed, the
    machine's remaining-life prediction is renewed on a worker when its family has a model (`renew`
    False: the caller renews it itself, e.g. the demo, which runs without a worker). The same batch
    sent again, every reading already stored with the same values, is answered as before with
    `replayed` True: nothing stored, trailed or renewed again."""
    # a person (or their API token) is checked by the policy; system actors (commands, demo) are trusted
    policy = "" if isinstance(actor, str) else check(actor, "view", machine).policy or ""
    if not isinstance(rows, list | tuple) or not rows:
        raise ConditionRefused("give the readings as a non-empty list under 'rows'")
    if len(rows) > MAX_APPEND_ROWS:
        raise ConditionRefused(f"{len(rows)} readings in one request; send at most {MAX_APPEND_ROWS:,}")
    parsed, errors = [], []
    for index, raw in enumerate(rows, 1):
        try:
            parsed.append((index, *_reading(raw)))
        except ValueError as error:
            errors.append({"row": index, "error": str(error)})
    last = dict(
        ConditionRecord.objects.filter(machine=machine, unit__in={row[1] for row in parsed})
        .values("unit")
        .annotate(last=Max("cycle"))
        .values_list("unit", "last")
    )
    stored_last = dict(last)
    for index, unit, cycle, _, _ in parsed:
        if cycle <= last.get(unit, 0):
            known = stored_last.get(unit, 0)
            errors.append(
                {
                    "row": index,
                    "error": f"unit {unit} cycle {cycle} is not after its last "
                    + (f"stored cycle {known}" if cycle <= known else f"cycle in this request ({last[unit]})")
                    + ": readings are appended in cycle order",
                }
            )
        else:
            last[unit] = cycle
    if errors and len(errors) == len(parsed) == len(rows) and _stored_already(machine, parsed):
        # The same batch sent again (its answer was lost): already stored, trailed and renewed once.
        return {
            "rows": len(parsed),
            "units": {str(unit): stored_last[unit] for unit in sorted({row[1] for row in parsed})},
            "prediction": "already renewed when these readings were first stored",
            "replayed": True,
        }
    if errors:
        errors.sort(key=lambda error: error["row"])
        raise ConditionRefused(
            f"nothing stored: {len(errors)} of {len(rows)} readings refused (first: row {errors[0]['row']}: "
            f"{errors[0]['error']})",
            rows=errors[:MAX_REPORTED],
        )
    ConditionRecord.objects.bulk_create(
        [
            ConditionRecord(
                machine=machine, unit=unit, cycle=cycle, settings=settings, sensors=sensors, source=source
            )
            for _, unit, cycle, settings, sensors in parsed
        ],
        batch_size=1000,
    )
    units = sorted({row[1] for row in parsed})
    renew = renew and rul_model_exists(machine)
    record(
        actor=actor,
        action="condition.append",
        resource_type="asset",
        resource_id=machine.pk,
        outcome="succeeded",
        policy=policy,
        payload={"site": machine.site, "rows": len(parsed), "units": units, "renew_prediction": renew},
    )
    if renew:
        _renew_after_commit(machine, units)
    return {
        "rows": len(parsed),
        "units": {str(unit): last[unit] for unit in units},
        "prediction": "queued" if renew else _not_renewed(machine),
    }


def _stored_already(machine: Machine, parsed: list) -> bool:
    """Whether every reading of the batch is stored for `machine` with the same values."""
    stored = {
        (unit, cycle): (settings, sensors)
        for unit, cycle, settings, sensors in ConditionRecord.objects.filter(
            machine=machine,
            unit__in={row[1] for row in parsed},
            cycle__gte=min(row[2] for row in parsed),
            cycle__lte=max(row[2] for row in parsed),
        ).values_list("unit", "cycle", "settings", "sensors")
    }
    return all(
        stored.get((unit, cycle)) == (settings, sensors) for _, unit, cycle, settings, sensors in parsed
    )


def _not_renewed(machine: Machine) -> str:
    if not machine.family:
        return "not renewed: the asset has no family, so no remaining-life model applies"
    return (
        f"not renewed: no remaining-life model for family {machine.family!r} yet "
        f"(train_prognostics --family {machine.family})"
    )


def _renew_after_commit(machine: Machine, units: list[int]) -> None:
    def enqueue() -> None:
        from manufacturing.tasks import renew_rul

        try:
            renew_rul.delay(machine.pk, units)
        except Exception:  # a broker outage keeps the readings; the next reading or training renews it
            logger.exception("could not queue the RUL renewal of machine %s", machine.pk)

    transaction.on_commit(enqueue)
