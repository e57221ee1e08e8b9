"""A scan's time scanned: scans stored before it was kept take their upload time (as recordings did,
0014-0015)."""

from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor):
    scans = apps.get_model("manufacturing", "ScanComparison")
    scans.objects.filter(scanned_at__isnull=True).update(scanned_at=F("created_at"))


HELP = (
    "When the component was scanned: the upload's time unless given (a scanner's archive is often sent "
    "later, and the wear rate is per day of the scans' own dates)."
)


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0022_alert_scan_wear")]

    operations = [
        migrations.AddField(
            model_name="scancomparison",
            name="scanned_at",
            field=models.DateTimeField(null=True, help_text=HELP),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
