import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_event_hash_version_2"),
    ]

    operations = [
        migrations.CreateModel(
            name="RewrappedTexts",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "blob",
                    models.BinaryField(
                        help_text="vault.envelope sealed blob (format 2) of the payload's texts."
                    ),
                ),
                ("rewrapped_at", models.DateTimeField(auto_now=True)),
                (
                    "event",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="rewrapped_texts",
                        to="audit.event",
                    ),
                ),
            ],
        ),
    ]
