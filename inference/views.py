"""Portal pages of the LLM layer: the model registry and the playground."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from access.decisions import decide
from access.enforcement import trail_denial
from access.errors import PolicyDenied
from access.web import policy_required
from audit.actors import actor_from_request
from inference import services
from inference.engine.capacity import BYTES_PER_PARAMETER, GB, plan, rule_of_thumb_comment
from inference.engine.types import SPECULATIVE_MODES
from inference.forms import ModelDefaultForm, ModelRegisterForm
from inference.models import LanguageModel, ModelDefault
from inference.selectors import current_default_name, servable_targets, serving_stats

SECTION = "portal:models"  # the question the page and the menu ask (policy rule portal_models)
FIRST_PURPOSE = ModelDefault.Purpose.choices[0][0]  # the default-model form opens on it


@policy_required("view", SECTION)
def model_list(request: HttpRequest) -> HttpResponse:
    return _model_list_page(request, servable_targets(request.user))


def _model_list_page(
    request: HttpRequest, targets, *, form=None, default_form=None, status: int = 200
) -> HttpResponse:
    models = list(dict.fromkeys(model for model, _ in targets))
    may_watch = decide(request.user, "view", "portal:serving").allowed  # ML engineers, administrators
    may_register = decide(request.user, "register", "model:new").allowed
    context = {
        "targets": targets,
        "stats": serving_stats(models) if may_watch else [],
        "register_form": (form or ModelRegisterForm()) if may_register else None,
        "defaults": list(ModelDefault.objects.filter(model__in=models)),
        # none open to this user is not the same as none registered: the empty table says which
        "any_registered": bool(models) or LanguageModel.objects.filter(is_active=True).exists(),
        "default_form": (
            default_form
            or ModelDefaultForm(
                targets=targets,
                initial={"purpose": FIRST_PURPOSE, "model": current_default_name(FIRST_PURPOSE, models)},
            )
        )
        if may_register and models
        else None,
    }
    return render(request, "inference/model_list.html", context, status=status)


@require_POST
@policy_required("view", SECTION)
def model_register(request: HttpRequest) -> HttpResponse:
    form = ModelRegisterForm(request.POST)
    if form.is_valid():
        values = form.cleaned_data
        try:
            model = services.model_register_checked(
                user=request.user,
                actor=actor_from_request(request),
                **values,
            )
        except services.RegistrationRefused as refusal:
            for field, message in refusal.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(
                request,
                f"Registered {model.name}: {model.architecture}, {model.parameters:,} parameters.",
            )
            return redirect("inference:model_list")
    return _model_list_page(request, servable_targets(request.user), form=form, status=400)


@require_POST
@policy_required("view", SECTION)
def model_default(request: HttpRequest) -> HttpResponse:
    """Set the default model of a purpose (policy: `register` on the model; trailed by the service)."""
    targets = servable_targets(request.user)
    form = ModelDefaultForm(request.POST, targets=targets)
    if form.is_valid():
        chosen = form.cleaned_data["model"]
        model, adapter = next((m, a) for m, a in targets if (f"{m.name}:{a.name}" if a else m.name) == chosen)
        try:
            services.model_default_set(
                actor=request.user,
                purpose=form.cleaned_data["purpose"],
                model=model.name,
                adapter=adapter.name if adapter else None,
            )
        except PolicyDenied as denial:
            trail_denial(denial)  # the service's transaction rolled back with it
            form.add_error("model", str(denial))
        except services.RegistrationRefused as refusal:
            for field, message in refusal.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, f"{chosen} is now the default for {form.cleaned_data['purpose']}.")
            return redirect("inference:model_list")
    return _model_list_page(request, targets, default_form=form, status=400)


@policy_required("view", SECTION)
def playground(request: HttpRequest) -> HttpResponse:
    targets = servable_targets(request.user)
    if not targets:
        # Nothing this person may run: the playground does not open (it would only fail).
        messages.info(
            request,
            "No model is served to your account yet, so the playground has nothing to run. "
            "An ML engineer registers models; the access policy decides who may use each.",
        )
        return redirect("inference:model_list")
    default = services.default_model("chat")
    # The default chat model comes first: the playground preselects it.
    targets = sorted(
        targets, key=lambda t: not (default is not None and t[0].pk == default.id and t[1] is None)
    )
    options = [
        {"id": f"{m.name}:{a.name}" if a else m.name, "label": f"{m.name} + {a.name}" if a else m.name,
         "context": m.context_length, "draft": bool(m.draft_id)}
        for m, a in targets
    ]  # fmt: skip
    return render(
        request, "inference/playground.html", {"options": options, "speculative_modes": SPECULATIVE_MODES}
    )


@policy_required("view", SECTION)
def capacity(request: HttpRequest) -> HttpResponse:
    """The capacity planner: the same arithmetic as `manage.py plan_capacity`."""
    fields = {"params": "70e9", "layers": "80", "hidden": "8192", "kv_heads": "8", "heads": "64",
              "context": "8192", "batch": "8", "quant": "int4"}  # fmt: skip
    values = {name: request.GET.get(name, default).strip() for name, default in fields.items()}
    result, error = None, ""
    try:
        result = plan(
            params=float(values["params"]), layers=int(values["layers"]), hidden=int(values["hidden"]),
            kv_heads=int(values["kv_heads"]), attention_heads=int(values["heads"]) if values["heads"] else None,
            context=int(values["context"]), batch=int(values["batch"]), quant=values["quant"],
        )  # fmt: skip
    except ValueError as exc:
        error = f"Check the numbers: {exc}"
    context = {
        "values": values,
        "quants": list(BYTES_PER_PARAMETER),
        "result": result,
        "gb": GB,
        "weights_gb": result.weight_bytes / GB if result else None,
        "kv_gb": result.kv_cache_bytes / GB if result else None,
        "required_gb": result.required_bytes / GB if result else None,
        "error": error,
        "review": rule_of_thumb_comment().text,
    }
    return render(request, "inference/capacity.html", context, status=400 if error else 200)
