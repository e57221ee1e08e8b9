from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("medical", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="removed_keywords",
            field=models.JSONField(
                blank=True,
                help_text="Keywords the original carried and de-identification removed or replaced (null: not known).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="studyquestion",
            name="grounding_score",
            field=models.FloatField(
                blank=True, help_text="How sure the answer is of its grounding, 0 to 1.", null=True
            ),
        ),
    ]
