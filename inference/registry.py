"""The model registry: local Hugging Face-format directories, GGUF imports, remote OpenAI-compatible
servers, the defaults per purpose and the LoRA adapters served on top of a local model.

These functions work on database rows and are the LLM layer's own (its views, API, commands and
the tuning app). Industry apps call inference.services, which wraps them and returns plain
dataclasses (ModelInfo, AdapterInfo) instead of rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from audit.services import record
from inference.engine.importer import gguf_metadata
from inference.engine.llamacpp import is_gguf
from inference.engine.modeldir import ModelDirError, inspect_model_dir

# QUANTIZATIONS: the load-time quantizations of an HF directory
from inference.engine.types import QUANTIZATIONS, InvalidRequest
from inference.models import LanguageModel, LoraAdapter, ModelDefault, model_name_validator


def model_register(
    *,
    actor,
    path: str | Path,
    name: str,
    quantization: str = "none",
    draft_name: str | None = None,
    description: str = "",
    max_concurrency: int = 1,
    policy: str = "",
    gguf_path: str | Path | None = None,
    licence: str = "",
    extra_info: dict | None = None,
) -> LanguageModel:
    """Register (or refresh) a local Hugging Face-format model directory. Reads its config; loads nothing.

    The caller has decided that `actor` may (the command line is an administrator's tool; people in
    the portal and the API go through model_register_checked); `policy` names the rule that allowed it.
    """
    info = inspect_model_dir(path)  # raises ModelDirError naming the missing or corrupt file
    if gguf_path is not None and not is_gguf(gguf_path):
        raise ModelDirError(f"{gguf_path} is not a GGUF file.", file=gguf_path)
    draft = LanguageModel.objects.get(name=draft_name) if draft_name else None
    fields = {
        "backend": LanguageModel.Backend.LOCAL,
        "path": str(Path(info.path).resolve()),
        "quantization": quantization,
        "draft": draft,
        "description": description,
        "architecture": info.architecture,
        "parameter_count": info.parameter_count,
        "dtype": info.dtype,
        "context_length": info.context_length or 0,
        "vocab_size": info.vocab_size or 0,
        "info": {**_jsonable(info), **(extra_info or {})},
        "gguf_path": str(Path(gguf_path).resolve()) if gguf_path else "",
        "licence": licence,
        "max_concurrency": max_concurrency,
        "registered_by": actor if getattr(actor, "pk", None) else None,
        "is_active": True,
    }
    with transaction.atomic():
        model, created = LanguageModel.objects.update_or_create(name=name, defaults=fields)
        model.full_clean()
        record(
            actor=actor,
            action="model.register",
            resource_type="model",
            resource_id=name,
            outcome="succeeded",
            policy=policy,
            payload={"path": fields["path"], "created": created, "parameters": info.parameter_count,
                     "architecture": info.architecture, "quantization": quantization,
                     "gguf_path": fields["gguf_path"], "licence": licence},
        )  # fmt: skip
    return model


class RegistrationRefused(ValueError):
    """Input a person must fix: {field: message}, fields named as in the request."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


def model_register_checked(
    *,
    user,
    path: str,
    name: str,
    quantization: str = "none",
    draft: str = "",
    description: str = "",
    replace: bool = False,
    actor=None,
) -> LanguageModel:
    """Register a model directory for a person (portal, API): the policy's `register` on
    `model:<name>` (PolicyDenied, trailed), a directory inside MODEL_ROOT (people do not get to point
    the server at arbitrary paths; administrators use `manage.py register_model` for that), no silent
    replacement of a registered model, and a readable reason for a bad directory."""
    errors: dict[str, str] = {}
    try:
        model_name_validator(name)
    except ValidationError as exc:
        errors["name"] = " ".join(exc.messages)
    if errors:
        raise RegistrationRefused(errors)
    decision = check(user, "register", f"model:{name}", actor=actor)
    root = Path(settings.MODEL_ROOT).resolve()
    directory = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if not directory.is_relative_to(root):
        errors["path"] = f"Put the model directory under {root} (MODEL_ROOT) and give its path there."
    elif not directory.is_dir():
        errors["path"] = f"There is no directory {directory}."
    if LanguageModel.objects.filter(name=name).exists() and not replace:
        errors["name"] = f"A model named {name!r} is registered already; choose another name or replace it."
    if draft and not LanguageModel.objects.filter(name=draft, is_active=True).exists():
        errors["draft"] = f"No active model is named {draft!r}."
    if quantization not in QUANTIZATIONS:
        errors["quantization"] = (
            f"Choose one of {', '.join(QUANTIZATIONS)} (GGUF quantizations are made by import_model)."
        )
    if errors:
        raise RegistrationRefused(errors)
    try:
        return model_register(
            actor=actor if actor is not None else user,
            path=directory,
            name=name,
            quantization=quantization,
            draft_name=draft or None,
            description=description,
            policy=decision.policy or "",
        )
    except ModelDirError as exc:
        raise RegistrationRefused({"path": str(exc)}) from exc


