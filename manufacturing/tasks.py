"""Celery tasks of the manufacturing app: they receive ids, load, and call one service."""

from __future__ import annotations

from celery import shared_task

from manufacturing.services.recordings import recording_analyse


@shared_task(name="manufacturing.analyse_recording", ignore_result=False)
def analyse_recording(recording_id: int) -> str:
    """Analyse one vibration recording (zone, spectra, fault call); returns its status."""
    return recording_analyse(recording_id=recording_id)
