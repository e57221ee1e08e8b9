import os

from django.core.management.base import BaseCommand
from django.core.servers.basehttp import get_internal_wsgi_application
from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess

from ops import env


class Command(BaseCommand):
    help = "Serve the suite over HTTP with gunicorn (threaded workers; streaming responses supported)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=env.env_str("SUITE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=env.env_int("SUITE_WEB_WORKERS", 1, minimum=1))
        parser.add_argument("--threads", type=int, default=env.env_int("SUITE_WEB_THREADS", 8, minimum=1))

    def handle(self, *args, **options):
        application = get_internal_wsgi_application()  # settings.WSGI_APPLICATION

        def child_exit(_server, worker) -> None:
            # The worker's live gauges leave the /metrics sum with it (its counters stay).
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                multiprocess.mark_process_dead(worker.pid)

        config = {
            "bind": options["bind"],
            "workers": options["workers"],
            "threads": options["threads"],
            "worker_class": "gthread",
            # Streaming generations and uploads can take minutes; the model does the pacing.
            "timeout": 600,
            "graceful_timeout": 20,
            # Idle keep-alive connections stay open longer than the Retry-After the suite sends on a
            # 429 (1-2 s from admission control; 503s say up to 10 s): with gunicorn's default 2 s a
            # client that waits as told and reuses its connection met the server closing it in that
            # moment (bench_load counted a ReadError). gthread holds idle connections in its poller,
            # not in a thread.
            "keepalive": 15,
            "accesslog": "-",
            "errorlog": "-",
            "proc_name": "suite-web",
            "child_exit": child_exit,
        }

        class SuiteServer(BaseApplication):
            def load_config(self):
                for key, value in config.items():
                    self.cfg.set(key, value)

            def load(self):
                return application

        self.stdout.write(f"Suite is serving on http://{options['bind']} (Ctrl-C stops it)")
        SuiteServer().run()
