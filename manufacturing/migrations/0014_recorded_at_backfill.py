"""A recording's time measured: rows stored before it was set take their upload time."""

from django.db import migrations
from django.db.models import F


def backfill(apps, schema_editor):
    recordings = apps.get_model("manufacturing", "VibrationRecording")
    recordings.objects.filter(recorded_at__isnull=True).update(recorded_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0013_scan_comparisons")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
