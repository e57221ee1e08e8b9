"""Start the web server, a Celery worker and the apps' extra processes together in the foreground.

Ctrl-C (SIGINT) reaches every child through the terminal's process group; SIGTERM sent to this
process is forwarded. When the web server or the worker exits, everything is stopped, so nothing
runs half; an extra process (suite.processes, e.g. the DICOM node) that exits is reported and the
rest keep running.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand

MANAGE = str(Path(__file__).resolve().parents[4] / "manage.py")


class Command(BaseCommand):
    help = (
        "Run the suite in the foreground: web server, worker (with the periodic scheduler) and the "
        "apps' extra processes (the DICOM node)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=None)

    def handle(self, *args, **options):
        from suite.processes import registered

        web_cmd = [sys.executable, MANAGE, "serve_web"] + (
            ["--bind", options["bind"]] if options["bind"] else []
        )
        worker_cmd = [sys.executable, MANAGE, "run_worker", "--beat"]
        children = {
            "web": subprocess.Popen(web_cmd),
            "worker": subprocess.Popen(worker_cmd),
        }
        essential = set(children)
        for extra in registered():
            children[extra.name] = subprocess.Popen([sys.executable, MANAGE, *extra.command])
        reported: set[str] = set()
        stopping = False

        def stop(signum, _frame):
            nonlocal stopping
            stopping = True
            for child in children.values():
                if child.poll() is None and signum == signal.SIGTERM:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)  # children got the same SIGINT from the terminal
        signal.signal(signal.SIGTERM, stop)

        exit_code = 0
        while True:
            finished = {
                name: child.returncode for name, child in children.items() if child.poll() is not None
            }
            for name in set(finished) - essential - reported:
                if not stopping:
                    self.stderr.write(f"{name} exited with status {finished[name]}; the rest keep running.")
                reported.add(name)
            finished = {name: code for name, code in finished.items() if name in essential}
            if finished and not stopping:
                name, code = next(iter(finished.items()))
                self.stderr.write(f"{name} exited with status {code}; stopping the rest.")
                exit_code = code or 1
                stopping = True
                for child in children.values():
                    if child.poll() is None:
                        child.send_signal(signal.SIGTERM)
            if all(child.poll() is not None for child in children.values()):
                break
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        for child in children.values():
            if child.poll() is None:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.stdout.write("Suite stopped.")
        os._exit(exit_code)
