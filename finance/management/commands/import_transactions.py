"""Import and screen a transaction file: `import_transactions PATH --format amlworld|amlsim|json --team T`.

All or nothing: a file with bad rows is refused with the per-row report and nothing is written.
Progress is printed per chunk of screened rows.
"""

from __future__ import annotations

import time
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError


class Command(BaseCommand):
    help = "Import an AMLworld CSV, an AMLSim folder (transactions.csv + nodes.csv) or JSON rows, and screen them."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=["amlworld", "amlsim", "json"], required=True)
        parser.add_argument("--team", required=True, help="the AML team the transactions belong to")
        parser.add_argument("--batch", default="", help="batch id (default: random)")
        parser.add_argument(
            "--partitions",
            type=int,
            default=0,
            help="screen on N Celery workers, partitioned by payer account (the file must be readable "
            "by every worker; each partition is its own transaction)",
        )

    def handle(self, *args, path, format, team, batch, partitions=0, **options):
        from finance import services

        batch = batch or uuid.uuid4().hex[:12]
        started = time.perf_counter()
        if partitions:
            return self._partitioned(path, format, team, batch, partitions, started)
        try:
            parties: dict = {}
            table = services.table_from_file(fmt=format, source=path, batch=batch, parties=parties)
        except services.FinanceRefused as error:
            raise CommandError(str(error)) from error
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error}") from error
        self.stdout.write(f"read {len(table)} rows in {time.perf_counter() - started:.1f} s; screening")

        def progress(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-6)
            self.stdout.write(f"  {done}/{total} ({100 * done / total:.0f}%) {rate:,.0f} tx/s")

        try:
            result = services.transactions_ingest(
                actor="command:import_transactions",
                table=table,
                team=team,
                batch=batch,
                source=f"file:{format}",
                parties=parties,
                progress=progress,
            )
        except services.FinanceRefused as error:
            raise CommandError(str(error)) from error
        except DatabaseError as error:  # e.g. the database restarted mid-import: the transaction is gone
            raise CommandError(
                f"the database failed during the import ({type(error).__name__}: {str(error).strip()[:300]}); "
                f"batch {batch} is stored all or nothing, so none of it was kept. Run the same command with "
                f"--batch {batch} again once the database answers."
            ) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"batch {result.batch}: {result.transactions} transactions, {result.alerts} alerts "
                f"({result.holds} held), {result.cases} new cases in {time.perf_counter() - started:.1f} s"
            )
        )

    def _partitioned(self, path, fmt, team, batch, parts, started):
        from pathlib import Path

        from celery import group

        from finance.tasks import screen_file_partition

        if not 2 <= parts <= 64:
            raise CommandError("--partitions must be between 2 and 64.")
        source = str(Path(path).resolve())
        results = group(screen_file_partition.s(source, fmt, team, batch, k, parts) for k in range(parts))()
        try:
            done = results.get(timeout=3600)
        except Exception as error:  # a partition refused (bad rows) or failed: say which
            raise CommandError(f"partitioned import failed: {error}") from error
        total = sum(d["transactions"] for d in done)
        self.stdout.write(
            self.style.SUCCESS(
                f"batch {batch}: {total} transactions, {sum(d['alerts'] for d in done)} alerts, "
                f"{sum(d['cases'] for d in done)} new cases in {time.perf_counter() - started:.1f} s "
                f"on {parts} partitions ({', '.join(str(d['transactions']) for d in sorted(done, key=lambda d: d['part']))})"
            )
        )
