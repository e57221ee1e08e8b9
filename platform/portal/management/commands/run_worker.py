# The suite's Celery app (suite.celery), created when the settings package loaded; taken as the
# current app so this platform command does not import the composition root.
from celery import current_app as app
from django.conf import settings
from django.core.management.base import BaseCommand

from ops import env


def default_queues() -> str:
    """The default queue and the long-work queue: one worker that does everything."""
    return ",".join(dict.fromkeys([settings.CELERY_TASK_DEFAULT_QUEUE, settings.SUITE_LONG_QUEUE]))


class Command(BaseCommand):
    help = "Run a Celery worker for the suite on the configured broker (filesystem by default, Redis in production)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--concurrency", type=int, default=env.env_int("SUITE_WORKER_CONCURRENCY", 2, minimum=1)
        )
        parser.add_argument(
            "--beat", action="store_true", help="Also run the periodic-task scheduler (one per site)."
        )
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument("--hostname", default=None, help="Worker node name (default: suite@<host>).")
        parser.add_argument(
            "--queues",
            default=None,
            help="Comma-separated queues to read (default: the default queue and the long-work queue, "
            "CELERY_QUEUE and SUITE_LONG_QUEUE).",
        )

    def handle(self, *args, **options):
        argv = [
            "worker",
            f"--loglevel={options['loglevel']}",
            f"--concurrency={options['concurrency']}",
            f"--queues={options['queues'] or default_queues()}",
            "--without-gossip",
            "--without-mingle",
        ]
        if options["hostname"]:
            argv.append(f"--hostname={options['hostname']}")
        if options["beat"]:
            argv += ["--beat", f"--schedule={settings.VAR_DIR / 'celerybeat-schedule'}"]
        app.worker_main(argv=argv)