def model_register_remote(
    *, actor, name: str, base_url: str, remote_model: str, api_key_env: str = "", description: str = ""
) -> LanguageModel:
    """Register a model served by an OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama, another Suite)."""
    with transaction.atomic():
        model, created = LanguageModel.objects.update_or_create(
            name=name,
            defaults={
                "backend": LanguageModel.Backend.REMOTE,
                "path": "",
                "remote_url": base_url.rstrip("/"),
                "remote_model": remote_model,
                "remote_api_key_env": api_key_env,
                "description": description,
                "registered_by": actor if getattr(actor, "pk", None) else None,
                "is_active": True,
            },
        )
        model.full_clean()
        record(
            actor=actor, action="model.register", resource_type="model", resource_id=name, outcome="succeeded",
            payload={"remote_url": model.remote_url, "remote_model": remote_model, "created": created},
        )  # fmt: skip
    return model


def _jsonable(info) -> dict:
    return json.loads(json.dumps(asdict(info), default=str))


# --- defaults: which model serves chat, QA phrasing and LoRA jobs unless a request names one -----
def default_model(purpose: str) -> LanguageModel | None:
    """The active model set for `purpose` (ModelDefault.Purpose), or None when none is set."""
    row = default_row(purpose)
    return row.model if row else None


def default_row(purpose: str):
    """The ModelDefault of `purpose` whose model is active (with model and adapter loaded), or None."""
    return (
        ModelDefault.objects.select_related("model", "model__draft", "adapter")
        .filter(purpose=purpose, model__is_active=True)
        .first()
    )


def model_default_set(
    *, actor, purpose: str, model: LanguageModel, adapter=None, checked: bool = True, policy: str = ""
):
    """Make `model` (with `adapter`, one of its promoted LoRA adapters, if given) the default for
    `purpose`. People need `register` on `model:<name>` (PolicyDenied, trailed); `checked=False` is for
    set-up commands, an administrator's tools. Trailed with the previous default."""
    if purpose not in ModelDefault.Purpose.values:
        raise RegistrationRefused({"purpose": f"Choose one of {', '.join(ModelDefault.Purpose.values)}."})
    if checked:
        policy = check(actor, "register", f"model:{model.name}").policy or ""
    if not model.is_active:
        raise RegistrationRefused({"model": f"{model.name} is not active."})
    if purpose == ModelDefault.Purpose.LORA_BASE and model.backend != LanguageModel.Backend.LOCAL:
        raise RegistrationRefused({"model": "LoRA jobs need a local model (a Hugging Face directory)."})
    if adapter is not None:
        if purpose == ModelDefault.Purpose.LORA_BASE:
            raise RegistrationRefused(
                {"model": "A LoRA job trains on the base model: choose it without an adapter."}
            )
        if adapter.base_model_id != model.pk or adapter.status != LoraAdapter.Status.PROMOTED:
            raise RegistrationRefused(
                {"model": f"{adapter.name} is not a promoted adapter of {model.name}: promote it first."}
            )
    with transaction.atomic():
        previous = ModelDefault.objects.select_for_update().filter(purpose=purpose).first()
        previous_name = previous.model.name if previous else None
        previous_adapter = previous.adapter.name if previous and previous.adapter_id else None
        ModelDefault.objects.update_or_create(
            purpose=purpose,
            defaults={
                "model": model, "adapter": adapter,
                "changed_by": actor if getattr(actor, "pk", None) else None,
            },
        )  # fmt: skip
        record(
            actor=actor, action="model.default_set", resource_type="model", resource_id=model.name,
            outcome="succeeded", policy=policy,
            payload={"purpose": purpose, "previous": previous_name, "previous_adapter": previous_adapter,
                     "model": model.name, "adapter": adapter.name if adapter else None,
                     "adapter_id": adapter.pk if adapter else None},
        )  # fmt: skip
    return model


