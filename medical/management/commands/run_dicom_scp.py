import signal

from django.core.management.base import BaseCommand, CommandError

from medical import conf


class Command(BaseCommand):
    help = (
        "Run the suite's DICOM node: a C-STORE SCP (and C-ECHO) that de-identifies and files every received "
        "instance like an upload. Calling AE titles must be on DICOM_AE_ALLOWLIST, which maps each to a department."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=11112)
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default loopback).")
        parser.add_argument(
            "--ae-title", default=None, help="This node's AE title (default DICOM_SCP_AE_TITLE)."
        )

    def handle(self, *args, **options):
        from medical.scp import DicomStorageServer

        allowlist = conf.ae_allowlist()
        if not allowlist:
            raise CommandError("DICOM_AE_ALLOWLIST is empty: no modality could send anything.")
        server = DicomStorageServer(
            host=options["host"], port=options["port"], ae_title=options["ae_title"], allowlist=allowlist
        )
        try:
            server.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {options['host']}:{options['port']}: {exc}") from exc

        def stop(*_):
            # Once: pynetdicom's shutdown raised ValueError (list.remove) when it ran twice.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
            server.stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        host, port = server.address[:2]
        callers = ", ".join(f"{title} -> {department}" for title, department in sorted(allowlist.items()))
        self.stdout.write(
            f"DICOM node {server.ae_title} listening on {host}:{port}; accepting {callers}", ending="\n"
        )
        self.stdout.flush()
        server.wait()
        self.stdout.write("DICOM node stopped.")
