"""A scan's time scanned is required from here on (0023 gave the earlier ones their upload time); the
component's scans are read in that order (its wear history)."""

import django.utils.timezone
from django.db import migrations, models

HELP = (
    "When the component was scanned: the upload's time unless given (a scanner's archive is often sent "
    "later, and the wear rate is per day of the scans' own dates)."
)


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0023_scan_scanned_at")]

    operations = [
        migrations.AlterField(
            model_name="scancomparison",
            name="scanned_at",
            field=models.DateTimeField(default=django.utils.timezone.now, help_text=HELP),
        ),
        migrations.AlterModelOptions(name="scancomparison", options={"ordering": ["-scanned_at", "-pk"]}),
        migrations.AddIndex(
            model_name="scancomparison",
            index=models.Index(fields=["component", "scanned_at"], name="manufacturing_scan_scanned"),
        ),
    ]
