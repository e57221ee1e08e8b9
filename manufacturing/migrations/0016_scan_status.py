"""3-D scans are registered on a worker: a status and the error of a failed registration. Every scan
stored before this was registered in its request, so those are "done"; new ones start "pending"."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0015_recorded_at")]

    operations = [
        migrations.AddField(
            model_name="scancomparison",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Registering"),
                    ("done", "Registered"),
                    ("failed", "Registration failed"),
                ],
                default="done",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="scancomparison",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Registering"),
                    ("done", "Registered"),
                    ("failed", "Registration failed"),
                ],
                default="pending",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="scancomparison",
            name="error",
            field=models.TextField(blank=True),
        ),
    ]
