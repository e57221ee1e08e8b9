from django.db import migrations

# Auditors of one domain each (issue 11): the policy lets each read that domain's trail events only.
ROLES = ["clinical_auditor", "aml_auditor", "plant_auditor"]


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_drop_legacy_plaintext_tokens")]
    operations = [migrations.RunPython(create_roles, remove_roles)]
