"""The tuning app's settings, each read with a default so the app runs without any of them set.

TUNING_OUTPUT_ROOT          where job outputs (checkpoints, the LoRA adapter) go; MODEL_ROOT/adapters
TUNING_DATA_ROOT            where sealed dataset snapshots go; VAR_DIR/tuning
TUNING_QUEUE                Celery queue of training jobs; the long-work queue (SUITE_LONG_QUEUE)
TUNING_HEARTBEAT_SECONDS    how often a running job proves its worker is alive (10)
TUNING_HEARTBEAT_STALE_SECONDS  silence after which the reaper treats the worker as dead (120)
TUNING_MAX_ATTEMPTS         executions of one job before a lost worker fails it for good (3)
TUNING_PROGRESS_SECONDS     least interval between progress writes to the database (2)
TUNING_QUEUED_RESEND_SECONDS  a job queued this long gets its message sent again (900)
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings


def output_root() -> Path:
    return Path(getattr(settings, "TUNING_OUTPUT_ROOT", None) or Path(settings.MODEL_ROOT) / "adapters")


def data_root() -> Path:
    return Path(getattr(settings, "TUNING_DATA_ROOT", None) or Path(settings.VAR_DIR) / "tuning")


def queue() -> str:
    return (
        getattr(settings, "TUNING_QUEUE", None)
        or getattr(settings, "SUITE_LONG_QUEUE", None)
        or settings.CELERY_TASK_DEFAULT_QUEUE
    )


def heartbeat_seconds() -> float:
    return float(getattr(settings, "TUNING_HEARTBEAT_SECONDS", 10))


def stale_after() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "TUNING_HEARTBEAT_STALE_SECONDS", 120)))


def max_attempts() -> int:
    return int(getattr(settings, "TUNING_MAX_ATTEMPTS", 3))


def progress_seconds() -> float:
    return float(getattr(settings, "TUNING_PROGRESS_SECONDS", 2))


def queued_resend_after() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "TUNING_QUEUED_RESEND_SECONDS", 900)))
