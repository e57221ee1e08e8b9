"""Four OS processes appending to one chain at once: gapless numbering and an intact chain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from audit.models import Event
from audit.verification import verify_chain
from tests.support import ROOT, manage, subprocess_env, wait_for

WRITERS = 4
EVENTS_PER_WRITER = 500
SCRIPT = Path(__file__).with_name("append_events.py")


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_produce_one_gapless_intact_chain(tmp_path):
    env = subprocess_env()
    writers = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), str(writer), str(EVENTS_PER_WRITER), "concurrency", str(tmp_path)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for writer in range(WRITERS)
    ]
    try:
        wait_for(
            lambda: (
                len(list(tmp_path.glob("ready-*"))) == WRITERS or any(w.poll() is not None for w in writers)
            ),
            timeout=120,
            message="the writer processes to start",
        )
        (tmp_path / "go").touch()
        outputs = [writer.communicate(timeout=300)[0] for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    assert [writer.returncode for writer in writers] == [0] * WRITERS, outputs

    total = WRITERS * EVENTS_PER_WRITER
    sequences = list(
        Event.objects.filter(chain="concurrency").order_by("sequence").values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, total + 1))
    labels = Event.objects.filter(chain="concurrency").values_list("actor_label", flat=True)
    assert {label: list(labels).count(label) for label in set(labels)} == {
        f"task:tests.writer-{writer}": EVENTS_PER_WRITER for writer in range(WRITERS)
    }
    result = verify_chain("concurrency")
    assert result.ok, result.problem
    assert result.events_verified == total

    command = manage("verify_trail", "--chain", "concurrency", env=env)
    assert command.returncode == 0, command.stderr
    assert f"OK: {total} events verified" in command.stdout
