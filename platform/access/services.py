"""Writes of the access app: per-object grants (django-guardian), each one trailed.

A grant lets one user `action` one object, but only through an allow rule with
`require_grant: true` (see access.grants). Granting and revoking are themselves decisions:
the actor needs "share" on the object to grant, and "unshare" to revoke where the resource type
has that action (else "share"); each change is recorded on the trail in the same transaction as
the permission row.
"""

from __future__ import annotations

from django.db import models, transaction
from guardian.shortcuts import assign_perm, remove_perm

from access import actions as vocabulary
from access.enforcement import check
from access.grants import find_grant, permission_for
from access.resources import resource_for
from audit.services import record

GRANT_AUTHORIZING_ACTION = "share"
REVOKE_AUTHORIZING_ACTION = "unshare"  # where the resource type has it; "share" otherwise


def grant(*, actor, user, action: str, obj: models.Model) -> str:
    """Give `user` a grant of `action` on `obj`; returns the grant's description.

    actor: the User doing it (needs "share" on obj under the policy), or a system actor string
    ("task:finance.assign_case") for components that decided on their own authority.
    """
    policy = _authorize(actor, action, obj)
    permission = permission_for(action, obj)

    with transaction.atomic():
        already = find_grant(user, action, obj) is not None
        assign_perm(permission, user, obj)
        _trail_change("grant", actor=actor, user=user, action=action, obj=obj, policy=policy,
                      codename=permission.codename, state={"already_granted": already})  # fmt: skip
    return f"user:{user.get_username()} {permission.codename}"


def revoke(*, actor, user, action: str, obj: models.Model) -> bool:
    """Take back `user`'s direct grant of `action` on `obj`; returns whether there was one."""
    policy = _authorize(actor, action, obj, revoking=True)
    permission = permission_for(action, obj)

    with transaction.atomic():
        held = find_grant(user, action, obj) is not None
        remove_perm(permission, user, obj)
        _trail_change("revoke", actor=actor, user=user, action=action, obj=obj, policy=policy,
                      codename=permission.codename, state={"was_granted": held})  # fmt: skip
    return held


def _trail_change(
    kind: str, *, actor, user, action: str, obj: models.Model, policy: str, codename: str, state: dict
):
    resource_type = resource_for(obj).resource_type
    record(
        actor=actor,
        action=f"{resource_type}.{kind}",
        resource_type=resource_type,
        resource_id=obj.pk,
        outcome="succeeded",
        policy=policy,
        payload={"grantee": user.get_username(), "action": action, "permission": codename, **state},
    )


def _authorize(actor, action: str, obj: models.Model, *, revoking: bool = False) -> str:
    """The name of the rule that lets `actor` share (or un-share) `obj` ("" for a system actor);
    PolicyDenied otherwise."""
    target = resource_for(obj)
    if target.instance is None or obj.pk is None:
        raise ValueError("Grants are given on saved objects.")
    if not vocabulary.is_known(target.resource_type, action):
        raise ValueError(
            f"'{action}' is not an action on {target.resource_type} resources "
            f"({', '.join(vocabulary.actions_for(target.resource_type))})."
        )
    if isinstance(actor, str):
        return ""
    authorizing = GRANT_AUTHORIZING_ACTION
    if revoking and vocabulary.is_known(target.resource_type, REVOKE_AUTHORIZING_ACTION):
        authorizing = REVOKE_AUTHORIZING_ACTION
    return check(actor, authorizing, target).policy or ""
