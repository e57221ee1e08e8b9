"""Helpers for tests that start real processes (workers, servers) against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
MANAGE = str(ROOT / "manage.py")


def test_database_url() -> str:
    """A DATABASE_URL that points a subprocess at the database this test is using."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "")
    password = settings.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{settings.get('HOST') or '127.0.0.1'}:{settings.get('PORT') or 5432}/{settings['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = test_database_url()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def manage(*args: str, env: dict | None = None, timeout: float = 120, check: bool = False):
    return subprocess.run(
        [sys.executable, MANAGE, *args],
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        cwd=ROOT,
    )


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


def at_once(send, times: int = 2) -> list:
    """`send()` in `times` threads released together, each on its own database connection (a test
    marked django_db(transaction=True)); what each returned or raised."""
    import threading

    start, results = threading.Barrier(times), []

    def run() -> None:
        try:
            start.wait()
            results.append(send())
        except Exception as error:
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def cwru_recording(
    actor,
    machine,
    kind: str,
    *,
    rpm: float,
    seconds: float = 2.0,
    recorded_at=None,
    component=None,
    sample_rate: float = 12000,
):
    """`seconds` of a shared CWRU drive-end recording at 0 HP (`kind`: normal_97, outer_race_007_at6_130,
    inner_race_007_105, ball_007_118), uploaded through the service as an .npy and analysed by the
    worker's step here; the analysed recording. A `sample_rate` other than the rig's 12 kHz plays the
    same samples faster or slower: every line moves by that ratio, as at that ratio of the rig's speed
    (give `rpm` scaled alike)."""
    import io

    import numpy as np
    from django.conf import settings

    from manufacturing.services import recording_upload
    from manufacturing.services.recordings import recording_analyse

    path = Path(settings.SHARED_DATA_DIR) / "bearings" / "cwru_de_0hp" / f"cwru_de_0hp_{kind}.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.load(path)[: int(seconds * 12000)])
    recording = recording_upload(
        actor=actor,
        machine=machine,
        name=f"{kind.rsplit('_', 1)[-1]}.npy",
        data=buffer.getvalue(),
        sample_rate=sample_rate,
        rpm=rpm,
        analyse=False,
        recorded_at=recorded_at,
        component=component,
    )
    assert recording_analyse(recording_id=recording.pk) == "done"
    recording.refresh_from_db()
    return recording


def start_worker(*, concurrency: int = 1, extra_env: dict | None = None) -> subprocess.Popen:
    from django.conf import settings

    log = open(settings.VAR_DIR / f"test-worker-{os.getpid()}.log", "w")  # noqa: SIM115 - closed in stop_worker
    process = subprocess.Popen(
        [sys.executable, MANAGE, "run_worker", f"--concurrency={concurrency}", "--loglevel=INFO"],
        env=subprocess_env(**(extra_env or {})),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    process.log_file = log  # type: ignore[attr-defined]
    return process


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log_file.close()  # type: ignore[attr-defined]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dicom_association(port: int, calling: str, contexts, *, called: str = "SUITE"):
    """A pynetdicom association from AE title `calling` to the DICOM node on `port`."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    for context in contexts:
        ae.add_requested_context(context)
    return ae.associate("127.0.0.1", port, ae_title=called)


def dicom_echo(port: int, calling: str = "MODALITY1") -> int | None:
    """The C-ECHO status the node on `port` answers `calling` with; None when it refuses the association."""
    from pynetdicom.sop_class import Verification

    association = dicom_association(port, calling, [Verification])
    if not association.is_established:
        return None
    try:
        return association.send_c_echo().Status
    finally:
        association.release()


def cached_demo_models(name: str, **build_arguments) -> dict:
    """build_demo_models(...) into a cache shared by parallel test processes and kept between runs.

    The folder is ~/.cache/suite/test-models (SUITE_TEST_MODEL_CACHE overrides it), never the
    deployment's var/, under a subfolder named by a digest of the builder's source and the torch and
    transformers versions, so a change to the training code never reuses an old build. Within it the
    builder reuses a complete build only when its manifest matches the corpus, profile and seed. A
    file lock makes the second process wait for the first one's build instead of training again.
    """
    import fcntl
    import hashlib

    import torch
    import transformers

    import inference.demo
    from inference.demo import build_demo_models

    digest = hashlib.sha256(f"{torch.__version__} {transformers.__version__}".encode())
    for source in sorted(Path(inference.demo.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    default = Path.home() / ".cache" / "suite" / "test-models"
    root = Path(os.environ.get("SUITE_TEST_MODEL_CACHE") or default) / digest.hexdigest()[:16]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_demo_models(root / name, **build_arguments)
