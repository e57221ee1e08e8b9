from django.core.management.base import BaseCommand

from suite import env


class Command(BaseCommand):
    help = "Serve the suite over HTTP with gunicorn (threaded workers; streaming responses supported)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=env.env_str("SUITE_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=env.env_int("SUITE_WEB_WORKERS", 1, minimum=1))
        parser.add_argument("--threads", type=int, default=env.env_int("SUITE_WEB_THREADS", 8, minimum=1))

    def handle(self, *args, **options):
        from gunicorn.app.base import BaseApplication

        from suite.wsgi import application

        config = {
            "bind": options["bind"],
            "workers": options["workers"],
            "threads": options["threads"],
            "worker_class": "gthread",
            # Streaming generations and uploads can take minutes; the model does the pacing.
            "timeout": 600,
            "graceful_timeout": 20,
            "accesslog": "-",
            "errorlog": "-",
            "proc_name": "suite-web",
        }

        class SuiteServer(BaseApplication):
            def load_config(self):
                for key, value in config.items():
                    self.cfg.set(key, value)

            def load(self):
                return application

        self.stdout.write(f"Suite is serving on http://{options['bind']} (Ctrl-C stops it)")
        SuiteServer().run()
