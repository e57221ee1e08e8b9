import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inference", "0002_gguf_licence_defaults"),
    ]

    operations = [
        migrations.AddField(
            model_name="modeldefault",
            name="adapter",
            field=models.ForeignKey(
                blank=True,
                help_text="A promoted LoRA adapter of the model, served with it (a demoted one is not).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="inference.loraadapter",
            ),
        ),
        migrations.AlterField(
            model_name="modeldefault",
            name="model",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="defaults",
                to="inference.languagemodel",
            ),
        ),
        migrations.AddField(
            model_name="modeldefault",
            name="qa_default",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Case(
                    models.When(purpose="qa", then=models.Value("yes")), default=models.Value("no")
                ),
                output_field=models.CharField(max_length=3),
            ),
        ),
    ]
