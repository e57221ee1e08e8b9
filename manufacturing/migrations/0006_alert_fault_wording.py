"""Alert messages written before the fault calls had human wording ("..., fault call outer_race") get
the wording engineers now read ("..., bearing fault call: outer-race bearing defect"). Display text
only: the trail keeps what was raised, as raised."""

from django.db import migrations

# a frozen copy of manufacturing.analysis.vibration.FAULT_LABELS (migrations never import app code)
LABELS = {
    "outer_race": "outer-race bearing defect",
    "inner_race": "inner-race bearing defect",
    "ball": "rolling-element (ball) bearing defect",
    "cage": "cage (train) bearing defect",
    "imbalance": "imbalance",
    "misalignment": "misalignment",
    "looseness": "mechanical looseness",
}


def reword(apps, schema_editor):
    Alert = apps.get_model("manufacturing", "Alert")
    for alert in Alert.objects.filter(message__contains=", fault call ").iterator():
        head, _, fault = alert.message.rpartition(", fault call ")
        if fault in LABELS:
            alert.message = f"{head}, bearing fault call: {LABELS[fault]}"[:255]
            alert.save(update_fields=["message"])


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0005_failureclassifierversion")]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop)]
