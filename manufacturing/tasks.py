"""Celery tasks of the manufacturing app: they receive ids, load, and call one service."""

from __future__ import annotations

from celery import shared_task

from manufacturing.services.recordings import recording_analyse


@shared_task(name="manufacturing.analyse_recording", ignore_result=False)
def analyse_recording(recording_id: int) -> str:
    """Analyse one vibration recording (zone, spectra, fault call); returns its status."""
    return recording_analyse(recording_id=recording_id)


@shared_task(name="manufacturing.register_scan", ignore_result=False)
def register_scan(comparison_id: int) -> str:
    """Register one uploaded 3-D scan onto its reference (ICP, deviations); returns its status."""
    from manufacturing.services.scans import scan_register

    return scan_register(comparison_id=comparison_id)


@shared_task(name="manufacturing.train_failure_classifier", ignore_result=False)
def train_failure_classifier() -> int:
    """Fit the assistant's failure-mode classifier on the base file and the reviewed suggestions and
    store it as the next version; returns the version number."""
    from manufacturing.services.failure_classifier import failure_classifier_train

    return failure_classifier_train(actor="task:manufacturing.train_failure_classifier").version


@shared_task(name="manufacturing.renew_rul", ignore_result=False)
def renew_rul(machine_id: int, units: list[int] | None = None) -> int:
    """Renew a machine's remaining-life predictions after new condition data; returns how many were
    stored (0 when they were current already or the family has no model)."""
    from manufacturing.models import Machine
    from manufacturing.services.prognostics import rul_renew

    machine = Machine.objects.filter(pk=machine_id).first()
    if machine is None:  # deleted since: nothing to renew
        return 0
    return len(rul_renew(machine=machine, actor="task:manufacturing.renew_rul", units=units))


@shared_task(name="manufacturing.file_due_maintenance", ignore_result=False)
def file_due_maintenance() -> int:
    """File the preventive work orders of the plans that are due (celery beat, hourly); returns how
    many were filed."""
    from manufacturing.services.maintenance_plans import plans_file_due

    return len(plans_file_due())
