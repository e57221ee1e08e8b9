"""Start the web server and a Celery worker together in the foreground.

Ctrl-C (SIGINT) reaches both children through the terminal's process group; SIGTERM sent to this
process is forwarded. When either child exits, the other is stopped too, so nothing runs half.
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
    help = "Run the suite: web server and worker (with the periodic scheduler) in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=None)

    def handle(self, *args, **options):
        web_cmd = [sys.executable, MANAGE, "serve_web"] + (
            ["--bind", options["bind"]] if options["bind"] else []
        )
        worker_cmd = [sys.executable, MANAGE, "run_worker", "--beat"]
        children = {
            "web": subprocess.Popen(web_cmd),
            "worker": subprocess.Popen(worker_cmd),
        }
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
