"""inference.services is the LLM layer's facade for the industry apps (issue 10): what it returns are
plain dataclasses, never Django model instances, so no caller holds (saves, lazily loads, locks) a
registry row through it."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing

import pytest
from django.db import models

from inference import services
from inference.models import LanguageModel


def _public_functions() -> dict:
    """What the facade exports (__all__), and any public function defined in it: none may be left out."""
    defined = {
        name
        for name, value in vars(services).items()
        if not name.startswith("_") and inspect.isfunction(value) and value.__module__ == services.__name__
    }
    assert defined <= set(services.__all__), f"not exported: {sorted(defined - set(services.__all__))}"
    return {
        name: getattr(services, name)
        for name in services.__all__
        if inspect.isfunction(getattr(services, name))
    }


def _model_classes(annotation, seen: set) -> set[type]:
    """Django model classes reachable from a type: unions, generics, dataclass fields, and what an
    iterator class yields (its __next__)."""
    if isinstance(annotation, type):
        if issubclass(annotation, models.Model):
            return {annotation}
        if annotation in seen:
            return set()
        seen.add(annotation)
        found: set[type] = set()
        if dataclasses.is_dataclass(annotation):
            for hint in typing.get_type_hints(annotation).values():
                found |= _model_classes(hint, seen)
        if "__next__" in vars(annotation):
            found |= _model_classes(typing.get_type_hints(annotation.__next__).get("return"), seen)
        return found
    found = set()
    for argument in typing.get_args(annotation):
        found |= _model_classes(argument, seen)
    return found


def _model_instances(value, depth: int = 0) -> list:
    if isinstance(value, models.Model):
        return [value]
    if depth > 4:
        return []
    if dataclasses.is_dataclass(value):
        return [
            m for f in dataclasses.fields(value) for m in _model_instances(getattr(value, f.name), depth + 1)
        ]
    if isinstance(value, list | tuple | set):
        return [m for item in value for m in _model_instances(item, depth + 1)]
    if isinstance(value, dict):
        return [m for item in value.values() for m in _model_instances(item, depth + 1)]
    return []


def test_no_public_function_of_the_facade_returns_a_model_instance():
    functions = _public_functions()
    assert {"resolve_target", "default_target", "default_model", "model_register", "model_default_set",
            "model_import_register", "completion_create", "completion_stream", "embed"} <= set(functions)  # fmt: skip
    for name, function in functions.items():
        hints = typing.get_type_hints(function)
        assert "return" in hints, f"inference.services.{name} has no return annotation to check"
        assert hints["return"] is not typing.Any, name
        assert not _model_classes(hints["return"], set()), f"inference.services.{name} returns a Django model"
        # What help() and IDEs show agrees with what the wrappers return.
        shown = inspect.signature(function, eval_str=True).return_annotation
        assert not _model_classes(shown, set()), f"{name}'s signature names a Django model"


@dataclasses.dataclass
class _Holder:
    rows: list[LanguageModel]


def test_the_checker_sees_a_model_behind_unions_and_dataclasses():
    assert _model_classes(_Holder | None, set()) == {LanguageModel}
    assert _model_classes(types.SimpleNamespace, set()) == set()


@pytest.mark.django_db
def test_what_the_registry_commands_and_resolvers_return_holds_no_row(served_model, make_user):
    engineer = make_user("ml_engineer")
    returned = {
        "model_register": services.model_register(
            actor="test:facade", path=served_model.path, name="facade-copy", draft_name="suite-demo-draft"
        ),
        "model_default_set": services.model_default_set(actor=engineer, purpose="chat", model="facade-copy"),
        "default_model": services.default_model("chat"),
        "default_target": services.default_target("chat"),
        "resolve_target": services.resolve_target("suite-demo"),
    }
    for name, value in returned.items():
        assert value is not None and not _model_instances(value), name
    info = returned["model_register"]
    assert (info.name, info.engine, info.draft, info.parameters) == (
        "facade-copy", "transformers", "suite-demo-draft", served_model.parameter_count,
    )  # fmt: skip
    assert returned["default_model"] == info and returned["default_target"].public_name == "facade-copy"
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "changed"  # type: ignore[misc]
