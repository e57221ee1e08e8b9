"""The sha256 of attachments and recordings stored before 0009 / 0010, so that sending one of them
again keeps it once like any other. A file that cannot be read keeps an empty sha256 (and a copy is
stored if it is sent again, as before). Two attachments of one work order with the same bytes were
both kept before 0009: the first gets the sha256, the copies keep theirs empty (nothing is deleted)."""

import hashlib

from django.db import migrations

CHUNK = 1 << 20


def file_sha256(field_file) -> str:
    """The sha256 of a stored file, read in chunks; "" when it is missing or unreadable."""
    if not field_file:
        return ""
    digest = hashlib.sha256()
    try:
        with field_file.open("rb") as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                digest.update(chunk)
    except (OSError, ValueError):
        return ""
    return digest.hexdigest()


def backfill(attachment_model, recording_model) -> dict:
    """Fill the empty sha256 of both models; how many rows got one, per model."""
    filled = {"attachments": 0, "recordings": 0}
    for attachment in attachment_model.objects.filter(sha256="").order_by("pk").iterator():
        digest = file_sha256(attachment.file)
        taken = attachment_model.objects.filter(work_order_id=attachment.work_order_id, sha256=digest)
        if digest and not taken.exists():
            attachment_model.objects.filter(pk=attachment.pk).update(sha256=digest)
            filled["attachments"] += 1
    for recording in recording_model.objects.filter(sha256="").order_by("pk").iterator():
        digest = file_sha256(recording.file)
        if digest:
            recording_model.objects.filter(pk=recording.pk).update(sha256=digest)
            filled["recordings"] += 1
    return filled


def forwards(apps, schema_editor):
    backfill(
        apps.get_model("manufacturing", "WorkOrderAttachment"),
        apps.get_model("manufacturing", "VibrationRecording"),
    )


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0011_maintenance_plans")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
