"""`make run`'s last step: `manage.py run_suite` serves the web app and runs a worker together in the
foreground, and Ctrl-C (SIGINT to the terminal's process group) stops every process cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid

import pytest

from suite.tasks import ping
from tests.support import MANAGE, ROOT, subprocess_env, wait_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_suite_serves_works_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    # Its own queue, so the scheduler's periodic tasks never reach another test's worker.
    queue = f"run-suite-{uuid.uuid4().hex[:8]}"
    log = open(tmp_path / "suite.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, MANAGE, "run_suite", "--bind", f"127.0.0.1:{port}"],
        env=subprocess_env(CELERY_QUEUE=queue, SUITE_WORKER_CONCURRENCY="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,  # a process group of its own, as a terminal gives `make run`
    )
    pgid = os.getpgid(process.pid)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _status(f"{base}/healthz") == 200, timeout=90, message="the web server")
        assert _status(f"{base}/readyz") == 200
        assert _status(f"{base}/login/") == 200
        # The worker it started answers a task sent to its queue.
        result = ping.apply_async(("through run_suite",), queue=queue)
        assert result.get(timeout=90)["echo"] == "through run_suite"

        os.killpg(pgid, signal.SIGINT)  # what Ctrl-C does
        assert process.wait(timeout=60) == 0
        wait_for(lambda: not _group_alive(pgid), timeout=30, message="every child to exit")
        log.seek(0)
        assert "Suite stopped." in log.read()
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        log.close()
