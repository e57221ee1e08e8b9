"""3-D scans: a component's scan registered onto its reference scan (ICP), the deviation of every
point, the points beyond tolerance (manufacturing.analysis.pointcloud), stored with both files and
trailed in one transaction."""

from __future__ import annotations

import math
import tempfile
import uuid
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction

from access.enforcement import check
from audit.services import record
from manufacturing.analysis.pointcloud import deviation_map, icp, read_points, unit_mismatch
from manufacturing.models import Component, Machine, ScanComparison

MAX_BYTES = 50 << 20
MAX_POINTS = 500_000
FIT_POINTS = 20_000  # the transform is fitted on this many scan points; every point is measured
UNITS = ("mm", "in", "m")
SUFFIXES = (".ply", ".xyz", ".csv", ".txt", ".stl", ".obj")  # .stl/.obj and a .ply with faces: meshes


class ScanRefused(Exception):
    """The scans or the tolerance cannot be used; the message says what to change. Nothing is stored."""


def _points(name: str, data: bytes, role: str) -> np.ndarray:
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise ScanRefused(
            f"the {role} {name!r} must be a .ply or .xyz point cloud (x, y, z per point) or an .stl or .obj mesh"
        )
    if not data:
        raise ScanRefused(f"the {role} {name!r} is empty")
    if len(data) > MAX_BYTES:
        raise ScanRefused(f"the {role} {name!r} is larger than {MAX_BYTES >> 20} MiB: thin it out first")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{role}{suffix}"
        path.write_bytes(data)
        try:
            points = read_points(path)
        except ValueError as error:
            reason = str(error).replace(str(path), "it").removeprefix(f"{path.name}: ")  # our file's name
            raise ScanRefused(f"the {role} {name!r} cannot be read: {reason}") from None
    if len(points) < 10:
        raise ScanRefused(f"the {role} {name!r} has {len(points)} points: at least 10 are needed")
    if len(points) > MAX_POINTS:
        raise ScanRefused(
            f"the {role} {name!r} has {len(points):,} points: at most {MAX_POINTS:,}; thin it out first"
        )
    return points


def scan_component(machine: Machine, value) -> Component | None:
    """The component of `machine` chosen on the form or in the API (its id; empty: the asset as a
    whole); ScanRefused for one that is not the asset's."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    component = machine.components.filter(pk=int(text)).first() if text.isdigit() else None
    if component is None:
        raise ScanRefused(f"{machine.tag} has no component {text[:20]!r}: choose one of its components")
    return component


@transaction.atomic
def scan_compare(
    *,
    actor,
    machine: Machine,
    scan_name: str,
    scan_data: bytes,
    reference_name: str,
    reference_data: bytes,
    tolerance: float,
    unit: str = "mm",
    component=None,
) -> ScanComparison:
    """Register the scan onto the reference and keep both with the result (the actor needs `view` on
    the asset, as for a vibration recording)."""
    decision = check(actor, "view", machine)
    if not isinstance(tolerance, int | float) or not math.isfinite(tolerance) or tolerance <= 0:
        raise ScanRefused("the tolerance must be a positive number in the scans' unit, e.g. 0.5")
    if unit not in UNITS:
        raise ScanRefused(f"the unit must be one of {', '.join(UNITS)}")
    if component is not None and component.machine_id != machine.pk:
        raise ScanRefused(f"component {component} is not part of {machine.tag}")
    scan, reference = (
        _points(scan_name, scan_data, "scan"),
        _points(reference_name, reference_data, "reference"),
    )
    mismatch = unit_mismatch(scan, reference)
    if mismatch:
        raise ScanRefused(mismatch)
    registration = icp(scan, reference, fit_points=FIT_POINTS)
    summary = registration.summary(tolerance)
    summary.pop("beyond_indices")
    summary["unit"] = unit
    registered = scan @ registration.rotation.T + registration.translation
    comparison = ScanComparison(
        machine=machine,
        component=component,
        scan_name=scan_name[:255],
        reference_name=reference_name[:255],
        tolerance=tolerance,
        unit=unit,
        summary=summary,
        deviation_map=deviation_map(registered, reference, registration.deviations, tolerance),
        uploaded_by=actor,
    )
    stored = []
    try:
        for field, name, data in (
            ("scan", scan_name, scan_data),
            ("reference", reference_name, reference_data),
        ):
            unique = f"{machine.tag}-{uuid.uuid4().hex[:12]}{Path(name).suffix.lower()}"
            stored.append(getattr(comparison, field).field.generate_filename(comparison, unique))
            getattr(comparison, field).save(unique, ContentFile(data), save=False)
        comparison.save()
        record(
            actor=actor,
            action="scan.compare",
            resource_type="scan",
            resource_id=comparison.pk,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={
                "site": machine.site,
                "machine": machine.tag,
                "component": component.name if component is not None else "",
                "scan": scan_name[:255],
                "reference": reference_name[:255],
                "tolerance": tolerance,
                "unit": unit,
                "points": summary["points"],
                "beyond_tolerance": summary["beyond_tolerance"],
                "deviation_max": summary["deviation_max"],
                "rmse": summary["rmse"],
            },
        )
    except OSError as exc:
        for name in stored:
            comparison.scan.storage.delete(name)
        raise ScanRefused(f"the scans could not be stored ({exc.strerror or exc}); nothing was kept") from exc
    except BaseException:
        for name in stored:
            comparison.scan.storage.delete(name)
        raise
    return comparison
