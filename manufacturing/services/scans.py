"""3-D scans: a component's scan registered onto its reference scan (ICP), the deviation of every
point, the points beyond tolerance (manufacturing.analysis.pointcloud).

Two steps, as a vibration recording's: `scan_upload` reads both files in the request (a file that
cannot be used is refused there, with what to change, and nothing is kept), stores them and queues the
registration; `scan_register` runs on a worker (task manufacturing.register_scan): a scan of a million
points against a reference of a million takes tens of seconds, too long to hold a request or a phone's
connection. Each step is trailed in its own transaction; a message lost in a broker outage is sent
again (portal.requeue)."""

from __future__ import annotations

import datetime
import hashlib
import logging
import math
import tempfile
import uuid
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from access.enforcement import check
from audit.services import record
from manufacturing.analysis.pointcloud import FIT_POINTS, deviation_map, icp, read_points, unit_mismatch
from manufacturing.models import Component, Machine, ScanComparison
from manufacturing.services.alerts import scan_wear_alert
from manufacturing.services.recordings import field_time, uploads_in_turn

logger = logging.getLogger(__name__)

UNITS = ("mm", "in", "m")
SUFFIXES = (".ply", ".xyz", ".csv", ".txt", ".stl", ".obj")  # .stl/.obj and a .ply with faces: meshes
REGISTER_TASK = "task:manufacturing.register_scan"


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
    max_bytes = settings.MANUFACTURING_SCAN_MAX_BYTES  # what the worker is sized for (settings)
    if len(data) > max_bytes:
        raise ScanRefused(
            f"the {role} {name!r} is larger than {max_bytes >> 20} MiB: thin it out first, or export it as "
            "a binary .ply (a third of the size of text)"
        )
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
    if len(points) > settings.MANUFACTURING_SCAN_MAX_POINTS:
        raise ScanRefused(
            f"the {role} {name!r} has {len(points):,} points: at most "
            f"{settings.MANUFACTURING_SCAN_MAX_POINTS:,}; thin it out first"
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
def scan_upload(
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
    scanned_at: datetime.datetime | None = None,
    register: bool = True,
) -> ScanComparison:
    """Read and check both files, keep them, and queue their registration on a worker (`register`
    False: the caller runs `scan_register` itself). The actor needs `view` on the asset, as for a
    vibration recording. Returns the pending comparison.

    The same scan, reference, tolerance, unit and component sent again (a phone that lost the answer
    to a long upload) returns the comparison already kept, with `replayed` set: nothing stored, trailed
    or registered again (one whose registration failed may be sent again). A reference already kept
    for this asset (its CAD model, sent with every scan of the part) is not stored a second time.

    `scanned_at` is when the component was scanned (a naive time is the site's; None: now; before 2000
    or in the future refused): a scanner's archive sent months later falls into place in the
    component's wear history, whose rate is per day of the scans' own dates."""
    decision = check(actor, "view", machine)
    if not isinstance(tolerance, int | float) or not math.isfinite(tolerance) or tolerance <= 0:
        raise ScanRefused("the tolerance must be a positive number in the scans' unit, e.g. 0.5")
    if unit not in UNITS:
        raise ScanRefused(f"the unit must be one of {', '.join(UNITS)}")
    if component is not None and component.machine_id != machine.pk:
        raise ScanRefused(f"component {component} is not part of {machine.tag}")
    scanned_at = field_time(scanned_at, verb="scanned", done="the scan was taken", refused=ScanRefused)
    digests = {
        "scan_sha256": hashlib.sha256(scan_data).hexdigest(),
        "reference_sha256": hashlib.sha256(reference_data).hexdigest(),
    }

    def kept_before() -> ScanComparison | None:
        earlier = (
            ScanComparison.objects.filter(
                machine=machine, component=component, tolerance=tolerance, unit=unit, **digests
            )
            .exclude(status=ScanComparison.Status.FAILED)
            .order_by("pk")
            .first()
        )
        if earlier is not None:
            earlier.replayed = True
        return earlier

    earlier = kept_before()  # a resend answers at once, without reading the files again
    if earlier is not None:
        return earlier
    # read here, not only on the worker: a file that cannot be used is refused while the engineer waits
    scan, reference = (
        _points(scan_name, scan_data, "scan"),
        _points(reference_name, reference_data, "reference"),
    )
    mismatch = unit_mismatch(scan, reference)
    if mismatch:
        raise ScanRefused(mismatch)
    uploads_in_turn(machine)  # a second send racing this one waits here, and then finds it
    earlier = kept_before()
    if earlier is not None:
        return earlier
    comparison = ScanComparison(
        machine=machine,
        component=component,
        scan_name=scan_name[:255],
        reference_name=reference_name[:255],
        tolerance=tolerance,
        unit=unit,
        status=ScanComparison.Status.PENDING,
        summary={"points": len(scan), "reference_points": len(reference), "unit": unit},
        uploaded_by=actor,
        scanned_at=scanned_at,
        **digests,
    )
    comparison.replayed = False
    kept = (
        ScanComparison.objects.filter(machine=machine, reference_sha256=digests["reference_sha256"])
        .order_by("-pk")
        .first()
    )
    reused = kept is not None and kept.reference.storage.exists(kept.reference.name)
    if reused:
        comparison.reference.name = kept.reference.name  # the same bytes: stored once
    stored = []
    try:
        for field, name, data in (
            ("scan", scan_name, scan_data),
            ("reference", reference_name, reference_data),
        ):
            if getattr(comparison, field).name:
                continue
            unique = f"{machine.tag}-{uuid.uuid4().hex[:12]}{Path(name).suffix.lower()}"
            stored.append(getattr(comparison, field).field.generate_filename(comparison, unique))
            getattr(comparison, field).save(unique, ContentFile(data), save=False)
        comparison.save()
        record(
            actor=actor,
            action="scan.upload",
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
                "scanned_at": scanned_at.isoformat(),
                "points": len(scan),
                "reference_points": len(reference),
                "scan_sha256": digests["scan_sha256"],
                "reference_sha256": digests["reference_sha256"],
                "reference_kept_before": reused,
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
    if register:

        def enqueue() -> None:
            from manufacturing.tasks import register_scan

            try:
                register_scan.delay(comparison.pk)
            except Exception:  # a broker outage leaves the scan pending (portal.requeue sends it again)
                logger.exception("could not queue the registration of scan %s", comparison.pk)

        transaction.on_commit(enqueue)
    return comparison


def _stored_points(field, name: str, role: str) -> np.ndarray:
    with field.open("rb") as handle:
        return _points(name, handle.read(), role)


def scan_register(*, comparison_id: int, actor=REGISTER_TASK) -> str:
    """Register a stored scan onto its reference and keep the result (the worker's step); returns the
    status. Idempotent: a scan registered already (a message sent again after a slow queue) is left
    as it is."""
    comparison = (
        ScanComparison.objects.select_related("machine", "component").filter(pk=comparison_id).first()
    )
    if comparison is None:  # deleted since (its asset removed): nothing to do
        return "missing"
    if comparison.status != ScanComparison.Status.PENDING:
        return comparison.status
    machine = comparison.machine
    where = {"site": machine.site, "machine": machine.tag, "scan": comparison.scan_name}
    try:
        scan = _stored_points(comparison.scan, comparison.scan_name, "scan")
        reference = _stored_points(comparison.reference, comparison.reference_name, "reference")
        registration = icp(scan, reference, fit_points=FIT_POINTS)
        summary = registration.summary(comparison.tolerance)
        summary.pop("beyond_indices")
        summary["unit"] = comparison.unit
        summary["reference_points"] = len(reference)
        registered = scan @ registration.rotation.T + registration.translation
        shown = deviation_map(registered, reference, registration.deviations, comparison.tolerance)
    except Exception as error:  # kept on the scan and shown to the engineer
        logger.exception("registration of scan %s failed", comparison_id)
        reason = str(error)[:2000] or type(error).__name__
        with transaction.atomic():
            if ScanComparison.objects.filter(pk=comparison_id, status=ScanComparison.Status.PENDING).update(
                status=ScanComparison.Status.FAILED, error=reason
            ):
                record(
                    actor=actor,
                    action="scan.compare",
                    resource_type="scan",
                    resource_id=comparison_id,
                    outcome="failed",
                    payload={**where, "error": reason[:300]},
                )
        return ScanComparison.Status.FAILED
    with transaction.atomic():
        locked = ScanComparison.objects.select_for_update().get(pk=comparison_id)
        if locked.status != ScanComparison.Status.PENDING:  # another run of the same message finished first
            return locked.status
        locked.summary, locked.deviation_map = summary, shown
        locked.status, locked.error = ScanComparison.Status.DONE, ""
        locked.save(update_fields=["summary", "deviation_map", "status", "error"])
        record(
            actor=actor,
            action="scan.compare",
            resource_type="scan",
            resource_id=comparison_id,
            outcome="succeeded",
            payload={
                **where,
                "component": comparison.component.name if comparison.component is not None else "",
                "reference": comparison.reference_name,
                "tolerance": comparison.tolerance,
                "unit": comparison.unit,
                "points": summary["points"],
                "beyond_tolerance": summary["beyond_tolerance"],
                "deviation_max": summary["deviation_max"],
                "rmse": summary["rmse"],
                "rotation_deg": summary.get("rotation_deg"),
            },
        )
        # the component's wear beyond or near its tolerance: an alert, decided in the same transaction
        scan_wear_alert(comparison=locked, actor=actor)
    return ScanComparison.Status.DONE
