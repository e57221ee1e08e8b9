"""What the policy knows about a resource: its type, its name and its attributes.

A resource is given to `decide` as
- a string "type:name", e.g. "model:medical_qa" or "trail:suite" (no attributes), or
- a `Resource(type, name, attributes)`, e.g. for an object about to be created, or
- a model instance that speaks the policy protocol:

    class Study(models.Model):
        policy_resource_type = "study"
        # resource attribute -> ORM lookup, used by access.querysets.restrict(); "name" is the
        # field holding the policy name, needed only when rules name studies by pattern
        policy_field_map = {"department": "department"}

        def policy_name(self) -> str:          # optional: default is the `name` field, else the pk
            return str(self.pk)

        def policy_attributes(self) -> dict:   # the attributes conditions may use
            return {"department": self.department}

Models an app cannot edit (accounts.User) are adapted with `register_model(...)` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models

from access import actions as vocabulary


@dataclass(frozen=True)
class Resource:
    resource_type: str
    name: str
    attributes: Mapping[str, object] = field(default_factory=dict)
    instance: models.Model | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.resource_type}:{self.name}"

    @property
    def identifier(self) -> str:
        """What the trail records as resource_id: the primary key when there is an object."""
        return (
            str(self.instance.pk) if self.instance is not None and self.instance.pk is not None else self.name
        )


@dataclass(frozen=True)
class ModelAdapter:
    """The policy protocol for a model that does not implement it itself."""

    resource_type: str
    name: Callable[[models.Model], str]
    attributes: Callable[[models.Model], dict]
    field_map: Mapping[str, str]


_adapters: dict[type[models.Model], ModelAdapter] = {}


def register_model(
    model: type[models.Model],
    *,
    resource_type: str,
    name_field: str,
    attribute_fields: Mapping[str, str],
) -> None:
    """Make `model` a policy resource: its name is `name_field`, its attributes the given fields."""
    _adapters[model] = ModelAdapter(
        resource_type=resource_type,
        name=lambda obj: str(getattr(obj, name_field)),
        attributes=lambda obj: {
            attribute: getattr(obj, path) for attribute, path in attribute_fields.items()
        },
        field_map={"name": name_field, **attribute_fields},
    )


def _adapter_for(model: type[models.Model]) -> ModelAdapter | None:
    for klass in model.__mro__:
        if klass in _adapters:
            return _adapters[klass]
    return None


def resource_type_of(model: type[models.Model]) -> str | None:
    adapter = _adapter_for(model)
    return adapter.resource_type if adapter else getattr(model, "policy_resource_type", None)


def field_map_of(model: type[models.Model]) -> dict[str, str]:
    """Resource attribute (and "name") -> ORM lookup, for compiling rules into a filter."""
    adapter = _adapter_for(model)
    if adapter:
        return dict(adapter.field_map)
    mapping = dict(getattr(model, "policy_field_map", {}) or {})
    if "name" not in mapping and not hasattr(model, "policy_name"):
        field_names = {f.name for f in model._meta.concrete_fields}
        mapping["name"] = "name" if "name" in field_names else "pk"
    return mapping


def resource_for(resource: str | Resource | models.Model) -> Resource:
    """Normalise what callers pass to decide(). Raises TypeError/ValueError for anything else."""
    if isinstance(resource, Resource):
        return resource
    if isinstance(resource, str):
        resource_type, colon, name = resource.partition(":")
        if not colon or not resource_type or not name:
            raise ValueError(f"Resource {resource!r} must be written 'type:name', e.g. 'model:medical_qa'.")
        return Resource(resource_type, name)
    if isinstance(resource, models.Model):
        return _resource_for_instance(resource)
    raise TypeError(
        f"A resource is a 'type:name' string, an access.resources.Resource or a model instance with "
        f"policy_resource_type; got {type(resource).__name__}."
    )


def _resource_for_instance(obj: models.Model) -> Resource:
    adapter = _adapter_for(type(obj))
    if adapter:
        return Resource(adapter.resource_type, adapter.name(obj), adapter.attributes(obj), obj)
    resource_type = getattr(obj, "policy_resource_type", None)
    if not resource_type:
        raise TypeError(
            f"{type(obj).__name__} is not a policy resource: give it policy_resource_type and "
            "policy_attributes() (see access.resources)."
        )
    if hasattr(obj, "policy_name"):
        name = obj.policy_name()
    elif hasattr(obj, "name"):
        name = obj.name
    else:
        name = obj.pk
    attributes = obj.policy_attributes() if hasattr(obj, "policy_attributes") else {}
    return Resource(resource_type, str(name), dict(attributes), obj)


def model_for_type(resource_type: str) -> type[models.Model] | None:
    """The model whose instances are resources of `resource_type` (for explain by id). Several
    models may share a type (a fine-tune job is decided as a model); the first installed wins."""
    return next((model for model in apps.get_models() if resource_type_of(model) == resource_type), None)


def validate_resource_models() -> list[str]:
    """Models that claim a resource type the vocabulary does not know."""
    return [
        f"{model._meta.label} has policy_resource_type '{resource_type}', which is not in the action "
        "vocabulary (access.actions): register it."
        for model in apps.get_models()
        if (resource_type := resource_type_of(model)) is not None
        and resource_type not in vocabulary.resource_types()
    ]
