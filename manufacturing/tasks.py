"""Celery tasks of the manufacturing app: they receive ids, load, and call one service."""

from __future__ import annotations

from celery import shared_task

from manufacturing.services.recordings import recording_analyse


@shared_task(name="manufacturing.analyse_recording", ignore_result=False)
def analyse_recording(recording_id: int) -> str:
    """Analyse one vibration recording (zone, spectra, fault call); returns its status."""
    return recording_analyse(recording_id=recording_id)


@shared_task(name="manufacturing.train_failure_classifier", ignore_result=False)
def train_failure_classifier() -> int:
    """Fit the assistant's failure-mode classifier on the base file and the reviewed suggestions and
    store it as the next version; returns the version number."""
    from manufacturing.services.failure_classifier import failure_classifier_train

    return failure_classifier_train(actor="task:manufacturing.train_failure_classifier").version
