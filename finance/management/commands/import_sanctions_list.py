"""Import a sanctions or PEP list CSV as a new active version:
`import_sanctions_list PATH --name un [--kind sanctions|pep] [--list-version V]`.

The CSV format is that of un_list.csv (full_name, or first/middle/last name; optional id,
date_of_birth, nationality). All or nothing: a file with bad rows is refused with every bad row
listed. The version defaults to a content hash of the entries; the import is trailed.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Import a sanctions/PEP list CSV as a new, active, versioned list (trailed)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", required=True, help="list name, e.g. un, ofac-sdn, pep-national")
        parser.add_argument("--kind", choices=["sanctions", "pep"], default="sanctions")
        parser.add_argument("--list-version", default="", help="version label (default: content hash)")

    def handle(self, *args, path, name, kind, list_version, **options):
        from finance.services import BatchRejected, FinanceRefused
        from finance.services.sanctions import sanctions_list_import

        try:
            row = sanctions_list_import(
                actor="command:import_sanctions_list", name=name, source=path, kind=kind, version=list_version
            )
        except BatchRejected as error:
            lines = [f"row {e['row']} {e['field']}: {e['message']}" for e in error.errors[:20]]
            raise CommandError(
                f"{path}: nothing imported; {len(error.errors)} bad row(s):\n" + "\n".join(lines)
            ) from None
        except FinanceRefused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"{row.label} ({row.kind}): {row.entries} entries, sha256 {row.sha256[:16]}..., active"
            )
        )
