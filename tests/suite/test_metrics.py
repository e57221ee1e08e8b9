"""/metrics covers every process: prometheus_client multiprocess mode, one folder per run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client import multiprocess

from inference import services
from inference.engine.importer import ImportResult, bundled_smollm2
from tests.factories import api_key
from tests.support import MANAGE, free_port, subprocess_env, wait_for

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
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    ended_pid = int(ended.stdout)
    (folder / f"counter_{ended_pid}.db").write_bytes(b"stale")
    (folder / f"gauge_livesum_{ended_pid}.db").write_bytes(b"stale")
    (folder / "keep.txt").write_text("not ours")
    # A live process's file stays: unlinking a file it has mapped would lose its later samples.
    (folder / f"counter_{os.getpid()}.db").write_bytes(b"live")
    empty_metrics_folder(folder)
    assert sorted(entry.name for entry in folder.iterdir()) == sorted(
        ["keep.txt", f"counter_{os.getpid()}.db"]
    )
    empty_metrics_folder(tmp_path / "new")  # created when missing
    assert (tmp_path / "new").is_dir()


# --- a real two-worker web tier ---------------------------------------------------------------
# Per run: a rerun in the same folder (SUITE_TEST_RUN_DIR kept) must not count an earlier run's samples.
WEB_TIER_MODEL = f"web-tier-{uuid.uuid4().hex[:8]}"


def _sum(text: str, name: str, model_name: str) -> float:
    """The sum of every sample of `name` for one model, whatever its other labels (e.g. outcome)."""
    pattern = re.escape(name) + r"\{([^}]*)\} ([0-9.e+-]+)"
    return sum(
        float(value) for labels, value in re.findall(pattern, text) if f'model_name="{model_name}"' in labels
    )


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.add(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _tokens_written_by(folder: Path, pid: int) -> float:
    """The generation tokens one process wrote to its own file (0 when it wrote none)."""
    path = folder / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    total = 0.0
    for metric in multiprocess.MultiProcessCollector.merge([str(path)], accumulate=True):
        for sample in metric.samples:
            if (
                sample.name == "suite:generation_tokens_total"
                and sample.labels.get("model_name") == WEB_TIER_MODEL
            ):
                total += sample.value
    return total


@pytest.mark.django_db(transaction=True)
def test_one_scrape_of_a_two_worker_web_tier_counts_both_workers(tmp_path, make_user):
    """gunicorn with two worker processes (serve_web, as SUITE_WEB_WORKERS=2 runs it): chat completions
    land on both workers, and every /metrics scrape, whichever worker answers it, reports the tokens
    of all of them. The loopback is allow-listed to scrape, as the site's Prometheus is."""
    # SmolLM2 served by llama.cpp, as `make run` serves it (the GGUF of requirements-models.txt, read
    # in place): each worker maps the file and answers in a moment, no torch to import.
    services.model_import_register(
        actor="test:fixture",
        result=ImportResult(
            name=WEB_TIER_MODEL, directory=tmp_path, hf_dir=None,
            gguf_files={"q4_1": bundled_smollm2()}, served_quantization="q4_1",
        ),
    )  # fmt: skip
    token = api_key(make_user("ml_engineer"))
    folder = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "web.log", "w+")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            MANAGE,
            "serve_web",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "2",
        ],
        env=subprocess_env(),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except OSError:
            return 0, ""

    def chat(_index: int) -> dict:
        body = {"model": WEB_TIER_MODEL, "messages": [{"role": "user", "content": "Which failure code?"}],
                "max_tokens": 4, "temperature": 0}  # fmt: skip
        request = urllib.request.Request(
            f"{base}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["usage"]

    try:
        wait_for(
            lambda: get("/healthz")[0] == 200 or server.poll() is not None, timeout=90, message="gunicorn"
        )
        assert server.poll() is None, "serve_web did not start"
        wait_for(lambda: len(_children(server.pid)) == 2, timeout=30, message="two gunicorn workers")
        workers = _children(server.pid)

        # Concurrent requests on fresh connections: a worker busy generating leaves the next one
        # to the other. Rounds until both workers have served some (bounded).
        usages: list[dict] = []
        deadline = time.monotonic() + 180
        with ThreadPoolExecutor(max_workers=4) as pool:
            while not all(_tokens_written_by(folder, pid) > 0 for pid in workers):
                assert time.monotonic() < deadline, f"one worker served everything: {len(usages)} requests"
                usages += list(pool.map(chat, range(4)))
        served_tokens = sum(usage["completion_tokens"] for usage in usages)
        per_worker = {pid: _tokens_written_by(folder, pid) for pid in workers}
        assert sum(per_worker.values()) == served_tokens
        assert all(0 < tokens < served_tokens for tokens in per_worker.values()), per_worker

        # Every scrape, whichever worker answers it, counts the tokens and requests of both.
        for _ in range(4):
            status, text = get("/metrics")
            assert status == 200
            assert _sample(text, "suite:generation_tokens_total", model_name=WEB_TIER_MODEL) == served_tokens
            assert _sum(text, "suite:requests_total", model_name=WEB_TIER_MODEL) == len(usages)
            assert _sample(text, "suite:e2e_request_latency_seconds_count", model_name=WEB_TIER_MODEL) == len(
                usages
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output, output
