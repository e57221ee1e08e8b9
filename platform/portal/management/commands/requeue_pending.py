"""Send again the tasks of work left pending by a lost Celery message (portal.requeue)."""

import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from portal.requeue import registered, requeue_after, requeue_pending


class Command(BaseCommand):
    help = (
        "Send again the worker task of every row (DICOM preview, recording analysis, ...) still pending "
        "longer than --older-than seconds, at most once per that period per row. Also runs when a worker "
        "starts and every minute from the scheduler."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help=f"seconds a row must have been pending (default SUITE_REQUEUE_AFTER_SECONDS, "
            f"{int(requeue_after().total_seconds())})",
        )
        parser.add_argument("--queue", default=None, help="send to this queue instead of the default one")
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args, **options):
        older = options["older_than"]
        if older is not None and older < 0:
            raise CommandError("--older-than must be 0 or more seconds.")
        sent = requeue_pending(
            older_than=None if older is None else timedelta(seconds=older), queue=options["queue"]
        )
        if options["json"]:
            self.stdout.write(json.dumps(sent, sort_keys=True))
        else:
            for work in registered():
                self.stdout.write(f"{work.name}: {sent.get(work.name, 0)} sent again ({work.task})")
        if "error" in sent:
            raise CommandError(f"The broker refused a message ({sent['error']}); run again once it is back.")
