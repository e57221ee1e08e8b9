"""Reads of the access app: explain a decision, list an object's grants."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from guardian.shortcuts import get_users_with_perms

from access import actions as vocabulary
from access.decisions import Decision, decide
from access.grants import codename_for
from access.policy import active_policy
from access.resources import Resource, model_for_type, resource_for
from access.rules import Subject, attribute_text


class ExplainError(ValueError):
    """The question cannot be asked as posed (unknown user, action, resource type or object)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    subject: dict
    resource: dict
    policy_file: str
    policy_sha256: str

    def as_dict(self) -> dict:
        return {
            **self.decision.as_dict(),
            "subject_attributes": self.subject,
            "resource_attributes": self.resource,
            "policy_file": self.policy_file,
            "policy_sha256": self.policy_sha256,
        }


def explain(
    *, username: str, action: str, resource: str = "", resource_type: str = "", resource_id: str = ""
) -> Explanation:
    """May `username` do `action` on the resource, and why: every candidate rule, evaluated.

    The resource is a "type:name" string (decided as such, without attributes, exactly as code
    that passes that string to decide()), or a resource type and an object's primary key (the
    object is loaded and decided with its attributes and grants).
    """
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is None:
        raise ExplainError("user", f"There is no user '{username}'.")
    target = _target(resource, resource_type, resource_id)
    if not vocabulary.is_known(target.resource_type, action):
        known = ", ".join(vocabulary.actions_for(target.resource_type))
        raise ExplainError(
            "action", f"'{action}' is not an action on {target.resource_type} resources ({known})."
        )
    policy = active_policy()
    subject = Subject(user)
    return Explanation(
        decision=decide(user, action, target, policy=policy),
        subject={
            "username": user.get_username(),
            "active": user.is_active,
            "roles": sorted(subject.roles),
            "department": subject.value("department") or "",
            "site": subject.value("site") or "",
            "certifications": sorted(subject.value("certification")),
        },
        resource={key: attribute_text(value) or "" for key, value in sorted(target.attributes.items())},
        policy_file=policy.source,
        policy_sha256=policy.sha256,
    )


def _target(resource: str, resource_type: str, resource_id: str) -> Resource:
    if resource:
        try:
            target = resource_for(resource)
        except ValueError as error:
            raise ExplainError("resource", str(error)) from None
        if target.resource_type not in vocabulary.resource_types():
            raise ExplainError("resource", _unknown_type(target.resource_type))
        return target
    if not (resource_type and resource_id):
        raise ExplainError("resource", "Give a resource as 'type:name', or a resource type and an object id.")
    if resource_type not in vocabulary.resource_types():
        raise ExplainError("resource_type", _unknown_type(resource_type))
    model = model_for_type(resource_type)
    if model is None:
        raise ExplainError(
            "resource_type", f"No model holds {resource_type} resources; name one as 'type:name'."
        )
    try:
        obj = model._default_manager.filter(pk=resource_id).first()
    except (ValueError, TypeError, ValidationError):
        obj = None
    if obj is None:
        raise ExplainError("resource_id", f"There is no {resource_type} with id {resource_id}.")
    return resource_for(obj)


def _unknown_type(resource_type: str) -> str:
    return f"Unknown resource type '{resource_type}'; known types: {', '.join(vocabulary.resource_types())}."


@dataclass(frozen=True)
class ObjectGrant:
    username: str
    action: str


def object_grants(obj: models.Model) -> list[ObjectGrant]:
    """The direct user grants on `obj`, in the access vocabulary (for share dialogs and reviews)."""
    target = resource_for(obj)
    codenames = {codename_for(action, obj): action for action in vocabulary.actions_for(target.resource_type)}
    holders = get_users_with_perms(obj, attach_perms=True, with_superusers=False, with_group_users=False)
    return sorted(
        (
            ObjectGrant(user.get_username(), codenames[codename])
            for user, perms in holders.items()
            for codename in perms
            if codename in codenames
        ),
        key=lambda item: (item.username, item.action),
    )
