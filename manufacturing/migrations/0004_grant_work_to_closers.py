"""Grants given before 0003 held `view` and `close` only (a cross-site assignee could close a work order
they could not start): every holder of a `close` grant on a work order, user or group, also gets `work`
on it. Each added grant is written to the trail, like any other grant (access.services.grant), by the
system actor below; on a database with no such grants nothing is written at all.

The trail append uses the live audit service (the trail is hash-chained: its rows cannot be written with
historical models); it runs only when there is something to add, so a fresh database never calls it."""

from django.conf import settings
from django.db import migrations

ACTOR = "migration:manufacturing.0004_grant_work_to_closers"


def grant_work_to_closers(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    work_order_type, _ = ContentType.objects.get_or_create(app_label="manufacturing", model="workorder")
    close = Permission.objects.filter(content_type=work_order_type, codename="close_workorder").first()
    if close is None:  # no permission row, so no grant of it either
        return
    work, _ = Permission.objects.get_or_create(
        content_type=work_order_type,
        codename="work_workorder",
        defaults={"name": "Can work this workorder"},
    )
    added = []
    for model_name, holder in (
        ("WorkOrderUserObjectPermission", "user"),
        ("WorkOrderGroupObjectPermission", "group"),
    ):
        grants = apps.get_model("manufacturing", model_name).objects
        holding_work = set(grants.filter(permission=work).values_list(f"{holder}_id", "content_object_id"))
        for holder_id, work_order_id in (
            grants.filter(permission=close)
            .values_list(f"{holder}_id", "content_object_id")
            .order_by("content_object_id", f"{holder}_id")
        ):
            if (holder_id, work_order_id) not in holding_work:
                grants.create(**{f"{holder}_id": holder_id}, content_object_id=work_order_id, permission=work)
                added.append((holder, holder_id, work_order_id))
    if added:
        _trail(apps, added)


def _trail(apps, added):
    from audit.services import record

    names = {
        "user": dict(apps.get_model(settings.AUTH_USER_MODEL).objects.values_list("pk", "username")),
        "group": dict(apps.get_model("auth", "Group").objects.values_list("pk", "name")),
    }
    for holder, holder_id, work_order_id in added:
        record(
            actor=ACTOR,
            action="work_order.grant",
            resource_type="work_order",
            resource_id=work_order_id,
            outcome="succeeded",
            payload={
                "grantee": names[holder].get(holder_id, str(holder_id)),
                "grantee_kind": holder,
                "action": "work",
                "permission": "work_workorder",
                "already_granted": False,
                "reason": "holders of close gain work (migration 0004)",
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("manufacturing", "0003_workorder_work_grant"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("audit", "0004_rewrapped_texts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(grant_work_to_closers, migrations.RunPython.noop)]
