"""Import the failure code tables and historical work orders (the shared chiller history and the
excavator work orders) into a site. All or nothing per file; errors listed per row."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from manufacturing import services


class Command(BaseCommand):
    help = "Import failure codes and historical work orders (chiller and excavator histories)."

    def add_arguments(self, parser):
        data = Path(settings.SHARED_DATA_DIR)
        parser.add_argument("--site", default="site-a", help="Site code the work orders belong to.")
        parser.add_argument("--codes", default=str(data / "work_orders" / "failure_codes.csv"))
        parser.add_argument(
            "--chiller", default=str(data / "work_orders" / "all_wo_with_code_component_events.csv")
        )
        parser.add_argument(
            "--excavator",
            default=str(data / "failure_modes" / "excavator_work_orders.csv"),
            help="'' to skip.",
        )

    def handle(self, *args, **options):
        codes = Path(options["codes"])
        if not codes.exists():
            raise CommandError(f"{codes} does not exist; pass --codes")
        count = services.failure_codes_import(path=codes)
        self.stdout.write(f"failure codes: {count}")
        for fmt in ("chiller", "excavator"):
            if not options[fmt]:
                continue
            path = Path(options[fmt])
            if not path.exists():
                raise CommandError(f"{path} does not exist; pass --{fmt} or --{fmt}=''")
            report = services.work_order_history_import(path=path, fmt=fmt, site=options["site"])
            if report.errors:
                raise CommandError(f"{path.name}: nothing imported; " + "; ".join(report.errors[:20]))
            self.stdout.write(
                f"{fmt}: {report.created} work orders created, {report.skipped} already present"
            )
