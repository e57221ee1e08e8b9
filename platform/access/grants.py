"""Explicit per-object grants, stored by django-guardian, read for the policy's require_grant rules.

Convention: the grant of `action` on an object of model `Study` is guardian's object permission
with codename `<action>_<model_name>` ("view_study", "share_study", "break_glass_study").
Django creates view/add/change/delete permissions itself; a model declares the others:

    class Study(models.Model):
        class Meta:
            permissions = grant_permissions("study", ["ask", "share", "break_glass"])

A grant never decides on its own: it only satisfies an allow rule that says `require_grant: true`,
and a deny rule still wins over it (see access.decisions). Never ask `user.has_perm(...)` for a
decision: Django's backend chain answers True as soon as any backend does, so it cannot apply
deny rules or conditions.

Large tables use guardian's direct foreign-key permission models, which this module finds through
guardian's own lookup (`get_user_obj_perms_model`), so nothing else needs configuring:

    from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

    class StudyUserObjectPermission(UserObjectPermissionBase):
        content_object = models.ForeignKey(Study, on_delete=models.CASCADE)

    class StudyGroupObjectPermission(GroupObjectPermissionBase):
        content_object = models.ForeignKey(Study, on_delete=models.CASCADE)

Other models use guardian's generic tables (content type + object_pk).
"""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from guardian.ctypes import get_content_type
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model


def grant_permissions(model_name: str, actions: list[str]) -> list[tuple[str, str]]:
    """Meta.permissions entries for the custom actions a model can be granted on."""
    return [
        (f"{action}_{model_name}", f"Can {action.replace('_', ' ')} this {model_name}") for action in actions
    ]


def codename_for(action: str, model: type[models.Model] | models.Model) -> str:
    return f"{action}_{model._meta.model_name}"


def permission_for(action: str, model: type[models.Model] | models.Model) -> Permission:
    """The Permission row behind grants of `action` on `model`; ImproperlyConfigured if undeclared."""
    content_type = _content_type(model)
    codename = codename_for(action, model)
    try:
        return Permission.objects.get(content_type=content_type, codename=codename)
    except Permission.DoesNotExist:
        raise ImproperlyConfigured(
            f"No permission '{content_type.app_label}.{codename}': declare it in {model._meta.object_name}.Meta."
            f"permissions (access.grants.grant_permissions) and migrate, so '{action}' can be granted per object."
        ) from None


def _content_type(model):
    return get_content_type(model)  # guardian's, so grants and lookups agree on proxy models


def _models_for(model: type[models.Model]):
    """Guardian's permission tables for `model`: its direct foreign-key ones if declared, else generic."""
    return get_user_obj_perms_model(model), get_group_obj_perms_model(model)


def _is_generic(permission_model: type[models.Model]) -> bool:
    return permission_model.objects.is_generic()


def _grant_filter(permission_model, model: type[models.Model], action: str, object_pks: list | None) -> dict:
    """Lookups selecting grants of `action` on `model` objects (all of them when object_pks is None)."""
    content_type = _content_type(model)
    lookups = {"permission__content_type": content_type, "permission__codename": codename_for(action, model)}
    if _is_generic(permission_model):
        lookups["content_type"] = content_type
        if object_pks is not None:
            lookups["object_pk__in"] = [str(pk) for pk in object_pks]
    elif object_pks is not None:
        lookups["content_object__in"] = object_pks
    return lookups


def _object_column(permission_model) -> str:
    return "object_pk" if _is_generic(permission_model) else "content_object_id"


def find_grant(user, action: str, obj: models.Model | None) -> str | None:
    """A description of the user's grant of `action` on `obj` ("user:alice view_study" or
    "group:radiologist view_study"), or None. Inactive and anonymous users hold no grants."""
    if obj is None or obj.pk is None or user is None or not user.is_authenticated or not user.is_active:
        return None
    codename = codename_for(action, obj)
    user_model, group_model = _models_for(type(obj))
    rows = user_model.objects.filter(user=user, **_grant_filter(user_model, type(obj), action, [obj.pk]))
    if rows.exists():
        return f"user:{user.get_username()} {codename}"
    group_name = (
        group_model.objects.filter(
            group__user=user, **_grant_filter(group_model, type(obj), action, [obj.pk])
        )
        .values_list("group__name", flat=True)
        .order_by("group__name")
        .first()
    )
    return f"group:{group_name} {codename}" if group_name else None


def granted_pks(user, action: str, model: type[models.Model]) -> set:
    """Primary keys of the `model` objects the user holds a grant of `action` on (directly or via a group)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    user_model, group_model = _models_for(model)
    pks = set(
        user_model.objects.filter(user=user, **_grant_filter(user_model, model, action, None)).values_list(
            _object_column(user_model), flat=True
        )
    )
    pks.update(
        group_model.objects.filter(
            group__user=user, **_grant_filter(group_model, model, action, None)
        ).values_list(_object_column(group_model), flat=True)
    )
    # Generic tables hold the key as text: convert it back to the model's primary key type.
    to_python = model._meta.pk.to_python
    return {to_python(pk) for pk in pks}
