"""Portal pages of the tuning app: jobs (list, create, live progress) and LoRA adapters."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from access.enforcement import check
from access.web import policy_required
from inference.models import LoraAdapter
from inference.tuning import selectors, services
from inference.tuning.forms import JobForm
from inference.tuning.serializers import JobDetailOutput
from ops.broker import broker_required_for_post

SECTION = "portal:tuning"  # the question the pages and the menu ask (policy rule portal_tuning)
JOBS_SHOWN = 200


def _require_section(request: HttpRequest) -> None:
    check(request.user, "view", SECTION)


@policy_required("view", SECTION)
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = selectors.jobs_for(request.user)[:JOBS_SHOWN]
    may_create = selectors.tunable_models(request.user).exists() and bool(
        selectors.data_adapters_for(request.user)
    )
    return render(request, "tuning/job_list.html", {"jobs": jobs, "may_create": may_create})


@login_required
@require_http_methods(["GET", "POST"])
# the job runs on a worker: 503 page, no job created, while the queue is down (after the access check)
@broker_required_for_post(authorize=_require_section)
def job_create(request: HttpRequest) -> HttpResponse:
    _require_section(request)
    choices = {
        "models": list(selectors.tunable_models(request.user)),
        "data_adapters": selectors.data_adapters_for(request.user),
    }
    form = JobForm(request.POST or None, **choices)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_create(user=request.user, **form.service_arguments())
        except services.JobInputError as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, f"Job {job.pk} queued: {job.dataset_examples} examples snapshotted.")
            return redirect("tuning:job_detail", pk=job.pk)
    return render(request, "tuning/job_form.html", {"form": form, **choices})


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_section(request)
    job = selectors.job_for(request.user, pk)
    context = {
        "job": job,
        "initial": JobDetailOutput(job).data,
        "filters_json": json.dumps(job.filters, ensure_ascii=False),
        "api_url": reverse("tuning-api-job", kwargs={"pk": job.pk}),
        "evaluation_rows": _evaluation_rows(job.evaluation),
    }
    return render(request, "tuning/job_detail.html", context)


def _evaluation_rows(evaluation: dict) -> list[dict]:
    """Base and adapter side by side, with the change (lower perplexity, higher task metric is better)."""
    rows = []
    split = evaluation.get("eval_split")
    if split:
        rows.append(
            {
                "label": f"Held-out perplexity ({split['examples']} examples, lower is better)",
                "base": split["base_perplexity"],
                "adapter": split["adapter_perplexity"],
                "change": f"{split['relative_change'] * 100:+.1f}%",
                "better": split["adapter_perplexity"] < split["base_perplexity"],
            }
        )
    metric = evaluation.get("task_metric")
    if metric:
        rows.append(
            {
                "label": f"{metric['name']} ({metric['examples']} examples, higher is better)",
                "base": metric["base"],
                "adapter": metric["adapter"],
                "change": f"{metric['adapter'] - metric['base']:+.3f}",
                "better": metric["adapter"] > metric["base"],
            }
        )
    return rows


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    _require_section(request)
    job = selectors.job_for(request.user, pk)
    try:
        job = services.job_cancel(user=request.user, job=job)
    except services.JobStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Job {job.pk}: {job.get_status_display().lower()}.")
    return redirect("tuning:job_detail", pk=pk)


def _authorize_retry(request: HttpRequest, pk: int) -> None:
    _require_section(request)
    selectors.job_for(request.user, pk)  # the policy on the job's model and data (denial trailed)


@login_required
@require_POST
@broker_required_for_post(authorize=_authorize_retry)
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    _require_section(request)
    job = selectors.job_for(request.user, pk)
    try:
        services.job_retry(user=request.user, job=job)
    except services.JobStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Job {job.pk} queued again.")
    return redirect("tuning:job_detail", pk=pk)


@login_required
def adapter_list(request: HttpRequest) -> HttpResponse:
    _require_section(request)
    adapters = list(selectors.adapters_for(request.user))
    promotable = {a.base_model_id for a in adapters if selectors.may_promote(request.user, a.base_model)}
    rows = [{"adapter": a, "may_promote": a.base_model_id in promotable} for a in adapters]
    return render(request, "tuning/adapter_list.html", {"rows": rows})


def _change_adapter_status(request: HttpRequest, pk: int, status: str) -> HttpResponse:
    _require_section(request)
    adapter = selectors.adapter_get(pk)
    try:
        adapter = services.adapter_status_change(
            user=request.user, adapter=adapter, status=status, reason=request.POST.get("reason", "")[:500]
        )
    except services.JobStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{adapter} is now {adapter.get_status_display().lower()}.")
    return redirect("tuning:adapter_list")


@login_required
@require_POST
def adapter_promote(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_adapter_status(request, pk, LoraAdapter.Status.PROMOTED)


@login_required
@require_POST
def adapter_demote(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_adapter_status(request, pk, LoraAdapter.Status.DEMOTED)
