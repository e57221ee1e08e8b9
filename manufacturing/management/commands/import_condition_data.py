"""Import a C-MAPSS run-to-failure file as an asset's condition data."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from manufacturing.models import Machine
from manufacturing.services.condition import ConditionRefused, condition_import
from manufacturing.services.prognostics import rul_renew

ACTOR = "command:import_condition_data"


class Command(BaseCommand):
    help = "Import C-MAPSS condition data (unit cycle settings sensors) into a machine."

    def add_arguments(self, parser):
        parser.add_argument("--machine", required=True, help="Machine tag, e.g. ENG-001.")
        parser.add_argument("--site", default="", help="Site code when the tag is not unique.")
        parser.add_argument(
            "--file", default=str(Path(settings.SHARED_DATA_DIR) / "cmapss" / "train_FD001.txt")
        )
        parser.add_argument("--units", default="", help="Comma-separated unit numbers (default: all).")

    def handle(self, *args, **options):
        machines = Machine.objects.filter(tag=options["machine"])
        if options["site"]:
            machines = machines.filter(site=options["site"])
        if machines.count() != 1:
            raise CommandError(f"{machines.count()} machines match tag {options['machine']!r}; pass --site")
        try:
            units = {int(u) for u in options["units"].split(",") if u.strip()} or None
        except ValueError:
            raise CommandError("--units must be comma-separated integers, e.g. 1,2,3") from None
        path = Path(options["file"])
        if not path.exists():
            raise CommandError(f"{path} does not exist; pass --file")
        machine = machines.get()
        try:
            count = condition_import(machine=machine, path=path, units=units)
        except ConditionRefused as refusal:
            raise CommandError(f"nothing imported: {refusal}") from None
        self.stdout.write(f"{count} condition rows imported into {options['machine']}")
        # the family's model, if any, predicts the imported units at once (as the API's readings do on a worker)
        renewed = rul_renew(machine=machine, actor=ACTOR, units=units)
        for prediction in renewed:
            self.stdout.write(
                f"unit {prediction['unit']} at cycle {prediction['cycle']}: RUL {prediction['rul']:.0f} cycles "
                f"[{prediction['lower']:.0f}, {prediction['upper']:.0f}]"
            )
