"""Every account, role, attribute and password change on the trail, with before and after.

Signals catch every path (admin, portal, API, shell): the user row (pre/post save), role
membership (groups m2m) and the Django admin's own log (LogEntry: which admin action touched
which object). The acting person comes from the request being served (ActingUserMiddleware).

Scope: changes made while serving a request (admin, portal, API) and inside `acting_as(...)`
(management commands that change accounts). A change made from a Python shell or raw SQL on the
server is not trailed: whoever has that access is outside what the trail can prove (docs/security.md).
Passwords are never trailed, only that one changed; the admin's object_repr (which may name a
patient) is left out too.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from audit.services import record

acting_request: ContextVar = ContextVar("acting_request", default=None)

TRACKED_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
    "department",
    "site",
    "certifications",
)
_SYSTEM_ACTOR = "system:accounts"


_acting_as: ContextVar = ContextVar("acting_as", default=None)


@contextmanager
def acting_as(actor):
    """Trail account changes made in this block as `actor` (a User or "component:name")."""
    token = _acting_as.set(actor)
    try:
        yield
    finally:
        _acting_as.reset(token)


def _watching() -> bool:
    return acting_request.get() is not None or _acting_as.get() is not None


def _actor():
    if _acting_as.get() is not None:
        return _acting_as.get()
    request = acting_request.get()
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return _SYSTEM_ACTOR


def _snapshot(user) -> dict:
    return {field: getattr(user, field) for field in TRACKED_FIELDS}


def user_pre_save(sender, instance, raw=False, **kwargs) -> None:
    if raw or not _watching():
        return
    previous = sender.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._trail_before = _snapshot(previous) if previous else None
    instance._trail_password_before = previous.password if previous else None


def user_post_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw or not _watching():
        return
    before = getattr(instance, "_trail_before", None)
    after = _snapshot(instance)
    password_changed = getattr(instance, "_trail_password_before", None) != instance.password
    if created or before is None:
        record(
            actor=_actor(),
            action="account.create",
            resource_type="user",
            resource_id=instance.pk,
            outcome="succeeded",
            payload={"before": None, "after": after, "password_set": instance.has_usable_password()},
        )
        return
    changed = sorted(field for field in TRACKED_FIELDS if before[field] != after[field])
    if changed:
        record(
            actor=_actor(),
            action="account.change",
            resource_type="user",
            resource_id=instance.pk,
            outcome="succeeded",
            payload={
                "fields": changed,
                "before": {field: before[field] for field in changed},
                "after": {field: after[field] for field in changed},
            },
        )
    if password_changed:
        record(
            actor=_actor(),
            action="account.password_change",
            resource_type="user",
            resource_id=instance.pk,
            outcome="succeeded",
            payload={"username": instance.get_username()},
        )
    instance._trail_before = after
    instance._trail_password_before = instance.password


def user_post_delete(sender, instance, **kwargs) -> None:
    if not _watching():
        return
    record(
        actor=_actor(),
        action="account.delete",
        resource_type="user",
        resource_id=instance.pk,
        outcome="succeeded",
        payload={"before": _snapshot(instance), "after": None},
    )


def roles_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """User.groups changes (roles are groups). Before/after are the role names."""
    if not _watching():
        return
    if reverse:  # group.user_set changed: trail each affected user
        users = get_user_model().objects.filter(pk__in=pk_set or ())
        for user in users:
            roles_changed(sender, user, action, False, model, {instance.pk}, **kwargs)
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        instance._trail_roles_before = sorted(instance.groups.values_list("name", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    before = getattr(instance, "_trail_roles_before", [])
    after = sorted(instance.groups.values_list("name", flat=True))
    instance._role_names = None  # cached roles are stale now
    if before != after:
        record(
            actor=_actor(),
            action="account.roles_change",
            resource_type="user",
            resource_id=instance.pk,
            outcome="succeeded",
            payload={"before": before, "after": after},
        )


def admin_action(sender, instance, created, **kwargs) -> None:
    """The Django admin's LogEntry: which administrator added, changed or deleted which object."""
    if not created or not _watching():
        return
    verbs = {1: "add", 2: "change", 3: "delete"}
    content_type = instance.content_type
    record(
        actor=instance.user,
        action=f"admin.{verbs.get(instance.action_flag, 'other')}",
        resource_type=f"{content_type.app_label}.{content_type.model}" if content_type else "unknown",
        resource_id=str(instance.object_id or "")[:255],
        outcome="succeeded",
        payload={"change_message": instance.get_change_message()},
    )


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(user_pre_save, sender=user_model, dispatch_uid="accounts.trail.pre_save")
    post_save.connect(user_post_save, sender=user_model, dispatch_uid="accounts.trail.post_save")
    post_delete.connect(user_post_delete, sender=user_model, dispatch_uid="accounts.trail.post_delete")
    m2m_changed.connect(roles_changed, sender=user_model.groups.through, dispatch_uid="accounts.trail.roles")
    post_save.connect(admin_action, sender=LogEntry, dispatch_uid="accounts.trail.admin_action")
