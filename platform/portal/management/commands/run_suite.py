"""Start the web server, a Celery worker and the apps' extra processes together in the foreground.

Every child runs in a session of its own, so a signal to `make run`'s process group (Ctrl-C from the
terminal, SIGTERM from systemd, `docker stop` or a closed terminal) reaches each child once,
forwarded by this process: a child signalled twice by the group may abort its own clean shutdown
(Celery takes a second SIGINT as a cold shutdown). A child still
running `SUITE_STOP_GRACE_SECONDS` (default 20) after the signal is killed with its process group, so
stopping is bounded. A child that is still starting has not installed its own handlers yet: Python's
default ends it at once (killed by the signal: counted as a clean stop, as systemd counts SIGINT and
SIGTERM). The signal is not sent again: a second SIGTERM during Celery's warm shutdown killed the
worker (status -15, seen in a test run). Children get SIGTERM if this process dies without forwarding (PR_SET_PDEATHSIG).
When the web server or the worker exits, everything is stopped, so nothing runs half; an extra
process (ops.processes, e.g. the DICOM node) that exits is reported and the rest keep running.
On the way out every child's exit status is printed; the command exits 0 only when each child that
was running at the stop stopped cleanly (0, or ended by the stop signal itself).
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from ops import env
from ops.processes import registered

MANAGE = str(Path(__file__).resolve().parents[4] / "manage.py")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the bounded stop still holds
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def empty_metrics_folder(folder: Path) -> None:
    """Remove the metric files of an earlier run (prometheus_client multiprocess mode), which every
    process of this run would otherwise add to its own counts. Only the library's *.db files go, and
    only those of processes that have ended: a live process (a management command sharing the folder)
    keeps writing to its memory-mapped file, and an unlinked file would silently lose its samples."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.glob("*.db"):
        pid = entry.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and _process_alive(int(pid)):
            continue
        entry.unlink(missing_ok=True)


def _handles_sigterm(pid: int) -> bool:
    """Whether process `pid` has a SIGTERM handler of its own (Linux /proc: the caught-signal mask); a
    Python process still starting has none. True where it cannot be told, so nothing is sent twice."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except (OSError, ValueError):
        pass
    return True


def _spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent)


class Command(BaseCommand):
    help = (
        "Run the suite in the foreground: web server, worker (with the periodic scheduler), a worker for "
        "long work (training) and the "
        "apps' extra processes (the DICOM node)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=None)

    def handle(self, *args, **options):
        grace = env.env_int("SUITE_STOP_GRACE_SECONDS", 20, minimum=1)
        # Before any child starts: the web workers and the worker children all write there.
        empty_metrics_folder(Path(settings.PROMETHEUS_MULTIPROC_DIR))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.PROMETHEUS_MULTIPROC_DIR)
        web_cmd = [sys.executable, MANAGE, "serve_web"] + (
            ["--bind", options["bind"]] if options["bind"] else []
        )
        # the slots of the default queue stay free for short work; training has a worker of its own
        worker_cmd = [
            sys.executable,
            MANAGE,
            "run_worker",
            "--beat",
            f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}",
        ]
        long_cmd = [
            sys.executable,
            MANAGE,
            "run_worker",
            f"--queues={settings.SUITE_LONG_QUEUE}",
            "--concurrency=1",
            "--hostname=long@%h",
        ]
        commands = {"web": web_cmd, "worker": worker_cmd, "worker-long": long_cmd}
        commands |= {extra.name: [sys.executable, MANAGE, *extra.command] for extra in registered()}
        children: dict[str, subprocess.Popen] = {}
        essential = {"web", "worker", "worker-long"}
        reported: set[str] = set()
        tolerated: set[str] = set()  # extras that exited (and were reported) while the rest ran on
        stop_deadline: float | None = None
        starting: set[str] = set()  # children told to stop before they had a SIGTERM handler of their own
        told: set[str] = set()  # children stop_all has signalled
        reminded = False

        def stop_all(signum: int) -> None:
            nonlocal stop_deadline
            if stop_deadline is not None:
                return  # one signal per child, however many reach this process
            stop_deadline = time.monotonic() + grace
            for name, child in children.items():
                told.add(name)
                if child.poll() is None:
                    if _handles_sigterm(child.pid):
                        child.send_signal(signum)
                    else:  # still starting: SIGTERM's default action ends it at once, status -15,
                        # where a SIGINT raises KeyboardInterrupt wherever its start-up is (seen: Python's
                        # "Fatal Python error: init_import_site", exit 1, taken for a failure)
                        starting.add(name)
                        child.send_signal(signal.SIGTERM)

        # The handlers come before the first child: a Ctrl-C while the children are being started (it
        # reaches the whole process group) is a stop, never a KeyboardInterrupt inside Popen (seen in CI).
        signal.signal(signal.SIGINT, lambda signum, _frame: stop_all(signum))
        signal.signal(signal.SIGTERM, lambda signum, _frame: stop_all(signum))
        signal.signal(signal.SIGHUP, lambda _signum, _frame: stop_all(signal.SIGTERM))
        for name, argv in commands.items():
            if stop_deadline is not None:
                break  # told to stop: the rest are not started
            children[name] = _spawn(argv)
            if stop_deadline is not None and name not in told:  # the signal came while it was starting
                told.add(name)
                starting.add(name)
                with contextlib.suppress(ProcessLookupError):
                    children[name].send_signal(signal.SIGTERM)

        exit_code = 0
        while True:
            finished = {
                name: child.returncode for name, child in children.items() if child.poll() is not None
            }
            for name in set(finished) - essential - reported:
                if stop_deadline is None:
                    self.stderr.write(f"{name} exited with status {finished[name]}; the rest keep running.")
                    tolerated.add(name)
                reported.add(name)
            essential_done = {name: code for name, code in finished.items() if name in essential}
            if essential_done and stop_deadline is None:
                name, code = next(iter(essential_done.items()))
                self.stderr.write(f"{name} exited with status {code}; stopping the rest.")
                exit_code = code or 1
                stop_all(signal.SIGTERM)
            if all(child.poll() is not None for child in children.values()):
                break
            if stop_deadline is not None and not reminded and time.monotonic() > stop_deadline - grace / 2:
                # A child told to stop while still starting can miss it (Python's own SIGINT handler
                # raising KeyboardInterrupt inside code that swallows it) and run on as if never told:
                # a web server seen so in CI. Those children, and only those (a second SIGTERM during
                # Celery's warm shutdown kills the worker), are told again with SIGTERM.
                reminded = True
                for name in starting:
                    if children[name].poll() is None:
                        with contextlib.suppress(ProcessLookupError):
                            children[name].send_signal(signal.SIGTERM)
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                for name, child in children.items():
                    if child.poll() is None:
                        self.stderr.write(f"{name} did not stop within {grace} s; killed.")
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(child.pid, signal.SIGKILL)
                        child.wait(timeout=10)
                exit_code = exit_code or 1
                break
            time.sleep(0.2)
        # A child that stopped with an error (or was killed) makes the whole stop an error, so
        # systemd and `docker stop` report it; each one's status is named.
        statuses = {name: child.returncode for name, child in children.items()}
        stopped_by_signal = (-signal.SIGINT, -signal.SIGTERM) if stop_deadline is not None else ()
        if any(
            code and code not in stopped_by_signal for name, code in statuses.items() if name not in tolerated
        ):
            exit_code = exit_code or 1
        self.stdout.write(
            "Exit statuses: " + ", ".join(f"{name} {code}" for name, code in sorted(statuses.items()))
        )
        self.stdout.write("Suite stopped.")
        sys.stdout.flush()
        os._exit(exit_code)
