"""Retire rest_framework.authtoken: its table kept API keys in clear. Suite issues knox tokens (hashed)."""

from django.db import migrations


def forget_authtoken_types(apps, schema_editor):
    # Stale content types and permissions of the removed app (cascade removes the permissions).
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop),
        migrations.RunPython(forget_authtoken_types, migrations.RunPython.noop),
    ]
