"""Imported work-order history joins the asset it names: a row imported before this, whose equipment
label ends in "(TAG)" (the chiller history: "Chiller 9 (CWC04009)") for an asset of the same site with
that tag and no asset of its own, gets that asset (its page, history and reliability figures)."""

from django.db import migrations


def join(apps, schema_editor):
    Machine = apps.get_model("manufacturing", "Machine")
    WorkOrder = apps.get_model("manufacturing", "WorkOrder")
    for machine in Machine.objects.all().only("pk", "site", "tag"):
        WorkOrder.objects.filter(
            machine__isnull=True, site=machine.site, equipment_label__endswith=f"({machine.tag})"
        ).exclude(external_id="").update(machine=machine)


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0020_alert_defect_kind")]

    operations = [migrations.RunPython(join, migrations.RunPython.noop)]
