from django.db import migrations

ROLES = [
    "clinician",
    "radiologist",
    "compliance_officer",
    "maintenance_engineer",
    "ml_engineer",
    "auditor",
    "admin",
]


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
