"""/metrics covers every process: prometheus_client multiprocess mode, one folder per run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client import multiprocess

ROOT = Path(__file__).resolve().parents[2]

# A separate process (as a gunicorn worker or a Celery worker child is) counts served tokens.
# The metrics module needs the settings only, not the app registry: no django.setup(), it is faster.
CHILD = """
import os, sys
sys.path[:0] = [{root!r}, {platform!r}]
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
from inference import metrics
metrics.inc("suite:generation_tokens_total", {amount}, model_name="two-processes")
metrics.observe("suite:e2e_request_latency_seconds", 0.2, model_name="two-processes")
metrics.GAUGES["suite:num_requests_waiting"].labels(model_name="two-processes").set({amount})
print(os.getpid())
"""


def _sample(text: str, name: str, **labels: str) -> float:
    label_text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.escape(f"{name}{{{label_text}}}") + r" ([0-9.e+-]+)"
    match = re.search(pattern, text)
    assert match, f"{name}{{{label_text}}} is not in the scrape:\n{text}"
    return float(match.group(1))


@pytest.mark.django_db
def test_one_scrape_counts_the_samples_of_every_process(client, make_user):
    from inference import metrics

    folder = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    assert os.environ["SUITE_TEST_RUN_DIR"] in str(folder)  # the per-run folder, never var/
    assert str(folder) == metrics.MULTIPROCESS_DIR
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD.format(root=str(ROOT), platform=str(ROOT / "platform"), amount=amount),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for amount in (3, 4)
    ]
    pids = [int(child.communicate(timeout=120)[0].split()[-1]) for child in children]
    assert all(child.returncode == 0 for child in children)
    metrics.inc("suite:generation_tokens_total", 5, model_name="two-processes")  # this process too

    client.force_login(make_user("ml_engineer"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert _sample(text, "suite:generation_tokens_total", model_name="two-processes") == 12
    assert _sample(text, "suite:e2e_request_latency_seconds_count", model_name="two-processes") == 2
    # Each process wrote its own file in the run's folder.
    assert {f"counter_{pid}.db" for pid in pids} <= {entry.name for entry in folder.iterdir()}
    # Queue gauges add up the live processes; a process marked dead (serve_web's child_exit hook
    # does it for a gunicorn worker) leaves the gauge, while its counters stay in the sum.
    assert _sample(text, "suite:num_requests_waiting", model_name="two-processes") == 7
    multiprocess.mark_process_dead(pids[0], str(folder))
    text = client.get("/metrics").content.decode()
    assert _sample(text, "suite:num_requests_waiting", model_name="two-processes") == 4
    assert _sample(text, "suite:generation_tokens_total", model_name="two-processes") == 12


def test_run_suite_empties_the_metrics_folder_before_it_starts_the_processes(tmp_path):
    from portal.management.commands.run_suite import empty_metrics_folder

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"stale")
    (folder / "keep.txt").write_text("not ours")
    empty_metrics_folder(folder)
    assert sorted(entry.name for entry in folder.iterdir()) == ["keep.txt"]
    empty_metrics_folder(tmp_path / "new")  # created when missing
    assert (tmp_path / "new").is_dir()
