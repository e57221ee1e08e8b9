"""Extra foreground processes `run_suite` (and so `make run`) starts beside the web server and
the worker, registered by apps in AppConfig.ready(): e.g. the medical app's DICOM node.

An extra process is auxiliary: if it cannot start or stops, `run_suite` says so and the web
server and worker keep running (they are what the rest of the suite needs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuiteProcess:
    name: str
    command: tuple[str, ...]  # manage.py arguments, e.g. ("run_dicom_scp", "--port", "11112")


_PROCESSES: dict[str, SuiteProcess] = {}


def register(process: SuiteProcess) -> None:
    _PROCESSES[process.name] = process


def registered() -> list[SuiteProcess]:
    return [_PROCESSES[name] for name in sorted(_PROCESSES)]