def model_import_register(
    *, actor, result, licence: str | None = None, description: str = ""
) -> LanguageModel:
    """Register what `inference.engine.importer` wrote: the GGUF it serves (llama.cpp) and the
    Hugging Face directory (training, evaluation), with parameter count, quantization and licence."""
    gguf = result.served_gguf
    extra = {
        "gguf_files": {quant: str(path) for quant, path in result.gguf_files.items()},
        "import_checks": result.checks,
    }
    licence = licence if licence is not None else result.licence
    quantization = result.served_quantization or "none"
    if result.hf_dir is not None:
        model = model_register(
            actor=actor, path=result.hf_dir, name=result.name, quantization=quantization if gguf else "none",
            description=description, gguf_path=gguf, licence=licence, extra_info=extra,
        )  # fmt: skip
        if gguf and result.parameter_count:
            # llama.cpp's count of the served file (tied embeddings counted once, as the card says).
            LanguageModel.objects.filter(pk=model.pk).update(parameter_count=result.parameter_count)
            model.refresh_from_db()
        return model
    meta = gguf_metadata(gguf)
    architecture = str(meta.get("general.architecture", ""))
    fields = {
        "backend": LanguageModel.Backend.LOCAL, "path": str(Path(gguf).resolve()), "gguf_path": str(Path(gguf).resolve()),
        "quantization": quantization, "description": description, "architecture": architecture,
        "parameter_count": result.parameter_count, "dtype": quantization, "licence": licence,
        "context_length": int(meta.get(f"{architecture}.context_length", 0) or 0),
        "vocab_size": int(meta.get(f"{architecture}.vocab_size", 0) or 0), "info": extra,
        "registered_by": actor if getattr(actor, "pk", None) else None, "is_active": True,
    }  # fmt: skip
    with transaction.atomic():
        model, created = LanguageModel.objects.update_or_create(name=result.name, defaults=fields)
        model.full_clean()
        record(
            actor=actor, action="model.register", resource_type="model", resource_id=result.name,
            outcome="succeeded",
            payload={"gguf_path": fields["gguf_path"], "created": created, "parameters": result.parameter_count,
                     "quantization": quantization, "licence": licence},
        )  # fmt: skip
    return model


# --- LoRA adapters ---------------------------------------------------------------------------
def adapter_register(
    *, base_model: LanguageModel, name: str, path: str, source: str, evaluation: dict
) -> LoraAdapter:
    adapter = LoraAdapter(base_model=base_model, name=name, path=path, source=source, evaluation=evaluation)
    adapter.full_clean()
    adapter.save()
    return adapter


def adapter_set_status(*, actor, adapter: LoraAdapter, status: str, reason: str = "") -> LoraAdapter:
    """Promote (servable) or demote an adapter. Requires `promote` on its base model; trailed with the
    evaluation the decision was based on."""
    decision = check(actor, "promote", f"model:{adapter.base_model.name}")
    if status not in (LoraAdapter.Status.PROMOTED, LoraAdapter.Status.DEMOTED):
        raise InvalidRequest(f"Unknown adapter status {status!r}.")
    with transaction.atomic():
        locked = LoraAdapter.objects.select_for_update().get(pk=adapter.pk)
        previous = locked.status
        locked.status = status
        locked.status_changed_at = timezone.now()
        locked.save(update_fields=["status", "status_changed_at"])
        record(
            actor=actor,
            action="adapter.promote" if status == LoraAdapter.Status.PROMOTED else "adapter.demote",
            resource_type="model",
            resource_id=adapter.base_model.name,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={"adapter": locked.name, "adapter_id": locked.pk, "previous_status": previous,
                     "evaluation": locked.evaluation, "reason": reason},
        )  # fmt: skip
    return locked
